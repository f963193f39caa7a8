"""Reliability: bad files never stop a batch, a 500 never hurts a neighbour, a tampered file never
reads as clean, a kill leaves nothing half-done, and a watermark is bound only if it reads back."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import trustframe
from trustframe import media
from trustframe.provenance.reading import read_provenance
from trustframe.provenance.repository import open_repository
from trustframe.service.protect import protect_file
from trustframe.testing import scene

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parents[1]


@pytest.mark.slow
def test_mp4_without_codec_context_is_an_error_verdict_and_the_batch_goes_on(
    home, run_cli, media_files, tmp_path
):
    broken = tmp_path / "broken.mp4"
    shutil.copy(DATA / "no-codec-context.mp4", broken)  # a byte-deleted mutant: codec context None
    v = trustframe.audit(broken, settings=home)
    assert v.label == "error" and v.error.code == "corrupt-media"
    code, out, err = run_cli("audit", "--json", str(broken), str(media_files["jpg"]))
    lines = [json.loads(x) for x in out.splitlines()]
    assert [d["label"] for d in lines] == ["error", "no-evidence"] and "Traceback" not in err


def test_an_unexpected_failure_is_an_error_verdict(home, media_files, monkeypatch):
    from trustframe.service import evidence

    def explode(*a, **k):
        raise AttributeError("'NoneType' object has no attribute 'width'")

    monkeypatch.setattr(evidence, "read_provenance", explode)  # fault injection: a bug in a reader
    v = trustframe.audit(media_files["png"], settings=home)
    assert v.label == "error" and v.error.code == "internal-error" and "AttributeError" in v.error.message


@pytest.fixture
def server(home, monkeypatch):
    """A real uvicorn server on a free loopback port whose audit fails for files named boom.*"""
    import socket

    import uvicorn

    from trustframe.service import http
    from trustframe.service.http import audit_routes

    real = audit_routes.audit

    def audit(path, *, settings, filename):
        if filename.startswith("boom"):
            raise RuntimeError("a bug in the audit")
        return real(path, settings=settings, filename=filename)

    monkeypatch.setattr(audit_routes, "audit", audit)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    srv = uvicorn.Server(
        uvicorn.Config(http.create_app(home), host="127.0.0.1", port=port, log_level="error")
    )
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    while not srv.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    t.join(10)


@pytest.mark.slow
def test_a_500_is_problem_json_and_the_next_request_on_the_connection_succeeds(server, media_files):
    import httpx

    good = media_files["png"].read_bytes()
    with httpx.Client(base_url=server, timeout=30) as c:  # one keep-alive connection pool
        for _ in range(3):
            r = c.post("/v1/audit", files={"file": ("boom.png", good)})
            assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
            assert r.json()["status"] == 500 and "bug" not in r.text  # nothing internal leaks
            r = c.post("/v1/audit", files={"file": ("fine.png", good)})
            assert r.status_code == 200 and r.json()["label"] == "no-evidence"


# ---- tampered x watermark ---------------------------------------------------------------------


def add_text_chunk(png: Path, out: Path) -> Path:
    """Insert a tEXt chunk after IHDR: pixels unchanged, the embedded manifest's hash broken."""
    import struct
    import zlib

    data = png.read_bytes()
    body = b"Comment\x00edited"
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    end_ihdr = 8 + 8 + 13 + 4
    out.write_bytes(data[:end_ihdr] + chunk + data[end_ihdr:])
    return out


