"""Worker processes that audit files: one file at a time per process, with a per-file time limit.

Two front ends share the machinery:

- `AuditPool.map(paths)`, behind `audit_many`: a batch, verdicts yielded in input order.
- `WorkerPool.submit(path, display_name)`, behind the HTTP app: one file in, an awaitable
  `Verdict` out. Admission is bounded: at most `workers` audits run and `queue` wait; past that
  `submit` raises `PoolBusy` at once (the app answers 503) instead of queueing without limit.
  `WorkerPool.call(fn, path)` runs the app's other per-file work (the detector's heat map, the
  watermark behind `/matches/byContent`) in the same workers, under the same bound and time limit.

Workers are forked by a forkserver, a clean single-threaded process that has imported the audit
code and torch once, so a new worker is a cheap fork rather than a fresh interpreter. A file still
running after `settings.audit_timeout_s` becomes an `error` verdict with code "timeout" and its
worker is killed and replaced; a worker that dies becomes an `error` verdict for its file.
Workers ignore SIGINT and SIGTERM (a Ctrl-C or a service manager signals the whole process group):
the parent stops them, after letting the audits in flight finish, and they exit by themselves
when the parent goes away.

One module of about 450 lines, on purpose: both pools are thin over the same worker (its start,
warm-up, time limit, replacement and stop); split by front end, each half would reach into the
other's internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing as mp
import multiprocessing.util
import pickle
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import wait
from pathlib import Path
from queue import Empty, SimpleQueue

from trustframe.service.evidence import audit_file
from trustframe.service.verdict import ErrorSection, Verdict
from trustframe.settings import Settings

# Imported once in the forkserver; every worker starts with them loaded (and shares their pages).
FORKSERVER_PRELOAD = ["trustframe.service.workers", "torch"]
READY = "ready"
WARM_UP_IMAGE = Path(__file__).with_name("warm-up.png")  # 64x64 mid grey
START_TIMEOUT_S = 120.0  # a new worker has this long to start (and warm up) before it counts as dead
STOP_GRACE_S = 2.0  # a stopped worker has this long to leave by itself before it is killed

# What a worker calls per file: audit_file's signature (path, settings, *, display_name, detector).
Target = Callable[..., Verdict]
# What `WorkerPool.call` runs in a worker: fn(path, settings) -> a picklable result. A module-level
# function: it is sent to the worker by reference.
Call = Callable[[str, Settings], object]


def _context():
    # multiprocessing makes a private temporary folder (for the forkserver's socket) on first use,
    # under whatever `tempfile.tempdir` is then: make it now, in the process that owns the pool and
    # removes it at exit. (Not at import: the forkserver imports this module too, and its own folder
    # would outlive it when the server stops.)
    mp.util.get_temp_dir()
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
    return ctx


def _warm_up(settings: Settings, detector: bool) -> None:
    """Audit a small image that ships with the package once, so that libraries and models are loaded
    before the first real file arrives (and before its time limit starts). Nothing is written: a
    worker stopped while it warms up leaves nothing behind."""
    audit_file(WARM_UP_IMAGE, settings, detector=detector)


def _worker_loop(conn, settings: Settings, detector: bool, target: Target | None = None,
                 warm: bool = False, threads: int | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if threads:
        import torch

        torch.set_num_threads(threads)
    if warm:
        with contextlib.suppress(Exception):  # a file's audit reports whatever fails here
            _warm_up(settings, detector)
    run = target or audit_file
    try:
        conn.send(READY)
        while (job := conn.recv()) is not None:
            i, path, name, fn = job
            if fn is None:
                conn.send((i, run(path, settings, display_name=name, detector=detector).to_dict()))
            else:
                conn.send((i, _outcome(fn, path, settings)))
    except (EOFError, OSError):  # the parent went away
        pass


def _outcome(fn: Call, path: str, settings: Settings) -> tuple[str, object]:
    """("ok", what fn returned) or ("error", the exception it raised; one that cannot be pickled
    is sent as a RuntimeError with its type and message)."""
    try:
        return "ok", fn(path, settings)
    except Exception as e:
        try:
            pickle.dumps(e)
        except Exception:
            e = RuntimeError(f"{type(e).__name__}: {e}")
        return "error", e


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, ctx, settings: Settings, detector: bool, target: Target | None = None,
                 warm: bool = False, threads: int | None = None):
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_loop, args=(child, settings, detector, target, warm, threads),
                                daemon=True, name="trustframe-audit-worker")
        self.proc.start()
        child.close()
        self.conn = parent
        self.ready = False
        self.job: tuple[int, str, str | None, None] | None = None  # AuditPool.map's bookkeeping
        self.since = 0.0

    def wait_ready(self, timeout: float | None) -> bool:
        """Whether the worker said it is ready within `timeout` seconds (consumes that message)."""
        if not self.ready:
            try:
                self.ready = bool(self.conn.poll(timeout)) and self.conn.recv() == READY
            except (EOFError, OSError):
                self.ready = False
        return self.ready

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """Ask the worker to leave after its current file; kill it after `grace` seconds."""
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.proc.join(grace)
        self.kill()

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()
        self.conn.close()


def _error_verdict(path: str, code: str, message: str) -> Verdict:
    return Verdict(file=path, label="error", reasons=[f"could not audit: {message}"],
                   error=ErrorSection(code=code, message=message))


def _timeout_verdict(path: str, limit: float) -> Verdict:
    return _error_verdict(path, "timeout", f"not audited within {limit:g} s (audit_timeout_s)")


# ---------------------------------------------------------------------------------------------
# A batch: audit_many


class AuditPool:
    """Worker processes that audit a stream of files, one file at a time each, with a per-file
    time limit; `map` yields verdicts in input order."""

    def __init__(self, workers: int, settings: Settings, detector: bool = True):
        self.ctx = _context()
        self.n, self.s, self.detector = workers, settings, detector
        self.slots: list[_Worker] = []

    def _start(self) -> _Worker:
        w = _Worker(self.ctx, self.s, self.detector)
        if not w.wait_ready(START_TIMEOUT_S):
            w.kill()  # its first job fails as "its worker process died", and it is replaced
        return w

    def __enter__(self) -> AuditPool:
        self.slots = [self._start() for _ in range(self.n)]
        return self

    def __exit__(self, *exc) -> None:
        for w in self.slots:
            with contextlib.suppress(OSError, ValueError):
                w.conn.send(None)
        for w in self.slots:
            w.stop()

    def _replace(self, k: int) -> None:
        self.slots[k].kill()
        self.slots[k] = self._start()

    def map(self, paths: Iterable[str]) -> Iterator[Verdict]:
        limit = self.s.audit_timeout_s or None
        paths = iter(paths)
        done: dict[int, Verdict] = {}
        next_out = next_in = 0
        exhausted = False
        while True:
            for k, w in enumerate(self.slots):  # feed idle workers, reading ahead a bounded amount
                if w.job is None and not exhausted and len(done) < 8 * self.n:
                    p = next(paths, None)
                    if p is None:
                        exhausted = True
                        break
                    w.job, w.since = (next_in, p, None, None), time.monotonic()
                    next_in += 1
                    try:
                        w.conn.send(w.job)
                    except (OSError, ValueError):
                        done[w.job[0]] = _error_verdict(p, "internal-error", "its worker process died")
                        self._replace(k)
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1
            busy = [k for k, w in enumerate(self.slots) if w.job is not None]
            if not busy:
                if exhausted:
                    return
                continue
            now = time.monotonic()
            first_due = min(self.slots[k].since for k in busy) + (limit or 0)
            wait_s = None if limit is None else max(0.0, first_due - now)
            ready = wait([self.slots[k].conn for k in busy], timeout=wait_s)
            for k in busy:
                w = self.slots[k]
                i, path, _, _ = w.job
                if w.conn in ready:
                    try:
                        j, d = w.conn.recv()
                        done[j] = Verdict.model_validate(d)
                        w.job = None
                        continue
                    except (EOFError, OSError):
                        done[i] = _error_verdict(path, "internal-error", "its worker process died")
                elif limit is not None and time.monotonic() - w.since >= limit:
                    done[i] = _timeout_verdict(path, limit)
                else:
                    continue
                self._replace(k)


# ---------------------------------------------------------------------------------------------
# A service: the HTTP app


class PoolBusy(Exception):
    """Every worker is busy and the queue is full (or the pool is shutting down)."""

    def __init__(self, retry_after: int, message: str = "all audit workers are busy and the queue is full"):
        super().__init__(message)
        self.retry_after = retry_after


class CallFailed(Exception):
    """A `WorkerPool.call` that did not finish: `code` is "timeout" (over `audit_timeout_s`; its
    worker was replaced) or "internal-error" (its worker died or the pool is shutting down)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _stop_workers(live: set[_Worker]) -> None:
    for w in list(live):
        w.stop(grace=0.5)
    live.clear()


