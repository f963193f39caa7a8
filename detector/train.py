"""Train the detector on aligned real/fake pairs, calibrate it, and export the preset.

    python -m trustframe.detector.train --recipe tfdet-s [--export]    # the shipped detector: data, stages
    python -m trustframe.detector.data --out runs/detector-data        # or by hand: the data once,
    python -m trustframe.detector.train --minutes 45 [--export]        # then a run: train, calibrate

Runs unchanged under `torchrun --nproc-per-node N` (DDP, gloo on CPU). Resumable: the run keeps
`runs/<name>/state.pt` (every `ckpt_minutes`) and a rerun continues it (with a larger --minutes and
other flags, a next stage). The run ends by calibrating and writing runs/<name>/<name>.{safetensors,json},
which `--export` copies to detector/weights/. `--exclude-decoder X` trains without decoder X's fakes
(the leave-one-decoder-out benchmark).

Each step draws half real, half fake *pairs*: the same crop of the same source frame, once
as filmed and once through a decoder, after the same codec; so the only thing that tells
the two apart is the decoder's trace.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from trustframe.detector.api import Calibration, Detector, to_tensor
from trustframe.detector.autoencoders import DECODERS
from trustframe.detector.data import REAL_SOURCES, Publishing
from trustframe.detector.model import DETECTOR_SIZES, DetectorConfig, create_detector
from trustframe.training import (
    Run,
    RunConfig,
    cosine_lr,
    finish_process,
    init_process,
    native_bf16,
    parse_config,
    set_lr,
)


@dataclass
class TrainConfig(RunConfig):
    name: str = "tfdet-s"  # the run's folder under --out, and the preset --export writes
    data: str = "runs/detector-data"
    size: str = "det-s"
    minutes: float = 45.0
    batch: int = 64  # crops per step, half real and half fake
    crop: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    still_p: float = 0.5  # share of crops scored as stills (no previous frame)
    resize_p: float = 0.0  # share of pairs downscaled after the decoder (both alike), by 1 to 1.5x
    gif_p: float = 0.0  # share of pairs published through a GIF palette (both alike)
    grain_p: float = 0.0  # share of pairs with noise added after the decoder (both alike)
    jpeg_p: float = 0.0  # share of pairs (not GIF) re-saved as JPEG at quality 25-90 (both alike)
    exclude_decoder: str = ""  # train without this decoder's fakes
    # bfloat16 autocast where the CPU does bf16 in hardware (`training.native_bf16`): the network's
    # step in about half the time (weights, loss and calibration stay float32)
    bf16: bool = field(default_factory=native_bf16)
    ckpt_minutes: float = 5.0
    threads: int = 2


def joined(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Pairs of several files as one split, in order (the fields they all have)."""
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if all(k in p for p in parts)}


def load_split(data: Path, split: str, exclude: str = "") -> dict[str, np.ndarray]:
    """A split's pairs: footage (`{split}.npz`) and, when the data has them, world renders
    (`{split}-world.npz`)."""
    files = (data / f"{split}.npz", data / f"{split}-world.npz")
    d = joined([dict(np.load(f)) for f in files if f.is_file()])
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
    # After the decoder, what publishing does to a file, one draw per pair for both of its clips:
    # a GIF palette (its dither is noise, which the decoder's output otherwise lacks), grain and a
    # JPEG re-save. Without these, "noisy = real" is learnt and every dithered GIF of a generator
    # passes as real, and "8-px blocks = decoder" flags real footage compressed twice.
    publish = [Publishing.draw(rng, cfg.gif_p, cfg.grain_p, cfg.jpeg_p) for _ in range(half)]
    cur, pre = [], []
    for kind in ("real", "fake"):
        for i, ti, y, x, s, f, n, pub in zip(pick, ts, ys, xs, still, flip, win, publish, strict=True):
            clip = d[kind][i, :, y : y + n, x : x + n]
            if n != cfg.crop:
                clip = np.stack(
                    [cv2.resize(c, (cfg.crop, cfg.crop), interpolation=cv2.INTER_AREA) for c in clip]
                )
            a, b = clip[ti], clip[ti if s else ti - 1]
            a, b = pub(np.stack([a, b]), rng)
            if f:
                a, b = a[:, ::-1], b[:, ::-1]
            cur.append(a)
            pre.append(b)
    label = torch.cat([torch.zeros(half), torch.ones(half)])
    return to_tensor(np.stack(cur)), to_tensor(np.stack(pre)), label


