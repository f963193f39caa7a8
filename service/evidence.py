"""The audit of one file on disk: its evidence (the C2PA manifest, the invisible watermark and the
detector's score) read and judged into one `Verdict` (`audit_file`), the watermark lookup that
the audit and `POST /v1/matches/byContent` share (`read_watermark`, `watermark_matches`), and the
other per-file work the HTTP app runs in its audit workers (`file_watermark`, `heatmap_png`).

Never raises for a bad file: unreadable input becomes a Verdict with label "error" and an
`error` section, so one bad file never stops a batch. Never touches the network on a file's
behalf (remote manifest URLs are reported, not fetched). The front ends (`audit` for paths, bytes
and streams, `audit_many` for batches) are in `service/audit.py`; the worker processes run this.
"""

from __future__ import annotations

import hashlib
import logging
import os
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


def read_watermark(frames: media.Frames, s: Settings):
    """The watermark test under the data directory's key (a `watermark.WatermarkResult`), or None
    when there is no key (no watermark can then be read: say nothing rather than "absent"). The
    audit and `POST /v1/matches/byContent` both read it here."""
    from trustframe.provenance.keys import watermark_key
    from trustframe.watermark import detect

    try:
        key = watermark_key(s)
    except TrustFrameError:
        return None
    return detect(frames, key=key)


def file_watermark(path: str | os.PathLike, s: Settings):
    """`read_watermark` of the file at `path`: what `POST /v1/matches/byContent` runs in a worker.
    Raises UnsupportedMedia / CorruptMedia for a file it cannot read."""
    media.probe(path, s)
    return read_watermark(media.read(path, max_frames=s.audit_frames, settings=s), s)


def heatmap_png(path: str | os.PathLike, s: Settings) -> bytes:
    """The detector's heat map of the file at `path`: its highest-scoring frame with the evidence
    per 16x16 patch painted over it, as PNG bytes (what `POST /v1/detector/heatmap` runs in a
    worker). Raises TrustFrameError for media it cannot read or score."""
    import io

    from PIL import Image

    from trustframe.detector.api import load

    frames = media.read(path, max_frames=s.audit_frames, settings=s, quantiser=True)
    r = load(s.detector_preset).score(frames, heatmap=True)
    buf = io.BytesIO()
    Image.fromarray(r.heatmap_image()).save(buf, format="PNG")
    return buf.getvalue()


def watermark_matches(r, repo: ManifestRepository, max_results: int = 1) -> list[str]:
    """Ids of the manifests bound to the payload that watermark result `r` carries (none when it
    carries none). The one lookup behind the audit's recovery and `/v1/matches/byContent`."""
    if r is None or not (r.detected and r.payload):
        return []
    return repo.by_binding(r.alg, r.payload, max_results)


def _watermark_signal(frames: media.Frames, s: Settings):
    """(the watermark test's result, its Verdict section); (None, None) when it cannot be read."""
    r = read_watermark(frames, s)
    if r is None:
        return None, None
    return r, WatermarkSection(detected=r.detected, p_value=r.p_value, payload=r.payload, alg=r.alg)


def _detector_signal(frames: media.Frames, s: Settings) -> tuple[DetectorSection | None, str | None]:
    """(the detector's section, None), or (None, why it could not score these frames)."""
    from trustframe.detector import load

    try:
        r = load(s.detector_preset).score(frames)
    except TrustFrameError as e:
        return None, f"detector: not scored ({e})"
    return DetectorSection(score=r.score, label=r.label, threshold=r.threshold, threshold_fpr=r.threshold_fpr,
                           model=r.model, frames=r.frames, top_frame=r.top_frame, h264_qp=r.h264_qp), None


def recover_manifest(watermark, repo: ManifestRepository, s: Settings) -> ProvenanceResult | None:
    """Look the payload of a watermark result up in the repository and validate the manifest found."""
    ids = watermark_matches(watermark, repo, max_results=1)
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
        frames = media.read(path, max_frames=s.audit_frames, settings=s, info=info, quantiser=detector)
        mark, wm = _watermark_signal(frames, s)
        recovered = None
        if wm is not None and wm.detected and wm.payload and not (prov.present and prov.state != "invalid"):
            recovered = recover_manifest(mark, repository or open_repository(s), s)
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
