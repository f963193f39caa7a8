"""Scoring files with the detector: `load("tfdet-s").score(frames) -> DetectorResult`.

A clip is scored on up to `max_frames` frames spread over it; each frame on native-resolution
tiles (no resize: it would erase the decoder's trace), as many as cover `tile_share` of the
frame, at least one and at most `max_tiles`: the time spent follows the pixels decoded, so that
scoring takes no longer than decoding (benchmarks/detector.py measures it). A frame's logit is the
mean of its tiles' patch logits, a clip's the mean of its frames'. Calibration (isotonic, fitted
on a split training never saw; an H.264 file's also sees its quantiser) maps a logit to
P(AI-generated); the label compares the logit with two thresholds fixed on real footage:
`likely-ai` at 1 % false positives, `uncertain` between that and 10 %, `likely-real` below.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from trustframe.detector.model import DetectorConfig, DetectorNet
from trustframe.errors import ConfigError, TrustFrameError, UnsupportedMedia
from trustframe.media import Frames

DEFAULT_PRESET = "tfdet-s"
MIN_SIDE = 32  # px: smaller frames carry too few patches to score


MIN_H264_CLIPS = 600  # calibration clips read as H.264 needed for their own calibration
QP_CENTER, QP_SCALE = 30.0, 10.0  # the quantiser as the H.264 calibration sees it: (QP - 30) / 10


@dataclass
class Calibration:
    """Logit -> P(AI-generated), and the label thresholds as logits.

    A file's logit goes through isotonic knots (`x`, `y`; centred, so P rises strictly between
    them). An H.264 file whose quantiser is read (`media.h264_qp`) is calibrated with it (`h264`):
    its logit and quantiser are first combined by a logistic regression on (logit, q, logit * q),
    q = (QP - 30) / 10, whose score then goes through isotonic knots of its own. Compression moves
    both classes' logits, so one curve for every codec is over-sure on heavily quantised video and
    under-sure on lightly quantised video. The label thresholds stay one pair for every file
    (false-positive rates on all real footage).
    """

    x: list[float]
    y: list[float]
    threshold_logit: float  # false-positive rate `fpr` on real calibration footage
    uncertain_logit: float  # false-positive rate `uncertain_fpr`
    fpr: float = 0.01
    uncertain_fpr: float = 0.10
    # 99th percentile of real calibration footage's *patch* logits: the heat map paints a patch
    # only above it (patch logits are noisier than a file's mean, so the file scale would paint
    # much of every real frame)
    patch_threshold_logit: float | None = None
    # {"coef": [logit, q, logit * q], "intercept", "qp_range": [lo, hi] (a QP outside is taken as the
    # nearest end), "x", "y"}; None: one curve for every file
    h264: dict | None = None

    def prob(self, logit, qp=None) -> np.ndarray:
        """P(AI-generated) of logit(s); `qp` the file's H.264 quantiser (None or NaN: not read), or
        one per logit."""
        logit = np.asarray(logit, dtype=np.float64)
        if self.h264 is None or qp is None:
            return np.interp(logit, self.x, self.y)
        v = np.atleast_1d(logit)
        out = np.interp(v, self.x, self.y)
        qp = np.broadcast_to(np.asarray(qp, dtype=np.float64), logit.shape).reshape(v.shape)
        read = np.isfinite(qp)
        if read.any():
            (a, b, c), d = self.h264["coef"], self.h264["intercept"]
            q = (np.clip(qp[read], *self.h264["qp_range"]) - QP_CENTER) / QP_SCALE
            z = a * v[read] + b * q + c * v[read] * q + d
            out[read] = np.interp(z, self.h264["x"], self.h264["y"])
        return out.reshape(logit.shape)

    @classmethod
    def fit(
        cls, real_logits: np.ndarray, fake_logits: np.ndarray, fpr: float = 0.01, uncertain_fpr: float = 0.10,
        real_qp: np.ndarray | None = None, fake_qp: np.ndarray | None = None,
    ) -> Calibration:
        """Isotonic knots and thresholds from calibration clips' logits; given their H.264
        quantisers too (NaN where none was read), the H.264 calibration from the clips read as H.264
        (at least MIN_H264_CLIPS; and only when the score it gives rises with the logit at every
        quantiser it saw, else H.264 files keep the one curve)."""
        from sklearn.linear_model import LogisticRegression

        logits = np.concatenate([real_logits, fake_logits]).astype(np.float64)
        labels = np.concatenate([np.zeros(len(real_logits)), np.ones(len(fake_logits))])
        x, y = _isotonic(logits, labels)
        h264 = None
        if real_qp is not None and fake_qp is not None:
            qp = np.concatenate([real_qp, fake_qp]).astype(np.float64)
            read = np.isfinite(qp)
            if read.sum() >= MIN_H264_CLIPS and len(set(labels[read])) == 2:
                v, q = logits[read], (qp[read] - QP_CENTER) / QP_SCALE
                lr = LogisticRegression(C=1e4, max_iter=5000).fit(np.c_[v, q, v * q], labels[read])
                (a, b, c), d = (float(w) for w in lr.coef_[0]), float(lr.intercept_[0])
                lo, hi = float(qp[read].min()), float(qp[read].max())
                slopes = [a + c * (end - QP_CENTER) / QP_SCALE for end in (lo, hi)]
                if min(slopes) > 0:
                    hx, hy = _isotonic(a * v + b * q + c * v * q + d, labels[read])
                    h264 = {"coef": [a, b, c], "intercept": d, "qp_range": [lo, hi], "x": hx, "y": hy}
        return cls(
            x=x,
            y=y,
            threshold_logit=float(np.quantile(real_logits, 1 - fpr)),
            uncertain_logit=float(np.quantile(real_logits, 1 - uncertain_fpr)),
            fpr=fpr,
            uncertain_fpr=uncertain_fpr,
            h264=h264,
        )

    def label(self, logit: float) -> str:
        if logit >= self.threshold_logit:
            return "likely-ai"
        return "uncertain" if logit >= self.uncertain_logit else "likely-real"

    def to_dict(self) -> dict:
        return asdict(self)


def _isotonic(logits: np.ndarray, labels: np.ndarray) -> tuple[list[float], list[float]]:
    """The knots of a centred isotonic regression of labels on logits (Oron & Flournoy 2017): each
    block of the isotonic fit (one fitted P) becomes one knot at the mean logit of its clips (the two
    end blocks: at the lowest and highest logit), so the curve rises strictly over every logit it was
    fitted on. Plain isotonic knots give flat steps: every frame of a clip and most clips of a folder
    then read the same score, and a timeline shows nothing."""
    from sklearn.isotonic import IsotonicRegression

    order = np.argsort(logits, kind="stable")
    v, t = np.asarray(logits, np.float64)[order], np.asarray(labels, np.float64)[order]
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0).fit_transform(v, t)
    starts = np.flatnonzero(np.r_[True, np.diff(fitted) != 0])
    x = np.add.reduceat(v, starts) / np.diff(np.r_[starts, len(v)])
    if len(x) > 1:  # the end blocks reach out to the extreme logits, so no calibration clip sits on a step
        x[0], x[-1] = v[0], v[-1]
    return [float(a) for a in x], [float(fitted[i]) for i in starts]


@dataclass
class DetectorResult:
    score: float  # calibrated P(AI-generated) of the whole file
    label: str  # likely-ai / uncertain / likely-real
    threshold: float  # P at the 1 %-FPR threshold
    threshold_fpr: float
    model: str
    frames: list[dict] = field(default_factory=list)  # [{"time_s", "frame", "score"}], in order
    top_frame: int | None = None  # source frame number that scored highest
    heatmap: np.ndarray | None = field(default=None, repr=False)  # top frame's evidence per patch, 0..1
    top_pixels: np.ndarray | None = field(default=None, repr=False)  # that frame, uint8 HW3 (with heatmap)
    patch_px: int = 8  # input pixels per side of a heat-map patch (the network's stride)
    h264_qp: float | None = None  # the file's H.264 quantiser, when read (`score` is calibrated for it)

    def heatmap_image(self) -> np.ndarray:
        """The top frame with its evidence painted over it (`heatmap_overlay`); needs score(heatmap=True)."""
        if self.heatmap is None or self.top_pixels is None:
            raise ValueError("no heat map: score the frames with heatmap=True")
        return heatmap_overlay(self.top_pixels, self.heatmap, self.patch_px)


def to_tensor(a: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(a)).float().div(127.5).sub(1).movedim(-1, -3).contiguous()


def tile_origins(h: int, w: int, tile: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners of a grid of `tile`-sized tiles covering an h x w frame: on multiples of
    `stride` (the logit map's), except the last of each axis, which ends at the frame's edge (overlapping its
    neighbour) so that nothing is left uncovered."""

    def axis(n):
        k = -(-n // tile)
        inner = [(round(v) // stride) * stride for v in np.linspace(0, n - tile, k)[:-1]]
        return sorted({*inner, n - tile})

    return [(y, x) for y in axis(h) for x in axis(w)]


class Detector:
    def __init__(
        self,
        net: DetectorNet,
        calibration: Calibration,
        name: str,
        *,
        max_frames: int = 8,
        tile: int = 128,
        max_tiles: int = 4,
        tile_share: float = 0.15,
        card: dict | None = None,
    ):
        self.net, self.calibration, self.name = net.eval(), calibration, name
        self.card = card or {}  # the model card it was loaded with (empty for one built in memory)
        self.max_frames, self.tile, self.max_tiles, self.tile_share = max_frames, tile, max_tiles, tile_share

    @property
    def scoring(self) -> dict:
        """How files are scored (the card's `scoring`)."""
        return {"max_frames": self.max_frames, "tile": self.tile, "max_tiles": self.max_tiles,
                "tile_share": self.tile_share}

    def _tiles(self, h: int, w: int, all_tiles: bool) -> tuple[int, list[tuple[int, int]]]:
        """(tile side, origins) scored on an h x w frame: every tile of the grid, or (the default)
        enough to cover `tile_share` of it, 1 to `max_tiles`, spread evenly over the grid."""
        s = self.net.cfg.stride
        tile = min(self.tile, (h // s) * s, (w // s) * s)
        origins = tile_origins(h, w, tile, s)
        k = min(self.max_tiles, max(1, int(self.tile_share * h * w / tile**2)))
        if not all_tiles and len(origins) > k:  # the middle of each of k equal shares of the grid
            origins = [origins[int((i + 0.5) * len(origins) / k)] for i in range(k)]
        return tile, origins

    @torch.no_grad()
    def _maps(self, frames: list[np.ndarray], prevs: list[np.ndarray],
              all_tiles: bool) -> tuple[list[tuple[int, int]], list[np.ndarray]]:
        """Frames (uint8 HW3, one size) and their predecessors -> (the tiles' origins, each frame's
        tile patch maps (k, tile/stride, tile/stride)), from one forward pass over every tile."""
        tile, origins = self._tiles(*frames[0].shape[:2], all_tiles)
        cur = np.stack([f[y : y + tile, x : x + tile] for f in frames for y, x in origins])
        pre = np.stack([p[y : y + tile, x : x + tile] for p in prevs for y, x in origins])
        maps = self.net(to_tensor(cur), to_tensor(pre))[:, 0].numpy()
        return origins, list(maps.reshape(len(frames), len(origins), *maps.shape[1:]))

    def logits(
        self, frame: np.ndarray, prev: np.ndarray, *, all_tiles: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """One frame (uint8 HW3) and its predecessor -> (tile logits (k,), patch logit map with NaN
        where no tile was scored (H/stride, W/stride))."""
        h, w = frame.shape[:2]
        s = self.net.cfg.stride
        origins, (maps,) = self._maps([frame], [prev], all_tiles)
        heat = np.full((h // s, w // s), np.nan, np.float32)
        for (y, x), m in zip(origins, maps, strict=True):
            heat[y // s : y // s + m.shape[0], x // s : x // s + m.shape[1]] = m
        return maps.mean(axis=(1, 2)), heat

    def evidence(self, patch_logits: np.ndarray) -> np.ndarray:
        """Patch logits -> heat in [0, 1]: 0 up to the patch threshold (what 1 % of real
        footage's patches exceed), rising to 1 two logits above it; NaN stays NaN."""
        t = self.calibration.patch_threshold_logit
        if t is None:  # a card from before patch thresholds: the file-level calibration
            return self.calibration.prob(patch_logits).astype(np.float32) * 2 - 1
        return np.clip((np.asarray(patch_logits) - t) / 2, 0, 1).astype(np.float32)

    def _check(self, frames: Frames) -> None:
        if min(frames.height, frames.width) < MIN_SIDE:
            raise UnsupportedMedia(
                f"{frames.width}x{frames.height} is too small for the detector (it needs at least "
                f"{MIN_SIDE} px a side)"
            )

    @staticmethod
    def _prev(frames: Frames, i: int) -> int:
        """The frame just before frame i, or i itself when there is none (an image, a sampled read)."""
        idx = np.asarray(frames.indices)
        return i - 1 if i > 0 and idx[i] - idx[i - 1] == 1 else i

    def frame_logits(self, frames: Frames) -> tuple[np.ndarray, np.ndarray]:
        """(positions in `frames` scored, their logits): up to `max_frames`, evenly spread."""
        self._check(frames)
        n = len(frames)
        picks = np.unique(np.linspace(0, n - 1, min(n, self.max_frames)).round().astype(int))
        prevs = [frames.data[self._prev(frames, i)] for i in picks]
        _, maps = self._maps([frames.data[i] for i in picks], prevs, all_tiles=False)
        return picks, np.array([float(m.mean()) for m in maps])

    def logit(self, frames: Frames) -> float:
        """The file's logit: the mean of its frames'."""
        return float(self.frame_logits(frames)[1].mean())

    def score(self, frames: Frames, *, heatmap: bool = False) -> DetectorResult:
        """Score decoded frames. Raises UnsupportedMedia for frames smaller than MIN_SIDE."""
        picks, frame_logits = self.frame_logits(frames)
        qp = frames.meta.get("h264_qp")  # media.read(..., quantiser=True) fills it for H.264 files
        idx = np.asarray(frames.indices)
        clip_logit = float(frame_logits.mean())
        rows = [
            {
                "time_s": round(float(idx[i] / frames.fps) if frames.fps else 0.0, 3),
                "frame": int(idx[i]),
                "score": round(float(p), 4),
            }
            for i, p in zip(picks, self.calibration.prob(frame_logits, qp), strict=True)
        ]
        best = int(picks[int(np.argmax(frame_logits))])
        heat = top = None
        if heatmap:
            _, m = self.logits(frames.data[best], frames.data[self._prev(frames, best)], all_tiles=True)
            heat, top = self.evidence(m), frames.data[best]
        c = self.calibration
        return DetectorResult(
            score=float(c.prob(clip_logit, qp)),
            label=c.label(clip_logit),
            threshold=float(c.prob(c.threshold_logit, qp)),
            threshold_fpr=c.fpr,
            model=self.name,
            frames=rows,
            top_frame=int(idx[best]),
            heatmap=heat,
            top_pixels=top,
            patch_px=self.net.cfg.stride,
            h264_qp=None if qp is None else round(float(qp), 1),
        )


def detector_from_checkpoint(state_dict: dict, card: dict, name: str) -> Detector:
    net = DetectorNet(DetectorConfig.from_dict(card["config"]))
    net.load_state_dict(state_dict)
    return Detector(net, Calibration(**card["calibration"]), name, **card.get("scoring", {}), card=card)


@functools.lru_cache(maxsize=2)
def load(name: str = DEFAULT_PRESET) -> Detector:
    """A shipped detector preset by name, or a `.safetensors` path with its `.json` card beside
    it (what `trustframe detector train` writes); loaded once per process, never unpickled."""
    import json
    from pathlib import Path

    from trustframe.weights import load_checkpoint

    if name.endswith(".safetensors"):
        from safetensors.torch import load_file

        path = Path(name).expanduser()
        if not path.is_file() or not path.with_suffix(".json").is_file():
            raise ConfigError(f"{path}: no detector weights with a .json card beside them")
        state, card, name = load_file(str(path)), json.loads(path.with_suffix(".json").read_text()), path.stem
    else:
        ck = load_checkpoint("detector", name, kind="detector")
        state, card = ck.state_dict, ck.card
    if card.get("kind", "detector") != "detector":
        raise ConfigError(f"{name!r} is not a detector (its card's kind is {card['kind']!r})")
    try:
        return detector_from_checkpoint(state, card, name)
    except (KeyError, RuntimeError, TypeError) as e:
        raise TrustFrameError(f"detector preset {name!r} is damaged: {e}") from e


def heatmap_overlay(frame: np.ndarray, heat: np.ndarray, patch_px: int) -> np.ndarray:
    """The frame (uint8 HW3), dimmed to grey, with each patch_px x patch_px patch painted red as
    strongly as its evidence (`heat`, (h // patch_px, w // patch_px), from `Detector.evidence`:
    0 = no more than real footage shows, 1 = far beyond); patches without evidence or not scored
    stay as they are. Returns uint8 HW3."""
    import cv2

    h, w = frame.shape[:2]
    s = patch_px
    big = cv2.resize(np.nan_to_num(heat, nan=0.0), (w - w % s, h - h % s),
                     interpolation=cv2.INTER_NEAREST)
    big = np.pad(big, ((0, h - big.shape[0]), (0, w - big.shape[1])), constant_values=0.0)
    alpha = (0.75 * np.clip(big, 0, 1))[..., None]
    grey = frame.mean(axis=2, keepdims=True).repeat(3, axis=2) * 0.6 + frame * 0.4
    red = np.array([230.0, 30.0, 30.0])
    return np.clip(grey * (1 - alpha) + red * alpha, 0, 255).astype(np.uint8)
