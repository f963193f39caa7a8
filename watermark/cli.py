"""`trustframe watermark embed|detect` (a Typer sub-app; the root CLI mounts it)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Embed or detect TrustFrame's invisible watermark.", no_args_is_help=True)


@app.command("embed")
def embed_cmd(
    src: Path = typer.Argument(..., help="image or video to watermark"),
    out: Path = typer.Option(..., "-o", "--out", help="where to write the watermarked file"),
    payload: str | None = typer.Option(None, "--payload", help="12 hex digits (48 bits)"),
    preset: str = typer.Option("tfwm-base", "--preset"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON object"),
) -> None:
    """Watermark SRC into OUT and print the payload (hex)."""
    from trustframe import media
    from trustframe.watermark import embed
    from trustframe.watermark.payload import parse_hex

    if payload is not None:
        parse_hex(payload)  # ConfigError before any decoding
    frames = media.read(src)
    res = embed(frames, payload, preset=preset)
    written = media.write(res.frames, out)
    if as_json:
        typer.echo(json.dumps({"payload": res.payload, "output": str(written),
                               "frames": len(res.frames)}))
    else:
        typer.echo(res.payload)


@app.command("detect")
def detect_cmd(
    file: Path = typer.Argument(..., help="image or video to check"),
    fpr: float = typer.Option(1e-6, "--fpr", help="target false positive rate"),
    preset: str = typer.Option("tfwm-base", "--preset"),
    as_json: bool = typer.Option(False, "--json", help="print the full result as JSON"),
) -> None:
    """Check FILE for the watermark: detected?, p-value, payload."""
    from trustframe import media
    from trustframe.watermark import detect

    res = detect(media.read(file), fpr=fpr, preset=preset)
    if as_json:
        typer.echo(json.dumps(res.as_dict()))
    elif res.detected:
        typer.echo(f"watermark detected (p={res.p_value:.2e}); payload: {res.payload or 'unreadable'}")
    else:
        typer.echo(f"no watermark detected (p={res.p_value:.2e})")