@pytest.fixture
def matrix(home, tmp_path):
    """Files for every (embedded manifest, watermark) combination."""
    from trustframe.provenance.keys import watermark_key
    from trustframe.provenance.signing import sign_file
    from trustframe.watermark import embed
    from trustframe.watermark.data import heldout_photos

    # a camera photo no model here trained on: with neither manifest nor mark it has no evidence
    src = media.write(heldout_photos()["coffee"][72:328, 172:428], tmp_path / "src.png")
    stranger = media.write(
        embed(media.read(src), payload="0123456789ab", key=watermark_key(home)).frames,
        tmp_path / "stranger.png",
    )  # our mark, a payload nobody registered
    f = {}
    f["absent", "absent"] = src
    f["absent", "found"] = stranger
    resolved = protect_file(
        src, tmp_path / "resolved.png", source_type="trainedAlgorithmicMedia", settings=home
    )
    assert resolved.watermark_verified
    f["valid", "resolved"] = resolved.path
    f["absent", "resolved"] = media.write(media.read(resolved.path), tmp_path / "stripped.png")
    f["invalid", "resolved"] = add_text_chunk(resolved.path, tmp_path / "tampered-resolved.png")
    f["valid", "absent"] = sign_file(src, tmp_path / "signed.png", settings=home).path
    f["invalid", "absent"] = add_text_chunk(f["valid", "absent"], tmp_path / "tampered.png")
    f["valid", "found"] = sign_file(stranger, tmp_path / "signed-stranger.png", settings=home).path
    f["invalid", "found"] = add_text_chunk(f["valid", "found"], tmp_path / "tampered-stranger.png")
    return f


EXPECTED = {
    ("absent", "absent"): "no-evidence",
    ("absent", "found"): "likely-ai-generated",
    ("absent", "resolved"): "ai-generated",
    ("valid", "absent"): "ai-generated",
    ("valid", "found"): "ai-generated",
    ("valid", "resolved"): "ai-generated",
    ("invalid", "absent"): "tampered",
    ("invalid", "found"): "tampered",
    ("invalid", "resolved"): "tampered",
}


def test_every_manifest_and_watermark_combination(home, matrix):
    for (embedded, mark), path in matrix.items():
        v = trustframe.audit(path, settings=home)
        assert v.label == EXPECTED[embedded, mark], (embedded, mark, v.reasons)
        if embedded != "absent":  # the file's own manifest is what the verdict reports
            assert v.provenance.present and not v.provenance.recovered
            assert (v.provenance.state == "invalid") == (embedded == "invalid")
        if mark == "absent":
            assert not v.watermark.detected
        else:
            assert v.watermark.detected
        if (embedded, mark) == ("invalid", "resolved"):  # both stories, side by side
            assert "assertion.dataHash.mismatch" in v.provenance.failures
            assert v.recovered_provenance.recovered and v.recovered_provenance.state == "trusted"
            assert any("fails validation" in r for r in v.reasons)
            assert any("resolves to a C2PA manifest" in r for r in v.reasons)
        else:
            assert v.recovered_provenance is None
        if (embedded, mark) == ("absent", "resolved"):
            assert v.provenance.recovered and v.provenance.state == "trusted"


# ---- kills, temp files, registration order -----------------------------------------------------


def test_stale_temp_files_of_dead_processes_are_swept_and_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{media.TEMP_PREFIX}{dead.pid}-abc.part.mp4"
    live = tmp_path / f"{media.TEMP_PREFIX}{os.getpid()}-def.part.mp4"
    other = tmp_path / ".someone-else.part.mp4"
    for p in (stale, live, other):
        p.write_bytes(b"x")
    media.write(scene(1), tmp_path / "out.png")
    assert not stale.exists() and live.exists() and other.exists()


def test_a_signed_file_is_registered_before_it_appears(home, tmp_path, monkeypatch):
    from trustframe.watermark import ALG

    # 128x192: on the 64x96 sample clip about 1 payload in 5 does not read back (measured: 8 of 40
    # random payloads; 0 of 25 at 96x128, 0 of 50 here), and an unverified payload is never bound
    src = media.write(media.Frames(scene(16, 128, 192), fps=24.0), tmp_path / "src.mp4")
    repo = open_repository(home)
    seen = []
    real_replace = os.replace

    def replace(src, dst):
        payloads = [b[1] for b in _payloads(repo, ALG)]
        seen.append((Path(dst).name, payloads))
        return real_replace(src, dst)

    monkeypatch.setattr(media.os, "replace", replace)
    r = protect_file(src, tmp_path / "out.mp4", source_type="trainedAlgorithmicMedia", settings=home)
    assert r.watermark_verified and ("out.mp4", [r.payload]) in seen


