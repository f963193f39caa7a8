"""`embed` and `detect` on the core `Frames` type."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from trustframe.errors import ConfigError, UnsupportedMedia
from trustframe.media import Frames
from trustframe.watermark import payload as codec
from trustframe.watermark import stats
from trustframe.watermark.embedder import embed_frames
from trustframe.watermark.extractor import soft_bits
from trustframe.watermark.layout import spectrum, tile_from_spectrum
from trustframe.watermark.presets import ALG, layout_for, load_preset

MIN_SIDE = 16


@dataclass(frozen=True)
class EmbedResult:
    frames: Frames
    payload: str  # hex, 12 digits (48 bits)


@dataclass(frozen=True)
class WatermarkResult:
    detected: bool
    p_value: float  # exact one-sided signed-rank test on the keyed sync bits (`stats`)
    payload: str | None  # hex; only when detected and the BCH decoding succeeded
    ecc_ok: bool
    corrected_bits: int | None  # flips the error correction made (data + parity)
    bit_accuracy: float | None  # carried bits agreeing with the re-encoded payload (if ecc_ok)
    sync_matches: int  # sync bits whose sign agrees with the keyed sequence
    sync_bits: int
    fpr: float
    frames_used: int
    alignment: dict  # scale, mirrored, shift, score of the template search
    alg: str = ALG
    preset: str = "tfwm-base"

    def as_dict(self) -> dict:
        return asdict(self)


def _key(key: bytes | None) -> bytes:
    if key is None:
        from trustframe.provenance.keys import watermark_key
        from trustframe.settings import load_settings

        key = watermark_key(load_settings())
    if not isinstance(key, bytes | bytearray) or len(key) < 16:
        raise ConfigError("watermark key must be at least 16 bytes")
    return bytes(key)


def _check(frames) -> Frames:
    if isinstance(frames, np.ndarray):
        try:
            frames = Frames(frames)
        except ValueError as e:
            raise UnsupportedMedia(str(e)) from e
    if not isinstance(frames, Frames):
        raise UnsupportedMedia(f"expected Frames, got {type(frames).__name__}")
    d = frames.data
    if d.dtype != np.uint8 or d.ndim != 4 or d.shape[-1] != 3:
        raise UnsupportedMedia(f"frames must be uint8 (T, H, W, 3), got {d.dtype} {d.shape}")
    if len(d) == 0:
        raise UnsupportedMedia("no frames to watermark or check (empty clip)")
    if min(d.shape[1:3]) < MIN_SIDE:
        raise UnsupportedMedia(f"frames of {d.shape[2]}x{d.shape[1]} px are too small "
                               f"(at least {MIN_SIDE} px a side)")
    return frames


def embed(frames: Frames, payload: str | None = None, *, key: bytes | None = None,
          preset: str = "tfwm-base") -> EmbedResult:
    """Watermark every frame with `payload` (12 hex digits; random if None)."""
    frames = _check(frames)
    p = load_preset(preset)
    payload = (payload or codec.random_payload()).strip().lower()
    k = _key(key)
    layout = layout_for(k, p)
    bits = codec.encode(payload, k, p.layout.num_bits)
    tile = tile_from_spectrum(layout, spectrum(layout, bits))
    return EmbedResult(frames.replace(embed_frames(frames.data, tile, p.embedder, p.mask)), payload)


def detect(frames: Frames, *, key: bytes | None = None, fpr: float = 1e-6,
           preset: str = "tfwm-base") -> WatermarkResult:
    """Is our watermark present (p-value <= fpr), and which payload does it carry?"""
    frames = _check(frames)
    if not 0 < fpr < 1:
        raise UnsupportedMedia(f"fpr must be in (0, 1), got {fpr}")
    p = load_preset(preset)
    k = _key(key)
    layout = layout_for(k, p)
    soft, a, used = soft_bits(frames.data, layout, p.extractor, p.reveal)
    dec = codec.decode(soft, k)
    pv = stats.p_value(dec.sync_agreement)
    detected = pv <= fpr
    ok = dec.ecc_ok and detected
    return WatermarkResult(
        detected=detected, p_value=pv, payload=dec.payload if ok else None, ecc_ok=ok,
        corrected_bits=dec.corrected if ok else None,
        bit_accuracy=round(dec.bit_matches / len(soft), 4) if ok else None,
        sync_matches=dec.sync_matches, sync_bits=dec.sync_total,
        fpr=fpr, frames_used=used,
        alignment={"scale": a.scale, "mirrored": a.mirrored,
                   "shift": [round(float(s), 2) for s in a.shift], "score": round(a.score, 2)},
        preset=preset)
