"""CLI commands: keys, sign, audit, serve, demo. Mounted on the root app in `trustframe.cli`."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from trustframe.errors import ConfigError
from trustframe.settings import load_settings

keys_app = typer.Typer(help="Create or inspect the signing chain and the watermark key.",
                       no_args_is_help=True)
LABEL_STYLE = {"ai-generated": "bold red", "likely-ai-generated": "red", "tampered": "bold magenta",
               "no-evidence": "green", "error": "yellow"}


def _emit_json(obj) -> None:
    typer.echo(json.dumps(obj, sort_keys=False))


FILE_NAME_MAX_WIDTH = 48  # the file column is at least as wide as the longest name, up to this


def file_cell(file: str) -> Text:
    """A file in the audit table: its name on the first line, its folder dimmed on the next. The
    column folds long text instead of cutting it, so a long path never hides the name."""
    path = Path(file)
    cell = Text(path.name or file)
    if path.name and str(path.parent) != ".":
        cell.append("\n" + str(path.parent), style="dim")
    return cell


def verdict_table(title: str | None = None) -> Table:
    """The table `audit` and `demo` print: file (name, then folder), label, reasons."""
    t = Table(title=title, show_lines=False)
    t.add_column("file", overflow="fold")
    t.add_column("label", no_wrap=True)
    t.add_column("reasons", overflow="fold")
    return t


def add_verdict(table: Table, v, *, reasons_sep: str = "; ") -> None:
    """One row for Verdict `v`; plain text (a file name with [brackets] is not markup)."""
    name_width = min(len(Path(v.file).name), FILE_NAME_MAX_WIDTH)
    column = table.columns[0]
    column.min_width = max(column.min_width or 0, name_width)
    table.add_row(file_cell(v.file), Text(v.label, style=LABEL_STYLE.get(v.label, "")),
                  Text(reasons_sep.join(v.reasons)))


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
    workers: int = typer.Option(1, min=1, help="Audit in this many local processes (Ray actors with "
                                "--engine ray)."),
    detector: bool = typer.Option(True, "--detector/--no-detector",
                                  help="Score files with the AI-video detector (default) or skip it."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Append one JSON verdict per line to "
                                       "this file as files finish, instead of printing them."),
    resume: bool = typer.Option(False, "--resume", help="Skip files that already have a line in "
                                "--output (same path, size and mtime)."),
    by_hash: bool = typer.Option(False, "--by-hash", help="With --resume: skip by content SHA-256 "
                                 "instead, so renamed or copied files are skipped too."),
    engine: str = typer.Option("local", help="local (processes on this machine) or ray (Ray Data "
                               "actors; needs trustframe[ray])."),
    ray_address: str | None = typer.Option(None, help="With --engine ray: the cluster to join, e.g. "
                                           "ray://head:10001 or auto (default: start a local Ray)."),
) -> None:
    """Audit files for AI provenance: C2PA credentials, watermark, detector -> one label each.

    Exit codes: 0 all audited; 1 a label in --fail-on occurred; 3 some file could not be read
    (3 wins over 1); 2 usage error. With --resume they reflect the files audited in this run.
    """
    from trustframe.service import batch
    from trustframe.service.verdict import LABELS

    wanted = {x.strip() for x in fail_on.split(",") if x.strip()} if fail_on else set()
    if bad := wanted - set(LABELS):
        raise ConfigError(f"--fail-on: unknown label(s) {', '.join(sorted(bad))}; "
                          f"choose from {', '.join(LABELS)}")
    if ray_address and engine != "ray":
        raise ConfigError("--ray-address needs --engine ray")
    if engine == "ray":
        from trustframe.service.ray_engine import require_ray

        require_ray()
    err = Console(stderr=True)
    table = verdict_table()

    def show(v) -> None:
        if output is not None:
            return
        if as_json:
            typer.echo(v.to_json())
        else:
            add_verdict(table, v)

    summary = batch.Summary()
    try:
        batch.run(paths, settings=load_settings(), workers=workers, detector=detector, output=output,
                  resume=resume, by_hash=by_hash, engine=engine, ray_address=ray_address, on_verdict=show,
                  summary=summary, progress=err if err.is_terminal else None)
    except KeyboardInterrupt:
        err.print(summary.line(), highlight=False, markup=False, soft_wrap=True)
        raise
    if output is None and not as_json:
        Console(soft_wrap=False).print(table)
    if output is not None or summary.audited + summary.skipped > 1:
        err.print(summary.line(), highlight=False, markup=False, soft_wrap=True)
    if summary.errors:
        raise typer.Exit(3)
    if wanted.intersection(summary.labels):
        raise typer.Exit(1)


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="Server processes (uvicorn workers). Each has its own "
                                "pool of audit_workers audit processes, its own rate-limit buckets and "
                                "its own /metrics counters (a scrape sees the process that answered)."),
) -> None:
    """Serve the HTTP API: POST /v1/audit, the C2PA soft-binding resolution API, /metrics, /docs.

    Logs are JSON lines on stderr, one per request. On SIGINT/SIGTERM the server stops accepting,
    lets requests and audits in flight finish, then stops its audit processes.
    """
    import signal

    import uvicorn

    from trustframe.service.http import create_app, log_config

    s = load_settings()  # a configuration error stops here, before any process starts
    # After its graceful shutdown uvicorn raises the signal it caught again, under the handler it
    # found. Python's default for SIGTERM kills the process on the spot and its exit handlers never
    # run (multiprocessing's would remove the forkserver's folder from the temp dir); exit instead,
    # with the status a death by SIGTERM reports (143).
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    options = {"host": host, "port": port, "log_config": log_config(), "access_log": False}
    if workers == 1:
        uvicorn.run(create_app(s), **options)
    else:  # each worker process builds its own app (settings from the same config and environment)
        import inspect

        if "timeout_worker_healthcheck" in inspect.signature(uvicorn.run).parameters:
            # A new worker imports the app and starts its audit processes before it answers
            # uvicorn's health check; on a busy machine that takes more than the default 5 s,
            # and the worker would be killed and restarted over and over.
            options["timeout_worker_healthcheck"] = 30
        # A worker dies by SIGTERM's default action once uvicorn has shut it down gracefully (it raises
        # the signal again), so its exit handlers never run and multiprocessing's folders would stay
        # in the temp dir. The workers get a temp dir of their own, removed once they have stopped.
        import os
        import shutil

        own = tempfile.mkdtemp(prefix="tf-")  # short: the forkservers' AF_UNIX sockets go in it
        os.environ["TMPDIR"] = own  # the workers are spawned: they read it afresh
        try:
            uvicorn.run("trustframe.service.http:create_app", factory=True, workers=workers, **options)
        finally:
            shutil.rmtree(own, ignore_errors=True)


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
    t = verdict_table(f"TrustFrame demo ({folder})")
    for v in verdicts:
        add_verdict(t, v, reasons_sep="\n")
    Console(file=sys.stdout).print(t)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.command()(sign)
    app.command()(audit)
    app.command()(serve)
    app.command()(demo)
