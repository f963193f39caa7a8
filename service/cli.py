"""CLI commands: keys, sign, audit, serve, demo. Mounted on the root app in `trustframe.cli`."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from trustframe.errors import ConfigError
from trustframe.settings import load_settings

keys_app = typer.Typer(help="Create or inspect the signing chain and the watermark key.",
                       no_args_is_help=True)
LABEL_STYLE = {"ai-generated": "bold red", "likely-ai-generated": "red", "tampered": "bold magenta",
               "no-evidence": "green", "error": "yellow"}


def _emit_json(obj) -> None:
    typer.echo(json.dumps(obj, sort_keys=False))


@keys_app.command("init")
def keys_init(
    alg: str = typer.Option("es256", help="Signing algorithm: es256 or ed25519."),
    force: bool = typer.Option(False, help="Replace existing keys (old signatures lose trust)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create a local root CA -> intermediate -> signer chain and a separate watermark key."""
    from trustframe.provenance.keys import init_keys, show_keys

    s = load_settings()
    d = init_keys(s, alg=alg, force=force)
    certs = [c.as_dict() for c in show_keys(s)]
    if as_json:
        _emit_json({"keys_dir": str(d), "certificates": certs})
    else:
        typer.echo(f"created keys in {d} (private keys 0600)")
        _print_certs(certs)


@keys_app.command("show")
def keys_show(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Subjects, SHA-256 fingerprints and expiry of the signing chain and trust anchors."""
    from trustframe.provenance.keys import show_keys

    certs = [c.as_dict() for c in show_keys(load_settings())]
    if as_json:
        _emit_json({"certificates": certs})
    else:
        _print_certs(certs)


def _print_certs(certs: list[dict]) -> None:
    t = Table("role", "subject", "expires", "sha256")
    for c in certs:
        t.add_row(c["role"], c["subject"], c["not_after"][:10], c["sha256"][:23] + "…")
    Console().print(t)


def sign(
    src: Path = typer.Argument(..., help="Image or video to sign (PNG, JPEG, WebP, MP4, MOV)."),
    output: Path = typer.Option(..., "-o", "--output", help="Signed file to write."),
    source: str = typer.Option("trainedAlgorithmicMedia", help="IPTC digitalSourceType, e.g. "
                               "trainedAlgorithmicMedia, digitalCapture, compositeWithTrainedAlgorithmicMedia."),  # noqa: E501
    ingredient: Path | None = typer.Option(None, help="A file this one was derived from."),
    watermark: bool = typer.Option(False, "--watermark", help="Embed the invisible watermark first "
                                   "and bind it to the manifest (soft binding, stored in the repository)."),
    payload: str | None = typer.Option(None, help="Watermark payload (hex); default: allocated."),
    title: str | None = typer.Option(None, help="Manifest title (default: output file name)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Sign a file with C2PA Content Credentials stating how it came to be."""
    from trustframe.provenance.manifest import source_type_uri
    from trustframe.provenance.signing import sign_file

    s = load_settings()
    source_type_uri(source)  # fail on a bad --source before any work
    if payload and not watermark:
        raise ConfigError("--payload needs --watermark")
    if watermark:
        from trustframe.service.protect import protect_file

        r = protect_file(src, output, source_type=source, payload=payload, title=title, settings=s)
    else:
        r = sign_file(src, output, source_type=source, title=title, ingredient=ingredient, settings=s)
    info = {"output": str(r.path), "manifest_id": r.manifest_id, "payload": r.payload,
            "watermark_verified": r.watermark_verified}
    if as_json:
        _emit_json(info)
    else:
        typer.echo(f"signed {r.path} (manifest {r.manifest_id})"
                   + (f", watermark payload {r.payload} (verified on the written file)" if r.payload else ""))
    if r.watermark_verified is False:
        typer.echo("warning: the watermark could not be read back from the written file, so the manifest "
                   "carries no soft binding: a copy stripped of its manifest cannot be recovered", err=True)


def audit(
    paths: list[str] = typer.Argument(..., help="Files, folders (recursive) or glob patterns."),
    as_json: bool = typer.Option(False, "--json", help="One JSON Verdict per line (JSON Lines)."),
    fail_on: str | None = typer.Option(None, help="Comma-separated labels that make the exit code 1, "
                                       "e.g. ai-generated,tampered."),
    workers: int = typer.Option(1, min=1, help="Audit in this many local processes."),
    detector: bool = typer.Option(True, "--detector/--no-detector",
                                  help="Score files with the AI-video detector (default) or skip it."),
) -> None:
    """Audit files for AI provenance: C2PA credentials, watermark, detector -> one label each.

    Exit codes: 0 all audited; 1 a label in --fail-on occurred; 3 some file could not be read
    (3 wins over 1); 2 usage error.
    """
    from trustframe.service.audit import audit_many, expand
    from trustframe.service.verdict import LABELS

    wanted = {x.strip() for x in fail_on.split(",") if x.strip()} if fail_on else set()
    if bad := wanted - set(LABELS):
        raise ConfigError(f"--fail-on: unknown label(s) {', '.join(sorted(bad))}; "
                          f"choose from {', '.join(LABELS)}")
    s = load_settings()
    total = sum(1 for _ in expand(paths))
    err = Console(stderr=True)
    table = Table("file", "label", "reasons", show_lines=False)
    labels = []
    show_progress = total > 1 and err.is_terminal
    from rich.progress import Progress

    with Progress(console=err, transient=True, disable=not show_progress) as progress:
        task = progress.add_task("auditing", total=total)
        for v in audit_many(paths, settings=s, workers=workers, detector=detector):
            labels.append(v.label)
            if as_json:
                typer.echo(v.to_json())
            else:
                style = LABEL_STYLE.get(v.label, "")
                table.add_row(v.file, f"[{style}]{v.label}[/]", "; ".join(v.reasons))
            progress.advance(task)
    if not as_json:
        Console(soft_wrap=False).print(table)
    if "error" in labels:
        raise typer.Exit(3)
    if wanted.intersection(labels):
        raise typer.Exit(1)


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="TCP port."),
) -> None:
    """Serve the HTTP API: POST /v1/audit, the C2PA soft-binding resolution API, /docs."""
    import uvicorn

    from trustframe.service.http import create_app

    uvicorn.run(create_app(load_settings()), host=host, port=port)


def demo(
    out: Path | None = typer.Option(None, help="Folder for the demo files (default: a temp folder)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON Verdict per line."),
) -> None:
    """Make sample media, sign (and watermark) it, strip and tamper copies, audit them all."""
    from trustframe.service.demo import run_demo

    s = load_settings()
    folder = out or Path(tempfile.mkdtemp(prefix="trustframe-demo-"))
    verdicts = run_demo(folder, s)
    if as_json:
        for v in verdicts:
            typer.echo(v.to_json())
        return
    t = Table("file", "label", "reasons", title=f"TrustFrame demo ({folder})")
    for v in verdicts:
        t.add_row(Path(v.file).name, f"[{LABEL_STYLE[v.label]}]{v.label}[/]", "\n".join(v.reasons))
    Console(file=sys.stdout).print(t)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.command()(sign)
    app.command()(audit)
    app.command()(serve)
    app.command()(demo)
