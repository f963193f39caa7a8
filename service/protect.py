"""Watermark, write, sign, register: what `trustframe sign --watermark` and the generator do.

The payload is allocated from the manifest repository, embedded as the invisible watermark,
carried in the manifest's `c2pa.soft-binding` assertion, and the signed manifest is stored
under it — so a copy whose manifest was stripped is resolved through its watermark.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from trustframe import media
from trustframe.provenance.keys import ensure_keys, watermark_key
from trustframe.provenance.repository import ManifestRepository, open_repository
from trustframe.provenance.signing import SignResult, sign_file
from trustframe.settings import Settings, load_settings


def embed_watermark(frames: media.Frames, payload: str, settings: Settings) -> media.Frames:
    """`frames` carrying `payload` (hex) under this data directory's watermark key."""
    from trustframe.watermark import embed

    ensure_keys(settings)
    return embed(frames, payload=payload, key=watermark_key(settings)).frames


def write_and_sign(marked: media.Frames, dst: str | Path, payload: str, *, source_type: str,
                   settings: Settings, repository: ManifestRepository, title: str | None = None,
                   ingredient: str | Path | None = None, software_agent: dict | None = None,
                   extra_assertions: list[dict] = ()) -> SignResult:
    """Encode watermarked frames, sign them with the payload as soft binding, register the manifest.

    The payload is bound only if the watermark reads back from the encoded file
    (`watermark_reads_back`); otherwise the file is signed without a soft binding and the result
    says `watermark_verified=False`. Nothing appears under `dst` unless every step succeeded; the
    unsigned file is always removed.
    """
    from trustframe.watermark import ALG

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with media.scratch_path(suffix=dst.suffix, dir=dst.parent) as unsigned:
        media.write(marked, unsigned)
        verified = watermark_reads_back(unsigned, payload, settings)
        r = sign_file(unsigned, dst, source_type=source_type, title=title or dst.name,
                      ingredient=ingredient, soft_binding=(ALG, payload) if verified else None,
                      software_agent=software_agent, extra_assertions=extra_assertions,
                      settings=settings, repository=repository)
    return dataclasses.replace(r, watermark_verified=verified)


def watermark_reads_back(path: Path, payload: str, settings: Settings) -> bool:
    """Whether the written file, read as an auditor reads it, yields the watermark and `payload`.

    The manifest binds a payload only when this holds: a soft binding that cannot be read back
    would promise a recovery that can never happen.
    """
    from trustframe.watermark import detect

    r = detect(media.read(path, max_frames=settings.audit_frames, settings=settings),
               key=watermark_key(settings))
    return bool(r.detected and r.payload == payload)


def protect_frames(frames: media.Frames, dst: str | Path, *, source_type: str,
                   payload: str | None = None, settings: Settings | None = None,
                   repository: ManifestRepository | None = None, **sign_kwargs) -> SignResult:
    """Allocate a payload, embed it, write `dst`, sign and register."""
    from trustframe.watermark import ALG

    s = settings or load_settings()
    repo = repository or open_repository(s)
    payload = payload or repo.allocate_payload(ALG)
    marked = embed_watermark(frames, payload, s)
    return write_and_sign(marked, dst, payload, source_type=source_type, settings=s, repository=repo,
                          **sign_kwargs)


def protect_file(src: str | Path, dst: str | Path, *, source_type: str, payload: str | None = None,
                 settings: Settings | None = None, **sign_kwargs) -> SignResult:
    """`protect_frames` on every frame of `src`, citing `src` as the ingredient."""
    s = settings or load_settings()
    frames = media.read(src, settings=s)
    return protect_frames(frames, dst, source_type=source_type, payload=payload, ingredient=src,
                          settings=s, **sign_kwargs)
