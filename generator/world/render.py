"""Rendering: a spec's pixels, deterministic (the spec, including each shot's `bg_seed`, fixes
every pixel): backgrounds with their camera moves, then anti-aliased flat-coloured objects."""

from __future__ import annotations

import math

import numpy as np

from trustframe.generator.world.shapes import coverage
from trustframe.generator.world.specs import ClipSpec, ObjectSpec, ShotSpec
from trustframe.generator.world.vocabulary import BG_TINTS, CAMERA_PAN_SPEED, CAMERA_ZOOM_RATE, COLOURS


def _pattern(kind: str, x: np.ndarray, y: np.ndarray, seed: int, height: int, width: int) -> np.ndarray:
    """Background pattern in [-1, 1] at world coordinates (x, y); smooth so pans stay readable."""
    r = np.random.default_rng(seed)
    if kind == "solid":
        return np.zeros(np.broadcast_shapes(x.shape, y.shape))
    if kind.startswith("gradient"):
        coord, span = (x, width) if kind.endswith("horizontal") else (y, height)
        sign = 1.0 if r.random() < 0.5 else -1.0
        # a half-cosine across the frame: a gradient that stays bounded when the camera pans
        return sign * np.cos(np.pi * coord / (2 * span)) + np.zeros_like(x + y)
    if kind.startswith("stripes"):
        period = r.uniform(8, 16)
        phase = r.uniform(0, 2 * np.pi)
        coord = y if kind.endswith("horizontal") else x
        other = x if kind.endswith("horizontal") else y
        return np.sin(2 * np.pi * coord / period + phase) + np.zeros_like(other)
    if kind == "checker":
        period = r.uniform(10, 18)
        return np.sin(2 * np.pi * x / period) * np.sin(2 * np.pi * y / period) * 1.6
    if kind == "noise":
        # a sum of random low-frequency plane waves: smooth value noise without a lattice
        out = np.zeros(np.broadcast_shapes(x.shape, y.shape))
        for _ in range(6):
            ang = r.uniform(0, 2 * np.pi)
            f = r.uniform(1 / 24, 1 / 8)
            out = out + np.sin(2 * np.pi * f * (np.cos(ang) * x + np.sin(ang) * y) + r.uniform(0, 6.3))
        return out / 2.2
    raise ValueError(f"unknown background {kind!r}")


def _camera(camera: str | None, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame (offset_x, offset_y, zoom) of the view into the background."""
    z = np.ones_like(t, dtype=np.float64)
    ox = np.zeros_like(z)
    oy = np.zeros_like(z)
    s = CAMERA_PAN_SPEED * t
    if camera == "pan-left":
        ox = -s
    elif camera == "pan-right":
        ox = s
    elif camera == "pan-up":
        oy = -s
    elif camera == "pan-down":
        oy = s
    elif camera == "zoom-in":
        z = (1 + CAMERA_ZOOM_RATE) ** t
    elif camera == "zoom-out":
        z = (1 + CAMERA_ZOOM_RATE) ** -t * 1.5
    elif camera is not None:
        raise ValueError(f"unknown camera {camera!r}")
    return ox, oy, z


def render_background(shot: ShotSpec, n: int, height: int, width: int) -> np.ndarray:
    """Float (n, H, W, 3) background of one shot, in 0..255."""
    t = np.arange(n, dtype=np.float64)
    ox, oy, z = _camera(shot.camera, t)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    cx, cy = width / 2, height / 2
    wx = (xs[None] - cx) / z[:, None, None] + cx + ox[:, None, None]  # (n, H, W)
    wy = (ys[None] - cy) / z[:, None, None] + cy + oy[:, None, None]
    p = np.clip(_pattern(shot.background, wx, wy, shot.bg_seed, height, width), -1, 1)
    amp = 0.35
    tint = np.asarray(BG_TINTS[shot.bg_tint], dtype=np.float64)
    return tint * (1 + amp * p[..., None])  # (n, H, W, 3)


def _coverage(obj: ObjectSpec, cx: float, cy: float, height: int, width: int):
    """(y0, x0, alpha) with alpha float (h, w) in [0, 1] over the object's pixel box, or None."""
    e = obj.extent + 1
    x0, x1 = max(int(math.floor(cx - e)), 0), min(int(math.ceil(cx + e)) + 1, width)
    y0, y1 = max(int(math.floor(cy - e)), 0), min(int(math.ceil(cy + e)) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    return y0, x0, coverage(obj.shape, obj.radius, cx, cy, x0, y0, x1 - x0, y1 - y0)


def render(spec: ClipSpec) -> np.ndarray:
    """Pixels of a clip: uint8 (T, H, W, 3) RGB, deterministic given `spec`."""
    h, w = spec.height, spec.width
    out = np.empty((spec.frames, h, w, 3), dtype=np.float64)
    for shot, (a, b) in zip(spec.shots, spec.shot_ranges(), strict=True):
        n = b - a
        frames = render_background(shot, n, h, w)
        for obj in shot.objects:
            colour = np.asarray(COLOURS[obj.colour], dtype=np.float64)
            for t in range(n):
                cx, cy = obj.position(t)
                cov = _coverage(obj, cx, cy, h, w)
                if cov is None:
                    continue
                y0, x0, alpha = cov
                region = frames[t, y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]]
                region += alpha[..., None] * (colour - region)
        out[a:b] = frames
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
