"""Shape geometry, written once: each shape's outline relative to its radius, from which its
bounding extent, its area and its pixel coverage (how `render` draws it and the checker fits it)
all follow."""

from __future__ import annotations

import math

import numpy as np

# Each shape scaled to roughly the area of a circle of radius r:
SQUARE_HALF_SIDE = 0.89  # x r
TRIANGLE_CIRCUMRADIUS = 1.35  # x r; apex up, centroid at the centre
STAR_OUTER, STAR_INNER = 1.4, 0.55 * 1.4  # x r; five points, the first straight up


def outline(shape: str) -> list[tuple[float, float]] | None:
    """Polygon vertices (dx, dy) for radius 1, or None for the circle."""
    if shape == "circle":
        return None
    if shape == "square":
        s = SQUARE_HALF_SIDE
        return [(-s, -s), (s, -s), (s, s), (-s, s)]
    if shape == "triangle":
        big = TRIANGLE_CIRCUMRADIUS
        return [(0.0, -big), (big * math.sin(math.pi / 3), big / 2), (-big * math.sin(math.pi / 3), big / 2)]
    if shape == "star":
        return [
            ((STAR_OUTER if i % 2 == 0 else STAR_INNER) * math.cos(-math.pi / 2 + i * math.pi / 5),
             (STAR_OUTER if i % 2 == 0 else STAR_INNER) * math.sin(-math.pi / 2 + i * math.pi / 5))
            for i in range(10)
        ]
    raise ValueError(f"unknown shape {shape!r}")


def _polygon_area(verts: list[tuple[float, float]]) -> float:
    pairs = zip(verts, verts[1:] + verts[:1], strict=True)
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in pairs)) / 2


# Half-width of each shape's bounding box, and its area, in units of r and r^2.
SHAPE_EXTENT: dict[str, float] = {"circle": 1.0, "square": SQUARE_HALF_SIDE,
                                  "triangle": TRIANGLE_CIRCUMRADIUS, "star": STAR_OUTER}
SHAPE_AREA: dict[str, float] = {"circle": math.pi,
                                **{s: _polygon_area(outline(s)) for s in ("square", "triangle", "star")}}


def inside(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Boolean: points (dx, dy) relative to the centre lie inside the shape of radius r."""
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) <= SQUARE_HALF_SIDE * r
    return _in_polygon([(x * r, y * r) for x, y in outline(shape)], dx, dy)


def _in_polygon(verts: list[tuple[float, float]], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Even-odd rule point-in-polygon, vectorised over points."""
    out = np.zeros(np.broadcast_shapes(x.shape, y.shape), dtype=bool)
    n = len(verts)
    for i in range(n):
        x1, y1 = verts[i]
        x2, y2 = verts[(i + 1) % n]
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        xint = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        out ^= crosses & (x < xint)
    return out


SUPERSAMPLE = 4  # per axis, for anti-aliased edges


def coverage(shape: str, radius: float, cx: float, cy: float, x0: int, y0: int, width: int, height: int,
             supersample: int = SUPERSAMPLE) -> np.ndarray:
    """Float (height, width) fraction of each pixel of the box at (x0, y0) covered by `shape` of
    `radius` centred at (cx, cy); pixel (i, j) spans [x0 + j, x0 + j + 1) x [y0 + i, y0 + i + 1)."""
    sub = (np.arange(supersample) + 0.5) / supersample
    xs = (np.arange(x0, x0 + width)[:, None] + sub[None]).reshape(-1)
    ys = (np.arange(y0, y0 + height)[:, None] + sub[None]).reshape(-1)
    m = inside(shape, xs[None, :] - cx, ys[:, None] - cy, radius)
    return m.reshape(height, supersample, width, supersample).mean(axis=(1, 3))


def shape_coverage(shape: str, radius: float, cx: float, cy: float, height: int, width: int,
                   supersample: int = SUPERSAMPLE) -> np.ndarray:
    """Float (height, width) fraction of each pixel of a whole frame covered by `shape`."""
    return coverage(shape, radius, cx, cy, 0, 0, width, height, supersample)