def published(d: dict[str, np.ndarray], cfg: TrainConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """A copy of split `d` with whole pairs published as in training (`draw_batch`): a GIF palette
    for cfg.gif_p of them, grain for cfg.grain_p and a JPEG re-save for cfg.jpeg_p, both clips of
    a pair alike; so calibration and thresholds see footage as training did. A published clip's
    H.264 quantiser is no longer what a file would show (a GIF or JPEG has none), so it becomes NaN."""
    rng = np.random.default_rng(seed)
    out = {k: v.copy() for k, v in d.items()}
    for i in range(len(out["real"])):
        pub = Publishing.draw(rng, cfg.gif_p, cfg.grain_p, cfg.jpeg_p)
        for kind in ("real", "fake"):
            out[kind][i] = pub(out[kind][i], rng)
            if pub and f"qp_{kind}" in out:
                out[f"qp_{kind}"][i] = np.nan
    return out


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


def main(argv: list[str] | None = None) -> dict | None:
    from trustframe.recipes import cli, wants_recipe

    if wants_recipe(argv):
        return cli("detector", argv)
    cfg, command = parse_config(TrainConfig, argv, "trustframe.detector.train", __doc__.split("\n\n")[0])
    if cfg.init_from:
        raise SystemExit("the detector trains from scratch; continue a run by rerunning it with more "
                         "--minutes")
    # one of the threads draws the next batch (GIF palettes, JPEG, resizes: as long as the network's
    # step) while the others train on this one: 0.126 s a step on 2 cores against 0.256 with both
    # training and the drawing in turn
    rank, world, rng = init_process(cfg.seed, max(1, cfg.threads - 1))
    train = load_split(Path(cfg.data), "train", cfg.exclude_decoder)

    net = create_detector(cfg.size)
    model = torch.nn.parallel.DistributedDataParallel(net) if world > 1 else net
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    run = Run(cfg, world)
    if run.resume({"model": net, "opt": opt}) and not run.log and (run.dir / "history.json").is_file():
        run.log = json.loads((run.dir / "history.json").read_text())  # a run of the older trainer
    if rank == 0:
        print(f"{cfg.name}: {len(train['real'])} pairs, {sum(p.numel() for p in net.parameters())} "
              f"parameters, from step {run.step}", flush=True)
    net.train()
    losses = []
    batches = ThreadPoolExecutor(1)
    ahead = batches.submit(draw_batch, train, cfg, rng)
    while run.running():
        set_lr(opt, cosine_lr(cfg.lr, run.step, run.frac, warmup=100))
        cur, pre, label = ahead.result()
        ahead = batches.submit(draw_batch, train, cfg, rng)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            logit = model(cur, pre).float().mean(dim=(1, 2, 3))
        loss = F.binary_cross_entropy_with_logits(logit, label)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run.step += 1
        losses.append(loss.item())
        if rank == 0 and run.step % 100 == 0:
            acc = float(((logit > 0).float() == label).float().mean())
            run.log.append({"step": run.step, "minutes": round(run.elapsed / 60, 2),
                            "loss": round(float(np.mean(losses)), 4), "batch_acc": round(acc, 3)})
            losses = []
            print(json.dumps(run.log[-1]), flush=True)
        if rank == 0 and run.checkpoint_due():
            run.save({"model": net, "opt": opt})
    batches.shutdown(cancel_futures=True)
    torch.set_num_threads(cfg.threads)  # calibration: every thread scores
    result = None
    if rank == 0:
        run.save({"model": net, "opt": opt})
        result = calibrate_and_export(net, cfg, command, run)
    finish_process(world)
    return result


def calibrate_and_export(net, cfg: TrainConfig, command: str, run: Run) -> dict:
    """Fit calibration and thresholds on the calibration split; write the run's weights and card
    (runs/<name>/<name>.*) and, with --export, copy them into detector/weights/."""
    net.eval()
    cal = published(load_split(Path(cfg.data), "calibration", cfg.exclude_decoder), cfg, cfg.seed)
    probe = Detector(net, Calibration([0.0], [0.5], 0.0, 0.0), cfg.name)
    real, fake = clip_logits(probe, cal["real"]), clip_logits(probe, cal["fake"])
    calibration = Calibration.fit(real, fake, real_qp=cal.get("qp_real"), fake_qp=cal.get("qp_fake"))
    calibration.patch_threshold_logit = patch_threshold(probe, cal["real"])
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(np.r_[np.zeros(len(real)), np.ones(len(fake))], np.r_[real, fake]))
    tpr = float((fake >= calibration.threshold_logit).mean())
    data_card = (
        json.loads((Path(cfg.data) / "data.json").read_text())
        if (Path(cfg.data) / "data.json").is_file()
        else {}
    )
    metrics = {"calibration_split": {"auc": round(auc, 4), "tpr_at_threshold": round(tpr, 4),
                                     "real_clips": len(real), "fake_clips": len(fake)}}
    card = {
        "name": cfg.name,
        "kind": "detector",
        "size": cfg.size,
        "config": DetectorConfig.from_dict(DETECTOR_SIZES[cfg.size].to_dict()).to_dict(),
        "calibration": calibration.to_dict(),
        "scoring": probe.scoring,
        "data": {
            "command": data_card.get("command", f"python -m trustframe.detector.data --out {cfg.data}"),
            "real": REAL_SOURCES,
            "fake": "the same clips through the decoders " + ", ".join(DECODERS),
            "autoencoders": data_card.get("autoencoders", {}),
        },
    }
    print(f"calibration split: AUC {auc:.4f}, TPR at 1 % FPR {tpr:.3f}", flush=True)
    return run.finish("detector", net.state_dict(), card, command, metrics)


if __name__ == "__main__":
    main()
