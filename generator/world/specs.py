"""Clip specs and how they are drawn: `ObjectSpec` / `ShotSpec` / `ClipSpec`, `sample_spec` (a
random spec under the world's rules) and `layout` (fresh positions for a spec that names none)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from trustframe.generator.world.shapes import SHAPE_EXTENT
from trustframe.generator.world.vocabulary import (
    BACKGROUNDS,
    BG_TINTS,
    CAMERA_BACKGROUNDS,
    CAMERA_TINTS,
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
    RESOLUTIONS,
    SHAPES,
    SIZES,
    SPEEDS,
)


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
        return SHAPE_EXTENT[self.shape] * self.radius

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
    room = 2 * (SHAPE_EXTENT[shape] * SIZES[size] + MARGIN)
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


def groups(shot: ShotSpec) -> dict[tuple[str, str], list[ObjectSpec]]:
    """Objects of a shot keyed by (colour, shape), in order of first appearance."""
    out: dict[tuple[str, str], list[ObjectSpec]] = {}
    for o in shot.objects:
        out.setdefault((o.colour, o.shape), []).append(o)
    return out


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
