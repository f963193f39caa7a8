"""Batch audits into a JSON Lines file: survive kill -9, resume, --by-hash, the Ray engine."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from trustframe import media
from trustframe.errors import ConfigError
from trustframe.service.batch import JsonlOutput, Summary, run
from trustframe.service.verdict import Verdict
from trustframe.testing import scene

EXE = str(Path(sys.executable).parent / "trustframe")


def lines_of(out: Path) -> list[dict]:
    return [json.loads(x) for x in out.read_text().splitlines()]


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_audits_every_file_exactly_once(home, tmp_path):
    folder = tmp_path / "in"
    for i in range(12):
        media.write(scene(1, 64, 96, seed=i), folder / f"f{i:02d}.{('png', 'jpg', 'webp')[i % 3]}")
    out = tmp_path / "out.jsonl"
    cmd = [EXE, "audit", str(folder), "--json", "-o", str(out), "--no-detector"]
    env = {**os.environ, "TRUSTFRAME_HOME": str(home.home)}
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.01)
        p.send_signal(signal.SIGKILL)  # the real thing: no handler, no flush, no cleanup
        p.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)  # its orphaned audit workers, if any are left
    first = out.read_bytes()
    done_before = first.count(b"\n")
    assert 3 <= done_before < 12, "the run was not killed mid-way"
    with open(out, "ab") as f:  # and a crash in the middle of writing a line
        f.write(b'{"schema":"trustframe.verdict/1","file":"' + str(folder).encode() + b'/f11.webp","med')
    r = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes().startswith(first[:first.rindex(b"\n") + 1])  # complete lines untouched
    lines = lines_of(out)  # every line parses: the cut-short one was removed
    assert Counter(d["source"]["path"] for d in lines) == {str(f): 1 for f in sorted(folder.iterdir())}
    assert all(Verdict.model_validate(d).label == "no-evidence" for d in lines)
    assert f"audited {12 - done_before} file(s)" in r.stderr and f"{done_before} skipped" in r.stderr


@pytest.mark.slow
def test_by_hash_skips_renamed_and_copied_files_and_the_summary_line(home, run_cli, tmp_path):
    folder = tmp_path / "in"
    for name, seed in (("a.png", 1), ("b.jpg", 2), ("c.webp", 3)):
        media.write(scene(1, 64, 96, seed=seed), folder / name)
    (folder / "junk.png").write_bytes(b"not a png")
    out = tmp_path / "out.jsonl"
    args = ("audit", str(folder), "-o", str(out), "--resume", "--by-hash", "--no-detector")
    code, stdout, err = run_cli(*args)
    assert code == 3 and stdout == ""  # junk.png: an error verdict; the verdicts went to the file
    assert "audited 4 file(s)" in err and "0 skipped" in err and "files/s" in err
    assert "labels: no-evidence 3, error 1; errors: 1" in err
    lines = lines_of(out)
    assert all(len(d["source"]["sha256"]) == 64 for d in lines)
    assert {d["label"] for d in lines if d["file"].endswith("junk.png")} == {"error"}

    shutil.copy(folder / "a.png", folder / "copy-of-a.png")
    (folder / "b.jpg").rename(folder / "renamed.jpg")
    code, _, err = run_cli(*args)
    assert code == 0 and "audited 0 file(s)" in err and "5 skipped" in err  # junk too, by its hash
    assert len(lines_of(out)) == 4
    code, _, err = run_cli(*args[:-2], "--no-detector")  # by path: the new names are new files
    assert code == 0 and "audited 2 file(s)" in err and "3 skipped" in err
    assert sorted(Path(d["file"]).name for d in lines_of(out)[4:]) == ["copy-of-a.png", "renamed.jpg"]


def test_output_repairs_a_garbage_tail_and_is_locked(tmp_path):
    out = tmp_path / "o.jsonl"
    v = Verdict(file="x.png", label="no-evidence", sha256="ab" * 32)
    with JsonlOutput(out) as o:
        assert o.load_done() == set()
        o.write(v, {"path": "/x.png", "size": 1, "mtime_ns": 2})
        with pytest.raises(ConfigError, match="another run"), JsonlOutput(out):
            pass
    good = out.read_bytes()
    out.write_bytes(good + b"not json\n" + b"\0" * 100)  # a power loss can leave zeros
    with JsonlOutput(out) as o:
        assert len(o.load_done(by_hash=True)) == 1 and o.dropped_tail == 109
    assert out.read_bytes() == good
    out.write_bytes(good + b'{"half')
    with JsonlOutput(out) as o:
        o.repair_tail()  # without --resume: only the cut-short last line goes
    assert out.read_bytes() == good


def test_usage_errors(run_cli, home, tmp_path, monkeypatch):
    code, _, err = run_cli("audit", "x.png", "--resume")
    assert code == 2 and "--resume needs -o/--output" in err
    code, _, err = run_cli("audit", "x.png", "-o", str(tmp_path / "o"), "--by-hash")
    assert code == 2 and "--by-hash needs --resume" in err
    code, _, err = run_cli("audit", "x.png", "--ray-address", "auto")
    assert code == 2 and "--ray-address needs --engine ray" in err
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    code, _, err = run_cli("audit", "x.png", "--engine", "ray")
    assert code == 2 and "pip install 'trustframe[ray]'" in err and err.count("\n") == 1


@pytest.mark.slow
def test_the_ray_engine_gives_the_same_verdicts_as_the_local_engine(home, media_files, tmp_path):
    pytest.importorskip("ray.data", reason="Ray is not installed: pip install 'trustframe[ray]'")
    folder = tmp_path / "mixed"
    folder.mkdir()
    for ext in ("png", "jpg", "webp", "mp4"):
        shutil.copy(media_files[ext], folder / f"sample.{ext}")
    (folder / "junk.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    local = Summary()
    run([folder], settings=home, output=tmp_path / "local.jsonl", summary=local)
    ray = run([folder], settings=home, output=tmp_path / "ray.jsonl", engine="ray", workers=2)
    assert ray.labels == local.labels and ray.errors == 1

    def verdicts(out):
        return {d["file"]: (d["label"], d["sha256"], d["reasons"], d["source"]) for d in lines_of(out)}

    assert verdicts(tmp_path / "ray.jsonl") == verdicts(tmp_path / "local.jsonl")
    assert any("watermark" in r for d in lines_of(tmp_path / "ray.jsonl") for r in d["reasons"])
