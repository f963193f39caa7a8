"""Provenance speed: our layers next to the bare c2pa-python call on the same file.

    python benchmarks/provenance.py [--repeats 5]

Measures, for a 1 MB PNG and 5 MB / 50 MB H.264 MP4s made here: signing (`sign_file` vs
`c2pa.Builder.sign`), reading + validation (`read_provenance` vs `c2pa.Reader`), and a full
audit in-process, through the CLI (a `trustframe audit --json` process) and through HTTP (a
`trustframe serve` process on localhost, `POST /v1/audit`), each against bare read+validate.
Writes benchmarks/results/provenance.json and provenance.md. Median wall time of `--repeats`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from trustframe import media
from trustframe.provenance.keys import init_keys
from trustframe.provenance.manifest import build_manifest, c2pa_context
from trustframe.provenance.reading import read_provenance
from trustframe.provenance.signing import make_signer, sign_file
from trustframe.service.audit import audit_file
from trustframe.settings import load_settings

RESULTS = Path(__file__).parent / "results"


def make_png(path: Path, nbytes: int) -> Path:
    side = int((nbytes / 3) ** 0.5) + 1
    rng = np.random.default_rng(0)
    return media.write(rng.integers(0, 256, (1, side, side, 3), dtype=np.uint8), path)


def make_mp4(path: Path, nbytes: int) -> Path:
    """Noise-heavy 640x360 H.264 at high quality until the file reaches about `nbytes`."""
    rng = np.random.default_rng(0)
    frames = max(8, nbytes // 210_000)
    base = rng.integers(0, 256, (8, 360, 640, 3), dtype=np.uint8)
    data = np.stack([np.roll(base[i % 8], 7 * i, axis=1) for i in range(frames)])
    media.encode_video(data, path, fps=24, crf=12, preset="ultrafast")
    return path


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bare_sign(s, src: Path, dst: Path, mime: str) -> None:
    import c2pa

    manifest = build_manifest(title=dst.name, source_type="trainedAlgorithmicMedia")
    with c2pa_context(s) as ctx, c2pa.Builder.from_json(json.dumps(manifest), context=ctx) as b, \
            make_signer(s) as signer, open(src, "rb") as fi, open(dst, "w+b") as fo:
        b.sign(signer, mime, fi, fo)


def bare_read(s, path: Path, mime: str) -> None:
    import c2pa

    with c2pa_context(s) as ctx, open(path, "rb") as f, c2pa.Reader(mime, f, context=ctx) as r:
        r.get_validation_state()


def measure(name: str, src: Path, mime: str, work: Path, s, exe: Path, client, repeats: int) -> dict:
    signed = work / f"signed-{src.name}"
    sign_file(src, signed, settings=s)
    assert read_provenance(signed, s).state == "trusted"
    r = {"case": name, "bytes": src.stat().st_size}
    r["sign_bare_s"] = timed(lambda: bare_sign(s, src, work / f"bare-{src.name}", mime), repeats)
    r["sign_s"] = timed(lambda: sign_file(src, work / f"ours-{src.name}", settings=s), repeats)
    r["read_bare_s"] = timed(lambda: bare_read(s, signed, mime), repeats)
    r["read_s"] = timed(lambda: read_provenance(signed, s), repeats)
    r["audit_api_s"] = timed(lambda: audit_file(signed, s), repeats)

    def cli():
        out = subprocess.run([str(exe), "audit", str(signed), "--json"], capture_output=True,
                             check=True, text=True).stdout
        assert json.loads(out)["label"] == "ai-generated"

    def http():
        with open(signed, "rb") as f:
            resp = client.post("/v1/audit", files={"file": (signed.name, f, mime)})
        assert resp.status_code == 200 and resp.json()["label"] == "ai-generated", resp.text

    r["audit_cli_s"] = timed(cli, repeats)
    r["audit_http_s"] = timed(http, repeats)
    return r


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tf-bench-"))
    os.environ["TRUSTFRAME_HOME"] = str(work / "home")
    s = load_settings()
    init_keys(s)
    exe = Path(sys.executable).with_name("trustframe")
    port = free_port()
    server = subprocess.Popen([str(exe), "serve", "--port", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    import httpx

    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300)
    for _ in range(100):
        try:
            if client.get("/healthz").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)

    cases = [("PNG 1 MB", make_png(work / "in.png", 1_000_000), "image/png"),
             ("MP4 5 MB", make_mp4(work / "in5.mp4", 5_000_000), "video/mp4"),
             ("MP4 50 MB", make_mp4(work / "in50.mp4", 50_000_000), "video/mp4")]
    rows = []
    try:
        for name, src, mime in cases:
            rows.append(measure(name, src, mime, work, s, exe, client, args.repeats))
            print(json.dumps(rows[-1]))
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    RESULTS.mkdir(exist_ok=True)
    meta = {"command": f"python benchmarks/provenance.py --repeats {args.repeats}",
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"), "statistic": f"median of {args.repeats}"}
    (RESULTS / "provenance.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [f"# Provenance speed\n\n`{meta['command']}` — {meta['machine']}, {meta['date']}, "
             f"{meta['statistic']}, seconds. Ratio = ours / bare c2pa-python on the same file; audits "
             "are compared with bare read+validate (they also hash, decode frames and, through the "
             "CLI, start a process).\n",
             "| file | sign bare | sign ours (×) | read bare | read ours (×) | audit API (×) | audit CLI (×) "
             "| audit HTTP (×) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sb, rb = r["sign_bare_s"], r["read_bare_s"]
        lines.append(
            f"| {r['case']} ({r['bytes'] / 1e6:.1f} MB) | {sb:.3f} "
            f"| {r['sign_s']:.3f} ({r['sign_s'] / sb:.2f}) "
            f"| {rb:.3f} | {r['read_s']:.3f} ({r['read_s'] / rb:.2f}) "
            f"| {r['audit_api_s']:.3f} ({r['audit_api_s'] / rb:.1f}) "
            f"| {r['audit_cli_s']:.3f} ({r['audit_cli_s'] / rb:.1f}) "
            f"| {r['audit_http_s']:.3f} ({r['audit_http_s'] / rb:.1f}) |")
    (RESULTS / "provenance.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
