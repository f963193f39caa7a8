"""An analytic checker: reads colour, shape, count, direction and the cut from a clip's pixels.

Length: one reader, step by step (cut, objects, shapes, tracks, camera), each step a section.

No learning: numpy + scipy only. Steps, for uint8 (T, H, W, 3) frames:
1. Cut: a per-frame signature (4x4 grid of mean background colours, objects left out; a pan or
   zoom of a smooth background barely changes it) steps at a cut. The largest step (averaged
   over 2 frames each side, so a cut smeared by a VAE still peaks in its middle) is a cut when
   it is both large in absolute terms and large against the clip's other steps.
2. Objects: world backgrounds are dark and desaturated and every palette colour has a channel
   >= 205, so a pixel is foreground when its brightest channel or its saturation is high
   (`world.is_object_pixel`).
   Connected components (>= MIN_AREA px) of the foreground per frame, each labelled with the
   nearest palette colour (median of its core pixels).
3. Tracks: components of one colour are linked frame to frame by nearest centroid (tracks
   covering < half the shot are dropped). Direction: a least-squares fit of centroid vs time,
   binned to 8 sectors of 45 degrees in screen coordinates (y down, so "up" is -y); "none" if it
   moved < MIN_MOVE px. Direction is screen-space motion, the world's semantics (the camera moves
   only the background), so no camera compensation is needed.
   Shape: template fitting on up to SHAPE_FRAMES frames of the track. A soft alpha map (each
   pixel projected between the local background and the object's colour) is compared with each
   shape's coverage at the same centroid and area, blurred by 0-2 px; the smallest summed squared
   error wins. Fitting whole templates, not thresholded masks, keeps small stars and triangles
   readable after blur and compression.
4. Camera (reported, not part of "all"): background motion with objects masked out; see
   `detect_camera`.
5. Per shot, tracks with the same (colour, shape, direction) form one group: count = number of
   tracks ("two red squares moving left"), velocity = their mean velocity.
`adherence(spec, obs)` compares per attribute as multisets per shot, plus the cut frame (+-1).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from trustframe.generator.world import COLOURS, SHAPE_AREA, SHAPES, ClipSpec, is_object_pixel, shape_coverage

_PALETTE = np.array(list(COLOURS.values()), dtype=np.float64)  # (K, 3)
_NAMES = list(COLOURS)
CORE_MAX = 185.0  # core pixels used for the colour vote
MIN_AREA = 14  # px; smaller components are noise or edge slivers
CUT_WINDOW = 2  # frames averaged on each side of a candidate cut
CUT_ABS = 8.0  # mean abs step of the 4x4 grid signature (0..255) that a cut must exceed
CUT_REL = 3.0  # ... and how many times the median step away from it
MIN_TRACK_FRAC = 0.5  # a track must cover this fraction of its shot
MIN_MOVE = 1.5  # px of fitted travel below which a track counts as still ("none")
# 8 sector centres, angle measured from +x towards -y (screen "up"), in degrees
_SECTORS = {"right": 0, "up-right": 45, "up": 90, "up-left": 135, "left": 180, "down-left": 225,
            "down": 270, "down-right": 315}


@dataclass
class ObjectObservation:
    """`count` objects of one colour and shape moving one way in a shot; `velocity` is their mean
    (vx, vy) in px/frame, y down; `direction` is one of `DIRECTIONS`, or "none" if still."""

    colour: str
    shape: str
    count: int
    direction: str
    velocity: tuple[float, float] = (0.0, 0.0)


@dataclass
class ShotObservation:
    start: int
    end: int  # exclusive
    objects: list[ObjectObservation] = field(default_factory=list)
    camera: str | None = None  # one of world.CAMERAS, or None (static, or invisible on the background)


@dataclass
class Observation:
    shots: list[ShotObservation]
    cut: int | None

    def summary(self) -> list[list[tuple[str, str, int, str]]]:
        return [[(o.colour, o.shape, o.count, o.direction) for o in s.objects] for s in self.shots]


def _signature(frames: np.ndarray, fg: np.ndarray | None = None) -> np.ndarray:
    """(T, 4, 4, 3) mean colour of a 4x4 grid of cells, over background pixels only when a
    foreground mask (T, H, W) is given; a cell an object covers whole keeps its value from the
    nearest frame where it showed background (so an object never looks like a cut)."""
    t, h, w, _ = frames.shape
    ys = np.linspace(0, h, 5).astype(int)
    xs = np.linspace(0, w, 5).astype(int)
    f = frames.astype(np.float64)
    keep = None
    if fg is not None:
        keep = ~ndimage.binary_dilation(fg, structure=np.ones((1, 3, 3), bool), iterations=2)
    out = np.empty((t, 4, 4, 3))
    for i in range(4):
        for j in range(4):
            cell = f[:, ys[i]:ys[i + 1], xs[j]:xs[j + 1]]  # (T, h, w, 3)
            if keep is None:
                out[:, i, j] = cell.mean(axis=(1, 2))
                continue
            m = keep[:, ys[i]:ys[i + 1], xs[j]:xs[j + 1], None]  # (T, h, w, 1)
            cnt = m.sum(axis=(1, 2))  # (T, 1)
            out[:, i, j] = np.where(cnt > 0, (cell * m).sum(axis=(1, 2)) / np.maximum(cnt, 1), np.nan)
    flat = out.reshape(t, -1)
    for k in range(flat.shape[1]):  # fill covered cells from the nearest frame with background
        col = flat[:, k]
        ok = ~np.isnan(col)
        if not ok.any():
            col[:] = 0.0
        elif not ok.all():
            idx = np.nonzero(ok)[0]
            near = idx[np.abs(np.arange(t)[:, None] - idx[None]).argmin(axis=1)]
            col[:] = col[near]
    return flat.reshape(t, 4, 4, 3)


def detect_cut(frames: np.ndarray) -> int | None:
    """Index of the first frame after a cut, or None. At most one cut is reported.

    A step fit on the per-frame signature: score(t) = mean |mean(sig[t-w:t]) - mean(sig[t:t+w])|
    with w = CUT_WINDOW frames. A hard cut scores its full jump at its frame and less either side;
    a cut that a video VAE smeared over a few frames (4x temporal compression blends the frames of
    one latent step) peaks at the middle of the transition. The best t is a cut when its score
    is >= CUT_ABS and >= CUT_REL x the median score away from it (pans and moving objects change
    the signature slowly and everywhere, a cut once).
    """
    n = len(frames)
    if n < 3:
        return None
    sig = _signature(frames, _foreground(frames)).reshape(n, -1)  # (T, 48), objects left out
    score = np.zeros(n)
    for t in range(1, n):
        w = min(CUT_WINDOW, t, n - t)
        score[t] = np.abs(sig[t - w:t].mean(axis=0) - sig[t:t + w].mean(axis=0)).mean()
    k = int(np.argmax(score))
    away = np.abs(np.arange(n) - k) > CUT_WINDOW
    away[0] = False
    base = float(np.median(score[away])) if away.any() else 0.0
    if score[k] >= CUT_ABS and score[k] >= CUT_REL * base + 1.0:
        return k
    return None


def _foreground(frames: np.ndarray) -> np.ndarray:
    f = frames.astype(np.int16)
    return is_object_pixel(f.max(axis=-1), f.min(axis=-1))


def _nearest_colour(rgb: np.ndarray) -> int:
    return int(np.argmin(((_PALETTE - rgb) ** 2).sum(axis=1)))


@dataclass
class _Blob:
    t: int
    colour: int
    x: float
    y: float
    area: float
    label: int
    box: tuple[slice, slice]


def _blobs(frame: np.ndarray, lab: np.ndarray, n: int, t: int) -> list[_Blob]:
    out = []
    f = frame.astype(np.float64)
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None:
            continue
        m = lab[sl] == i
        area = int(m.sum())
        if area < MIN_AREA:
            continue
        px = f[sl][m]  # (area, 3)
        core = px[px.max(axis=1) > CORE_MAX]
        rgb = np.median(core if len(core) >= 4 else px, axis=0)
        ys, xs = np.nonzero(m)
        out.append(_Blob(t, _nearest_colour(rgb), float(xs.mean() + sl[1].start + 0.5),
                         float(ys.mean() + sl[0].start + 0.5), float(area), i, sl))
    return out


_PAD = 4  # px of context around a blob for its alpha map and local background
_BLURS = (0.0, 0.8, 1.4, 2.0)  # template blurs tried, px: renders, VAE decodes, blurry decodes


def _shape_errors(frame: np.ndarray, lab: np.ndarray, big: np.ndarray, blob: _Blob) -> np.ndarray:
    """Mean squared error of the blob's alpha map against each shape's template, (len(SHAPES),).

    alpha = projection of each pixel between the local background colour (median of a ring
    around the blob) and the object's colour (median of its brightest core); a template is the
    shape's coverage at the alpha-weighted centroid, with the radius that matches the alpha sum,
    blurred by each of `_BLURS`; the best blur counts.
    """
    h, w = lab.shape
    y0, y1 = max(blob.box[0].start - _PAD, 0), min(blob.box[0].stop + _PAD, h)
    x0, x1 = max(blob.box[1].start - _PAD, 0), min(blob.box[1].stop + _PAD, w)
    own = lab[y0:y1, x0:x1] == blob.label
    others = ndimage.binary_dilation(big[y0:y1, x0:x1] & ~own, iterations=2)
    near = ndimage.binary_dilation(own, iterations=2)
    ring = ndimage.binary_dilation(own, iterations=4) & ~near & ~others
    px = frame[y0:y1, x0:x1].astype(np.float64)
    bg = np.median(px[ring], axis=0) if ring.sum() >= 4 else np.median(px[~own & ~others], axis=0)
    inner = px[own]
    dist = np.linalg.norm(inner - bg, axis=1)
    fg = np.median(inner[dist >= np.percentile(dist, 60)], axis=0)
    span = fg - bg
    alpha = np.clip(((px - bg) @ span) / max(float(span @ span), 1.0), 0, 1)
    alpha[~near | others] = 0.0
    valid = ~others
    mass = float(alpha.sum())
    if mass < 1:
        return np.zeros(len(SHAPES))
    yy, xx = np.mgrid[0:y1 - y0, 0:x1 - x0] + 0.5
    cx, cy = float((alpha * xx).sum() / mass), float((alpha * yy).sum() / mass)
    errs = []
    for shape in SHAPES:
        r = math.sqrt(mass / SHAPE_AREA[shape])
        tpl = shape_coverage(shape, r, cx, cy, y1 - y0, x1 - x0, supersample=3)
        best = min(float((((ndimage.gaussian_filter(tpl, s) if s else tpl) - alpha)[valid] ** 2).sum())
                   for s in _BLURS)
        errs.append(best / mass)
    return np.asarray(errs)


def _direction(vx: float, vy: float) -> str:
    ang = math.degrees(math.atan2(-vy, vx)) % 360
    best = min(_SECTORS, key=lambda k: min(abs(ang - _SECTORS[k]), 360 - abs(ang - _SECTORS[k])))
    return best


def _tracks(blobs_per_frame: list[list[_Blob]], max_step: float) -> list[list[_Blob]]:
    """Greedy frame-to-frame linking of same-colour blobs by nearest centroid."""
    tracks: list[list[_Blob]] = []
    active: list[list[_Blob]] = []
    for blobs in blobs_per_frame:
        pairs = []
        for ti, tr in enumerate(active):
            last = tr[-1]
            for bi, b in enumerate(blobs):
                if b.colour != last.colour:
                    continue
                gap = b.t - last.t
                d = math.hypot(b.x - last.x, b.y - last.y)
                if d <= max_step * gap:
                    pairs.append((d, ti, bi))
        pairs.sort()
        used_t, used_b = set(), set()
        for _, ti, bi in pairs:
            if ti in used_t or bi in used_b:
                continue
            active[ti].append(blobs[bi])
            used_t.add(ti)
            used_b.add(bi)
        for bi, b in enumerate(blobs):
            if bi not in used_b:
                tr = [b]
                tracks.append(tr)
                active.append(tr)
        # drop tracks unseen for 3 frames
        if blobs:
            now = blobs[0].t
            active = [tr for tr in active if now - tr[-1].t <= 3]
    return tracks


SHAPE_FRAMES = 6  # frames per track whose blobs are template-fitted for its shape


def _read_shot(frames: np.ndarray) -> list[ObjectObservation]:
    n = len(frames)
    fg = _foreground(frames)
    labels, per_frame = [], []
    for t in range(n):
        lab, k = ndimage.label(fg[t])
        labels.append(lab)
        per_frame.append(_blobs(frames[t], lab, k, t))
    tracks = _tracks(per_frame, max_step=6.0)
    need = max(min(n, 2), int(math.ceil(MIN_TRACK_FRAC * n)))
    found: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for tr in tracks:
        if len(tr) < need:
            continue
        colour = _NAMES[int(np.bincount([b.colour for b in tr]).argmax())]
        picks = [tr[i] for i in np.unique(np.linspace(0, len(tr) - 1, SHAPE_FRAMES).round().astype(int))]
        errs = np.zeros(len(SHAPES))
        for b in picks:
            lab = labels[b.t]
            big = np.isin(lab, [o.label for o in per_frame[b.t]])
            errs += _shape_errors(frames[b.t], lab, big, b)
        shape = SHAPES[int(np.argmin(errs))]
        ts = np.array([b.t for b in tr], dtype=np.float64)
        vx = vy = 0.0
        if len(tr) >= 2:
            vx = float(np.polyfit(ts, [b.x for b in tr], 1)[0])
            vy = float(np.polyfit(ts, [b.y for b in tr], 1)[0])
        moved = math.hypot(vx, vy) * max(n - 1, 1)
        direction = _direction(vx, vy) if moved >= MIN_MOVE else "none"
        found.setdefault((colour, shape, direction), []).append((vx, vy))
    out = []
    for (colour, shape, direction), vels in found.items():
        vx = float(np.mean([v[0] for v in vels]))
        vy = float(np.mean([v[1] for v in vels]))
        out.append(ObjectObservation(colour, shape, len(vels), direction, (round(vx, 3), round(vy, 3))))
    out.sort(key=lambda o: (o.colour, o.shape, o.direction))
    return out


PAN_STEP = 2  # frames between the pairs a pan is measured on
PAN_SEARCH = 5  # px: shifts searched per pair, |dx|, |dy| <= this (world pans move 2 px per pair,
# and every periodic background has a period >= 8 px, so no alias of the true shift is in range)
MIN_PAN_RATE = 0.3  # px/frame of background motion below which there is no pan
MIN_ZOOM_RATE = 0.004  # relative scale change per frame below which there is no zoom
_ZOOM_RATES = (0.005, 0.008, 0.012, 0.018, 0.025)
MIN_CHANGE = 1.0  # median absolute grey-level difference of "no motion" below which nothing moved
EXPLAINS = 0.5  # a move must leave at most this fraction of the "no motion" squared difference


def _shift_ratio(g: np.ndarray, bg: np.ndarray, pairs: list[tuple[int, int]], dy: int, dx: int) -> float:
    """Squared difference left when frame b is predicted by frame a with its content moved by
    (dy, dx), over the same pixels, as a fraction of the difference left by no motion. Only
    pixels that are background in both frames and inside the frame after the move count; 1.0
    when most of the background does not change (median absolute difference < MIN_CHANGE: codec
    noise and the wakes a codec leaves around moving objects are local, a camera move is not)."""
    h, w = g.shape[1:]
    moved = still = 0.0
    diffs = []
    for a, b in pairs:
        ys, yd = slice(max(0, -dy), h - max(0, dy)), slice(max(0, dy), h - max(0, -dy))
        xs, xd = slice(max(0, -dx), w - max(0, dx)), slice(max(0, dx), w - max(0, -dx))
        v = bg[a][ys, xs] & bg[b][yd, xd] & bg[a][yd, xd]
        moved += float(((g[a][ys, xs] - g[b][yd, xd])[v] ** 2).sum())
        d = (g[a][yd, xd] - g[b][yd, xd])[v]
        still += float((d**2).sum())
        diffs.append(np.abs(d))
    d = np.concatenate(diffs)
    if len(d) < 50 or float(np.median(d)) < MIN_CHANGE:
        return 1.0
    return moved / still


def _zoom_ratio(g: np.ndarray, bg: np.ndarray, a: int, b: int, s: float) -> float:
    """As `_shift_ratio`, for frame b predicted by frame a magnified s times about the centre."""
    c = np.array(g.shape[1:]) / 2 - 0.5
    mat, off = np.eye(2) / s, c - c / s
    pa = ndimage.affine_transform(g[a], mat, offset=off, order=1, mode="nearest")
    va = ndimage.affine_transform(bg[a].astype(np.float64), mat, offset=off, order=0, cval=0) > 0.5
    v = va & bg[b] & bg[a]
    if v.sum() < 50:
        return 1.0
    d = (g[a] - g[b])[v]
    if float(np.median(np.abs(d))) < MIN_CHANGE:
        return 1.0
    return float(((pa - g[b])[v] ** 2).mean()) / float((d**2).mean())


def detect_camera(frames: np.ndarray, fg: np.ndarray | None = None) -> str | None:
    """The camera move of one shot, one of `world.CAMERAS`, or None (static or not visible).

    Objects (dilated foreground) are masked out. A pan is the integer background shift, searched
    exhaustively within +-PAN_SEARCH px, that best predicts frames PAN_STEP apart (a small penalty
    per pixel of shift makes a shift along stripes, which changes nothing, lose to no shift); a
    zoom is the best of a few scale changes about the centre between the first and last frame.
    Every candidate is scored on the same pixels as "no motion" and must leave at most EXPLAINS
    of its squared difference. Background content moving right means the camera pans left
    (`world` semantics).
    """
    n = len(frames)
    if n < 3:
        return None
    if fg is None:
        fg = _foreground(frames)
    g = frames.astype(np.float64).mean(axis=-1)  # (T, H, W)
    bg = ~ndimage.binary_dilation(fg, structure=np.ones((1, 3, 3), bool), iterations=3)
    if bg[0].sum() < 100 or g[0][bg[0]].std() < 2.0:
        return None  # flat background: a camera move is invisible
    k = min(n - 1, PAN_STEP)
    pairs = [(t, t + k) for t in sorted({0, (n - 1 - k) // 2, n - 1 - k})]
    best, pan_ratio = (0, 0), 1.0
    for dy in range(-PAN_SEARCH, PAN_SEARCH + 1):
        for dx in range(-PAN_SEARCH, PAN_SEARCH + 1):
            if dy and dx:
                continue  # world pans are horizontal or vertical
            if dy or dx:
                r = _shift_ratio(g, bg, pairs, dy, dx) + 0.01 * (abs(dy) + abs(dx))
                if r < pan_ratio:
                    best, pan_ratio = (dy, dx), r
    dy, dx = best
    pan = None
    if pan_ratio <= EXPLAINS and max(abs(dy), abs(dx)) / k >= MIN_PAN_RATE:
        if abs(dx) >= abs(dy):
            pan = "pan-left" if dx > 0 else "pan-right"
        else:
            pan = "pan-up" if dy > 0 else "pan-down"
    m = n - 1
    zoom_s, zoom_ratio = 1.0, 1.0
    for rate in _ZOOM_RATES:
        for sign in (1, -1):
            s = (1 + rate) ** (sign * m)  # magnification from frame 0 to frame m
            r = _zoom_ratio(g, bg, 0, m, s)
            if r < zoom_ratio:
                zoom_s, zoom_ratio = s, r
    zoom = None
    if zoom_ratio <= EXPLAINS and abs(math.log(zoom_s)) / m >= MIN_ZOOM_RATE:
        zoom = "zoom-in" if zoom_s > 1 else "zoom-out"
    if pan and zoom:
        # a zoom seen through a small window looks like a pan: compare both over the whole shot
        full = _shift_ratio(g, bg, [(0, m)], round(dy * m / k), round(dx * m / k))
        return zoom if zoom_ratio < full else pan
    return pan or zoom


def check(frames: np.ndarray) -> Observation:
    """Read a clip: uint8 (T, H, W, 3) RGB (an image is T == 1) -> Observation."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got {frames.shape}")
    cut = detect_cut(frames)
    bounds = [(0, len(frames))] if cut is None else [(0, cut), (cut, len(frames))]
    shots = [ShotObservation(a, b, _read_shot(frames[a:b]), detect_camera(frames[a:b])) for a, b in bounds]
    return Observation(shots, cut)


