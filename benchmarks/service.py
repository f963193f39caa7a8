"""The HTTP service under load: throughput and latency of `POST /v1/audit`, memory, errors.

    python benchmarks/service.py [--image-requests 20 40 80] [--clip-requests 4 8 16] [--total 1000]

Starts `trustframe serve` on 127.0.0.1 with a fresh data directory and the default service
settings (audit_workers 2, audit_queue 8; upload_max_bytes 32 MB so that a 413 is cheap to
provoke), then sends audits of a small image (256x256 PNG) and of a 720p clip (1280x720, 24
frames, H.264), both made here with `trustframe.media.write`, at concurrency 1, 4 and 16: a
closed loop, each client sending its next request when the last is answered, and waiting
`Retry-After` after a 503 as a polite client would. The request counts per level are fixed
(`--image-requests`, `--clip-requests`), so a level ends when they are sent. Then it tops up with
small images at concurrency 4 until `--total` audit requests have been sent, and compares the
server's memory after 10 requests with after `--total`: RSS and PSS of the server process, and
PSS of its audit processes (children of the forkserver, which share its pages).

Errors are counted apart from the intended answers: 503 (shed under load), and a few requests
meant to fail (413 too large, 422 no `file` field, 415 not multipart). Anything else, a
transport failure or another status, is an error. Writes benchmarks/results/service.json and
service.md. Latency percentiles are over the 200 answers (with few requests, p99 is the maximum).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from trustframe import media
from trustframe.provenance.keys import init_keys
from trustframe.settings import load_settings
from trustframe.testing import scene

RESULTS = Path(__file__).parent / "results"
LEVELS = (1, 4, 16)
UPLOAD_MAX_BYTES = 32 * 1024**2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- memory of the server's process tree, from /proc -------------------------------------------


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    return kids


def _mem_kb(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                out[key.lower()] = int(rest.split()[0])
    except OSError:
        pass
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def server_memory(pid: int) -> dict:
    """MB: the server process (RSS, PSS), and PSS of the forkserver and of the audit workers."""
    kids = _children()
    # The forkserver is the server's child; the audit workers are forked by it (and so carry its
    # command line).
    forkservers = [p for p in kids.get(pid, []) if "multiprocessing.forkserver" in _cmdline(p)]
    workers = [w for f in forkservers for w in kids.get(f, [])]
    main = _mem_kb(pid)
    return {"server_rss_mb": round(main.get("rss", 0) / 1024, 1),
            "server_pss_mb": round(main.get("pss", 0) / 1024, 1),
            "forkserver_pss_mb": round(sum(_mem_kb(p).get("pss", 0) for p in forkservers) / 1024, 1),
            "audit_workers": len(workers),
            "audit_workers_pss_mb": round(sum(_mem_kb(p).get("pss", 0) for p in workers) / 1024, 1)}


# ---- load ----------------------------------------------------------------------------------------


class Tally:
    def __init__(self):
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.transport_errors = 0
        self.sent = 0

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def shed(self) -> int:
        return self.statuses.get(503, 0)

    @property
    def other_errors(self) -> int:
        return self.transport_errors + sum(n for s, n in self.statuses.items() if s not in (200, 503))


async def closed_loop(base: str, name: str, data: bytes, requests: int,
                      concurrency: int) -> tuple[Tally, float]:
    """`requests` audits of `data` from `concurrency` clients; (tally, wall seconds)."""
    tally = Tally()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as client:
        async def one_client():
            while tally.sent < requests:
                tally.sent += 1
                t = time.perf_counter()
                try:
                    r = await client.post("/v1/audit", files={"file": (name, data)})
                except httpx.HTTPError:
                    tally.transport_errors += 1
                    continue
                tally.statuses[r.status_code] = tally.statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    tally.latencies.append(time.perf_counter() - t)
                elif r.status_code == 503:
                    await asyncio.sleep(float(r.headers.get("retry-after", "1")))

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        return tally, time.perf_counter() - started


def summarize(kind: str, size: int, concurrency: int, tally: Tally, seconds: float) -> dict:
    lat = np.array(tally.latencies) if tally.latencies else np.array([np.nan])
    p50, p95, p99 = (float(np.percentile(lat, q)) for q in (50, 95, 99))
    return {"media": kind, "upload_bytes": size, "concurrency": concurrency, "requests": tally.sent,
            "ok": tally.ok, "shed_503": tally.shed, "other_errors": tally.other_errors,
            "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
            "seconds": round(seconds, 2), "ok_per_s": round(tally.ok / seconds, 3),
            "p50_s": round(p50, 3), "p95_s": round(p95, 3), "p99_s": round(p99, 3)}


def intended_failures(base: str) -> dict:
    """Requests meant to fail: (expected status -> [statuses seen]); a transport error shows as 0."""
    big = b"\0" * (UPLOAD_MAX_BYTES + 1024)
    cases = {413: lambda c: c.post("/v1/audit", files={"file": ("big.png", big)}),
             422: lambda c: c.post("/v1/audit", files={"upload": ("a.png", b"x")}),
             415: lambda c: c.post("/v1/audit", content=b"raw", headers={"content-type": "image/png"})}
    seen: dict[int, list[int]] = {}
    with httpx.Client(base_url=base, timeout=120) as c:
        for status, send in cases.items():
            for _ in range(3):
                try:
                    seen.setdefault(status, []).append(send(c).status_code)
                except httpx.HTTPError:
                    seen.setdefault(status, []).append(0)
    return seen


# ---- the run -------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image-requests", type=int, nargs=3, default=[20, 40, 80],
                    help="requests at concurrency 1, 4, 16 (small image)")
    ap.add_argument("--clip-requests", type=int, nargs=3, default=[4, 8, 16],
                    help="requests at concurrency 1, 4, 16 (720p clip)")
    ap.add_argument("--total", type=int, default=1000, help="audit requests before the last memory reading")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="trustframe-bench-service-"))
    env = {**os.environ, "TRUSTFRAME_HOME": str(work / "home"),
           "TRUSTFRAME_UPLOAD_MAX_BYTES": str(UPLOAD_MAX_BYTES)}
    for k in ("TRUSTFRAME_AUDIT_WORKERS", "TRUSTFRAME_AUDIT_QUEUE", "TRUSTFRAME_RATE_LIMIT_PER_MINUTE",
              "TRUSTFRAME_API_KEY"):
        env.pop(k, None)
    os.environ["TRUSTFRAME_HOME"] = env["TRUSTFRAME_HOME"]
    settings = load_settings()
    init_keys(settings)
    image = media.write(scene(1, 256, 256), work / "small.png").read_bytes()
    clip = media.write(media.Frames(scene(24, 720, 1280, seed=1), fps=24.0), work / "clip720p.mp4")
    clip = clip.read_bytes()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    exe = Path(sys.executable).parent / "trustframe"
    log = open(work / "server.log", "wb")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen([str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=log)
    load_before = os.getloadavg()
    started = time.monotonic()
    try:
        with httpx.Client(base_url=base, timeout=5) as c:
            while True:
                try:
                    if c.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() - started > 300:
                    raise SystemExit("the server did not start; see " + str(work / "server.log"))
                time.sleep(0.2)
        startup_s = time.monotonic() - started
        sent = 0

        warm, warm_s = asyncio.run(closed_loop(base, "small.png", image, 10, 1))
        sent += warm.sent
        memory_10 = server_memory(server.pid)
        first = summarize("warm-up: small image", len(image), 1, warm, warm_s)

        runs = []
        kinds = (("small image 256x256 PNG", "small.png", image, args.image_requests),
                 ("720p clip, 24 frames H.264", "clip720p.mp4", clip, args.clip_requests))
        for kind, name, data, counts in kinds:
            for concurrency, n in zip(LEVELS, counts, strict=True):
                tally, seconds = asyncio.run(closed_loop(base, name, data, n, concurrency))
                sent += tally.sent
                runs.append(summarize(kind, len(data), concurrency, tally, seconds))
                print(json.dumps(runs[-1]), flush=True)

        intended = intended_failures(base)
        sent += sum(len(v) for v in intended.values())
        top_up = max(0, args.total - sent)
        tally, seconds = asyncio.run(closed_loop(base, "small.png", image, top_up, 4))
        sent += tally.sent
        rest = summarize("top-up: small image", len(image), 4, tally, seconds)
        memory_total = server_memory(server.pid)
        metrics = httpx.get(f"{base}/metrics", timeout=30).text
    finally:
        server.terminate()
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    load_after = os.getloadavg()

    intended_ok = {str(k): sum(1 for s in v if s == k) for k, v in intended.items()}
    intended_wrong = sum(1 for k, v in intended.items() for s in v if s != k)
    other_errors = sum(r["other_errors"] for r in [first, *runs, rest]) + intended_wrong
    shed = sum(r["shed_503"] for r in [first, *runs, rest])
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "nice": os.nice(0),
                    "loadavg_1m_before": round(load_before[0], 2),
                    "loadavg_1m_after": round(load_after[0], 2)},
        "server": {"settings": "defaults (audit_workers 2, audit_queue 8, audit_timeout_s 300), "
                               f"upload_max_bytes {UPLOAD_MAX_BYTES}", "startup_s": round(startup_s, 1)},
        "runs": runs, "warm_up": first, "top_up": rest,
        "requests_sent": sent, "shed_503": shed, "intended_failures": intended_ok,
        "other_errors": other_errors,
        "memory_after_10": memory_10, f"memory_after_{sent}": memory_total,
        "server_audits_total": {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines()
                                if line.startswith("trustframe_audits_total{")},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "service.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "service.md").write_text(markdown(result, sent))
    print((RESULTS / "service.md").read_text())
    shutil.rmtree(work, ignore_errors=True)


def markdown(r: dict, sent: int) -> str:
    m = r["machine"]
    lines = [
        "# HTTP service under load",
        "",
        f"`python benchmarks/service.py`: `trustframe serve` on 127.0.0.1, {r['server']['settings']}; "
        f"{m['cpus']} CPUs, Python {m['python']}, run at nice {m['nice']} beside other jobs (1-min load "
        f"average {m['loadavg_1m_before']} before, {m['loadavg_1m_after']} after), so absolute numbers are "
        "low. Closed loop: each client sends its next request when the last is answered, and waits "
        "Retry-After after a 503. Latency over the 200 answers.",
        "",
        "| media | upload | concurrency | requests | 200 | 503 | other errors | audits/s | p50 s | p95 s "
        "| p99 s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for x in r["runs"]:
        lines.append(f"| {x['media']} | {x['upload_bytes'] / 1e6:.2f} MB | {x['concurrency']} | "
                     f"{x['requests']} | {x['ok']} | {x['shed_503']} | {x['other_errors']} | "
                     f"{x['ok_per_s']:.2f} | {x['p50_s']:.2f} | {x['p95_s']:.2f} | {x['p99_s']:.2f} |")
    a, b = r["memory_after_10"], r[f"memory_after_{sent}"]
    lines += [
        "",
        f"Memory (MB) after 10 requests and after {sent}:",
        "",
        "| after | server RSS | server PSS | forkserver PSS | audit workers | workers PSS |",
        "|---:|---:|---:|---:|---:|---:|",
        *(f"| {n} | {x['server_rss_mb']} | {x['server_pss_mb']} | {x['forkserver_pss_mb']} | "
          f"{x['audit_workers']} | {x['audit_workers_pss_mb']} |" for n, x in ((10, a), (sent, b))),
        "",
        f"Requests sent: {sent}; shed with 503: {r['shed_503']}; intended failures answered as meant: "
        f"{r['intended_failures']}; other errors (transport failures, unexpected statuses): "
        f"**{r['other_errors']}**. Server start to first answer: {r['server']['startup_s']} s. Warm-up "
        f"(first 10 small images, one at a time): p50 {r['warm_up']['p50_s']:.2f} s, max "
        f"{r['warm_up']['p99_s']:.2f} s. Top-up ({r['top_up']['requests']} small images at concurrency 4): "
        f"{r['top_up']['ok_per_s']:.2f} audits/s, p50 {r['top_up']['p50_s']:.2f} s.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
