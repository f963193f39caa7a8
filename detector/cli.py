"""`trustframe detect` and `trustframe detector evaluate|train`: the detector on its own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from trustframe.errors import ConfigError, TrustFrameError
from trustframe.settings import load_settings

detector_app = typer.Typer(
    help="Evaluate the AI-video detector on your own folders, or adapt it to them.", no_args_is_help=True
)


def detect(
    paths: list[str] = typer.Argument(..., help="Files, folders (recursive) or glob patterns."),
    as_json: bool = typer.Option(False, "--json", help="One JSON result per line."),
    heatmap: Path | None = typer.Option(
        None,
        "--heatmap",
        help="Write each file's heat map (the "
        "highest-scoring frame, P(AI) per 16x16 patch painted over it) "
        "as DIR/<name>.heatmap.png.",
    ),
    preset: str | None = typer.Option(
        None, help="Detector preset or .safetensors path (default: the `detector_preset` setting)."
    ),
) -> None:
    """Score files with the AI-video detector alone: calibrated P(AI-generated), label, frames.

    Exit codes: 0 every file scored; 3 some file could not be read or scored.
    """
    from rich.console import Console
    from rich.table import Table

    from trustframe import media
    from trustframe.detector.api import load
    from trustframe.media import expand

    s = load_settings()
    det = load(preset or s.detector_preset)
    table = Table("file", "label", "P(AI)", "threshold", "top frame")
    failed = False
    for path in expand(paths):
        try:
            frames = media.read(path, max_frames=s.audit_frames, settings=s, quantiser=True)
            r = det.score(frames, heatmap=heatmap is not None)
        except TrustFrameError as e:
            failed = True
            if as_json:
                typer.echo(json.dumps({"file": str(path), "error": {"code": e.code, "message": str(e)}}))
            else:
                table.add_row(path.name, "[red]error[/]", str(e), "", "")
            continue
        written = None
        if heatmap is not None:
            written = media.write(r.heatmap_image(), heatmap / f"{path.name}.heatmap.png")
        row = {
            "file": str(path),
            "score": round(r.score, 4),
            "label": r.label,
            "threshold": round(r.threshold, 4),
            "threshold_fpr": r.threshold_fpr,
            "model": r.model,
            "frames": r.frames,
            "top_frame": r.top_frame,
            "h264_qp": r.h264_qp,
            "heatmap": str(written) if written else None,
        }
        if as_json:
            typer.echo(json.dumps(row))
        else:
            table.add_row(path.name, r.label, f"{r.score:.2f}", f"{r.threshold:.2f}", str(r.top_frame))
    if not as_json:
        Console(soft_wrap=False).print(table)
    if failed:
        raise typer.Exit(3)


def _score_folder(det, folder: Path, s) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(files, logits, calibrated P) of every media file under `folder` that could be read."""
    from trustframe import media
    from trustframe.media import expand

    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder")
    names, logits, probs = [], [], []
    for path in expand([folder]):
        try:
            frames = media.read(path, max_frames=s.audit_frames, settings=s, quantiser=True)
            logit = det.logit(frames)
        except TrustFrameError as e:
            typer.echo(f"skipped {path}: {e}", err=True)
            continue
        names.append(str(path))
        logits.append(logit)
        probs.append(float(det.calibration.prob(logit, frames.meta.get("h264_qp"))))
    if not names:
        raise ConfigError(f"{folder}: no media file could be read")
    return names, np.array(logits), np.array(probs)


@detector_app.command("evaluate")
def evaluate(
    real: Path = typer.Option(..., "--real", help="Folder of real (camera) images and video."),
    generated: Path = typer.Option(..., "--generated", help="Folder of AI-generated images and video."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    preset: str | None = typer.Option(None, help="Detector preset or .safetensors path."),
) -> None:
    """AUC, AP, TPR at 1 % and 0.1 % FPR, ECE, and the false-positive rate at the shipped threshold."""
    from trustframe.detector.api import load
    from trustframe.detector.metrics import summary

    s = load_settings()
    det = load(preset or s.detector_preset)
    _, lr, pr = _score_folder(det, real, s)
    _, lg, pg = _score_folder(det, generated, s)
    labels = np.r_[np.zeros(len(lr)), np.ones(len(lg))]
    out = summary(labels, np.r_[lr, lg], np.r_[pr, pg])
    out["fpr_at_threshold"] = round(float((lr >= det.calibration.threshold_logit).mean()), 4)
    out["tpr_at_threshold"] = round(float((lg >= det.calibration.threshold_logit).mean()), 4)
    out["model"] = det.name
    if as_json:
        typer.echo(json.dumps(out))
    else:
        for k, v in out.items():
            typer.echo(f"{k:>20}: {v}")


@detector_app.command("train")
def train(
    real: Path = typer.Option(..., "--real", help="Folder of real (camera) images and video."),
    generated: Path = typer.Option(..., "--generated", help="Folder of AI-generated images and video."),
    output: Path = typer.Option(
        ...,
        "-o",
        "--output",
        help="Where to write the adapted detector "
        "(NAME.safetensors + NAME.json); use it with --preset or detector_preset.",
    ),
    minutes: float = typer.Option(5.0, min=0.0, help="Fine-tuning time budget (0: recalibrate only)."),
    preset: str | None = typer.Option(None, help="Detector to start from (default: detector_preset)."),
    seed: int = typer.Option(0),
) -> None:
    """Adapt the detector to your footage: fine-tune its head on 70 % of the files, then fix the
    calibration and the 1 %-FPR threshold on the other 30 %. Prints the held-out metrics."""
    from trustframe.detector.adapt import adapt

    s = load_settings()
    report = adapt(
        real, generated, output, minutes=minutes, preset=preset or s.detector_preset, seed=seed, settings=s
    )
    typer.echo(json.dumps(report))


def register(app: typer.Typer) -> None:
    app.command()(detect)
    app.add_typer(detector_app, name="detector")
