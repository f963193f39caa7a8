"""The audit: one file in, one `Verdict` out, combining provenance, watermark and detector.

Never raises for a bad file: unreadable input becomes a Verdict with label "error" and an
`error` section, so one bad file never stops a batch. Never touches the network on a file's
behalf (remote manifest URLs are reported, not fetched).
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from trustframe import media
from trustframe.errors import TrustFrameError
from trustframe.provenance.reading import ProvenanceResult, read_manifest_store, read_provenance
from trustframe.provenance.repository import ManifestRepository, open_repository
from trustframe.service.verdict import (
    DetectorSection,
    ErrorSection,
    ProvenanceSection,
    Verdict,
    WatermarkSection,
    decide_label,
)
from trustframe.settings import Settings, load_settings

log = logging.getLogger("trustframe.audit")

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


def _detector_signal(frames: media.Frames, s: Settings) -> tuple[DetectorSection | None, str | None]:
    """(the detector's section, None), or (None, why it could not score these frames)."""
    from trustframe.detector import load

    try:
        r = load(s.detector_preset).score(frames)
    except TrustFrameError as e:
        return None, f"detector: not scored ({e})"
    return DetectorSection(score=r.score, label=r.label, threshold=r.threshold, threshold_fpr=r.threshold_fpr,
                           model=r.model, frames=r.frames, top_frame=r.top_frame), None


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
               display_name: str | None = None, repository: ManifestRepository | None = None,
               detector: bool = True) -> Verdict:
    """Audit one file on disk. `detector=False` skips the detector (its section stays null)."""
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
        recovered = None
        if wm is not None and wm.detected and wm.payload and not (prov.present and prov.state != "invalid"):
            recovered = recover_manifest(wm.payload, wm.alg, repository or open_repository(s), s)
            if recovered is not None and not prov.present:
                prov, recovered = recovered, None  # the file carries none: the recovered one speaks for it
        det, det_note = _detector_signal(frames, s) if detector else (None, None)
    except TrustFrameError as e:
        message = str(e).replace(path.name, Path(name).name)  # a spooled upload: its given name
        return Verdict(file=name, media_type=mime, label="error", reasons=[f"could not audit: {message}"],
                       error=ErrorSection(code=e.code, message=message))
    except Exception as e:  # a bug or a decoder's surprise: still one verdict, never a stopped batch
        log.exception("audit of %s failed unexpectedly", name)
        message = f"unexpected {type(e).__name__} while reading the file"
        return Verdict(file=name, media_type=mime, label="error", reasons=[f"could not audit: {message}"],
                       error=ErrorSection(code="internal-error", message=message))
    psec = _provenance_section(prov)
    rsec = _provenance_section(recovered) if recovered is not None else None
    label, reasons = decide_label(psec, wm, det, recovered=rsec)
    if det_note:
        reasons.append(det_note)
    return Verdict(file=name, media_type=mime, sha256=digest, label=label, reasons=reasons,
                   provenance=psec, recovered_provenance=rsec, watermark=wm, detector=det)


def audit(source, *, settings: Settings | None = None, filename: str | None = None,
          repository: ManifestRepository | None = None, detector: bool = True) -> Verdict:
    """Audit a path, bytes, or a binary stream. Spooled copies are removed afterwards."""
    suffix = Path(filename).suffix if filename else ""
    if isinstance(source, str | os.PathLike):
        return audit_file(source, settings, display_name=filename, repository=repository, detector=detector)
    with media.as_path(source, suffix=suffix) as p:
        return audit_file(p, settings, display_name=filename or "<stream>", repository=repository,
                          detector=detector)


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


def audit_many(inputs: Iterable[str | os.PathLike], *, settings: Settings | None = None,
               workers: int = 1, detector: bool = True) -> Iterator[Verdict]:
    """Audit every file that `inputs` name, yielding Verdicts in input order as they finish.

    Files run in `workers` local processes, each loading its models once. Inputs are streamed:
    at most a few per worker are read ahead, so a folder of a million files is never a list in
    memory. A file still running after `settings.audit_timeout_s` becomes an `error` verdict
    (code "timeout") and its worker is replaced; a worker that dies becomes an `error` verdict
    for its file. With `audit_timeout_s = 0` and one worker, files run in this process. The
    processes: `trustframe.service.workers.AuditPool`.
    """
    s = settings or load_settings()
    paths = (str(p) for p in expand(inputs))
    if workers <= 1 and not s.audit_timeout_s:
        for p in paths:
            yield audit_file(p, s, detector=detector)
        return
    from trustframe.service.workers import AuditPool

    with AuditPool(max(1, workers), s, detector) as pool:
        yield from pool.map(paths)
