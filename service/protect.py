"""Watermark, write, sign, register: what `trustframe sign --watermark` does to a file.

The payload is allocated from the manifest repository, embedded as the invisible watermark,
carried in the manifest's `c2pa.soft-binding` assertion, and the signed manifest is stored
under it — so a copy whose manifest was stripped is resolved through its watermark. The steps are
the ones the generation pipeline ends with (`generator.pipeline`: `Watermarker`, `Signer`,
`write_and_sign`), so a protected upload and a generated clip go out the same way.
"""

from __future__ import annotations

from pathlib import Path

from trustframe import media
from trustframe.generator.pipeline import Signer, Watermarker, write_and_sign
from trustframe.provenance.repository import ManifestRepository
from trustframe.provenance.signing import SignResult
from trustframe.settings import Settings, load_settings


def protect_frames(frames: media.Frames, dst: str | Path, *, source_type: str,
                   payload: str | None = None, settings: Settings | None = None,
                   repository: ManifestRepository | None = None, **sign_kwargs) -> SignResult:
    """Allocate a payload, embed it, write `dst`, sign and register."""
    s = settings or load_settings()
    watermarker, signer = Watermarker.from_settings(s), Signer.from_settings(s, repository)
    payload = payload or signer.allocate_payload()
    return write_and_sign(watermarker.embed(frames, payload), dst, payload, watermarker=watermarker,
                          signer=signer, source_type=source_type, **sign_kwargs)


def protect_file(src: str | Path, dst: str | Path, *, source_type: str, payload: str | None = None,
                 settings: Settings | None = None, **sign_kwargs) -> SignResult:
    """`protect_frames` on every frame of `src`, citing `src` as the ingredient."""
    s = settings or load_settings()
    frames = media.read(src, settings=s)
    return protect_frames(frames, dst, source_type=source_type, payload=payload, ingredient=src,
                          settings=s, **sign_kwargs)
