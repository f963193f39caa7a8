"""The audit's front ends: `audit` (a path, bytes or a stream -> one `Verdict`) and `audit_many`
(many files, in worker processes; FILE, DIR and GLOB arguments are read by `media.expand`).

The audit of one file itself is `service/evidence.py` (`audit_file`, also importable from here); the
worker processes are `service/workers.py`. Never raises for a bad file: unreadable input becomes a
Verdict with label "error".
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from trustframe import media
from trustframe.provenance.repository import ManifestRepository
from trustframe.service.evidence import audit_file
from trustframe.service.verdict import Verdict
from trustframe.settings import Settings, load_settings

__all__ = ["audit", "audit_file", "audit_many"]


def audit(source, *, settings: Settings | None = None, filename: str | None = None,
          repository: ManifestRepository | None = None, detector: bool = True) -> Verdict:
    """Audit a path, bytes, or a binary stream. Spooled copies are removed afterwards."""
    suffix = Path(filename).suffix if filename else ""
    if isinstance(source, str | os.PathLike):
        return audit_file(source, settings, display_name=filename, repository=repository, detector=detector)
    with media.as_path(source, suffix=suffix) as p:
        return audit_file(p, settings, display_name=filename or "<stream>", repository=repository,
                          detector=detector)


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
    paths = (str(p) for p in media.expand(inputs))
    if workers <= 1 and not s.audit_timeout_s:
        for p in paths:
            yield audit_file(p, s, detector=detector)
        return
    from trustframe.service.workers import AuditPool

    with AuditPool(max(1, workers), s, detector) as pool:
        yield from pool.map(paths)
