"""Synthetic media for the tests and benchmarks: made on the fly, so neither needs a data file."""

from __future__ import annotations

import numpy as np


def scene(frames: int = 8, height: int = 64, width: int = 96, seed: int = 0) -> np.ndarray:
    """A smooth gradient with a little noise and a red 16-px square moving right, uint8 (T, H, W, 3);
    it compresses like real footage."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1),
                     (x + y) * 127 // max(width + height - 2, 1)], -1).astype(np.float32)
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        img = base + rng.normal(0, 4, base.shape)
        x0 = (4 + 5 * t) % (width - 16)
        img[16:32, x0:x0 + 16] = (250, 40, 40)
        out[t] = np.clip(img, 0, 255).astype(np.uint8)
    return out