def _payloads(repo, alg):
    import sqlite3

    with sqlite3.connect(repo.path) as db:
        return db.execute("SELECT alg, value FROM bindings WHERE alg = ?", (alg,)).fetchall()


def test_a_failed_rename_takes_the_registration_back(home, media_files, tmp_path):
    from trustframe.watermark import ALG

    dst = tmp_path / "taken.mp4"
    dst.mkdir()
    (dst / "keep").write_text("a directory where the output should go")
    with pytest.raises(OSError):
        protect_file(media_files["mp4"], dst, source_type="trainedAlgorithmicMedia", settings=home)
    assert _payloads(open_repository(home), ALG) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".trustframe-")] == []


@pytest.mark.slow
def test_kill_9_during_sign_watermark_leaves_no_debris_and_no_unregistered_file(home, media_files, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "TRUSTFRAME_HOME": str(home.home)}
    exe = str(Path(sys.executable).parent / "trustframe")
    rng = random.Random(0)
    for i in range(4):
        p = subprocess.Popen(
            [exe, "sign", "--watermark", str(media_files["mp4"]), "-o", str(out / f"s{i}.mp4")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(2.0, 6.0))
        p.send_signal(signal.SIGKILL)
        p.wait()
    done = subprocess.run(
        [exe, "sign", "--watermark", str(media_files["mp4"]), "-o", str(out / "last.mp4")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # the last run swept them
    repo = open_repository(home)
    files = list(out.glob("*.mp4"))
    assert out / "last.mp4" in files
    for f in files:  # every file that appeared has its manifest in the repository
        p = read_provenance(f, home)
        assert p.state == "trusted" and repo.get(p.manifest_id) is not None, f.name


# ---- the watermark is bound only if it reads back ------------------------------------------------


def test_an_unreadable_watermark_is_not_bound(home, tmp_path, run_cli):
    noise = np.random.default_rng(0).integers(0, 256, (1, 256, 320, 3), dtype=np.uint8)
    src = media.write(noise, tmp_path / "noise.png")
    r = protect_file(src, tmp_path / "noise-signed.png", source_type="trainedAlgorithmicMedia", settings=home)
    assert r.watermark_verified is False and r.payload is None
    v = trustframe.audit(r.path, settings=home)
    assert v.provenance.soft_bindings == [] and v.label == "ai-generated"
    code, out, err = run_cli("sign", "--watermark", "--json", str(src), "-o", str(tmp_path / "cli.png"))
    assert code == 0 and json.loads(out)["watermark_verified"] is False
    assert "could not be read back" in err


# ---- batch audits: time limit and streaming ------------------------------------------------------


@pytest.mark.slow
def test_a_file_over_the_time_limit_becomes_an_error_verdict_and_the_batch_goes_on(home, media_files):
    from trustframe.service.audit import audit_many

    s = home.model_copy(update={"audit_timeout_s": 0.001})  # nothing can finish in 1 ms
    out = list(audit_many([media_files["png"], media_files["jpg"]], settings=s))
    assert [v.label for v in out] == ["error", "error"]
    assert {v.error.code for v in out} == {"timeout"} and "audit_timeout_s" in out[0].error.message
    ok = list(audit_many([media_files["png"], media_files["jpg"]], settings=home, workers=2))
    assert [v.label for v in ok] == ["no-evidence", "no-evidence"]


@pytest.mark.slow
def test_batch_inputs_are_streamed_not_listed(home, media_files):
    import itertools

    from trustframe.service.audit import audit_many

    endless = itertools.cycle([media_files["png"], media_files["webp"]])  # never ends: must be streamed
    first = list(itertools.islice(audit_many(endless, settings=home, workers=2, detector=False), 5))
    assert [v.file for v in first] == [str(media_files[k]) for k in ("png", "webp", "png", "webp", "png")]
