"""The world's vocabulary: what a clip can hold (shapes, colours, directions, speeds, sizes,
backgrounds, tints, camera moves), what tells an object's pixels from the background's
(`is_object_pixel`), the sizes and durations drawn, and the layout constants."""

from __future__ import annotations

import math

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")

# Object colours: saturated or bright, pairwise RGB distance >= 80, far from every background.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 35, 35),
    "green": (40, 205, 60),
    "blue": (55, 95, 245),
    "yellow": (240, 225, 40),
    "cyan": (40, 225, 235),
    "magenta": (230, 50, 225),
    "orange": (250, 135, 20),
    "white": (245, 245, 245),
}

DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down", "up-left", "up-right", "down-left",
                               "down-right")
# Unit screen vectors (x right, y down).
_S = math.sqrt(0.5)
DIRECTION_VECTORS: dict[str, tuple[float, float]] = {
    "left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0),
    "up-left": (-_S, -_S), "up-right": (_S, -_S), "down-left": (-_S, _S), "down-right": (_S, _S),
}  # fmt: skip

# Pixels per frame along the direction of motion.
SPEEDS: dict[str, float] = {"slowly": 0.4, "steadily": 0.8, "quickly": 1.6, "rapidly": 2.4}

# Object radius in pixels (each shape is scaled to roughly the area of a circle of this radius).
SIZES: dict[str, float] = {"small": 6.0, "medium": 7.5, "large": 9.0}

BACKGROUNDS: tuple[str, ...] = ("solid", "gradient-horizontal", "gradient-vertical", "stripes-horizontal",
                                "stripes-vertical", "checker", "noise")
# Background tints: dark and desaturated (every channel <= 82, times <= 1.4 for the pattern).
BG_TINTS: dict[str, tuple[int, int, int]] = {
    "black": (16, 16, 20),
    "charcoal": (48, 48, 52),
    "grey": (80, 80, 80),
    "slate": (44, 54, 78),
    "navy": (20, 26, 72),
    "teal": (18, 62, 62),
    "olive": (64, 62, 22),
    "maroon": (74, 22, 28),
    "brown": (72, 50, 30),
    "plum": (62, 28, 64),
}
# What counts as an object pixel: every background channel stays below ~120 (BG_TINTS, times <= 1.4 for
# the pattern) and every object colour has a channel >= 205 (COLOURS), so a pixel is an object's when
# its brightest channel or its saturation (brightest - darkest channel) is high; this still holds after
# blur and compression. The checker (`generator.checker`) and the trainers' object masks
# (`generator.tensors.object_mask`) both read objects this way.
OBJECT_MIN_BRIGHT = 150.0  # a pixel whose brightest channel exceeds this (0-255) is an object's
OBJECT_MIN_SATURATION = 110.0  # ... or whose brightest minus darkest channel exceeds this


def is_object_pixel(hi, lo):
    """Object pixels from each pixel's brightest (`hi`) and darkest (`lo`) channel on the 0-255 scale
    (numpy arrays or torch tensors of one shape) -> booleans of that shape."""
    return (hi > OBJECT_MIN_BRIGHT) | (hi - lo > OBJECT_MIN_SATURATION)


CAMERAS: tuple[str, ...] = ("pan-left", "pan-right", "pan-up", "pan-down", "zoom-in", "zoom-out")
# Backgrounds on which each camera move is clearly visible (a pan along stripes, or any move over
# a solid colour, leaves the pixels unchanged; over a gradient it is only a slow brightness drift).
CAMERA_BACKGROUNDS: dict[str, tuple[str, ...]] = {
    "pan-left": ("stripes-vertical", "checker", "noise"),
    "pan-right": ("stripes-vertical", "checker", "noise"),
    "pan-up": ("stripes-horizontal", "checker", "noise"),
    "pan-down": ("stripes-horizontal", "checker", "noise"),
    "zoom-in": ("stripes-horizontal", "stripes-vertical", "checker", "noise"),
    "zoom-out": ("stripes-horizontal", "stripes-vertical", "checker", "noise"),
}
# Tints whose pattern is strong enough (grey level * 0.35 >= ~10) for a camera move to survive
# blur and compression; "black" is too dark.
CAMERA_TINTS: tuple[str, ...] = tuple(t for t, rgb in BG_TINTS.items() if sum(rgb) / 3 >= 30)
CAMERA_PAN_SPEED = 1.0  # background pixels per frame
CAMERA_ZOOM_RATE = 0.012  # relative scale change per frame

RESOLUTIONS: tuple[tuple[int, int], ...] = ((64, 64), (64, 96), (96, 64))  # (height, width)
DURATIONS: tuple[int, ...] = (8, 12, 16, 24, 32, 48)
MIN_TRAVEL = 4.0  # px an object must move over its shot for its direction to be readable
MARGIN = 2.0  # px between an object's extent and the frame edge
GAP = 4.0  # px between two objects' extents at their closest
MIN_SHOT = 4  # frames

# (colour, shape) pairs never drawn with split="train"; each colour and shape still appears in
# training with other partners, so a held-out pair tests composition.
HELD_OUT: frozenset[tuple[str, str]] = frozenset({
    ("red", "triangle"), ("green", "star"), ("blue", "circle"), ("yellow", "square"),
    ("white", "star"),
})  # fmt: skip
