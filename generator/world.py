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
  "bright or saturated" separates objects from background even after blur or compression.
- a camera move is only drawn over a background that shows it (`CAMERA_BACKGROUNDS`: pans
  across stripes, never along them; no moves over solid colours, gradients or the darkest tint,
  `CAMERA_TINTS`), and the two shots of a clip differ in background tint (RGB distance >= 30)
  and pattern, so the cut shows.

`render(spec)` is deterministic: the spec (including each shot's `bg_seed`) fixes every pixel.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np

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

# Half-extent of each shape relative to its radius (bounding box is +-extent around the centre).
_EXTENT = {"circle": 1.0, "square": 0.89, "triangle": 1.35, "star": 1.4}


@dataclass
class ObjectSpec:
    """One moving object; `start` is its centre (x, y) in screen pixels at the shot's first frame."""

    shape: str
    colour: str
    direction: str
    speed: str = "steadily"
    size: str = "medium"
    start: tuple[float, float] = (32.0, 32.0)

    @property
    def radius(self) -> float:
        return SIZES[self.size]

    @property
    def extent(self) -> float:
        """Half-width of the object's bounding box in pixels."""
        return _EXTENT[self.shape] * self.radius

    @property
    def velocity(self) -> tuple[float, float]:
        """Screen velocity (vx, vy) in px/frame."""
        ux, uy = DIRECTION_VECTORS[self.direction]
        s = SPEEDS[self.speed]
        return ux * s, uy * s

    def position(self, t: float) -> tuple[float, float]:
        """Centre (x, y) `t` frames after the shot starts."""
        vx, vy = self.velocity
        return self.start[0] + vx * t, self.start[1] + vy * t


@dataclass
class ShotSpec:
    """One shot: 1-3 objects over a background; `camera` is None (static) or one of `CAMERAS`."""

    objects: list[ObjectSpec]
    background: str = "solid"
    camera: str | None = None
    bg_tint: str = "charcoal"
    bg_seed: int = 0


@dataclass
class ClipSpec:
    """A whole clip: 1 shot, or 2 with the second starting at frame `cut_at`."""

    shots: list[ShotSpec]
    cut_at: int | None = None
    frames: int = 16
    height: int = 64
    width: int = 64
    fps: float = 8.0

    def shot_ranges(self) -> list[tuple[int, int]]:
        """[(first frame, end frame exclusive)] per shot."""
        if len(self.shots) == 1 or self.cut_at is None:
            return [(0, self.frames)]
        return [(0, self.cut_at), (self.cut_at, self.frames)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ClipSpec:
        shots = []
        for s in d["shots"]:
            objs = [ObjectSpec(**{**o, "start": tuple(o["start"])}) for o in s["objects"]]
            shots.append(ShotSpec(**{**s, "objects": objs}))
        return cls(**{**d, "shots": shots})


@dataclass
class _Sampler:
    rng: np.random.Generator
    height: int
    width: int
    split: str

    def pair(self, force_held_out: bool) -> tuple[str, str]:
        if force_held_out:
            pairs = sorted(HELD_OUT)
            return pairs[self.rng.integers(len(pairs))]
        while True:
            c = str(self.rng.choice(list(COLOURS)))
            s = str(self.rng.choice(SHAPES))
            if self.split == "train" and (c, s) in HELD_OUT:
                continue
            return c, s


def _apart(a: ObjectSpec, b: ObjectSpec, n: int) -> bool:
    """Bounding boxes never come closer than GAP over frames 0..n-1 (motion is linear)."""
    d = a.extent + b.extent + GAP
    ts = np.arange(n)
    ax, ay = a.position(ts)
    bx, by = b.position(ts)
    return bool(np.all(np.maximum(np.abs(ax - bx), np.abs(ay - by)) >= d))


def _start_for(obj: ObjectSpec, n: int, rng: np.random.Generator, height: int, width: int) -> bool:
    """Pick a start so the trajectory fits; False when the travel cannot fit at all."""
    e = obj.extent + MARGIN
    vx, vy = obj.velocity
    dx, dy = vx * (n - 1), vy * (n - 1)
    lo_x, hi_x = e - min(dx, 0), width - e - max(dx, 0)
    lo_y, hi_y = e - min(dy, 0), height - e - max(dy, 0)
    if lo_x > hi_x or lo_y > hi_y:
        return False
    obj.start = (float(round(rng.uniform(lo_x, hi_x), 2)), float(round(rng.uniform(lo_y, hi_y), 2)))
    return True


def _speeds_for(direction: str, size: str, shape: str, n: int, height: int, width: int) -> list[str]:
    """Speeds whose travel over n frames is readable and fits in the frame."""
    out = []
    ux, uy = DIRECTION_VECTORS[direction]
    room = 2 * (_EXTENT[shape] * SIZES[size] + MARGIN)
    for name, s in SPEEDS.items():
        travel = s * (n - 1)
        if travel < MIN_TRAVEL and n > 1:  # a still image shows no motion: any speed will do
            continue
        if abs(ux) * travel <= width - room and abs(uy) * travel <= height - room:
            out.append(name)
    return out


def _fits(obj: ObjectSpec, n: int, height: int, width: int) -> bool:
    """The whole trajectory over frames 0..n-1 keeps MARGIN px from the frame edge."""
    e = obj.extent + MARGIN
    xs, ys = obj.position(np.array([0, n - 1]))
    return bool(min(xs) >= e and max(xs) <= width - e and min(ys) >= e and max(ys) <= height - e)


COUNTERFACTUAL_KINDS = ("shape", "count", "bind")
BOUND_ATTRIBUTES = ("colour", "shape", "direction")  # what a "bind" counterfactual may swap


def counterfactual(spec: ClipSpec, rng: np.random.Generator, kind: str) -> ClipSpec | None:
    """A copy of `spec` that differs in one thing its caption names, everything else (positions,
    motion, background, camera) kept, or None when this spec admits no such change.

    kind "shape": every object of one (colour, shape) group of one shot takes another shape (one
    whose pair is allowed in training, not already in the shot, and that stays in frame and apart);
    kind "count": one object leaves a shot that has two or more;
    kind "bind": two groups of one shot exchange their colour, shape or direction (the caption names
    the same words, bound to the other objects: "a red circle and a blue square" becomes "a blue
    circle and a red square"), which is where the generator fails most with two or more objects.
    The pair (spec, counterfactual) isolates what one word does to the pixels: the DiT trainer's
    paired loss asks the denoiser for exactly that difference (train_dit.py, `--pair-weight`).
    """
    if kind not in COUNTERFACTUAL_KINDS:
        raise ValueError(f"kind must be one of {COUNTERFACTUAL_KINDS}, not {kind!r}")
    out = ClipSpec.from_dict(spec.to_dict())
    eligible = {"shape": lambda s: True, "count": lambda s: len(s.objects) >= 2,
                "bind": lambda s: len(groups(s)) >= 2}[kind]
    shots = [i for i, s in enumerate(out.shots) if eligible(s)]
    if not shots:
        return None
    i = shots[int(rng.integers(len(shots)))]
    shot, (a, b) = out.shots[i], out.shot_ranges()[i]
    if kind == "count":
        del shot.objects[int(rng.integers(len(shot.objects)))]
        return out
    if kind == "bind":
        return out if _swap_between_groups(shot, b - a, out.height, out.width, rng) else None
    keys = list(groups(shot))
    key = keys[int(rng.integers(len(keys)))]
    members = [j for j, o in enumerate(shot.objects) if (o.colour, o.shape) == key]
    others = [o for j, o in enumerate(shot.objects) if j not in members]
    for shape in rng.permutation(SHAPES):
        new = {j: dataclasses.replace(shot.objects[j], shape=str(shape)) for j in members}
        if (shape == key[1] or (key[0], shape) in HELD_OUT
                or any((o.colour, o.shape) == (key[0], shape) for o in others)
                or not all(_fits(o, b - a, out.height, out.width) for o in new.values())
                or not all(_apart(o, p, b - a) for k, o in enumerate(new.values())
                           for p in [*others, *list(new.values())[k + 1:]])):
            continue
        for j, o in new.items():
            shot.objects[j] = o
        return out
    return None


def _swap_between_groups(shot: ShotSpec, n: int, height: int, width: int, rng: np.random.Generator) -> bool:
    """Swap one attribute (colour, shape or direction, tried in random order) between two (colour,
    shape) groups of `shot` in place; False (shot untouched) when no swap keeps the clip valid: the
    two groups must differ in it, no held-out or repeated (colour, shape) may result, and every object
    must stay in frame and apart from the others."""
    members = groups(shot)
    pairs = list(itertools.combinations(members, 2))
    for g1, g2 in (pairs[int(k)] for k in rng.permutation(len(pairs))):
        for attr in rng.permutation(BOUND_ATTRIBUTES):
            v1, v2 = getattr(members[g1][0], attr), getattr(members[g2][0], attr)
            if v1 == v2:
                continue
            new = [dataclasses.replace(o, **{attr: v2 if (o.colour, o.shape) == g1 else v1})
                   if (o.colour, o.shape) in (g1, g2) else o for o in shot.objects]
            keys_after = {(o.colour, o.shape) for o in new}
            if (len(keys_after) < len(members) or keys_after & HELD_OUT
                    or not all(_fits(o, n, height, width) for o in new)
                    or not all(_apart(o, p, n) for k, o in enumerate(new) for p in new[k + 1:])):
                continue
            shot.objects[:] = new
            return True
    return False


def _sample_shot(sm: _Sampler, n: int, force_held_out: bool, tint_not: str | None,
                 bg_not: str | None, objects_p: tuple[float, float, float] | None = None) -> ShotSpec:
    rng = sm.rng
    fixed_k = None if objects_p is None else int(rng.choice([1, 2, 3], p=objects_p))
    for _ in range(200):
        k = fixed_k or int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
        objs: list[ObjectSpec] = []
        pairs_used: set[tuple[str, str]] = set()
        ok = True
        while len(objs) < k and ok:
            if objs and rng.random() < 0.35:
                # a counted group: copy the previous object (same colour/shape/motion/size)
                proto = objs[-1]
                obj = dataclasses.replace(proto)
            else:
                for _ in range(50):
                    colour, shape = sm.pair(force_held_out and not objs)
                    if (colour, shape) not in pairs_used:
                        break
                else:
                    ok = False
                    break
                direction = str(rng.choice(DIRECTIONS))
                size = str(rng.choice(list(SIZES)))
                speeds = _speeds_for(direction, size, shape, n, sm.height, sm.width)
                if not speeds:
                    ok = False
                    break
                obj = ObjectSpec(shape, colour, direction, str(rng.choice(speeds)), size)
            placed = False
            for _ in range(40):
                if not _start_for(obj, n, rng, sm.height, sm.width):
                    break
                if all(_apart(obj, o, n) for o in objs):
                    placed = True
                    break
            if not placed:
                ok = False
                break
            objs.append(obj)
            pairs_used.add((obj.colour, obj.shape))
        if not ok:
            continue
        tints = [t for t in BG_TINTS if tint_not is None or _tint_dist(t, tint_not) >= 30]
        tint = str(rng.choice(tints))
        bgs = [b for b in BACKGROUNDS if b != bg_not]
        background = str(rng.choice(bgs))
        return ShotSpec(objs, background, None, tint, int(rng.integers(2**31)))
    raise RuntimeError(f"could not place objects in a {sm.height}x{sm.width} shot of {n} frames")


def _tint_dist(a: str, b: str) -> float:
    return float(np.linalg.norm(np.subtract(BG_TINTS[a], BG_TINTS[b])))


def check_objects_p(objects_p: tuple[float, ...] | None) -> None:
    """ValueError unless `objects_p` is None or 3 non-negative shares (1 / 2 / 3 objects) summing to 1."""
    if objects_p is not None and (len(objects_p) != 3 or min(objects_p) < 0
                                  or not math.isclose(sum(objects_p), 1)):
        raise ValueError(f"objects_p must be 3 non-negative shares of 1 / 2 / 3 objects summing to 1, "
                         f"not {objects_p}")


def sample_spec(rng: np.random.Generator, *, frames: int | None = 16, height: int | None = 64,
                width: int | None = 64, split: str = "train", multi_shot_p: float = 0.2,
                camera_p: float = 0.2, cut_align: int | None = None,
                objects_p: tuple[float, float, float] | None = None) -> ClipSpec:
    """Draw a random clip spec.

    `frames`, `height`, `width`: fixed values, or None to draw from `DURATIONS` / `RESOLUTIONS`.
    `split`: "train" never uses a `HELD_OUT` (colour, shape) pair; "heldout" makes the first
    object of the first shot a held-out pair (the rest are unrestricted); "any" is unrestricted.
    A 2-shot clip needs frames >= 2 * MIN_SHOT; the cut falls in the middle 20-80% of the clip.
    `cut_align=k` puts cuts only at frames 1 + j*k (when one fits): for a causal video VAE with
    k-fold temporal compression (frame 0 alone, then groups of k) those are the latent-step
    boundaries, the only places a cut can stay sharp.
    `objects_p`: the share of shots with 1 / 2 / 3 objects. None keeps the world's own mix, which
    draws 0.5 / 0.3 / 0.2 but redraws the count when a crowded shot cannot be placed, so that about
    0.67 / 0.26 / 0.07 of shots come out so; with `objects_p` the count is drawn once per shot and kept.
    """
    check_objects_p(objects_p)
    if split not in ("train", "heldout", "any"):
        raise ValueError(f"split must be train, heldout or any, not {split!r}")
    if frames is None:
        frames = int(rng.choice(DURATIONS))
    if height is None or width is None:
        height, width = RESOLUTIONS[rng.integers(len(RESOLUTIONS))]
    sm = _Sampler(rng, int(height), int(width), split)
    cut_at = None
    if frames >= 2 * MIN_SHOT and rng.random() < multi_shot_p:
        lo = max(MIN_SHOT, int(round(0.2 * frames)))
        hi = min(frames - MIN_SHOT, int(round(0.8 * frames)))
        aligned = [c for c in range(lo, hi + 1) if cut_align and cut_align > 1 and (c - 1) % cut_align == 0]
        cut_at = int(rng.choice(aligned)) if aligned else int(rng.integers(lo, hi + 1))
    ranges = [(0, frames)] if cut_at is None else [(0, cut_at), (cut_at, frames)]
    shots: list[ShotSpec] = []
    for i, (a, b) in enumerate(ranges):
        prev = shots[-1] if shots else None
        shot = _sample_shot(sm, b - a, split == "heldout" and i == 0,
                            prev.bg_tint if prev else None, prev.background if prev else None, objects_p)
        if rng.random() < camera_p:
            shot.camera = str(rng.choice(CAMERAS))
            if shot.background not in CAMERA_BACKGROUNDS[shot.camera]:
                fits = [b for b in CAMERA_BACKGROUNDS[shot.camera] if prev is None or b != prev.background]
                shot.background = str(rng.choice(fits))
            if shot.bg_tint not in CAMERA_TINTS:
                shot.bg_tint = str(rng.choice([t for t in CAMERA_TINTS
                                               if prev is None or _tint_dist(t, prev.bg_tint) >= 30]))
        shots.append(shot)
    return ClipSpec(shots, cut_at, int(frames), int(height), int(width))


def layout(spec: ClipSpec, rng: np.random.Generator) -> ClipSpec:
    """A copy of `spec` with fresh start positions: every trajectory in frame, objects apart.

    For specs that name no positions (e.g. `captions.parse` output, where objects sit at the
    centre). Background seeds are redrawn, a shot with a camera move gets a background that shows
    it, and a second shot gets a background tint far from the first's so that the cut shows. A
    speed whose travel cannot fit is lowered to the fastest one that does; when a crowded shot
    still cannot be placed, speeds drop to the slowest readable one, then sizes to "small".
    Raises ValueError when even that fails.
    """
    out = ClipSpec.from_dict(spec.to_dict())
    order = list(SPEEDS)
    for i, (shot, (a, b)) in enumerate(zip(out.shots, out.shot_ranges(), strict=True)):
        n = b - a
        shot.bg_seed = int(rng.integers(2**31))
        if shot.camera and shot.background not in CAMERA_BACKGROUNDS[shot.camera]:
            fits = CAMERA_BACKGROUNDS[shot.camera]
            shot.background = fits[int(rng.integers(len(fits)))]
        tints = CAMERA_TINTS if shot.camera else tuple(BG_TINTS)
        if shot.bg_tint not in tints or (i and _tint_dist(shot.bg_tint, out.shots[0].bg_tint) < 30):
            far = [t for t in tints if not i or _tint_dist(t, out.shots[0].bg_tint) >= 30]
            shot.bg_tint = far[int(rng.integers(len(far)))]  # a camera move and a cut must show
        for relax in range(3):
            for o in shot.objects:
                if relax == 2:
                    o.size = "small"
                fits = _speeds_for(o.direction, o.size, o.shape, n, out.height, out.width) or order[:1]
                slower = [v for v in fits if order.index(v) <= order.index(o.speed)]
                o.speed = fits[0] if relax >= 1 or not slower else slower[-1]
            if _place_all(shot.objects, n, rng, out.height, out.width):
                break
        else:
            raise ValueError(f"cannot place {len(shot.objects)} objects in {out.height}x{out.width}, "
                             f"{n} frames")
    return out


def _place_all(objs: list[ObjectSpec], n: int, rng: np.random.Generator, height: int, width: int,
               tries: int = 60) -> bool:
    for _ in range(tries):
        placed: list[ObjectSpec] = []
        for o in objs:
            for _ in range(40):
                if _start_for(o, n, rng, height, width) and all(_apart(o, p, n) for p in placed):
                    placed.append(o)
                    break
            else:
                break
        if len(placed) == len(objs):
            return True
    return False


# ----------------------------------------------------------------------------------- rendering

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


def _inside(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Boolean: points (dx, dy) relative to the centre lie inside the shape of radius r."""
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) <= 0.89 * r
    if shape == "triangle":
        big = 1.35 * r  # circumradius; apex up, centroid at the centre
        verts = [(0.0, -big), (big * math.sin(math.pi / 3), big / 2), (-big * math.sin(math.pi / 3), big / 2)]
        return _in_polygon(verts, dx, dy)
    if shape == "star":
        outer, inner = 1.4 * r, 0.55 * 1.4 * r
        verts = []
        for i in range(10):
            a = -math.pi / 2 + i * math.pi / 5
            rad = outer if i % 2 == 0 else inner
            verts.append((rad * math.cos(a), rad * math.sin(a)))
        return _in_polygon(verts, dx, dy)
    raise ValueError(f"unknown shape {shape!r}")


def _in_polygon(verts: list[tuple[float, float]], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Even-odd rule point-in-polygon, vectorised over points."""
    inside = np.zeros(np.broadcast_shapes(x.shape, y.shape), dtype=bool)
    n = len(verts)
    for i in range(n):
        x1, y1 = verts[i]
        x2, y2 = verts[(i + 1) % n]
        if y1 == y2:
            continue
        crosses = (y1 > y) != (y2 > y)
        xint = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < xint)
    return inside


_SS = 4  # supersampling per axis for anti-aliased edges


def _coverage(obj: ObjectSpec, cx: float, cy: float, height: int, width: int):
    """(y0, x0, alpha) with alpha float (h, w) in [0, 1] over the object's pixel box, or None."""
    e = obj.extent + 1
    x0, x1 = max(int(math.floor(cx - e)), 0), min(int(math.ceil(cx + e)) + 1, width)
    y0, y1 = max(int(math.floor(cy - e)), 0), min(int(math.ceil(cy + e)) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    sub = (np.arange(_SS) + 0.5) / _SS
    xs = (np.arange(x0, x1)[:, None] + sub[None]).reshape(-1)  # (w*SS,)
    ys = (np.arange(y0, y1)[:, None] + sub[None]).reshape(-1)
    m = _inside(obj.shape, xs[None, :] - cx, ys[:, None] - cy, obj.radius)  # (h*SS, w*SS)
    alpha = m.reshape(y1 - y0, _SS, x1 - x0, _SS).mean(axis=(1, 3))
    return y0, x0, alpha


def shape_coverage(shape: str, radius: float, cx: float, cy: float, height: int, width: int,
                   supersample: int = _SS) -> np.ndarray:
    """Float (height, width) fraction of each pixel covered by `shape` of `radius` centred at
    (cx, cy) (pixel (i, j) spans [j, j+1) x [i, i+1)); how `render` draws objects."""
    sub = (np.arange(supersample) + 0.5) / supersample
    xs = (np.arange(width)[:, None] + sub[None]).reshape(-1)
    ys = (np.arange(height)[:, None] + sub[None]).reshape(-1)
    m = _inside(shape, xs[None, :] - cx, ys[:, None] - cy, radius)
    return m.reshape(height, supersample, width, supersample).mean(axis=(1, 3))


# Area of each shape in units of radius^2 (what `_inside` draws).
SHAPE_AREA: dict[str, float] = {
    "circle": math.pi,
    "square": (2 * 0.89) ** 2,
    "triangle": 3 * math.sqrt(3) / 4 * 1.35**2,
    "star": 5 * 1.4 * (0.55 * 1.4) * math.sin(math.pi / 5),
}


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


def groups(shot: ShotSpec) -> dict[tuple[str, str], list[ObjectSpec]]:
    """Objects of a shot keyed by (colour, shape), in order of first appearance."""
    out: dict[tuple[str, str], list[ObjectSpec]] = {}
    for o in shot.objects:
        out.setdefault((o.colour, o.shape), []).append(o)
    return out
