"""Robustness: mutated media through the audit, hostile uploads under HTTP load, kill -9 while signing.

Length: one harness for three adversarial runs that share their originals, data directory and
report; each part is a section below and runs alone by its flag. Splitting it into three scripts
would copy the set-up three times. (A candidate for a package when a fourth part comes.)

    nice -n 19 .venv/bin/python benchmarks/robustness.py [--mutants 10000] [--requests 1000] [--kills 50]

Three parts, each on small originals made here in a fresh data directory (keys from `init_keys`):
MP4, MOV, PNG, JPEG and WebP, each unsigned, signed (`sign_file`) and signed with the watermark
(`protect_file`). Watermark payloads are allocated at random, so the signed originals (and with
them the mutants) differ from run to run: failing inputs are kept rather than re-derived.

(a) fuzz: `--mutants` distinct inputs made by `benchmarks/mutants.py` (one mutation each,
    originals taken in turn) go through `trustframe.service.audit.audit_file` in `--workers`
    worker processes (forkserver, one pipe each, reused across inputs). An input still running
    after `--timeout` seconds is a hang (its worker is killed and replaced); a worker that dies is
    a crash; `audit_file` raising instead of returning a Verdict is an escaping exception. Failing
    inputs are kept under runs/robustness-failures/ with a .txt beside each (traceback, signal,
    the worker's stderr tail); so are inputs whose verdict is an "internal-error" (an unexpected
    exception the audit caught: not a failure of the target, but a bug it hides).
(b) http: a real `trustframe serve` process on 127.0.0.1 (upload_max_bytes = `--upload-max-bytes`,
    its own audit worker pool and queue) gets `--requests` uploads to POST /v1/audit from
    `--concurrency` threads, each with its own keep-alive httpx client, within `--http-time-cap`
    seconds: valid and mutated media, junk, empty, oversized and hostile-name uploads, and
    malformed multipart requests. A 503 with Retry-After (load shedding) is retried after the time
    it asks for and counted apart. Counts final status codes, 5xx, transport errors (collateral =
    on any request but an oversized one, which the server may cut off after its 413), latency
    percentiles, and the server's RSS, threads and open fds (and the RSS of its worker processes)
    before, during and after; then stops it with SIGTERM and checks that its processes are gone.
(c) kills: `--kills` runs of `trustframe sign --watermark` (MP4 and PNG in turn) into one folder,
    each killed with SIGKILL after a random delay within the run time of an uninterrupted run
    (calibrated first, with the moment it starts writing), then one uninterrupted run into that
    folder. Counts outputs under final names that are half-written (unreadable or not signed),
    `.trustframe-*` temp files left, signed outputs whose manifest is not in the repository, and
    the repository's `PRAGMA integrity_check`.

Writes benchmarks/results/robustness.json and robustness.md (`--parts` runs a subset; `--results`
elsewhere). The test suite runs a short version (tests/test_robustness.py).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from mutants import mutate  # noqa: E402

from trustframe import media  # noqa: E402
from trustframe.settings import Settings, load_settings  # noqa: E402
from trustframe.testing import scene  # noqa: E402

ROOT = Path(__file__).parents[1]
RESULTS = Path(__file__).parent / "results"
FAILURES = ROOT / "runs" / "robustness-failures"
KINDS = ("mp4", "mov", "png", "jpg", "webp")
COMMAND = "nice -n 19 .venv/bin/python benchmarks/robustness.py"


def trustframe_exe() -> str:
    return str(Path(sys.executable).parent / "trustframe")


# ---------------------------------------------------------------------------------------------
# Originals


@dataclass(frozen=True)
class Original:
    name: str  # e.g. "watermarked.mp4"
    kind: str  # mp4 mov png jpg webp
    variant: str  # "unsigned", "signed" or "watermarked"
    path: Path
    data: bytes
    watermark_verified: bool | None = None


def make_home(home: Path) -> Settings:
    """A fresh data directory with the local key chain."""
    from trustframe.provenance.keys import init_keys

    s = load_settings(home=home)
    init_keys(s)
    return s


def make_originals(folder: Path, s: Settings, kinds=KINDS) -> list[Original]:
    """Small unsigned, signed and signed+watermarked files of each kind."""
    from trustframe.provenance.signing import sign_file
    from trustframe.service.protect import protect_file

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for kind in kinds:
        if kind in ("mp4", "mov"):
            frames = media.Frames(scene(8, 64, 96, seed=1), fps=24.0)
        else:
            frames = scene(1, 128, 128, seed=2)
        src = media.write(frames, folder / f"unsigned.{kind}")
        signed = sign_file(src, folder / f"signed.{kind}", settings=s).path
        r = protect_file(
            src, folder / f"watermarked.{kind}", source_type="trainedAlgorithmicMedia", settings=s
        )
        for variant, p, wm in (
            ("unsigned", src, None),
            ("signed", signed, None),
            ("watermarked", r.path, r.watermark_verified),
        ):
            out.append(Original(p.name, kind, variant, p, p.read_bytes(), wm))
    return out


# ---------------------------------------------------------------------------------------------
# (a) fuzz: mutated inputs through audit_file in worker processes


class Capture:
    """Keeps the traceback of the last exception logged under `trustframe` (the audit's catch-all
    logs one per `internal-error` verdict) instead of printing it; `close()` restores the logger."""

    def __init__(self):
        import logging

        class H(logging.Handler):
            def emit(h, rec):  # noqa: N805
                if rec.exc_info:
                    self.last = "".join(traceback.format_exception(*rec.exc_info))

        self.last: str | None = None
        self.handler = H(logging.ERROR)
        self.logger = logging.getLogger("trustframe")
        self.propagate = self.logger.propagate
        self.logger.addHandler(self.handler)
        self.logger.propagate = False

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.propagate = self.propagate

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def audit_one(path: Path, s: Settings, detector: bool, capture: Capture) -> dict:
    """Run `audit_file` on one input: its outcome as a small dict (never raises)."""
    from trustframe.service.audit import audit_file

    capture.last = None
    t = time.perf_counter()
    try:
        v = audit_file(path, s, detector=detector)
    except BaseException as e:  # the target: nothing escapes; record what did
        return {
            "outcome": "escaped",
            "exception": type(e).__name__,
            "traceback": traceback.format_exc(),
            "seconds": time.perf_counter() - t,
        }
    if not hasattr(v, "label"):
        return {
            "outcome": "escaped",
            "exception": f"returned {type(v).__name__}",
            "traceback": "",
            "seconds": time.perf_counter() - t,
        }
    code = v.error.code if v.error is not None else None
    return {
        "outcome": "verdict",
        "label": v.label,
        "code": code,
        "message": v.error.message if v.error is not None else None,
        "traceback": capture.last if code == "internal-error" else None,
        "seconds": time.perf_counter() - t,
    }


def _fuzz_worker(conn, settings: Settings, detector: bool, scratch: str, stderr_path: str) -> None:
    """Worker loop: (i, ext, bytes) in, `audit_one` dict out; None ends it."""
    import faulthandler

    fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)  # decoder chatter and fatal-error dumps go to a file, not the console
    faulthandler.enable()
    with contextlib.suppress(Exception):
        import torch

        torch.set_num_threads(1)  # two workers on two cores
    capture = Capture()
    d = Path(scratch)
    d.mkdir(parents=True, exist_ok=True)
    while (job := conn.recv()) is not None:
        i, ext, data = job
        p = d / f"input.{ext}"
        p.write_bytes(data)
        print(f"--- input {i}", file=sys.stderr, flush=True)
        r = audit_one(p, settings, detector, capture)
        r["i"] = i
        conn.send(r)


class FuzzPool:
    """`n` worker processes, each fed one input at a time; hung ones are killed and replaced."""

    def __init__(self, n: int, s: Settings, detector: bool, scratch: Path, warmup: tuple[str, bytes]):
        import multiprocessing as mp

        self.ctx = mp.get_context("forkserver")
        self.ctx.set_forkserver_preload(["trustframe.service.audit"])
        self.n, self.s, self.detector, self.scratch, self.warmup = n, s, detector, scratch, warmup
        self.started = 0
        scratch.mkdir(parents=True, exist_ok=True)
        self.slots: list[dict] = []

    def start(self) -> dict:
        k = self.started
        self.started += 1
        parent, child = self.ctx.Pipe()
        err = self.scratch / f"worker-{k}.stderr"
        proc = self.ctx.Process(
            target=_fuzz_worker,
            daemon=True,
            args=(child, self.s, self.detector, str(self.scratch / f"w{k}"), str(err)),
        )
        proc.start()
        child.close()
        slot = {"proc": proc, "conn": parent, "job": None, "since": 0.0, "stderr": err}
        parent.send((-1, *self.warmup))  # load the models before the clock runs on real inputs
        if not parent.poll(600):
            raise RuntimeError("a fuzz worker did not finish its warm-up audit in 600 s")
        parent.recv()
        return slot

    def __enter__(self) -> FuzzPool:
        self.slots = [self.start() for _ in range(self.n)]
        return self

    def __exit__(self, *exc) -> None:
        for slot in self.slots:
            with contextlib.suppress(OSError):
                slot["conn"].send(None)
        for slot in self.slots:
            slot["proc"].join(5)
            if slot["proc"].is_alive():
                slot["proc"].kill()
                slot["proc"].join()
            slot["conn"].close()

    def replace(self, k: int) -> None:
        old = self.slots[k]
        if old["proc"].is_alive():
            old["proc"].kill()
        old["proc"].join()
        old["conn"].close()
        self.slots[k] = self.start()

    def run(self, jobs, timeout: float):
        """Yield (job, result) for every job (i, ext, data, meta); result["outcome"] is verdict,
        escaped, crash or hang."""
        from multiprocessing.connection import wait

        jobs = iter(jobs)
        exhausted = False
        while True:
            for slot in self.slots:
                if slot["job"] is None and not exhausted:
                    job = next(jobs, None)
                    if job is None:
                        exhausted = True
                        break
                    slot["job"], slot["since"] = job, time.monotonic()
                    slot["conn"].send(job[:3])
            busy = [k for k, slot in enumerate(self.slots) if slot["job"] is not None]
            if not busy:
                return
            due = min(self.slots[k]["since"] for k in busy) + timeout
            ready = wait([self.slots[k]["conn"] for k in busy], timeout=max(0.0, due - time.monotonic()))
            for k in busy:
                slot = self.slots[k]
                job = slot["job"]
                if slot["conn"] in ready or slot["conn"].poll():  # (it may have answered meanwhile)
                    try:
                        r = slot["conn"].recv()
                        slot["job"] = None
                        yield job, r
                        continue
                    except (EOFError, OSError):
                        slot["proc"].join(5)
                        code = slot["proc"].exitcode
                        r = {
                            "outcome": "crash",
                            "exitcode": code,
                            "signal": signal.Signals(-code).name if code is not None and code < 0 else None,
                            "stderr": _tail(slot["stderr"]),
                        }
                elif time.monotonic() - slot["since"] >= timeout:
                    r = {
                        "outcome": "hang",
                        "seconds": time.monotonic() - slot["since"],
                        "stderr": _tail(slot["stderr"]),
                    }
                else:
                    continue
                slot["job"] = None
                self.replace(k)
                yield job, r


def _tail(path: Path, n: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def mutant_jobs(originals: list[Original], n: int, seed: int):
    """(i, ext, mutated bytes, (original, mutation name)) for i < n, originals in turn: `n`
    distinct inputs, none equal to an original (a mutation that repeats one is drawn again)."""
    rng = random.Random(seed)
    seen = {hashlib.sha1(o.data).digest() for o in originals}
    for i in range(n):
        o = originals[i % len(originals)]
        while True:
            name, data = mutate(o.data, o.kind, rng)
            digest = hashlib.sha1(data).digest()
            if digest not in seen:
                seen.add(digest)
                break
        yield i, o.kind, data, (o, name)


def save_failure(
    folder: Path, category: str, i: int, o: Original, mutation: str, data: bytes, r: dict
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{category}-{i:05d}-{o.variant}-{mutation}"
    p = folder / f"{stem}.{o.kind}"
    p.write_bytes(data)
    info = {k: v for k, v in r.items() if k not in ("traceback", "stderr")}
    text = [
        f"input {i}: {mutation} of {o.name} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})",
        json.dumps(info, indent=1, default=str),
    ]
    if r.get("traceback"):
        text += ["traceback:", r["traceback"]]
    if r.get("stderr"):
        text += ["worker stderr (tail):", r["stderr"]]
    (folder / f"{stem}.txt").write_text("\n".join(text) + "\n")
    return p


class FuzzTally:
    """Counts by outcome, by mutation and by original; keeps failing inputs on disk."""

    def __init__(self, failures: Path | None):
        self.failures = failures
        self.total = 0
        self.outcomes = collections.Counter()  # escaped, crash, hang, or the verdict's label
        self.codes = collections.Counter()  # error verdicts by code
        self.by_mutation: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.by_original: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.internal = collections.Counter()  # internal-error verdicts by exception line
        self.saved: list[dict] = []
        self.seconds: list[float] = []
        self.digests: set[bytes] = set()

    def add(self, i: int, data: bytes, o: Original, mutation: str, r: dict) -> None:
        self.total += 1
        self.digests.add(hashlib.sha1(data).digest())
        key = r["outcome"] if r["outcome"] != "verdict" else r["label"]
        self.outcomes[key] += 1
        self.by_mutation[mutation][key] += 1
        self.by_original[f"{o.variant} {o.kind}"][key] += 1
        if "seconds" in r and r["outcome"] == "verdict":
            self.seconds.append(r["seconds"])
        if r["outcome"] == "verdict" and r.get("code"):
            self.codes[r["code"]] += 1
        category = r["outcome"] if r["outcome"] in ("escaped", "crash", "hang") else None
        if r.get("code") == "internal-error":
            last = (r.get("traceback") or "").strip().splitlines()[-1:] or [r.get("message") or ""]
            self.internal[last[0][:200]] += 1
            category = "internal-error"
        if category and self.failures is not None:
            p = save_failure(self.failures, category, i, o, mutation, data, r)
            self.saved.append(
                {
                    "category": category,
                    "input": i,
                    "mutation": mutation,
                    "original": o.name,
                    "path": str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p),
                    "detail": r.get("exception") or r.get("signal") or r.get("message"),
                }
            )

    def summary(self) -> dict:
        secs = sorted(self.seconds)

        def pct(q):
            return round(secs[min(len(secs) - 1, int(q * len(secs)))], 3) if secs else None

        return {
            "inputs": self.total,
            "distinct_inputs": len(self.digests),
            "escaped_exceptions": self.outcomes["escaped"],
            "crashes": self.outcomes["crash"],
            "hangs": self.outcomes["hang"],
            "verdicts": {
                k: v for k, v in sorted(self.outcomes.items()) if k not in ("escaped", "crash", "hang")
            },
            "error_codes": dict(sorted(self.codes.items())),
            "internal_errors": dict(self.internal.most_common()),
            "by_mutation": {m: dict(sorted(c.items())) for m, c in sorted(self.by_mutation.items())},
            "by_original": {m: dict(sorted(c.items())) for m, c in sorted(self.by_original.items())},
            "audit_seconds": {
                "mean": round(statistics.fmean(secs), 3) if secs else None,
                "p50": pct(0.5),
                "p99": pct(0.99),
                "max": round(secs[-1], 3) if secs else None,
            },
            "saved": self.saved,
        }


def run_fuzz(
    originals: list[Original],
    s: Settings,
    *,
    mutants: int,
    workers: int,
    timeout: float,
    seed: int,
    detector: bool,
    failures: Path | None,
    scratch: Path,
) -> dict:
    t0 = time.monotonic()
    baseline = {}
    tally = FuzzTally(failures)
    warm = next(o for o in originals if o.kind == "mp4")
    with FuzzPool(workers, s, detector, scratch, (warm.kind, warm.data)) as pool:
        base_jobs = [(-2 - k, o.kind, o.data, (o, "none")) for k, o in enumerate(originals)]
        for (_, _, _, (o, _)), r in pool.run(base_jobs, timeout):
            baseline[o.name] = r.get("label") or r["outcome"]
        baseline = {o.name: baseline[o.name] for o in originals}
        last = time.monotonic()
        for (i, _, data, (o, mutation)), r in pool.run(mutant_jobs(originals, mutants, seed), timeout):
            tally.add(i, data, o, mutation, r)
            if time.monotonic() - last > 60 or tally.total == mutants:
                last = time.monotonic()
                rate = tally.total / (last - t0)
                print(
                    f"  fuzz {tally.total}/{mutants} ({rate:.1f}/s, "
                    f"eta {(mutants - tally.total) / rate:.0f} s)"
                    f" escaped {tally.outcomes['escaped']} crash {tally.outcomes['crash']}"
                    f" hang {tally.outcomes['hang']}",
                    flush=True,
                )
        replaced = pool.started - workers
    out = {
        "originals": baseline,
        "workers": workers,
        "timeout_s": timeout,
        "seed": seed,
        "detector": detector,
        "workers_replaced": replaced,
        **tally.summary(),
        "seconds": round(time.monotonic() - t0, 1),
    }
    out["watermark_verified"] = {
        o.name: o.watermark_verified for o in originals if o.variant == "watermarked"
    }
    return out


# ---------------------------------------------------------------------------------------------
# (b) HTTP load: hostile uploads against a real server


@dataclass(frozen=True)
class Case:
    category: str
    body: bytes
    content_type: str


def multipart(
    filename: bytes | None,
    content: bytes,
    field: bytes = b"file",
    boundary: bytes | None = None,
    close: bool = True,
) -> tuple[bytes, str]:
    """A multipart/form-data body built byte by byte, so hostile names go out exactly as given."""
    b = boundary or b"tfboundary" + os.urandom(8).hex().encode()
    disp = (
        b'form-data; name="'
        + field
        + b'"'
        + (b'; filename="' + filename + b'"' if filename is not None else b"")
    )
    body = (
        b"--"
        + b
        + b"\r\nContent-Disposition: "
        + disp
        + b"\r\nContent-Type: application/octet-stream\r\n\r\n"
        + content
        + b"\r\n"
        + (b"--" + b + b"--\r\n" if close else b"")
    )
    return body, "multipart/form-data; boundary=" + b.decode()


HOSTILE_NAMES = [
    b"../../../../etc/passwd",
    b"..\\..\\..\\windows\\system32\\drivers\\etc\\hosts",
    b"/etc/shadow",
    b"C:\\Windows\\win.ini",
    b"....//....//x.png",
    b"%2e%2e%2f%2e%2e%2fetc%2fpasswd.png",
    b"..",
    b".",
    b"",
    b".hidden.png",
    b"a" * 255 + b".png",
    b"b" * 4096 + b".mp4",
    ("\u00e9" * 3000 + ".jpg").encode(),
    b"nul\x00byte.png",
    b"bell\x07\x08\x1b[31mred.png",
    b"tab\there.jpg",
    b"del\x7f.webp",
    "\u202egnp.exe".encode(),
    "\u540d\u524d.png".encode(),
    "\U0001f642.jpg".encode(),
    b"\xff\xfe\xfdbad-utf8.png",
    b'quote"in"name.png',
    b"semi;colon=1.png",
    b"back\\slash.mov",
    b"CON.png",
    b"aux.mp4",
    b"x.png/",
    b"dir/",
    b"x.png%00.exe",
    b"name\r\nX-Injected: 1.png",
    "\ufeffbom.png".encode(),
    b"  spaces  .png",
    b"x" * 10 + b"\n" + b"y.png",
]

JUNK = [
    b"hello world\n",
    b"<!doctype html><html><body>not an image</body></html>",
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    b"PK\x03\x04" + b"\x00" * 60,
    b"\x7fELF\x02\x01\x01" + b"\x00" * 57,
    b"GIF89a\x01\x00",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"RIFF\x00\x00\x00\x00WEBP",
    b"\x00\x00\x00\x18ftypisom",
    b"\x00\x00\x00\x08moov",
    b"II*\x00" + b"\xff" * 60,
    b"\x1a\x45\xdf\xa3" + b"\x00" * 40,
    b"\x00" * 4096,
    b"{}",
]


def http_cases(originals: list[Original], n: int, upload_max: int, seed: int = 0) -> list[Case]:
    """`n` upload requests: valid, mutated, junk, empty, oversized, hostile-name and malformed."""
    rng = random.Random(seed)
    weights = {
        "valid": 20,
        "mutated": 20,
        "junk": 12,
        "empty": 6,
        "oversized": 6,
        "hostile-name": 26,
        "malformed": 10,
    }
    cats = rng.choices(list(weights), list(weights.values()), k=n)
    big = os.urandom(upload_max + 512 * 1024)
    out = []
    for cat in cats:
        o = rng.choice(originals)
        if cat == "valid":
            body, ct = multipart(o.name.encode(), o.data)
        elif cat == "mutated":
            mname, data = mutate(o.data, o.kind, rng)
            body, ct = multipart(f"{mname}.{o.kind}".encode(), data)
        elif cat == "junk":
            data = rng.choice(JUNK) if rng.random() < 0.6 else rng.randbytes(rng.randint(1, 65536))
            body, ct = multipart(f"junk.{rng.choice(KINDS)}".encode(), data)
        elif cat == "empty":
            body, ct = multipart(rng.choice([b"empty.png", b"empty.mp4", b"", None]), b"")
        elif cat == "oversized":
            size = upload_max + rng.randint(1, 512 * 1024)
            head = o.data[: min(len(o.data), size)]
            body, ct = multipart(f"big.{o.kind}".encode(), head + big[: size - len(head)])
        elif cat == "hostile-name":
            body, ct = multipart(rng.choice(HOSTILE_NAMES), o.data)
        else:  # malformed requests: each a 4xx, never a 5xx
            form = rng.randrange(7)
            if form == 0:
                body, ct = o.data, "application/octet-stream"
            elif form == 1:
                body, ct = multipart(b"x.png", o.data)
                ct = "multipart/form-data"  # no boundary
            elif form == 2:
                body, ct = multipart(b"x.png", o.data, field=b"other")  # no `file` field
            elif form == 3:
                body, ct = multipart(b"x.png", o.data, close=False)  # ends inside the part
                body = body[: rng.randrange(len(body))]
            elif form == 4:
                body, ct = rng.randbytes(rng.randint(0, 4096)), "multipart/form-data; boundary=zzz"
            elif form == 5:
                body, ct = multipart(b"x.png", o.data)
                body = body.replace(b"Content-Disposition", b"Content-Dispositio\x00", 1)
            else:
                body, ct = multipart(b"x.png", o.data, boundary=b"a" * 200)
        out.append(Case(cat, body, ct))
    return out


def _status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (the server's audit workers and their forkserver)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                kids = [int(k) for k in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
                out += kids
                todo += kids
    return out


def proc_stats(pid: int | None) -> dict | None:
    """RSS, peak RSS (MB), threads and open fds of process `pid`, from /proc; and the RSS of it
    with all its descendants (`tree_rss_mb`, over `processes` processes)."""
    if pid is None:
        return None
    fields = _status(pid)

    def mb(f, k):
        return int(f.get(k, "0 kB").split()[0]) / 1024

    tree = 0.0
    kids = descendants(pid)
    for k in kids:
        with contextlib.suppress(OSError):
            tree += mb(_status(k), "VmRSS")
    return {
        "rss_mb": round(mb(fields, "VmRSS"), 1),
        "peak_rss_mb": round(mb(fields, "VmHWM"), 1),
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "processes": 1 + len(kids),
        "tree_rss_mb": round(mb(fields, "VmRSS") + tree, 1),
    }


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * len(v)))], 3)


def load(
    url: str,
    cases: list[Case],
    *,
    concurrency: int,
    time_cap: float,
    timeout: float = 120.0,
    max_retries: int = 30,
    checkpoint=None,
) -> dict:
    """Send `cases` to POST {url}/v1/audit from `concurrency` threads, each with a keep-alive
    httpx client; stop issuing new requests after `time_cap` seconds.

    A 503 with Retry-After (the server shedding load: every audit worker busy and its queue full)
    is retried after the time it asks for, up to `max_retries` times, as a polite client would;
    such answers are counted as `shed`, apart from other 5xx. `checkpoint(done)` is called when a
    quarter, half, three quarters and all of the cases are done.
    """
    import httpx

    lock = threading.Lock()
    queue = list(reversed(cases))
    records: list[dict] = []
    marks = {max(1, len(cases) * q // 4) for q in (1, 2, 3, 4)}
    t0 = time.monotonic()

    def send(c, case: Case, rec: dict) -> httpx.Response | None:
        t = time.perf_counter()
        try:
            r = c.post("/v1/audit", content=case.body, headers={"content-type": case.content_type})
        except httpx.TransportError as e:
            rec["transport_error"] = f"{type(e).__name__}: {e}"[:200]
            return None
        finally:
            rec["attempt_seconds"] = time.perf_counter() - t
        return r

    def client_loop():
        with httpx.Client(base_url=url, timeout=timeout) as c:
            while True:
                with lock:
                    if not queue or time.monotonic() - t0 > time_cap:
                        return
                    case = queue.pop()
                t = time.perf_counter()
                rec = {"category": case.category, "shed": 0}
                try:
                    while (r := send(c, case, rec)) is not None:
                        shed = (
                            r.status_code == 503
                            and r.headers.get("retry-after", "").isdigit()
                            and r.headers.get("content-type") == "application/problem+json"
                        )
                        if not shed or rec["shed"] >= max_retries:
                            break
                        rec["shed"] += 1
                        time.sleep(min(60, int(r.headers["retry-after"])))
                    if r is not None:
                        rec["status"] = r.status_code
                        rec["gave_up"] = shed
                        if r.status_code == 200:
                            rec["label"] = r.json().get("label")
                        elif r.headers.get("content-type") != "application/problem+json":
                            rec["not_problem_json"] = True
                        if "Traceback" in r.text or 'File "/' in r.text:
                            rec["leak"] = True
                except Exception as e:  # a response we could not parse: record, keep going
                    rec["client_error"] = f"{type(e).__name__}: {e}"[:200]
                rec["seconds"] = time.perf_counter() - t
                with lock:
                    records.append(rec)
                    done = len(records)
                if checkpoint is not None and done in marks:
                    checkpoint(done)

    threads = [threading.Thread(target=client_loop) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    return summarize_load(records, wall, len(cases))


def summarize_load(records: list[dict], wall: float, planned: int) -> dict:
    by_cat: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    statuses = collections.Counter()
    errors = collections.Counter()
    labels = collections.Counter()
    for r in records:
        key = (
            str(r["status"])
            if "status" in r
            else ("transport-error" if "transport_error" in r else "client-error")
        )
        statuses[key] += 1
        by_cat[r["category"]][key] += 1
        if "transport_error" in r:
            errors[r["transport_error"].split(":")[0] + f" ({r['category']})"] += 1
        if "label" in r:
            labels[r["label"]] += 1
    answered = [r for r in records if "status" in r]
    five = [r for r in answered if r["status"] >= 500 and not r["gave_up"]]
    ms = {
        name: {
            "p50": pct(v, 0.50),
            "p95": pct(v, 0.95),
            "p99": pct(v, 0.99),
            "max": round(max(v), 3) if v else None,
        }
        for name, v in (
            ("latency_s", [r["attempt_seconds"] for r in answered]),
            ("end_to_end_s", [r["seconds"] for r in answered]),
        )
    }
    return {
        "planned": planned,
        "sent": len(records),
        "wall_s": round(wall, 1),
        "requests_per_s": round(len(records) / wall, 2) if wall else None,
        "status": dict(sorted(statuses.items())),
        "by_category": {c: dict(sorted(v.items())) for c, v in sorted(by_cat.items())},
        "labels_200": dict(sorted(labels.items())),
        "5xx": len(five),
        "5xx_by_category": dict(collections.Counter(r["category"] for r in five)),
        "shed_503": sum(r["shed"] for r in records) + sum(1 for r in answered if r["gave_up"]),
        "requests_shed_at_least_once": sum(1 for r in records if r["shed"]),
        "gave_up_after_retries": sum(1 for r in answered if r["gave_up"]),
        "transport_errors": sum(1 for r in records if "transport_error" in r),
        "collateral_transport_errors": sum(
            1 for r in records if "transport_error" in r and r["category"] != "oversized"
        ),
        "transport_error_kinds": dict(errors),
        "client_errors": sum(1 for r in records if "client_error" in r),
        "error_responses_not_problem_json": sum(1 for r in records if r.get("not_problem_json")),
        "responses_leaking_tracebacks": sum(1 for r in records if r.get("leak")),
        **ms,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, seconds: float, proc: subprocess.Popen | None = None) -> None:
    import httpx

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not healthy within {seconds} s")


def run_http(
    originals: list[Original],
    home: Path,
    work: Path,
    *,
    requests: int,
    concurrency: int,
    upload_max: int,
    time_cap: float,
    seed: int,
    audit_workers: int | None = None,
    audit_queue: int | None = None,
) -> dict:
    """Start `trustframe serve` on a free loopback port and load it (see the module docstring).
    `audit_workers` / `audit_queue` override the server's settings (default: its defaults)."""
    import httpx

    tmp = work / "server-tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TRUSTFRAME_HOME": str(home),
        "TRUSTFRAME_UPLOAD_MAX_BYTES": str(upload_max),
        "TMPDIR": str(tmp),
    }
    if audit_workers is not None:
        env["TRUSTFRAME_AUDIT_WORKERS"] = str(audit_workers)
    if audit_queue is not None:
        env["TRUSTFRAME_AUDIT_QUEUE"] = str(audit_queue)
    log_path = work / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [trustframe_exe(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(url, 180, proc)
        started = proc_stats(proc.pid)
        with httpx.Client(base_url=url, timeout=120) as c:  # warm-up: every original once, in turn
            for o in originals:
                body, ct = multipart(o.name.encode(), o.data)
                c.post("/v1/audit", content=body, headers={"content-type": ct}).raise_for_status()
        before = proc_stats(proc.pid)
        cases = http_cases(originals, requests, upload_max, seed)
        during = {}
        result = load(
            url,
            cases,
            concurrency=concurrency,
            time_cap=time_cap,
            checkpoint=lambda done: during.__setitem__(str(done), proc_stats(proc.pid)),
        )
        after = proc_stats(proc.pid)
        wait_healthy(url, 30, proc)
        time.sleep(2)
        settled = proc_stats(proc.pid)
        spooled = sorted(
            p.name for p in tmp.iterdir() if p.name.startswith(("trustframe-upload-", ".trustframe-"))
        )
        children = descendants(proc.pid)
    finally:
        t_stop = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stop_s = time.monotonic() - t_stop
    end = time.monotonic() + 10  # its forkserver and resource tracker leave once they see it gone
    while (survivors := [k for k in children if _alive(k)]) and time.monotonic() < end:
        time.sleep(0.2)
    for k in survivors:
        with contextlib.suppress(OSError):
            os.kill(k, signal.SIGKILL)
    log_text = log_path.read_text(errors="replace")
    result.update(
        {
            "concurrency": concurrency,
            "upload_max_bytes": upload_max,
            "time_cap_s": time_cap,
            "server": {"started": started, "before_load": before, "after_load": after, "settled": settled},
            "server_during_load": during,
            "server_alive_after": True,
            "audit_workers": audit_workers,
            "audit_queue": audit_queue,
            "spooled_uploads_left": len(spooled),
            "server_tmp_left_after_exit": sorted(p.name for p in tmp.iterdir()),
            "server_log_tracebacks": log_text.count("Traceback (most recent call last)"),
            "server_exit_code": proc.returncode,
            "server_stop_s": round(stop_s, 1),
            "worker_processes_left_after_exit": len(survivors),
        }
    )
    return result


# ---------------------------------------------------------------------------------------------
# (c) kill -9 during `trustframe sign --watermark`


def _sign_cmd(src: Path, dst: Path) -> list[str]:
    return [trustframe_exe(), "sign", "--watermark", str(src), "-o", str(dst)]


def run_kills(
    home: Path, work: Path, *, kills: int, seed: int, kinds: tuple[str, ...] = ("mp4", "png"), log=print
) -> dict:
    """`kills` signing runs killed with SIGKILL at random moments, then one that completes."""
    from trustframe.provenance.reading import read_provenance
    from trustframe.provenance.repository import open_repository

    t_start = time.monotonic()
    s = load_settings(home=home)
    env = {**os.environ, "TRUSTFRAME_HOME": str(home), "TMPDIR": str(work / "tmp")}
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    subprocess.run([trustframe_exe(), "keys", "init"], env=env, check=True, capture_output=True)
    srcs = {
        "mp4": media.write(media.Frames(scene(16, 64, 96, seed=3), fps=24.0), work / "src" / "clip.mp4"),
        "png": media.write(scene(1, 128, 128, seed=4), work / "src" / "still.png"),
    }
    srcs = {k: srcs[k] for k in kinds}
    out = work / "out"
    out.mkdir(parents=True, exist_ok=True)
    calib, first_write = {}, {}
    for kind, src in srcs.items():  # one uninterrupted run of each: the run time the kills sample from
        t = time.monotonic()
        p = subprocess.Popen(
            _sign_cmd(src, out / f"calibrate.{kind}"),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        while p.poll() is None:  # when does it start writing (its first temp file appears)?
            if kind not in first_write and any(out.glob(f"{media.TEMP_PREFIX}{p.pid}-*")):
                first_write[kind] = time.monotonic() - t
            time.sleep(0.01)
        calib[kind] = time.monotonic() - t
        if p.returncode != 0:
            raise RuntimeError(f"calibration run failed: {p.stderr.read().decode(errors='replace')}")
        p.stderr.close()
        first_write.setdefault(kind, 0.0)
    log(
        "  kills: calibrated run times "
        + ", ".join(f"{k} {v:.1f} s (writing from {first_write[k]:.1f} s)" for k, v in calib.items())
    )
    rng = random.Random(seed)
    killed = finished = mid_write = appeared = 0
    delays = []
    for i in range(kills):
        kind = kinds[i % len(kinds)]
        dst = out / (f"shared.{kind}" if i % 5 == 4 else f"k{i:03d}.{kind}")  # some overwrite a signed file
        # A third anywhere in the run, two thirds where it writes (model loading comes first and
        # takes most of the run; a kill there tests nothing).
        lo = 0.0 if i % 3 == 0 else 0.8 * first_write[kind]
        delay = rng.uniform(lo, calib[kind])
        started = time.time()
        p = subprocess.Popen(
            _sign_cmd(srcs[kind], dst), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            killed += 1
            p.wait()
            mid_write += any(out.glob(f"{media.TEMP_PREFIX}{p.pid}-*"))  # it died holding a temp file
            appeared += dst.exists() and dst.stat().st_mtime >= started  # killed after the rename
        else:
            finished += 1
        p.wait()
        delays.append(delay)
    temps_before_final = sorted(p.name for p in out.iterdir() if p.name.startswith(media.TEMP_PREFIX))
    final = out / f"final.{kinds[0]}"
    done = subprocess.run(_sign_cmd(srcs[kinds[0]], final), env=env, capture_output=True, text=True)
    temps = sorted(p.name for p in out.iterdir() if p.name.startswith(media.TEMP_PREFIX))
    other_hidden = sorted(
        p.name for p in out.iterdir() if p.name.startswith(".") and not p.name.startswith(media.TEMP_PREFIX)
    )
    repo = open_repository(s)
    files = sorted(p for p in out.iterdir() if not p.name.startswith("."))
    half, unregistered, unresolvable, ok, details = [], [], [], 0, {}
    ids = set()
    for f in files:
        try:
            media.probe(f, s)
            prov = read_provenance(f, s)
        except Exception as e:
            half.append(f.name)
            details[f.name] = f"unreadable: {type(e).__name__}: {e}"[:200]
            continue
        if not prov.present or prov.state not in ("trusted", "valid") or not prov.manifest_id:
            half.append(f.name)
            details[f.name] = f"not signed: present={prov.present} state={prov.state} {prov.error or ''}"[
                :200
            ]
            continue
        ids.add(prov.manifest_id)
        if repo.get(prov.manifest_id) is None:
            unregistered.append(f.name)
            continue
        for b in prov.soft_bindings:
            if prov.manifest_id not in repo.by_binding(b["alg"], b["value"] or "", max_results=100):
                unresolvable.append(f.name)
        ok += 1
    with contextlib.closing(sqlite3.connect(s.repository_path)) as db:
        integrity = [r[0] for r in db.execute("PRAGMA integrity_check")]
        fk = db.execute("PRAGMA foreign_key_check").fetchall()
        stored = db.execute("SELECT COUNT(*) FROM manifests").fetchone()[0]
    tmp_left = sorted(p.name for p in (work / "tmp").iterdir())
    return {
        "kills_requested": kills,
        "killed": killed,
        "killed_while_writing": mid_write,
        "killed_after_output_appeared": appeared,
        "first_write_s": {k: round(v, 2) for k, v in first_write.items()},
        "finished_before_kill": finished,
        "calibration_s": {k: round(v, 2) for k, v in calib.items()},
        "delay_s": {
            "min": round(min(delays), 2) if delays else None,
            "max": round(max(delays), 2) if delays else None,
        },
        "final_run_exit_code": done.returncode,
        "final_run_stderr": done.stderr[-500:] if done.returncode else "",
        "temp_files_before_final_run": len(temps_before_final),
        "temp_files_left": len(temps),
        "temp_files_left_names": temps,
        "other_hidden_files": other_hidden,
        "system_tmp_files_left": len(tmp_left),
        "outputs": len(files),
        "outputs_ok": ok,
        "half_written": len(half),
        "half_written_names": half,
        "half_written_details": details,
        "unregistered_signed": len(unregistered),
        "unregistered_names": unregistered,
        "bindings_not_resolving": len(unresolvable),
        "manifests_in_repository": stored,
        "registered_without_file": stored - len(ids),
        "integrity_check": integrity[0] if len(integrity) == 1 else integrity,
        "foreign_key_violations": len(fk),
        "seconds": round(time.monotonic() - t_start, 1),
    }


# ---------------------------------------------------------------------------------------------
# Report


def targets(res: dict) -> dict:
    t = {}
    if f := res.get("fuzz"):
        t["fuzz: 0 escaping exceptions, 0 crashes, 0 hangs over >= 10,000 inputs"] = (
            f["escaped_exceptions"] == 0 and f["crashes"] == 0 and f["hangs"] == 0 and f["inputs"] >= 10_000
        )
    if h := res.get("http"):
        t["http: 0 5xx for media inputs, 0 collateral transport errors"] = (
            h["5xx"] == 0 and h["collateral_transport_errors"] == 0
        )
    if k := res.get("kills"):
        t["kills: 0 temp files and 0 unregistered signed files after >= 50 kills"] = (
            k["temp_files_left"] == 0
            and k["unregistered_signed"] == 0
            and k["half_written"] == 0
            and k["integrity_check"] == "ok"
            and k["kills_requested"] >= 50
        )
    return t


def markdown(res: dict) -> str:
    L = [
        "# Robustness",
        "",
        f"`{res['command']}` — {res['machine']}, {res['date']}, {res['seconds']:.0f} s in all "
        "(the machine was also running a training job).",
        "",
    ]
    if f := res.get("fuzz"):
        L += [
            "## (a) Mutated media through `audit_file`",
            "",
            f"{f['inputs']} inputs ({f['distinct_inputs']} distinct) from {len(f['originals'])} originals "
            "(MP4, MOV, PNG, JPEG, WebP; unsigned, signed, signed + watermark), one mutation each "
            f"(`benchmarks/mutants.py`, seed {f['seed']}), in {f['workers']} worker processes with a "
            f"{f['timeout_s']:g} s limit per input, detector {'on' if f['detector'] else 'off'}; "
            f"{f['seconds']:.0f} s. Target: 0 escaping exceptions, 0 crashes, 0 hangs over ≥ 10,000 inputs.",
            "",
            "| inputs | escaping exceptions | crashes | hangs | workers replaced | audit s p50 / p99 / max |",
            "|---|---|---|---|---|---|",
            f"| {f['inputs']} | {f['escaped_exceptions']} | {f['crashes']} | {f['hangs']} | "
            f"{f['workers_replaced']} | {f['audit_seconds']['p50']} / {f['audit_seconds']['p99']} / "
            f"{f['audit_seconds']['max']} |",
            "",
        ]
        labels = sorted({k for c in f["by_mutation"].values() for k in c})
        L += [
            "Outcome by mutation (verdict labels, or escaped / crash / hang):",
            "",
            "| mutation | inputs | " + " | ".join(labels) + " |",
            "|---" * (len(labels) + 2) + "|",
        ]
        for m, c in f["by_mutation"].items():
            L.append(f"| {m} | {sum(c.values())} | " + " | ".join(str(c.get(k, 0)) for k in labels) + " |")
        tot = collections.Counter()
        for c in f["by_mutation"].values():
            tot.update(c)
        L.append(
            f"| **all** | {sum(tot.values())} | " + " | ".join(str(tot.get(k, 0)) for k in labels) + " |"
        )
        L += [
            "",
            "By original:",
            "",
            "| original | inputs | " + " | ".join(labels) + " |",
            "|---" * (len(labels) + 2) + "|",
        ]
        for m, c in f["by_original"].items():
            L.append(f"| {m} | {sum(c.values())} | " + " | ".join(str(c.get(k, 0)) for k in labels) + " |")
        L += [
            "",
            "Error verdicts by code: " + ", ".join(f"{k} {v}" for k, v in f["error_codes"].items()) + ".",
            "",
        ]
        if f["internal_errors"]:
            L += [
                "Unexpected exceptions the audit caught (`internal-error` verdicts; inputs kept under "
                "runs/robustness-failures/):",
                "",
            ]
            L += [f"- {v} × `{k}`" for k, v in f["internal_errors"].items()] + [""]
        saved = collections.Counter(x["category"] for x in f["saved"])
        L += [
            "Inputs kept under runs/robustness-failures/: "
            + (", ".join(f"{k} {v}" for k, v in saved.items()) if saved else "none (nothing failed)")
            + ".",
            "",
        ]
        base = ", ".join(f"{k}: {v}" for k, v in f["originals"].items())
        L += [f"Unmutated originals: {base}.", ""]
    if h := res.get("http"):
        srv = h["server"]
        L += [
            "## (b) HTTP load on `trustframe serve`",
            "",
            f"{h['sent']} of {h['planned']} requests to `POST /v1/audit` at concurrency {h['concurrency']} "
            f"(keep-alive httpx clients) against `trustframe serve` with upload_max_bytes "
            f"{h['upload_max_bytes']} and audit_workers / audit_queue "
            f"{h['audit_workers'] or 'default'} / {h['audit_queue'] or 'default'}, in {h['wall_s']} s "
            f"({h['requests_per_s']} requests/s). A 503 with Retry-After is the server shedding load "
            "(every audit worker busy, the queue full): the client waits as asked and retries (up to 30 "
            "times); these answers are counted as shed, apart from 5xx. Target: 0 5xx for media inputs "
            "and 0 collateral transport errors (a transport error on any request but an oversized upload, "
            "which the server may cut off after its 413).",
            "",
            "| requests | 5xx | shed 503 (requests shed; gave up) | transport errors (collateral) | "
            "latency p50 / p95 / p99 / max s | end to end p50 / p99 s | error bodies not problem+json | "
            "spooled uploads left | server log tracebacks |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {h['sent']} | {h['5xx']} | {h['shed_503']} ({h['requests_shed_at_least_once']}; "
            f"{h['gave_up_after_retries']}) | {h['transport_errors']} ({h['collateral_transport_errors']}) | "
            f"{h['latency_s']['p50']} / {h['latency_s']['p95']} / {h['latency_s']['p99']} / "
            f"{h['latency_s']['max']} | {h['end_to_end_s']['p50']} / {h['end_to_end_s']['p99']} | "
            f"{h['error_responses_not_problem_json']} | {h['spooled_uploads_left']} | "
            f"{h['server_log_tracebacks']} |",
            "",
            "Final answers by upload:",
            "",
        ]
        codes = sorted({k for c in h["by_category"].values() for k in c})
        L += ["| upload | requests | " + " | ".join(codes) + " |", "|---" * (len(codes) + 2) + "|"]
        for cat, c in h["by_category"].items():
            L.append(f"| {cat} | {sum(c.values())} | " + " | ".join(str(c.get(k, 0)) for k in codes) + " |")
        L.append(f"| **all** | {h['sent']} | " + " | ".join(str(h["status"].get(k, 0)) for k in codes) + " |")
        L += [
            "",
            "| server | RSS MB | peak RSS MB | threads | open fds | processes | RSS MB with workers |",
            "|---|---|---|---|---|---|---|",
        ]
        rows = [("started", srv["started"]), ("before load", srv["before_load"])]
        rows += [
            (f"after {n} requests", st)
            for n, st in sorted(h["server_during_load"].items(), key=lambda x: int(x[0]))
        ]
        rows += [("after load", srv["after_load"]), ("settled", srv["settled"])]
        for name, st in rows:
            L.append(
                f"| {name} | {st['rss_mb']} | {st['peak_rss_mb']} | {st['threads']} | {st['fds']} | "
                f"{st['processes']} | {st['tree_rss_mb']} |"
            )
        L += [
            "",
            '"before load" is after one warm-up request per original (the models are loaded); '
            '"settled" is 2 s after the load. The server stopped on SIGTERM in '
            f"{h['server_stop_s']} s (exit {h['server_exit_code']}), leaving "
            f"{h['worker_processes_left_after_exit']} of its processes running 10 s later"
            + (
                f"; its TMPDIR still held {', '.join(h['server_tmp_left_after_exit'])} after it exited "
                "(it dies by the SIGTERM uvicorn re-raises after a graceful shutdown, so no atexit "
                "handler, multiprocessing's temp-dir cleanup among them, runs)."
                if h["server_tmp_left_after_exit"]
                else "."
            ),
        ]
        if h["transport_error_kinds"]:
            L += [
                "",
                "Transport errors: "
                + ", ".join(f"{k} {v}" for k, v in h["transport_error_kinds"].items())
                + ".",
            ]
        L.append("")
    if k := res.get("kills"):
        L += [
            "## (c) kill -9 during `trustframe sign --watermark`",
            "",
            f"{k['kills_requested']} runs into one folder "
            f"({' and '.join(x.upper() for x in k['calibration_s'])} in "
            "turn, every 5th overwriting a signed file), each sent SIGKILL after a random delay within "
            "the run time of an uninterrupted run ("
            + ", ".join(
                f"{a} {b} s, writing from {k['first_write_s'][a]} s" for a, b in k["calibration_s"].items()
            )
            + "): a third anywhere in it, two thirds from 0.8 × the time it starts writing (loading the "
            f"models comes first); then one uninterrupted run (exit {k['final_run_exit_code']}). "
            f"{k['seconds']:.0f} s. Target: 0 temp files and 0 unregistered signed files after ≥ 50 "
            'kills. "While writing": the killed process left a temp file of its own (the kill landed '
            'while it wrote); "after output": its output had appeared under its final name.',
            "",
            "| runs | killed (while writing; after output) | finished first | temp files before / after "
            "final run | outputs (ok) | half-written | unregistered signed | bindings not resolving | "
            "registered without file | integrity_check |",
            "|---|---|---|---|---|---|---|---|---|---|",
            f"| {k['kills_requested']} | {k['killed']} ({k['killed_while_writing']}; "
            f"{k['killed_after_output_appeared']}) | {k['finished_before_kill']} | "
            f"{k['temp_files_before_final_run']} / {k['temp_files_left']} | "
            f"{k['outputs']} ({k['outputs_ok']}) | "
            f"{k['half_written']} | {k['unregistered_signed']} | {k['bindings_not_resolving']} | "
            f"{k['registered_without_file']} | {k['integrity_check']} |",
            "",
            "A manifest registered without a file is harmless by design (registration comes before the "
            "rename); the reverse would leave a signed file whose stripped copy cannot be resolved.",
            "",
        ]
    L += ["## Targets", "", "| target | met |", "|---|---|"]
    L += [f"| {t} | {'yes' if ok else '**no**'} |" for t, ok in res["targets"].items()]
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=20.0, help="per-input limit of the fuzz part (s)")
    ap.add_argument("--no-detector", action="store_true", help="fuzz the audit without the detector")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--upload-max-bytes", type=int, default=2 * 1024**2)
    ap.add_argument("--http-time-cap", type=float, default=900.0)
    ap.add_argument("--audit-workers", type=int, help="the server's audit_workers (default: its default)")
    ap.add_argument("--audit-queue", type=int, help="the server's audit_queue (default: its default)")
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--parts", default="fuzz,http,kills")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--failures", type=Path, default=FAILURES)
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    a = ap.parse_args(argv)
    parts = a.parts.split(",")
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="trustframe-robustness-"))
    res: dict = {
        "command": COMMAND + "".join(f" {x}" for x in (argv if argv is not None else sys.argv[1:])),
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    try:
        s = make_home(work / "home")
        originals = make_originals(work / "originals", s)
        print(f"originals: {', '.join(f'{o.name} {len(o.data)} B' for o in originals)}", flush=True)
        if "fuzz" in parts:
            if a.failures.exists():
                shutil.rmtree(a.failures)
            print(f"(a) fuzz: {a.mutants} mutants, {a.workers} workers, {a.timeout:g} s limit", flush=True)
            res["fuzz"] = run_fuzz(
                originals,
                s,
                mutants=a.mutants,
                workers=a.workers,
                timeout=a.timeout,
                seed=a.seed,
                detector=not a.no_detector,
                failures=a.failures,
                scratch=work / "fuzz",
            )
            print(
                json.dumps(
                    {
                        k: res["fuzz"][k]
                        for k in ("inputs", "escaped_exceptions", "crashes", "hangs", "verdicts")
                    }
                ),
                flush=True,
            )
        if "http" in parts:
            print(f"(b) http: {a.requests} requests at concurrency {a.concurrency}", flush=True)
            res["http"] = run_http(
                originals,
                s.home,
                work / "http",
                requests=a.requests,
                concurrency=a.concurrency,
                upload_max=a.upload_max_bytes,
                time_cap=a.http_time_cap,
                seed=a.seed,
                audit_workers=a.audit_workers,
                audit_queue=a.audit_queue,
            )
            print(
                json.dumps(
                    {k: res["http"][k] for k in ("sent", "5xx", "shed_503", "transport_errors", "status")}
                ),
                flush=True,
            )
        if "kills" in parts:
            print(f"(c) kills: {a.kills}", flush=True)
            res["kills"] = run_kills(work / "kills-home", work / "kills", kills=a.kills, seed=a.seed)
            print(
                json.dumps(
                    {
                        k: res["kills"][k]
                        for k in (
                            "killed",
                            "temp_files_left",
                            "half_written",
                            "unregistered_signed",
                            "integrity_check",
                        )
                    }
                ),
                flush=True,
            )
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"scratch kept in {work}")
    res["seconds"] = round(time.monotonic() - t0, 1)
    res["targets"] = targets(res)
    a.results.mkdir(parents=True, exist_ok=True)
    (a.results / "robustness.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    (a.results / "robustness.md").write_text(markdown(res))
    print(markdown(res))
    return res


if __name__ == "__main__":
    main()
