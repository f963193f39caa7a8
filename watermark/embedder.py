"""The embedder: the keyed tile laid over each frame, scaled by the learned mask (`nets.MaskNet`).

Per clip the carried bits become one periodic luma tile (`layout.tile_from_spectrum`). Per frame:
resize to the working resolution (short side `work_size`), let MaskNet say where the energy goes
(unit RMS, so the strength alone fixes the residual's energy), form `strength * mask * pattern`,
upscale that residual to the frame's size and add it to R, G and B alike (a pure luma change,
which chroma subsampling and hue shifts leave alone). The cost per frame is two resizes, a small
convolutional network at the working resolution and an add, so any resolution and aspect ratio
works and the cost grows slowly with the frame size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch

from trustframe.watermark.nets import MaskNet

PIXELS_PER_CALL = 1 << 17  # working-resolution pixels per network call: small calls stay in cache
                           # (RevealNet on 720p working frames: 74 frames/s one at a time, 31 in eights)


def frames_per_call(shape: tuple[int, int]) -> int:
    return max(1, PIXELS_PER_CALL // (shape[0] * shape[1]))


@dataclass(frozen=True)
class EmbedderConfig:
    work_size: int = 256  # short side of the working resolution, px
    strength: float = 1.9  # RMS of the residual, in 0-255 units (PSNR ~ 20 log10(255 / s))

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


def work_luma(data: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float32 (T, 1, h, w) luma in [0, 1] at the working resolution."""
    y = np.stack([luma(to_work(f, shape)) for f in data]) / np.float32(255)
    return torch.from_numpy(y)[:, None]


def tile_over(tile: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Repeat tile (T, T) from the top-left corner to cover `shape` (h, w)."""
    t = tile.shape[0]
    reps = (-(-shape[0] // t), -(-shape[1] // t))
    return np.tile(tile, reps)[: shape[0], : shape[1]]


@torch.inference_mode()
def embed_frames(data: np.ndarray, tile: np.ndarray, cfg: EmbedderConfig, mask_net: MaskNet) -> np.ndarray:
    """uint8 (T, H, W, 3) -> watermarked uint8 (T, H, W, 3) carrying `tile` (T_, T_) unit RMS."""
    _, h, w, _ = data.shape
    ws = work_shape(h, w, cfg.work_size)
    pattern = tile_over(tile, ws) * np.float32(cfg.strength)  # (h, w)
    out = np.empty_like(data)
    n = frames_per_call(ws)
    for b in range(0, len(data), n):
        masks = mask_net(work_luma(data[b: b + n], ws))[:, 0].numpy()  # (B, h, w)
        for i, (frame, m) in enumerate(zip(data[b: b + n], masks, strict=True)):
            r = m * pattern  # (h, w), 0-255 units
            if ws != (h, w):
                r = cv2.resize(r, (w, h), interpolation=cv2.INTER_LINEAR)  # (H, W)
            r16 = np.rint(r).astype(np.int16)[..., None]  # (H, W, 1): frame is integer already
            out[b + i] = np.clip(frame.astype(np.int16) + r16, 0, 255).astype(np.uint8)
    return out