ATTRIBUTES = ("colour", "shape", "count", "direction", "cut")  # what "all" requires
EXTRA_ATTRIBUTES = ("camera",)  # also reported by `adherence`


def adherence(spec: ClipSpec, obs: Observation, *, cut_tolerance: int = 1) -> dict[str, bool]:
    """Per-attribute agreement of an observation with a spec, and "all".

    Per shot (shots aligned by order; a missing shot fails everything): colour = the multiset of
    object colours matches, shape = the multiset of shapes, count = the number of objects,
    direction = the multiset of directions (not compared for a 1-frame shot); each counts
    objects, so a wrong count usually fails them too. "cut" = both have no cut, or the cut
    frames differ by <= `cut_tolerance`.
    "all" = the same objects, as (colour, shape, direction) with their counts, in every shot, and
    the cut. "camera" (every shot's camera move, or None, as `detect_camera` sees it) is reported
    but is not part of "all": the issue's adherence is colour, shape, count, direction and cut.
    """
    res = dict.fromkeys(("colour", "shape", "count", "direction"), True)
    exact = len(spec.shots) == len(obs.shots)
    for i, (shot, (a, b)) in enumerate(zip(spec.shots, spec.shot_ranges(), strict=True)):
        if i >= len(obs.shots):
            res = dict.fromkeys(res, False)
            break
        seen = obs.shots[i].objects
        if b - a < 2:  # a still frame shows no motion: direction is not observable
            seen = [dataclasses.replace(o, direction="any") for o in seen]
            shot = dataclasses.replace(shot, objects=[dataclasses.replace(o, direction="any")
                                                      for o in shot.objects])
        res["colour"] &= sorted(o.colour for o in shot.objects) == sorted(
            o.colour for o in seen for _ in range(o.count))
        res["shape"] &= sorted(o.shape for o in shot.objects) == sorted(
            o.shape for o in seen for _ in range(o.count))
        res["count"] &= len(shot.objects) == sum(o.count for o in seen)
        res["direction"] &= sorted(o.direction for o in shot.objects) == sorted(
            o.direction for o in seen for _ in range(o.count))
        exact &= Counter((o.colour, o.shape, o.direction) for o in shot.objects) == Counter(
            {(o.colour, o.shape, o.direction): o.count for o in seen})
    cams = [o.camera for o in obs.shots]
    res["camera"] = len(cams) == len(spec.shots) and all(
        s.camera == c for s, c in zip(spec.shots, cams, strict=False))
    if spec.cut_at is None or len(spec.shots) == 1:
        res["cut"] = obs.cut is None
    else:
        res["cut"] = obs.cut is not None and abs(obs.cut - spec.cut_at) <= cut_tolerance
    res["all"] = bool(exact and all(res[k] for k in ATTRIBUTES))
    return {k: bool(v) for k, v in res.items()}


