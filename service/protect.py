"""Watermark + sign + register: what `trustframe sign --watermark` and the generator's write step do.

The payload is allocated from the manifest repository, embedded as the invisible watermark,
carried in the manifest's `c2pa.soft-binding` assertion, and the signed manifest is stored
under it — so a copy whose manifest was stripped is resolved through its watermark.
"""

from __future__ import annotations

from pathlib import Path

from trustframe import media
from trustframe.provenance.keys import ensure_keys, watermark_key
from trustframe.provenance.repository import ManifestRepository, open_repository
from trustframe.provenance.signing import SignResult, sign_file
from trustframe.settings import Settings, load_settings


def protect_frames(frames: media.Frames, dst: str | Path, *, source_type: str,
                   payload: str | None = None, title: str | None = None,
                   ingredient: str | Path | None = None, software_agent: dict | None = None,
                   extra_assertions: list[dict] = (), settings: Settings | None = None,
                   repository: ManifestRepository | None = None) -> SignResult:
    """Embed the watermark in `frames`, write them to `dst`, sign, and register the manifest."""
    from trustframe.watermark import ALG, embed

    s = settings or load_settings()
    ensure_keys(s)
    repo = repository or open_repository(s)
    payload = payload or repo.allocate_payload(ALG)
    marked = embed(frames, payload=payload, key=watermark_key(s)).frames
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with media.scratch_path(suffix=dst.suffix, dir=dst.parent) as unsigned:
        media.write(marked, unsigned)
        return sign_file(unsigned, dst, source_type=source_type, title=title or dst.name,
                         ingredient=ingredient, soft_binding=(ALG, payload),
                         software_agent=software_agent, extra_assertions=extra_assertions,
                         settings=s, repository=repo)


def protect_file(src: str | Path, dst: str | Path, *, source_type: str, payload: str | None = None,
                 settings: Settings | None = None, **kwargs) -> SignResult:
    """`protect_frames` on every frame of `src`, citing `src` as the ingredient."""
    s = settings or load_settings()
    frames = media.read(src, settings=s)
    return protect_frames(frames, dst, source_type=source_type, payload=payload,
                          ingredient=src, settings=s, **kwargs)
