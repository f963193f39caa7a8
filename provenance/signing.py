"""Sign media with a C2PA manifest (c2pa-python), writing the output atomically."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trustframe import media
from trustframe.errors import ConfigError, SigningError, UnsupportedMedia
from trustframe.provenance.keys import ensure_keys, signer_alg, signer_files
from trustframe.provenance.manifest import build_manifest, c2pa_context
from trustframe.provenance.repository import ManifestRepository
from trustframe.settings import Settings, load_settings

# MIME types c2pa-python signs that we also read pixels from.
SIGNABLE = {"image/png", "image/jpeg", "image/webp", "image/gif", "image/tiff", "video/mp4",
            "video/quicktime", "video/x-msvideo"}


@dataclass(frozen=True)
class SignResult:
    path: Path
    manifest_id: str  # the active manifest's label, urn:c2pa:...
    manifest_store: bytes  # the signed manifest store (JUMBF), as the repository keeps it
    payload: str | None  # watermark payload (hex) carried in the soft binding, if any
    watermark_verified: bool | None = None  # with a watermark: did it read back from the written file?


def make_signer(settings: Settings, callback: Callable[[bytes], bytes] | None = None):
    """A `c2pa.Signer`: from the configured key file, or from `callback(data) -> signature`.

    A callback signs with a key held elsewhere (HSM, KMS); the chain still comes from the
    configured PEM. `settings.signer_callback` may name one as "module:function".
    """
    import c2pa

    if callback is None and settings.signer_callback:
        callback = load_callback(settings.signer_callback)
    chain_path, key_path = signer_files(settings, need_key=callback is None)
    alg = signer_alg(settings)
    try:
        if callback is not None:
            return c2pa.Signer.from_callback(callback, getattr(c2pa.C2paSigningAlg, alg.upper()),
                                             chain_path.read_text(), settings.tsa_url)
        info = c2pa.C2paSignerInfo(alg.encode(), chain_path.read_bytes(), key_path.read_bytes(),
                                   settings.tsa_url.encode() if settings.tsa_url else None)
        return c2pa.Signer.from_info(info)
    except (c2pa.C2paError, AttributeError, ValueError) as e:
        raise SigningError(f"cannot create a signer from {chain_path.name}: {e}") from e


def load_callback(spec: str) -> Callable[[bytes], bytes]:
    """Import "package.module:function"."""
    mod, _, fn = spec.partition(":")
    try:
        return getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError, ValueError) as e:
        raise ConfigError(f"cannot import signer callback {spec!r}: {e}") from e


def sign_file(src: str | Path, dst: str | Path, *, source_type: str = "trainedAlgorithmicMedia",
              title: str | None = None, ingredient: str | Path | None = None,
              soft_binding: tuple[str, str] | None = None, software_agent: dict | None = None,
              extra_assertions: list[dict] = (), settings: Settings | None = None,
              callback: Callable[[bytes], bytes] | None = None,
              repository: ManifestRepository | None = None) -> SignResult:
    """Sign `src` into `dst` (may be the same path) with a `c2pa.created` manifest.

    `soft_binding` is (alg, payload hex); `ingredient` is a file `src` was derived from.
    With a `repository`, the signed manifest is stored there under its soft binding so that a
    stripped copy can be resolved through the watermark. `dst` appears only when signing
    succeeded; on any error nothing is written.
    """
    import c2pa

    s = settings or load_settings()
    src, dst = Path(src), Path(dst)
    mime = media.sniff(src)
    if mime not in SIGNABLE:
        raise UnsupportedMedia(f"{src.name}: cannot sign {mime}")
    if media.EXTENSIONS.get(dst.suffix.lower(), mime).split("/")[0] != mime.split("/")[0]:
        raise UnsupportedMedia(f"{dst.name}: output extension does not match the input's type {mime}")
    ensure_keys(s)
    manifest = build_manifest(title=title or dst.name, source_type=source_type,
                              software_agent=software_agent, soft_binding=soft_binding,
                              extra_assertions=extra_assertions)
    signer = make_signer(s, callback)
    registered = None
    try:
        with c2pa_context(s) as ctx, c2pa.Builder.from_json(json.dumps(manifest), context=ctx) as b:
            if ingredient is not None:
                ing = Path(ingredient)
                with open(ing, "rb") as f:
                    b.add_ingredient(json.dumps({"title": ing.name, "relationship": "componentOf"}),
                                     media.sniff(ing), f)
            with media.atomic_path(dst) as tmp:
                with open(src, "rb") as fin, open(tmp, "w+b") as fout:
                    store = b.sign(signer, mime, fin, fout)
                manifest_id = _manifest_label(store, mime, s)
                # Register before the file appears under its name: a crash in between leaves a
                # registered manifest without a file (harmless), never a file whose manifest
                # cannot be resolved once stripped.
                if repository is not None:
                    repository.store(manifest_id, store, mime, [soft_binding] if soft_binding else [])
                    registered = manifest_id
    except BaseException as e:
        if registered is not None:  # the rename failed: take the registration back
            repository.delete(registered)
        if isinstance(e, c2pa.C2paError):
            raise SigningError(f"{src.name}: signing failed: {e}") from e
        raise
    finally:
        signer.close()
    return SignResult(dst, manifest_id, store, soft_binding[1] if soft_binding else None)


def _manifest_label(store: bytes, mime: str, s: Settings) -> str:
    """The active manifest id of a freshly signed store."""
    import io

    import c2pa

    with c2pa_context(s) as ctx, c2pa.Reader(mime, io.BytesIO(b""), store, context=ctx) as r:
        return json.loads(r.json())["active_manifest"]
