"""The two trained networks of the watermark, both small, fully convolutional, on luma at the working
resolution.

- `MaskNet` (embedder side): luma -> where to put the watermark's energy, a positive map with unit
  RMS (so the residual's energy, hence the PSNR, is fixed by the strength alone). Trained jointly
  with the extractor against an SSIM penalty. The shipped one learned to keep energy off strong
  edges (mask ~0.15 there, ~1 elsewhere) rather than to favour texture as a classic JND mask would.
- `RevealNet` (extractor side): luma of a possibly attacked frame -> an estimate of the watermark
  pattern at every pixel (content, codec blocking and ringing suppressed). Trained to maximise the
  normalised correlation with the true (geometrically transformed) pattern after random attacks
  including real H.264/H.265 and JPEG, which is the matched-filter SNR the keyed readout sees.

Neither network sees the key or the message: the keyed tile, the template search and the bit
readout stay analytic (`layout`, `extractor`), which is what keeps the statistics honest: on
unmarked content the keyed readout gives unbiased bits whatever the networks output.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class NetConfig:
    mask_channels: int = 8
    mask_floor: float = 0.25  # mask range before unit-RMS normalisation
    mask_ceil: float = 3.0
    reveal_channels: int = 16
    highpass_sigma: float = 8.0  # px; RevealNet's input is luma minus its Gaussian blur

    def as_dict(self) -> dict:
        return asdict(self)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """1-D Gaussian taps, radius ceil(3 sigma), summing to 1."""
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma**2))
    return k / k.sum()


def blur(x: torch.Tensor, kernel: torch.Tensor, border: str = "reflect") -> torch.Tensor:
    """Separable blur of every channel of (N, C, H, W) by the 1-D `kernel`.

    border: "reflect" (falls back to "replicate" on frames smaller than the radius) or "replicate".
    """
    r, c = (len(kernel) - 1) // 2, x.shape[1]
    mode = "reflect" if border == "reflect" and min(x.shape[-2:]) > r else "replicate"
    x = F.pad(x, (r, r, r, r), mode=mode)
    x = F.conv2d(x, kernel.to(x.dtype).view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, kernel.to(x.dtype).view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


class MaskNet(nn.Module):
    """Luma (N, 1, H, W) in [0, 1] -> mask (N, 1, H, W), positive, unit RMS per image."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        c = cfg.mask_channels
        self.cfg = cfg
        self.body = nn.Sequential(
            nn.Conv2d(1, c, 5, padding=2, padding_mode="reflect"), nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=2, dilation=2, padding_mode="reflect"), nn.ReLU(),
            nn.Conv2d(c, 1, 3, padding=1, padding_mode="reflect"))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        lo, hi = self.cfg.mask_floor, self.cfg.mask_ceil
        m = lo + (hi - lo) * torch.sigmoid(self.body(y - 0.5))
        return m * torch.rsqrt(m.pow(2).mean(dim=(-2, -1), keepdim=True))


class RevealNet(nn.Module):
    """Luma (N, 1, H, W) in [0, 1] -> pattern estimate (N, 1, H, W), roughly unit scale."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        c = cfg.reveal_channels
        self.cfg = cfg
        self.register_buffer("kernel", gaussian_kernel(cfg.highpass_sigma), persistent=False)
        self.body = nn.Sequential(
            nn.Conv2d(1, c, 5, padding=2, padding_mode="reflect"), nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=2, dilation=2, padding_mode="reflect"), nn.ReLU(),
            nn.Conv2d(c, 1, 3, padding=1, padding_mode="reflect"))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        hp = (y - blur(y, self.kernel)) * 32.0  # a 2/255 pattern -> ~0.25
        return self.body(hp)
