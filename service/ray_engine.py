"""`trustframe audit --engine ray`: the same audit on a Ray cluster (extra `trustframe[ray]`).

What runs where: the driver (the `trustframe audit` process) lists the files, skips those
already done, and writes each verdict to the output as it arrives; Ray Data actors decode and
audit (`audit_file`), each loading the models once through the audit's own lazy caches and
keeping them for every file it is given. Without an address a local Ray is started for the run
(`num_cpus` = workers) and stopped after it; with `--ray-address` (or `RAY_ADDRESS`) the run
joins that cluster, whose nodes need the package, the data directory and the files (see the
README, "Scaling out").

Paths go to Ray in chunks (`from_items` of at most `chunk` paths, one file per block, so each
verdict comes back as soon as it is done): inputs stay streamed. Each chunk is one Ray Data
execution with its own actor pool, so a chunk is large (by default 256 files per actor, at
least 1024) to keep model loading and the drain at a chunk's end rare.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Iterator

from trustframe.errors import ConfigError, TrustFrameError
from trustframe.service.verdict import ErrorSection, Verdict
from trustframe.settings import Settings

INSTALL_HINT = "pip install 'trustframe[ray]'"


def require_ray():
    """The `ray` module with Ray Data, or a one-line ConfigError (exit 2) naming the extra."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError(f"--engine ray needs Ray Data, which is not installed: {INSTALL_HINT}") from None
    return ray


class _Auditor:
    """Ray Data callable class: one instance per actor, so the models load once per actor.

    Loads them before the first file (auditing a small generated image), and enforces
    `audit_timeout_s` the only way a stuck decoder can be stopped: a watchdog thread ends the
    actor's process. Ray then starts a fresh actor and tries the file once more, and a file
    whose actor died on every try comes back as an `error` verdict.
    """

    def __init__(self, settings: Settings, detector: bool):
        self.settings, self.detector = settings, detector
        self._deadline: float | None = None
        self._armed = threading.Event()  # set while a file is being audited under a time limit
        self._path = ""
        self._warm_up()
        if settings.audit_timeout_s:
            threading.Thread(target=self._watch, daemon=True, name="trustframe-watchdog").start()

    def _warm_up(self) -> None:
        import numpy as np

        from trustframe import media
        from trustframe.service.audit import audit_file

        with tempfile.TemporaryDirectory(prefix="trustframe-warm-up-") as d:
            png = media.write(np.full((1, 64, 64, 3), 128, np.uint8), os.path.join(d, "warm-up.png"))
            audit_file(png, self.settings, detector=self.detector)

    def _watch(self) -> None:
        while self._armed.wait():
            deadline = self._deadline
            if deadline is None:  # between two files
                time.sleep(0.01)
                continue
            now = time.monotonic()
            if now >= deadline:
                print(f"trustframe: {self._path}: not audited within {self.settings.audit_timeout_s:g} s "
                      "(audit_timeout_s); ending this Ray actor", file=sys.stderr, flush=True)
                os._exit(70)
            time.sleep(min(1.0, deadline - now))  # a later file's deadline is always later

    def __call__(self, batch: dict) -> dict:
        from trustframe.service.audit import audit_file

        verdicts = []
        for p in batch["path"]:
            self._path = str(p)
            if self.settings.audit_timeout_s:
                self._deadline = time.monotonic() + self.settings.audit_timeout_s
                self._armed.set()
            try:
                verdicts.append(audit_file(str(p), self.settings, detector=self.detector).to_json())
            finally:
                self._deadline = None
                self._armed.clear()
        return {"i": batch["i"], "verdict": verdicts}


def _start(ray, address: str | None, workers: int) -> bool:
    """Connect to `address`, or start a local Ray; True when this call started it."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        # a private, on-demand cluster: its token-auth notice is noise here
        logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
        ray.init(address="local", num_cpus=workers, include_dashboard=False, logging_level=logging.WARNING,
                 object_store_memory=256 * 1024**2)
    return True


# Ray Data settings for the run, restored afterwards: no progress bars or stats of its own (the
# CLI draws one), and a file whose actor keeps dying is dropped, then reported, not fatal.
_CONTEXT = {"enable_progress_bars": False, "print_on_execution_start": False,
            "enable_auto_log_stats": False, "max_errored_blocks": -1}
TASK_RETRIES = 1  # a file whose actor died (a crash, a lost node, the time limit) is tried again once


def _map(ds, compute, settings: Settings, detector: bool):
    """`map_batches` through `_Auditor`, one file per call, with bounded retries of a file whose actor
    dies (Ray Data's default retries it forever). The retry bound is passed as a Ray remote argument,
    deprecated since Ray 2.60: a Ray that no longer takes it runs with its own default."""
    kw = {"fn_constructor_kwargs": {"settings": settings, "detector": detector}, "batch_size": 1,
          "num_cpus": 1, "compute": compute}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return ds.map_batches(_Auditor, max_task_retries=TASK_RETRIES, **kw)
    except TypeError:
        return ds.map_batches(_Auditor, **kw)


def audit_ray(items: Iterable[tuple[str, dict | None]], *, settings: Settings, workers: int = 1,
              detector: bool = True, address: str | None = None,
              chunk: int | None = None) -> Iterator[tuple[Verdict, dict | None]]:
    """Verdicts for `items` ((path, source) pairs) from `workers` Ray actors, as they finish (not in
    input order), each paired with its source record. A file whose actor died on every try becomes
    an `error` verdict (code "internal-error"), as with the local engine."""
    ray = require_ray()
    from ray.data import ActorPoolStrategy, DataContext

    started = _start(ray, address, workers)
    ctx = DataContext.get_current()
    saved = {k: getattr(ctx, k) for k in _CONTEXT}
    for k, v in _CONTEXT.items():
        setattr(ctx, k, v)
    data_log = logging.getLogger("ray.data")
    data_level = data_log.level
    data_log.setLevel(logging.ERROR)
    size = chunk or max(1024, 256 * workers)
    items = iter(items)
    try:
        while batch := list(itertools.islice(items, size)):
            ds = ray.data.from_items([{"i": i, "path": p} for i, (p, _) in enumerate(batch)],
                                     override_num_blocks=len(batch))  # one file per block: streamed back
            ds = _map(ds, ActorPoolStrategy(size=min(workers, len(batch)), max_tasks_in_flight_per_actor=1),
                      settings, detector)
            left = set(range(len(batch)))
            try:
                for row in ds.iter_rows():
                    i = int(row["i"])
                    left.discard(i)
                    yield Verdict.model_validate_json(row["verdict"]), batch[i][1]
            except (ray.exceptions.RayError, RuntimeError) as e:  # e.g. the cluster went away
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise TrustFrameError(f"the Ray run failed: {first}") from e
            for i in sorted(left):
                path, src = batch[i]
                message = f"its Ray actor died on each of {TASK_RETRIES + 1} tries" + (
                    f" (a crash, or over audit_timeout_s = {settings.audit_timeout_s:g} s)"
                    if settings.audit_timeout_s else " (a crash)")
                yield Verdict(file=path, label="error", reasons=[f"could not audit: {message}"],
                              error=ErrorSection(code="internal-error", message=message)), src
    finally:
        for k, v in saved.items():
            setattr(ctx, k, v)
        data_log.setLevel(data_level)
        if started:
            ray.shutdown()
