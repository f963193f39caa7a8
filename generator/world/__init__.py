"""A procedural world with ground truth: the generator's training and evaluation data.

A clip is 1 or 2 shots separated by a hard cut. A shot holds 1-3 flat-coloured objects
(`SHAPES` x `COLOURS`) that move in a straight line in one of 8 `DIRECTIONS` at a speed from
`SPEEDS`, over a dark, desaturated, optionally textured background that a camera may pan or zoom.

Semantics (what a caption's words mean in pixels):
- positions are in screen pixels, x to the right and y downwards; an object's direction and
  speed are its motion *on screen* (what a viewer sees in the frame), whatever the camera does.
  The camera moves only the background: "pan-left" slides the background to the right (the
  camera turns left), "zoom-in" magnifies it about the frame centre. So the checker reads
  direction from screen-space centroids and needs no camera compensation.
- speeds are pixels per frame; `sample_spec` draws only speeds whose whole trajectory stays in
  frame (no wrap, no bounce) and moves far enough (>= `MIN_TRAVEL` px) to be readable, so long
  clips are never "quick" and very short shots are never "slow".
- objects in one shot never overlap at any frame; two objects with the same colour and shape
  also share direction, speed and size (a caption says "two red squares moving left").
- backgrounds keep every channel below ~120 while every object colour has a channel >= 205, so
  "bright or saturated" separates objects from background even after blur or compression
  (`is_object_pixel`).
- a camera move is only drawn over a background that shows it (`CAMERA_BACKGROUNDS`: pans
  across stripes, never along them; no moves over solid colours, gradients or the darkest tint,
  `CAMERA_TINTS`), and the two shots of a clip differ in background tint (RGB distance >= 30)
  and pattern, so the cut shows.

`render(spec)` is deterministic: the spec (including each shot's `bg_seed`) fixes every pixel.

The package: `vocabulary` (what a clip can hold), `shapes` (shape geometry), `specs` (specs and
how they are drawn), `render` (pixels). Counterfactual pairs (a spec and a copy that differs in one
named thing) are the DiT's training data: `generator.dit_data`.
"""

from trustframe.generator.world.render import render, render_background
from trustframe.generator.world.shapes import SHAPE_AREA, SHAPE_EXTENT, shape_coverage
from trustframe.generator.world.specs import (
    ClipSpec,
    ObjectSpec,
    ShotSpec,
    check_objects_p,
    groups,
    layout,
    sample_spec,
)
from trustframe.generator.world.vocabulary import (
    BACKGROUNDS,
    BG_TINTS,
    CAMERA_BACKGROUNDS,
    CAMERA_PAN_SPEED,
    CAMERA_TINTS,
    CAMERA_ZOOM_RATE,
    CAMERAS,
    COLOURS,
    DIRECTION_VECTORS,
    DIRECTIONS,
    DURATIONS,
    GAP,
    HELD_OUT,
    MARGIN,
    MIN_SHOT,
    MIN_TRAVEL,
    OBJECT_MIN_BRIGHT,
    OBJECT_MIN_SATURATION,
    RESOLUTIONS,
    SHAPES,
    SIZES,
    SPEEDS,
    is_object_pixel,
)

__all__ = [
    "BACKGROUNDS",
    "BG_TINTS",
    "CAMERAS",
    "CAMERA_BACKGROUNDS",
    "CAMERA_PAN_SPEED",
    "CAMERA_TINTS",
    "CAMERA_ZOOM_RATE",
    "COLOURS",
    "ClipSpec",
    "DIRECTIONS",
    "DIRECTION_VECTORS",
    "DURATIONS",
    "GAP",
    "HELD_OUT",
    "MARGIN",
    "MIN_SHOT",
    "MIN_TRAVEL",
    "OBJECT_MIN_BRIGHT",
    "OBJECT_MIN_SATURATION",
    "ObjectSpec",
    "RESOLUTIONS",
    "SHAPES",
    "SHAPE_AREA",
    "SHAPE_EXTENT",
    "SIZES",
    "SPEEDS",
    "ShotSpec",
    "check_objects_p",
    "groups",
    "is_object_pixel",
    "layout",
    "render",
    "render_background",
    "sample_spec",
    "shape_coverage",
]
