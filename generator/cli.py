"""`trustframe generate`: text to a watermarked, signed video (or image)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from trustframe.errors import ConfigError
from trustframe.settings import load_settings


def _size(value: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in value.lower().split("x"))
    except ValueError as e:
        raise ConfigError(f"--size must look like 64x64, got {value!r}") from e
    return w, h


def generate(
    prompt: str = typer.Argument(..., help='What to show, e.g. "a red ball moving left".'),
    output: Path = typer.Option(..., "-o", "--output", help="Video (.mp4), or image (.png) with --frames 1."),
    frames: int = typer.Option(16, help="Number of frames (1 makes an image)."),
    size: str = typer.Option("64x64", help="WIDTHxHEIGHT, multiples of 8."),
    seed: int = typer.Option(0, help="Random seed: the same seed and prompt give the same clip."),
    steps: int | None = typer.Option(None, help="Sampling steps (Euler, rectified flow) [default: the "
                                     "preset's, 25 for tfdit-s]."),
    guidance: float | None = typer.Option(None, help="Classifier-free guidance scale [default: the "
                                          "preset's, 2.0 for tfdit-s]."),
    shape_guidance: float | None = typer.Option(None, help="Contrastive guidance away from the other shapes "
                                                "(0: off) [default: the preset's, 2.0 for tfdit-s]."),
    preset: str = typer.Option("tfdit-s", help="Model preset."),
    upscale: int = typer.Option(4, help="Output upsampling (1, 2, 4) before watermarking."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Generate a clip from text. Refused prompts write nothing and exit 5; prompts the model cannot
    read (mostly unknown words) write nothing and exit 6, and unknown words are named as a warning.

    Every file is watermarked at decode time and signed with a C2PA manifest declaring
    trainedAlgorithmicMedia; the manifest is registered under the watermark payload.
    """
    from rich.progress import Progress

    from trustframe.generator.pipeline import generate as run

    width, height = _size(size)
    with Progress(transient=True, disable=as_json) as bar:
        task = bar.add_task("sampling", total=steps)  # None until the sampler reports its steps
        r = run(prompt, output, settings=load_settings(), frames=frames, width=width, height=height,
                seed=seed, steps=steps, guidance=guidance,
                shape_guidance=shape_guidance, preset=preset, upscale=upscale,
                progress=lambda i, n: bar.update(task, completed=i + 1, total=n))
    info = {"output": str(r.path), "manifest_id": r.manifest_id, "payload": r.payload,
            "watermark_verified": r.watermark_verified,
            "prompt_sha256": r.prompt_sha256, "unknown_words": list(r.unknown_words),
            "seconds": {k: round(v, 3) for k, v in r.seconds.items()}}
    if as_json:
        typer.echo(json.dumps(info))
    else:
        typer.echo(f"wrote {r.path}: watermark payload {r.payload} (verified on the written file), "
                   f"manifest {r.manifest_id}" if r.watermark_verified else
                   f"wrote {r.path}: manifest {r.manifest_id}")
    if r.warning:
        typer.echo(f"warning: {r.warning}", err=True)
    if not r.watermark_verified:
        typer.echo("warning: the watermark could not be read back from the written file, so the manifest "
                   "carries no soft binding", err=True)
