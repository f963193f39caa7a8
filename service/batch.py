"""Batch audits into a JSON Lines file that survive a crash and resume: `trustframe audit -o`.

Each line of the output is a Verdict's JSON plus one top-level key, `"source"`:
`{"path": absolute path, "size": bytes, "mtime_ns": ...}` (and `"sha256"` of the file with
`--by-hash`). `Verdict.model_validate` ignores it, so the file still reads as verdicts.

What survives what:
- every line is written with one `write()` as soon as its file is done, so a killed process
  (`kill -9`, Ctrl-C, a crash) loses only the files in flight; the file is fsynced at most a
  second after a line (and at the end), so a power loss loses at most about a second more;
- a line cut short by a crash (no newline, or garbage after the last good line) is cut off
  when the file is next opened, before anything is appended;
- `resume=True` skips every file that already has a line: by (path, size, mtime_ns), or by
  the content's SHA-256 with `by_hash=True` (which also skips renamed and copied files);
- the output is locked (`flock`) while a run writes it: a second run on it fails at once.

Inputs are streamed from `expand()`: the only thing held per file is a 16-byte key of each
file already done (for `resume`), never a list of paths.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trustframe.errors import ConfigError
from trustframe.media import expand
from trustframe.service.audit import audit_many
from trustframe.service.verdict import LABELS, Verdict
from trustframe.settings import Settings, load_settings

log = logging.getLogger("trustframe.batch")

ENGINES = ("local", "ray")
Item = tuple[str, dict | None]  # (path as given, its source record or None)


# ---- what identifies a file ---------------------------------------------------------------------


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def source_of(path: str | os.PathLike, by_hash: bool = False) -> dict | None:
    """The `source` record of a regular file, or None when it cannot be read (its audit says why)."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return None
        src = {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        if by_hash:
            src["sha256"] = file_sha256(path)
        return src
    except OSError:
        return None


def resume_key(source: dict | None, sha256: str | None = None, by_hash: bool = False) -> bytes | None:
    """What makes a file "done": a 16-byte digest of (path, size, mtime_ns), or with `by_hash` the
    content's SHA-256 (from the verdict, or from the source record for a file that failed)."""
    if by_hash:
        digest = sha256 or (source or {}).get("sha256")
        try:
            return bytes.fromhex(digest) if digest else None
        except ValueError:
            return None
    if not source or not {"path", "size", "mtime_ns"} <= source.keys():
        return None
    raw = f"{source['path']}\0{source['size']}\0{source['mtime_ns']}".encode("utf-8", "surrogateescape")
    return hashlib.blake2b(raw, digest_size=16).digest()


# ---- the output file ------------------------------------------------------------------------------


class JsonlOutput:
    """Appends verdict lines to a JSON Lines file: locked, one write per line, and fsynced by a
    background thread at most `fsync_s` after a line (one fsync per second, not per line).

    Use as a context manager; `load_done()` (resume) or `repair_tail()` runs before the first write.
    """

    def __init__(self, path: str | os.PathLike, *, fsync_s: float = 1.0):
        self.path = Path(path)
        self.fsync_s = fsync_s
        self.fd: int | None = None
        self.dropped_tail = 0  # bytes of a cut-short last line removed on open
        self.bad_lines = 0  # lines before the last good one that do not parse (ignored)
        self._dirty = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None

    def __enter__(self) -> JsonlOutput:
        created = not self.path.exists()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            raise ConfigError(f"cannot write {self.path}: {e.strerror or e}") from None
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # not POSIX: no lock
            pass
        except OSError:
            os.close(fd)
            raise ConfigError(f"{self.path} is being written by another run") from None
        self.fd = fd
        if created:  # make the new name durable too
            _fsync_dir(self.path.parent)
        self._syncer = threading.Thread(target=self._sync_loop, daemon=True, name="trustframe-fsync")
        self._syncer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.fd is None:
            return
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join()
        with self._lock, contextlib.suppress(OSError):
            os.fsync(self.fd)
        os.close(self.fd)  # also releases the lock
        self.fd = None

    def repair_tail(self) -> None:
        """Cut off a last line without its newline (a crash mid-write), reading only the tail."""
        size = os.fstat(self.fd).st_size
        end, block = size, 1 << 16
        while end > 0:
            start = max(0, end - block)
            chunk = os.pread(self.fd, end - start, start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                self._truncate(size, start + nl + 1)
                return
            end = start
        self._truncate(size, 0)

    def load_done(self, by_hash: bool = False) -> set[bytes]:
        """Keys of the files that already have a line; cuts off a broken tail after the last good
        line. Lines of other tools (plain `--json` output) count by their `sha256` with `by_hash`."""
        done: set[bytes] = set()
        good_end = offset = bad_since_good = 0
        with open(self.path, "rb") as f:
            for raw in f:
                offset += len(raw)
                try:
                    if not raw.endswith(b"\n"):
                        raise ValueError("no newline")
                    d = json.loads(raw)
                    if not isinstance(d, dict) or d.get("label") not in LABELS:
                        raise ValueError("not a verdict")
                except ValueError:
                    bad_since_good += 1
                    continue
                self.bad_lines += bad_since_good
                bad_since_good = 0
                good_end = offset
                src = d.get("source") if isinstance(d.get("source"), dict) else None
                key = resume_key(src, d.get("sha256"), by_hash)
                if key is not None:
                    done.add(key)
        self._truncate(offset, good_end)
        if self.bad_lines:
            log.warning("%s: ignored %d line(s) that are not verdicts", self.path, self.bad_lines)
        return done

    def _truncate(self, size: int, good_end: int) -> None:
        if good_end < size:
            os.ftruncate(self.fd, good_end)
            os.fsync(self.fd)
            self.dropped_tail = size - good_end
            log.warning("%s: removed a cut-short last line (%d bytes)", self.path, self.dropped_tail)

    def write(self, verdict: Verdict, source: dict | None) -> None:
        d = verdict.to_dict()
        if source is not None:
            d["source"] = source
        data = (json.dumps(d, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        while data:  # one write for a regular file; loop only on a short write
            data = data[os.write(self.fd, data):]
        self._dirty = True

    def _sync_loop(self) -> None:
        while not self._stop.wait(self.fsync_s):
            if self._dirty:
                self._dirty = False
                with self._lock, contextlib.suppress(OSError):
                    os.fsync(self.fd)


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---- the run --------------------------------------------------------------------------------------


@dataclass
class Summary:
    """Counts of one run; `line()` is what the CLI prints on stderr at the end."""

    output: str | None = None
    audited: int = 0
    skipped: int = 0
    labels: Counter = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    interrupted: bool = False

    def add(self, v: Verdict) -> None:
        self.audited += 1
        self.labels[v.label] += 1

    @property
    def errors(self) -> int:
        return self.labels["error"]

    @property
    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        return self.audited / self.elapsed if self.elapsed > 0 else 0.0

    def line(self) -> str:
        counts = ", ".join(f"{label} {self.labels[label]}" for label in LABELS if self.labels[label])
        where = f" as already in {self.output}" if self.output else ""
        head = "interrupted after" if self.interrupted else "audited"
        return (f"{head} {self.audited} file(s) in {self.elapsed:.1f} s ({self.rate:.2f} files/s), "
                f"{self.skipped} skipped{where}; labels: {counts or 'none'}; errors: {self.errors}")


def pending(inputs: Iterable[str | os.PathLike], *, track: bool, done: set[bytes] | None = None,
            by_hash: bool = False, on_skip: Callable[[], None] | None = None) -> Iterator[Item]:
    """(path, source) for each file `inputs` name, streamed, minus those whose key is in `done`
    (which then grows with each file sent, so a file named twice runs once)."""
    for p in expand(inputs):
        path = str(p)
        src = source_of(path, by_hash) if track else None
        if done is not None and (key := resume_key(src, None, by_hash)) is not None:
            if key in done:
                if on_skip:
                    on_skip()
                continue
            done.add(key)
        yield path, src


def audit_local(items: Iterable[Item], *, settings: Settings, workers: int = 1,
                detector: bool = True) -> Iterator[tuple[Verdict, dict | None]]:
    """`audit_many` over `items`, each verdict paired with its item's source record."""
    waiting: dict[str, deque] = {}

    def paths() -> Iterator[str]:
        for path, src in items:
            waiting.setdefault(path, deque()).append(src)
            yield path

    for v in audit_many(paths(), settings=settings, workers=workers, detector=detector):
        q = waiting.get(v.file)
        if q:
            src = q.popleft()
            if not q:
                del waiting[v.file]
        else:  # not the name it was sent under: identify it afresh
            src = source_of(v.file)
        yield v, src


def run(inputs: Iterable[str | os.PathLike], *, settings: Settings | None = None, workers: int = 1,
        detector: bool = True, output: str | os.PathLike | None = None, resume: bool = False,
        by_hash: bool = False, engine: str = "local", ray_address: str | None = None,
        on_verdict: Callable[[Verdict], None] | None = None, summary: Summary | None = None,
        progress=None) -> Summary:
    """Audit every file `inputs` name; append each verdict to `output` (JSON Lines) as it comes,
    and hand it to `on_verdict`. Returns the counts (also kept in `summary` if given, so that a
    caller interrupted by Ctrl-C still has them). `progress`: a rich Console to draw on, or None.
    """
    if engine not in ENGINES:
        raise ConfigError(f"--engine: unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    if resume and output is None:
        raise ConfigError("--resume needs -o/--output")
    if by_hash and not resume:
        raise ConfigError("--by-hash needs --resume")
    s = settings or load_settings()
    summary = summary if summary is not None else Summary()
    summary.output = str(output) if output is not None else None
    with contextlib.ExitStack() as stack:
        out = done = None
        if output is not None:
            out = stack.enter_context(JsonlOutput(output))
            if resume:
                done = out.load_done(by_hash)
            else:
                out.repair_tail()
        bar = stack.enter_context(Progress(progress, inputs)) if progress is not None else None

        def skipped() -> None:
            summary.skipped += 1
            if bar:
                bar.advance(summary)

        items = pending(inputs, track=out is not None, done=done, by_hash=by_hash, on_skip=skipped)
        if engine == "ray":
            from trustframe.service.ray_engine import audit_ray

            stream = audit_ray(items, settings=s, workers=workers, detector=detector, address=ray_address)
        else:
            stream = audit_local(items, settings=s, workers=workers, detector=detector)
        try:
            for v, src in stream:
                if out is not None:
                    out.write(v, src)
                summary.add(v)
                if on_verdict is not None:
                    on_verdict(v)
                if bar:
                    bar.advance(summary)
        except KeyboardInterrupt:
            summary.interrupted = True
            raise
        finally:
            summary.ended = time.monotonic()
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # stop the engine's workers before the output is closed
    return summary


class Progress:
    """A rich progress bar with this run's own rate and ETA (skipped files count as done but not
    in the rate). The total is counted in a background thread so the audit starts at once."""

    def __init__(self, console, inputs):
        from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn
        from rich.progress import Progress as RichProgress

        fields = TextColumn("{task.fields[rate]}  ETA {task.fields[eta]}  {task.fields[note]}")
        self.bar = RichProgress(SpinnerColumn(), TextColumn("auditing"), BarColumn(), MofNCompleteColumn(),
                                fields, console=console, transient=True)
        self.task = self.bar.add_task("audit", total=None, rate="", eta="-:--:--", note="")
        self.total: int | None = None
        if isinstance(inputs, Sequence) and not isinstance(inputs, str):  # can be walked twice
            threading.Thread(target=self._count, args=(list(inputs),), daemon=True).start()

    def _count(self, inputs) -> None:
        self.total = sum(1 for _ in expand(inputs))

    def __enter__(self) -> Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def advance(self, summary: Summary) -> None:
        done = summary.audited + summary.skipped
        rate = summary.rate
        eta = "-:--:--"
        if self.total is not None and rate > 0:
            secs = int(max(0, self.total - done) / rate)
            eta = f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        note = f"({summary.skipped} skipped)" if summary.skipped else ""
        self.bar.update(self.task, completed=done, total=self.total, rate=f"{rate:.2f} files/s", eta=eta,
                        note=note)
