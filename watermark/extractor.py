"""The extractor: reveal the pattern, fold the frames onto one tile period, find scale and shift,
read the bits.

1. Every frame is resized to the working resolution and its luma goes through the learned
   `nets.RevealNet`, which estimates the watermark pattern at every pixel (content, codec blocking
   and ringing suppressed); one map per group of `temporal_pool` frames.
2. On the mean map (the pattern is the same in every frame; content and codec noise average out),
   for each candidate scale (a crop magnifies the pattern once the short side is normalised) and
   for the frame as is and mirrored, the map is resampled and folded modulo the tile period; the
   template's cross-correlation (one FFT) gives the best shift and a peak score.
3. At the best hypothesis each group's Fourier coefficients are phase-corrected for the shift
   (sub-pixel) and weighted by how strongly the group shows the template there (a matched filter
   over time: after a codec the I-frame often keeps the pattern while later P-frames lose it),
   and the soft bits are read from the weighted message coefficients.
Alignment and weights come from the template frequencies only, which carry no message bits, so on
unwatermarked content the message coefficients stay unbiased whatever hypothesis wins; the
network never sees the key, so it cannot bias the keyed readout either.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
import torch

from trustframe.watermark.embedder import frames_per_call, work_luma, work_shape
from trustframe.watermark.layout import Layout, read_bits
from trustframe.watermark.nets import RevealNet


@dataclass(frozen=True)
class ExtractorConfig:
    work_size: int = 256
    spectral_window: int = 5  # bins; Fourier coefficients are divided by their local RMS
    scales: tuple[float, ...] = field(default_factory=lambda: tuple(
        float(round(1.03**i, 4)) for i in range(-2, 14)))  # 0.94 .. 1.47
    fine_step: float = 0.005  # relative scale step of the refinement around the best coarse scale
    fine_steps: int = 3
    mirror: bool = True  # also try the horizontally flipped frame
    max_frames: int = 64  # frames used from a clip (evenly spaced)
    temporal_pool: int = 2  # consecutive used frames averaged before RevealNet (speed for video)

    def as_dict(self) -> dict:
        return asdict(self)


@torch.inference_mode()
def group_maps(data: np.ndarray, cfg: ExtractorConfig, reveal: RevealNet) -> np.ndarray:
    """uint8 (T, H, W, 3) -> revealed patterns (G, h, w) at the working resolution, one per group.

    With `temporal_pool` k > 1, each run of k used frames is averaged (in luma) before the
    network: the pattern is the same in every frame, so it keeps its strength while the network
    runs k times less often.
    """
    _, h, w, _ = data.shape
    ws = work_shape(h, w, cfg.work_size)
    idx = np.unique(np.linspace(0, len(data) - 1, min(len(data), cfg.max_frames)).round()).astype(int)
    k = max(1, cfg.temporal_pool)
    step = k * frames_per_call(ws)
    maps = []
    for b in range(0, len(idx), step):
        y = work_luma(data[idx[b: b + step]], ws)  # (B, 1, h, w)
        groups = torch.stack([g.mean(0) for g in y.split(k)])  # (ceil(B / k), 1, h, w)
        maps.append(reveal(groups)[:, 0])
    return torch.cat(maps).numpy()


def whiten_spectrum(spec: np.ndarray, k: int) -> np.ndarray:
    """Divide each coefficient of spec (t, t) by the RMS of its k x k neighbourhood (wrapping).

    Content is far from white (most of its energy sits at low frequencies); weighting every
    coefficient by its local noise level is the matched filter for coloured noise.
    """
    p = np.fft.fftshift(np.abs(spec) ** 2).astype(np.float32)
    sm = cv2.blur(p, (k, k), borderType=cv2.BORDER_WRAP)
    return spec / np.sqrt(np.fft.ifftshift(sm) + 1e-9)


def fold(m: np.ndarray, t: int) -> np.ndarray:
    """Map (h, w) -> (t, t) mean over all positions congruent modulo t (partial tiles too)."""
    h, w = m.shape
    ph, pw = -(-h // t) * t, -(-w // t) * t
    acc = np.zeros((ph, pw), np.float32)
    cnt = np.zeros((ph, pw), np.float32)
    acc[:h, :w], cnt[:h, :w] = m, 1
    acc = acc.reshape(ph // t, t, pw // t, t).sum((0, 2))
    cnt = cnt.reshape(ph // t, t, pw // t, t).sum((0, 2))
    return acc / np.maximum(cnt, 1)


@dataclass
class Alignment:
    scale: float
    mirrored: bool
    shift: tuple[float, float]  # (dy, dx) px in the tile
    score: float  # template peak in units of the correlation surface's std


def _half(layout: Layout, spec: np.ndarray) -> np.ndarray:
    t = layout.cfg.tile
    return spec[layout.freqs[:, 1] % t, layout.freqs[:, 0] % t]


def _subpixel(c: np.ndarray, i: int, j: int) -> tuple[float, float]:
    t = c.shape[0]

    def para(a, b, d):
        den = a - 2 * b + d
        return 0.0 if den >= 0 else 0.5 * (a - d) / den

    dy = para(c[(i - 1) % t, j], c[i, j], c[(i + 1) % t, j])
    dx = para(c[i, (j - 1) % t], c[i, j], c[i, (j + 1) % t])
    return i + dy, j + dx


def _spectrum(m: np.ndarray, scale: float, mirrored: bool, t: int, cfg: ExtractorConfig) -> np.ndarray:
    """Map (h, w) -> whitened spectrum (t, t) [v, u] of the map mirrored, shrunk by `scale`
    and folded modulo the tile period."""
    h, w = m.shape
    mm = m[:, ::-1] if mirrored else m
    size = (max(8, round(w / scale)), max(8, round(h / scale)))
    r = mm if scale == 1.0 else cv2.resize(mm, size, interpolation=cv2.INTER_LINEAR)
    return whiten_spectrum(np.fft.fft2(fold(r, t)), cfg.spectral_window)


def _search(m: np.ndarray, layout: Layout, cfg: ExtractorConfig, scales, mirrors):
    """Best (Alignment, half-plane coefficients) over the given scales and mirrorings."""
    t = layout.cfg.tile
    u, v = layout.freqs[:, 0], layout.freqs[:, 1]
    tmpl = layout.template_phase[layout.template]
    ut, vt = u[layout.template] % t, v[layout.template] % t
    best, best_coef = None, None
    for mirrored in mirrors:
        for s in scales:
            spec = _spectrum(m, s, mirrored, t, cfg)
            # correlation of the folded map with the template at every circular shift
            cs = np.zeros((t, t), np.complex128)
            cs[vt, ut] = spec[vt, ut] * np.conj(tmpl)
            corr = np.fft.ifft2(cs).real * t * t  # peak where the tile starts
            i, j = np.unravel_index(np.argmax(corr), corr.shape)
            score = float(corr[i, j] / (corr.std() + 1e-12))
            if best is None or score > best.score:
                best = Alignment(float(s), mirrored, _subpixel(corr, i, j), score)
                best_coef = _half(layout, spec)
    return best, best_coef


def align(m: np.ndarray, layout: Layout, cfg: ExtractorConfig) -> tuple[Alignment, np.ndarray]:
    """Search scale x mirror x shift; returns the best alignment and its half-plane coefficients.

    Scales go coarse (the configured grid) then fine (`fine_steps` either side, `fine_step`
    apart): the highest pattern frequencies lose coherence across the frame when the scale is
    off by more than ~0.5%.
    """
    best, coef = _search(m, layout, cfg, cfg.scales, (False, True) if cfg.mirror else (False,))
    fine = [best.scale * (1 + cfg.fine_step * k) for k in range(-cfg.fine_steps, cfg.fine_steps + 1)
            if k != 0]
    b2, c2 = _search(m, layout, cfg, fine, (best.mirrored,))
    if b2.score > best.score:
        best, coef = b2, c2
    return best, coef * _unshift(layout, best.shift)


def _unshift(layout: Layout, shift: tuple[float, float]) -> np.ndarray:
    """Phase factors (F,) that undo a tile starting at (dy, dx): its coefficients were multiplied
    by e^{-2 pi i f.d / t}."""
    t, (dy, dx) = layout.cfg.tile, shift
    return np.exp(2j * np.pi * (layout.freqs[:, 0] * dx + layout.freqs[:, 1] * dy) / t)


def template_weighted(maps: np.ndarray, layout: Layout, cfg: ExtractorConfig,
                      a: Alignment) -> np.ndarray:
    """Group maps (G, h, w) -> half-plane coefficients (F,) at alignment `a`, each group weighted
    by its agreement with the template there (negative agreement counts zero; the plain sum if
    no group agrees). Only template frequencies decide the weights."""
    unshift = _unshift(layout, a.shift)
    tmpl = layout.template_phase[layout.template]
    coefs = np.stack([_half(layout, _spectrum(m, a.scale, a.mirrored, layout.cfg.tile, cfg)) * unshift
                      for m in maps])  # (G, F)
    w = np.maximum((coefs[:, layout.template] * np.conj(tmpl)).real.sum(1), 0.0)
    return (w if w.any() else np.ones(len(maps))) @ coefs


def soft_bits(data: np.ndarray, layout: Layout, cfg: ExtractorConfig, reveal: RevealNet):
    """uint8 (T, H, W, 3) -> (soft bits (L,), Alignment, frames used)."""
    maps = group_maps(data, cfg, reveal)
    a, coef = align(maps.mean(0), layout, cfg)
    if len(maps) > 1:
        coef = template_weighted(maps, layout, cfg, a)
    return read_bits(layout, coef), a, min(len(data), cfg.max_frames)