class WorkerPool:
    """`workers` audit processes behind a bounded queue, for an asyncio server.

    `submit(path, display_name)` returns an awaitable Verdict, or raises `PoolBusy` at once when
    `workers + queue` audits are already running or waiting. Processes start on `start()` or on
    first use, warm up (load models) before they take a file, and are replaced after a timeout or
    a crash. `close()` lets queued and running audits finish, then stops the processes. Not tied
    to an event loop: each `submit` wraps a thread-pool future for the caller's loop.

    `target` replaces `audit_file` as the function a worker calls per file (it must be
    importable by name: it is sent to the worker by reference); `threads` sets torch's threads per
    worker (default: the CPU count shared among the workers).
    """

    def __init__(self, workers: int, settings: Settings, *, queue: int = 0, detector: bool = True,
                 target: Target | None = None, warm: bool = True, threads: int | None = None):
        import os

        if workers < 1 or queue < 0:
            raise ValueError("a pool needs workers >= 1 and queue >= 0")
        self.workers, self.queue = workers, queue
        self.capacity = workers + queue
        self.s = settings
        self._spawn_args = (settings, detector, target, warm,
                            threads or max(1, (os.cpu_count() or 1) // workers))
        self._ctx = _context()
        self._lock = threading.Lock()
        self._admitted = 0  # running or waiting
        self._running = 0
        self._closed = False
        self._avg_s: float | None = None  # moving average of an audit's time in a worker
        self._executor: ThreadPoolExecutor | None = None
        # Workers not auditing right now; None marks one not started yet. One per executor thread.
        self._idle: SimpleQueue[_Worker | None] = SimpleQueue()
        for _ in range(workers):
            self._idle.put(None)
        self._live: set[_Worker] = set()
        self._finalizer = weakref.finalize(self, _stop_workers, self._live)  # an app dropped unclosed

    # -- state, for metrics and admission --

    @property
    def running(self) -> int:
        return self._running

    @property
    def queued(self) -> int:
        return max(0, self._admitted - self._running)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def saturated(self) -> bool:
        return self._closed or self._admitted >= self.capacity

    def retry_after(self) -> int:
        """Seconds a shed client should wait: about the time to work through a full queue."""
        per_file = self._avg_s or 1.0
        return max(1, min(60, math.ceil(per_file * self.capacity / self.workers)))

    def pids(self) -> list[int]:
        return [w.proc.pid for w in list(self._live) if w.proc.pid is not None]

    # -- life cycle --

    def _spawn(self, old: _Worker | None = None) -> _Worker | None:
        if old is not None:
            old.kill()
            self._live.discard(old)
        if self._closed:
            return None
        w = _Worker(self._ctx, *self._spawn_args)
        self._live.add(w)
        return w

    def start(self) -> None:
        """Start every worker now (they warm up in the background) rather than on first use; a
        closed pool opens again (an app whose lifespan runs twice, as test clients do)."""
        with self._lock:
            if self._closed:
                self._closed = False
                self._finalizer = weakref.finalize(self, _stop_workers, self._live)
        started = []
        while len(started) < self.workers:
            try:
                w = self._idle.get_nowait()
            except Empty:  # the rest are auditing, so they run already
                break
            started.append(w if w is not None and w.proc.is_alive() else self._spawn(w))
        for w in started:
            self._idle.put(w)

    def close(self) -> None:
        """Refuse new files, let queued and running ones finish, then stop the workers."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        self._finalizer()

    # -- audits --

    def submit(self, path, display_name: str | None = None) -> asyncio.Future[Verdict]:
        """Audit `path` in a worker -> awaitable Verdict (named `display_name`); `PoolBusy` at once
        when full. Must be called from a running event loop."""
        return self._admit(str(path), display_name, None)

    def call(self, fn: Call, path) -> asyncio.Future:
        """`fn(path, settings)` in a worker -> awaitable result; what fn raises is raised here,
        `CallFailed` when it runs over the time limit or its worker dies; `PoolBusy` at once when
        full. Must be called from a running event loop."""
        return self._admit(str(path), None, fn)

    def _admit(self, path: str, name: str | None, fn: Call | None) -> asyncio.Future:
        with self._lock:
            if self._closed:
                raise PoolBusy(self.retry_after(), "the server is shutting down")
            if self._admitted >= self.capacity:
                raise PoolBusy(self.retry_after())
            self._admitted += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="trustframe-audit")
            try:
                fut = self._executor.submit(self._run, path, name, fn)
            except BaseException:
                self._admitted -= 1
                raise
        fut.add_done_callback(self._release)
        return asyncio.wrap_future(fut)

    def _release(self, _: Future) -> None:
        with self._lock:
            self._admitted -= 1

    def _run(self, path: str, name: str | None, fn: Call | None):
        w = self._idle.get()  # never waits long: there are as many workers as executor threads
        with self._lock:
            self._running += 1
        try:
            w, (kind, value), seconds = self._job_in(w, path, name, fn)
        finally:
            with self._lock:
                self._running -= 1
            self._idle.put(w)
        if seconds is not None:
            with self._lock:
                self._avg_s = seconds if self._avg_s is None else 0.8 * self._avg_s + 0.2 * seconds
        limit = self.s.audit_timeout_s
        if fn is None:  # an audit: every outcome is a Verdict
            shown = name or path
            if kind == "done":
                return Verdict.model_validate(value)
            if kind == "timeout":
                return _timeout_verdict(shown, limit)
            return _error_verdict(shown, "internal-error", value)
        if kind == "done":
            status, result = value
            if status == "error":
                raise result
            return result
        if kind == "timeout":
            raise CallFailed("timeout", f"not finished within {limit:g} s (audit_timeout_s)")
        raise CallFailed("internal-error", value)

    def _job_in(self, w: _Worker | None, path: str, name: str | None, fn: Call | None
                ) -> tuple[_Worker | None, tuple[str, object], float | None]:
        """Run one job in worker `w` (started or replaced as needed) -> (the worker to keep,
        (kind, value), seconds it took): ("done", what the worker sent), ("timeout", None) or
        ("died", why)."""
        if w is None or not w.proc.is_alive():
            w = self._spawn(w)
            if w is None:
                return None, ("died", "the server is shutting down"), None
        if not w.wait_ready(START_TIMEOUT_S):
            return self._spawn(w), ("died", "its worker process did not start"), None
        limit = self.s.audit_timeout_s or None
        started = time.monotonic()
        try:
            w.conn.send((0, path, name, fn))
            if w.conn.poll(limit):
                _, value = w.conn.recv()
                return w, ("done", value), time.monotonic() - started
            outcome: tuple[str, object] = ("timeout", None)
        except (EOFError, OSError, ValueError):
            outcome = ("died", "its worker process died")
        return self._spawn(w), outcome, time.monotonic() - started
