"""The audit: one file in, one `Verdict` out, combining provenance, watermark and detector.

Never raises for a bad file: unreadable input becomes a Verdict with label "error" and an
`error` section, so one bad file never stops a batch. Never touches the network on a file's
behalf (remote manifest URLs are reported, not fetched).
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from trustframe import media
from trustframe.errors import TrustFrameError
from trustframe.provenance.reading import ProvenanceResult, read_manifest_store, read_provenance
from trustframe.provenance.repository import ManifestRepository, open_repository
from trustframe.service.verdict import (
    ErrorSection,
    ProvenanceSection,
    Verdict,
    WatermarkSection,
    decide_label,
)
from trustframe.settings import Settings, load_settings

# Hash bindings cannot match a re-encoded copy: a manifest recovered through a soft binding is
# judged on its signature and trust, not on these.
HARD_BINDING_FAILURES = ("assertion.dataHash.mismatch", "assertion.bmffHash.mismatch",
                         "assertion.boxesHash.mismatch", "assertion.collectionHash.mismatch")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _provenance_section(p: ProvenanceResult) -> ProvenanceSection:
    return ProvenanceSection(**{k: v for k, v in p.as_dict().items()
                                if k in ProvenanceSection.model_fields})


def _watermark_signal(frames: media.Frames, s: Settings) -> WatermarkSection | None:
    """The watermark test, or None while no watermark preset ships."""
    from trustframe.weights import presets

    if not presets("watermark"):
        return None
    from trustframe.provenance.keys import watermark_key
    from trustframe.watermark import detect

    try:
        key = watermark_key(s)
    except TrustFrameError:
        return None  # no key, no watermark can be read: say nothing rather than "absent"
    r = detect(frames, key=key)
    return WatermarkSection(detected=r.detected, p_value=r.p_value, payload=r.payload, alg=r.alg)


def recover_manifest(payload: str, alg: str, repo: ManifestRepository,
                     s: Settings) -> ProvenanceResult | None:
    """Look a watermark payload up in the repository and validate the manifest found."""
    ids = repo.by_binding(alg, payload, max_results=1)
    stored = repo.get(ids[0]) if ids else None
    if stored is None:
        return None
    p = read_manifest_store(stored.store, stored.mime, settings=s)
    p.failures = [f for f in p.failures if f not in HARD_BINDING_FAILURES]
    if p.state == "invalid" and not p.failures and not p.error:
        p.state = "trusted" if p.signer_trusted else "valid"
    p.recovered = True
    return p


def audit_file(path: str | os.PathLike, settings: Settings | None = None, *,
               display_name: str | None = None, repository: ManifestRepository | None = None
               ) -> Verdict:
    """Audit one file on disk."""
    s = settings or load_settings()
    path = Path(path)
    name = display_name or str(path)
    mime = None
    try:
        info = media.probe(path, s)
        mime = info.media_type
        digest = _sha256(path)
        prov = read_provenance(path, s)
        frames = media.read(path, max_frames=s.audit_frames, settings=s, info=info)
        wm = _watermark_signal(frames, s)
        if wm is not None and wm.detected and wm.payload and not (prov.present and prov.state != "invalid"):
            repo = repository or open_repository(s)
            recovered = recover_manifest(wm.payload, wm.alg, repo, s)
            if recovered is not None:
                prov = recovered
        det = None  # the detector component has not landed yet
    except TrustFrameError as e:
        message = str(e).replace(path.name, Path(name).name)  # a spooled upload: its given name
        return Verdict(file=name, media_type=mime, label="error", reasons=[f"could not audit: {message}"],
                       error=ErrorSection(code=e.code, message=message))
    psec = _provenance_section(prov)
    label, reasons = decide_label(psec, wm, det)
    return Verdict(file=name, media_type=mime, sha256=digest, label=label, reasons=reasons,
                   provenance=psec, watermark=wm, detector=det)


def audit(source, *, settings: Settings | None = None, filename: str | None = None,
          repository: ManifestRepository | None = None) -> Verdict:
    """Audit a path, bytes, or a binary stream. Spooled copies are removed afterwards."""
    suffix = Path(filename).suffix if filename else ""
    if isinstance(source, str | os.PathLike):
        return audit_file(source, settings, display_name=filename, repository=repository)
    with media.as_path(source, suffix=suffix) as p:
        return audit_file(p, settings, display_name=filename or "<stream>", repository=repository)


def expand(inputs: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Files named by FILE, DIR (recursive, media extensions only) or GLOB arguments, in order.

    A name that matches nothing is yielded as is, so that its audit reports the error.
    """
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for f in sorted(files):
                    if not f.startswith(".") and Path(f).suffix.lower() in media.EXTENSIONS:
                        yield Path(root) / f
        elif p.exists():
            yield p
        else:
            matches = sorted(glob.glob(str(item), recursive=True))
            if matches:
                yield from (Path(m) for m in matches if Path(m).is_file())
            else:
                yield p


def _audit_path(args: tuple[str, Settings]) -> Verdict:
    path, s = args
    return audit_file(path, s)


def audit_many(inputs: Iterable[str | os.PathLike], *, settings: Settings | None = None,
               workers: int = 1) -> Iterator[Verdict]:
    """Audit every file that `inputs` name, yielding Verdicts in input order as they finish.

    `workers` > 1 audits in that many local processes.
    """
    s = settings or load_settings()
    paths = (str(p) for p in expand(inputs))
    if workers <= 1:
        for p in paths:
            yield audit_file(p, s)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_audit_path, ((p, s) for p in paths), chunksize=1)
