"""Batch audit throughput: the local engine and Ray at 1 and 2 workers, next to decode only.

    nice -n 19 python benchmarks/batch.py [--files 40]

Makes a folder of `--files` files (70 % small images, PNG/JPEG/WebP 256x256; 30 % one-second
256x448 H.264 clips) in a temporary data directory, then measures files per second over the
whole folder for: decoding only (`trustframe.media.read` of the frames the audit samples, one
process), `trustframe.service.batch.run` with the local engine (`--workers 1`, `2`) and with
`--engine ray` (1 and 2 actors on a local Ray). Engine times include starting the worker
processes or actors and loading their models; the local Ray's own start is timed apart. The
audit runs as the CLI's default does (detector, watermark and C2PA on). Checks that
every engine gives the same verdicts. Writes benchmarks/results/batch.json and batch.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from trustframe import media
from trustframe.provenance.keys import init_keys
from trustframe.service.batch import run
from trustframe.settings import load_settings
from trustframe.testing import scene

RESULTS = Path(__file__).parent / "results"


def make_folder(d: Path, n: int) -> dict[str, int]:
    clips = round(0.3 * n)
    for i in range(n - clips):
        media.write(scene(1, 256, 256, i), d / f"img{i:03d}.{('png', 'jpg', 'webp')[i % 3]}")
    for i in range(clips):
        media.write(media.Frames(scene(24, 256, 448, 1000 + i), fps=24.0), d / f"clip{i:03d}.mp4")
    return {"images": n - clips, "clips": clips, "bytes": sum(p.stat().st_size for p in d.iterdir())}


def verdicts(out: Path) -> dict:
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    return {d["file"]: (d["label"], d["sha256"], d["reasons"]) for d in lines}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=40)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tf-bench-batch-"))
    os.environ["TRUSTFRAME_HOME"] = str(work / "home")
    s = load_settings()
    init_keys(s)
    folder = work / "in"
    folder.mkdir()
    made = make_folder(folder, args.files)
    rows, seen = [], {}
    try:
        t = time.perf_counter()
        for p in sorted(folder.iterdir()):
            media.read(p, max_frames=s.audit_frames, settings=s)
        dt = time.perf_counter() - t
        rows.append({"engine": "decode only (media.read)", "workers": 1, "seconds": dt,
                     "files_per_s": args.files / dt})
        print(json.dumps(rows[-1]), flush=True)
        for engine in ("local", "ray"):
            for workers in (1, 2):
                row = {"engine": engine, "workers": workers}
                if engine == "ray":
                    try:
                        import ray

                        from trustframe.service.ray_engine import _start
                    except ImportError:
                        print("ray: not installed (pip install 'trustframe[ray]'), skipped", file=sys.stderr)
                        continue
                    t = time.perf_counter()
                    _start(ray, None, workers)  # timed apart: a cluster is started once, not per run
                    row["ray_start_s"] = time.perf_counter() - t
                out = work / f"{engine}-{workers}.jsonl"
                try:
                    summary = run([folder], settings=s, workers=workers, engine=engine, output=out)
                finally:
                    if engine == "ray":
                        ray.shutdown()
                assert summary.audited == args.files, summary.line()
                row.update(seconds=summary.elapsed, files_per_s=summary.rate,
                           labels=dict(summary.labels))
                seen[f"{engine}-{workers}"] = verdicts(out)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    reference = next(iter(seen.values()))
    same = all(v == reference for v in seen.values())
    RESULTS.mkdir(exist_ok=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    meta = {"command": f"python benchmarks/batch.py --files {args.files}",
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"), "folder": made,
            "same_verdicts_across_engines": same, "load_average_1min_at_end": load}
    (RESULTS / "batch.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [
        "# Batch audit throughput\n",
        f"`{meta['command']}` — {meta['machine']}, {meta['date']}. Folder: {made['images']} images "
        f"(256x256 PNG/JPEG/WebP) and {made['clips']} one-second 256x448 H.264 clips, "
        f"{made['bytes'] / 1e6:.1f} MB. Detector, watermark and C2PA on. Engine times include starting "
        f"workers or actors and loading their models; a local Ray's own start is timed apart. Same "
        f"verdicts from every engine: {'yes' if same else 'NO'}. 1-min load average at the end: "
        f"{'n/a' if load is None else f'{load:.1f}'} (with other jobs running: compare rows with each "
        "other, not with other machines).\n",
        "| engine | workers | files/s | seconds | Ray start (s) |", "|---|---|---|---|---|"]
    for r in rows:
        start = f"{r['ray_start_s']:.1f}" if "ray_start_s" in r else ""
        lines.append(f"| {r['engine']} | {r['workers']} | {r['files_per_s']:.2f} | {r['seconds']:.1f} "
                     f"| {start} |")
    (RESULTS / "batch.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
