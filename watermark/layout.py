"""The keyed spectral layout of the watermark tile.

The watermark is one periodic tile (`tile` px at the working resolution) defined by its 2-D
Fourier coefficients on a ring of frequencies (`r_min`..`r_max` cycles per tile, i.e. periods
of about 5-13 px at the working resolution: low enough to survive codecs and resizing, high
enough to sit above most image content; lower bands lost to content noise in our trials). The
key decides, per frequency, whether it carries the template (a known pseudo-random phase used
to find scale and shift) or message bits, and which bit each real/imaginary coefficient
carries. Each bit is spread over two or three coefficients.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LayoutConfig:
    num_bits: int = 128
    tile: int = 128  # px at the working resolution
    r_min: float = 6.0  # cycles per tile (period 21 px at the working resolution)
    r_max: float = 16.0  # (period 8 px; x2.8 on a 720p frame)
    template_frac: float = 0.3  # share of the ring's frequencies given to the template
    density: float = 1.0  # share of the ring's frequencies used at all (keyed choice)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Layout:
    cfg: LayoutConfig
    freqs: np.ndarray  # (F, 2) int (u, v): u along width, v along height; half plane
    template: np.ndarray  # (F,) bool: frequency carries the template
    template_phase: np.ndarray  # (F,) complex unit phasors (only where template)
    coef_freq: np.ndarray  # (K,) index into freqs of each message coefficient
    coef_imag: np.ndarray  # (K,) bool: imaginary (True) or real part
    coef_bit: np.ndarray  # (K,) which bit the coefficient carries
    coef_sign: np.ndarray  # (K,) +-1 keyed sign


def _rng(key: bytes, label: str) -> np.random.Generator:
    seed = hmac.new(key, label.encode(), hashlib.sha256).digest()
    return np.random.default_rng(np.frombuffer(seed, np.uint64))


def ring(cfg: LayoutConfig) -> np.ndarray:
    """Half-plane integer frequencies (u, v) with r_min <= |(u, v)| <= r_max, (F, 2)."""
    r = int(np.ceil(cfg.r_max))
    out = []
    for v in range(0, r + 1):
        for u in range(-r, r + 1):
            if v == 0 and u <= 0:
                continue  # (u, 0) and (-u, 0) are conjugates: keep one
            if cfg.r_min <= np.hypot(u, v) <= cfg.r_max:
                out.append((u, v))
    return np.array(out, dtype=np.int64)


def make_layout(key: bytes, cfg: LayoutConfig) -> Layout:
    freqs = ring(cfg)
    rng = _rng(key, "tfwm-layout")
    if cfg.density < 1:  # fewer, stronger coefficients: more of them survive quantisation
        keep = np.sort(rng.permutation(len(freqs))[: round(cfg.density * len(freqs))])
        freqs = freqs[keep]
    nf = len(freqs)
    nt = int(round(cfg.template_frac * nf))
    perm = rng.permutation(nf)
    template = np.zeros(nf, bool)
    template[perm[:nt]] = True
    phase = np.exp(2j * np.pi * rng.random(nf)) * template
    msg = np.sort(perm[nt:])
    coef_freq = np.repeat(msg, 2)
    coef_imag = np.tile([False, True], len(msg))
    k = len(coef_freq)
    if k < cfg.num_bits:
        raise ValueError(f"ring has {k} message coefficients for {cfg.num_bits} bits")
    order = rng.permutation(k)
    coef_bit = np.empty(k, np.int64)
    coef_bit[order] = np.arange(k) % cfg.num_bits  # each bit on k // num_bits (+1) coefficients
    coef_sign = rng.choice([-1.0, 1.0], size=k)
    return Layout(cfg, freqs, template, phase, coef_freq, coef_imag, coef_bit, coef_sign)


def spectrum(layout: Layout, bits: np.ndarray) -> np.ndarray:
    """Carried bits (L,) 0/1 -> the tile's half-plane coefficients (F,) complex."""
    s = np.asarray(bits, np.float64) * 2 - 1  # (L,) +-1
    coef = np.array(layout.template_phase)  # template frequencies: unit phasor
    vals = s[layout.coef_bit] * layout.coef_sign / np.sqrt(2)  # (K,)
    np.add.at(coef, layout.coef_freq[~layout.coef_imag], vals[~layout.coef_imag])
    np.add.at(coef, layout.coef_freq[layout.coef_imag], 1j * vals[layout.coef_imag])
    return coef


def tile_from_spectrum(layout: Layout, coef: np.ndarray) -> np.ndarray:
    """Half-plane coefficients (F,) -> real tile (T, T) float32 with unit RMS."""
    t = layout.cfg.tile
    full = np.zeros((t, t), np.complex128)  # indexed [v, u]
    u, v = layout.freqs[:, 0], layout.freqs[:, 1]
    full[v % t, u % t] = coef
    full[(-v) % t, (-u) % t] = np.conj(coef)
    tile = np.fft.ifft2(full).real
    return (tile / np.sqrt((tile**2).mean())).astype(np.float32)


def read_bits(layout: Layout, coef: np.ndarray) -> np.ndarray:
    """Aligned half-plane coefficients (F,) -> soft bits (L,), positive = 1."""
    c = coef[layout.coef_freq]
    vals = np.where(layout.coef_imag, c.imag, c.real) * layout.coef_sign  # (K,)
    return np.bincount(layout.coef_bit, weights=vals, minlength=layout.cfg.num_bits)
