"""The embedder: the keyed tile laid over each frame, scaled by a perceptual (texture) mask.

Per clip the carried bits become one periodic luma tile (`layout.tile_from_spectrum`). Per frame:
resize to the working resolution (short side `work_size`), compute the texture mask there, form
`strength * mask * pattern`, upscale that residual to the frame's size and add it to R, G and B
alike (a pure luma change, which chroma subsampling and hue shifts leave alone). The cost per
frame is two resizes, a box filter and an add, so any resolution and aspect ratio works.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class EmbedderConfig:
    work_size: int = 256  # short side of the working resolution, px
    strength: float = 1.9  # RMS of the residual, in 0-255 units (PSNR ~ 20 log10(255 / s))
    # mask = floor + gain * local std (0-255), capped, then unit RMS. A floor of 0.35 with gain
    # 1/6 hid more in flat regions (SSIM 0.990 vs 0.985 at 256x256) but cost detection on our
    # held-out set (clean TPR 0.92 vs 1.00, H.264 CRF 28: 0.15 vs 0.38), so the mask is milder.
    mask_floor: float = 0.7  # mask on flat regions, before normalisation
    mask_gain: float = 1 / 12  # mask per unit of local luma std (0-255 scale)
    mask_ceil: float = 2.5

    def as_dict(self) -> dict:
        return asdict(self)


def work_shape(height: int, width: int, work_size: int) -> tuple[int, int]:
    """(h, w) at the working resolution: short side `work_size`, aspect kept."""
    s = work_size / min(height, width)
    return max(1, round(height * s)), max(1, round(width * s))


def to_work(frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (h, w, 3) at the working resolution."""
    if frame.shape[:2] == shape:
        return frame
    interp = cv2.INTER_AREA if frame.shape[0] > shape[0] else cv2.INTER_LINEAR
    return cv2.resize(frame, (shape[1], shape[0]), interpolation=interp)


def luma(rgb: np.ndarray) -> np.ndarray:
    """uint8/float (..., 3) RGB -> float32 (...) BT.601 luma, 0-255."""
    return (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))


def texture_mask(y: np.ndarray, cfg: EmbedderConfig) -> np.ndarray:
    """Luma (h, w) 0-255 -> mask (h, w) float32 with unit RMS.

    Grows with the local standard deviation of luma (5x5), a simple JND proxy: texture hides a
    change a flat sky shows. Unit RMS keeps the residual's energy, hence the PSNR, fixed.
    """
    mu = cv2.blur(y, (5, 5))
    sd = np.sqrt(np.maximum(cv2.blur(y * y, (5, 5)) - mu * mu, 0))
    m = np.clip(cfg.mask_floor + cfg.mask_gain * sd, None, cfg.mask_ceil)
    return m / np.sqrt(np.mean(m * m))


def tile_over(tile: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Repeat tile (T, T) from the top-left corner to cover `shape` (h, w)."""
    t = tile.shape[0]
    reps = (-(-shape[0] // t), -(-shape[1] // t))
    return np.tile(tile, reps)[: shape[0], : shape[1]]


def embed_frames(data: np.ndarray, tile: np.ndarray, cfg: EmbedderConfig) -> np.ndarray:
    """uint8 (T, H, W, 3) -> watermarked uint8 (T, H, W, 3) carrying `tile` (T_, T_) unit RMS."""
    _, h, w, _ = data.shape
    ws = work_shape(h, w, cfg.work_size)
    pattern = tile_over(tile, ws) * np.float32(cfg.strength)  # (h, w)
    out = np.empty_like(data)
    for i, frame in enumerate(data):
        r = texture_mask(luma(to_work(frame, ws)), cfg) * pattern  # (h, w), 0-255 units
        if ws != (h, w):
            r = cv2.resize(r, (w, h), interpolation=cv2.INTER_LINEAR)  # (H, W)
        r16 = np.rint(r).astype(np.int16)[..., None]  # (H, W, 1): frame is integer already
        out[i] = np.clip(frame.astype(np.int16) + r16, 0, 255).astype(np.uint8)
    return out
