"""Tensor helpers the generator's trainers, tests and benchmarks share: world clips as tensors, object
masks on pixels and on the latent grid, PSNR and the held-out clips it is measured on."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from trustframe.generator import world


def to_tensor(clip: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (3, T, H, W) in [-1, 1]."""
    return torch.from_numpy(clip).permute(3, 0, 1, 2).float() / 127.5 - 1.0


def object_mask(x: torch.Tensor) -> torch.Tensor:
    """Clips (B, 3, T, H, W) in [-1, 1] -> float (B, 1, T, H, W), 1 on object pixels: objects are bright
    or saturated, backgrounds dark and grey (`world.is_object_pixel`)."""
    px = (x + 1) * 127.5
    return world.is_object_pixel(px.amax(1, keepdim=True), px.amin(1, keepdim=True)).float()


def latent_object_mask(x: torch.Tensor, time_factor: int, space_factor: int) -> torch.Tensor:
    """Clips (B, 3, T, H, W) in [-1, 1] -> uint8 (B, 1, t, h, w) on the causal VAE's latent grid: 1 where
    the cell (or a spatial neighbour) covers an object pixel. Frame 0 has a latent frame of its own."""
    fg = object_mask(x)  # (B, 1, T, H, W)
    fg = torch.cat([fg[:, :, :1].expand(-1, -1, time_factor - 1, -1, -1), fg], dim=2)
    fg = F.max_pool3d(fg, (time_factor, space_factor, space_factor), ceil_mode=True)
    return F.max_pool3d(fg, (1, 3, 3), stride=1, padding=(0, 1, 1)).to(torch.uint8)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of [-1, 1] tensors, measured on the uint8 grid."""
    qa = ((a.clamp(-1, 1) + 1) * 127.5).round()
    qb = ((b.clamp(-1, 1) + 1) * 127.5).round()
    mse = (qa - qb).pow(2).mean().item()
    return 10 * math.log10(255.0**2 / max(mse, 1e-10))


def heldout_clips(n: int = 16, seed: int = 12345, frames: int = 16) -> list[torch.Tensor]:
    """Held-out world clips (16 x 64 x 64; the first object of each is a held-out colour-shape pair)."""
    rng = np.random.default_rng(seed)
    return [to_tensor(world.render(world.sample_spec(rng, frames=frames, split="heldout"))) for _ in range(n)]


@torch.no_grad()
def evaluate_psnr(vae, clips: list[torch.Tensor]) -> float:
    """Mean reconstruction PSNR of `vae` over `clips` (eval mode while measuring)."""
    was_training = vae.training
    vae.eval()
    vals = [psnr(vae.decode(vae.encode(c[None]), *c.shape[1:])[0], c) for c in clips]
    vae.train(was_training)
    return float(np.mean(vals))


@torch.no_grad()
def normalised_latents(vae, latent_mean, latent_std, x: torch.Tensor) -> torch.Tensor:
    """Clips (B, 3, T, H, W) in [-1, 1] -> posterior-mean latents (B, C, t, h, w), normalised per
    channel as the DiT sees them, fp16 (how the caches store them)."""
    mean = torch.tensor(latent_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(latent_std).view(1, -1, 1, 1, 1)
    return ((vae.encode(x) - mean) / std).half()
