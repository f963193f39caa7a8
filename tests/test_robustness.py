"""Robustness, the short version of benchmarks/robustness.py: mutated media never escape the audit,
hostile uploads under concurrent load never get a 5xx nor hurt a neighbour's connection, and kill -9
while signing leaves no temp file, no half-written output and no unregistered signed file."""

from __future__ import annotations

import collections
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))  # not a package
import mutants  # noqa: E402
import robustness  # noqa: E402


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """(settings, small unsigned / signed / signed+watermarked files of each kind)."""
    d = tmp_path_factory.mktemp("robustness")
    s = robustness.make_home(d / "home")
    return s, robustness.make_originals(d / "originals", s)


def test_every_mutation_kind_is_made_for_every_container(originals):
    _, files = originals
    import random

    rng = random.Random(0)
    names = collections.defaultdict(set)
    for o in files:
        for _ in range(200):
            name, data = mutants.mutate(o.data, o.kind, rng)
            assert isinstance(data, bytes)
            names[o.kind].add(name)
    common = {"bit-flip", "delete", "duplicate", "truncate"}
    assert names["mp4"] >= common | {"box-size", "box-type"} and names["mov"] >= {"box-size", "box-type"}
    assert names["png"] >= common | {"chunk-length", "chunk-type"}
    assert names["jpg"] >= common | {"marker", "segment-length"} and "riff-size" in names["webp"]


@pytest.mark.slow
def test_mutated_media_always_get_a_verdict(originals, tmp_path):
    """200 mutants through audit_file in this process: a Verdict every time, well within the limit."""
    s, files = originals
    by_outcome = collections.Counter()
    slowest = 0.0
    with robustness.Capture() as capture:
        for i, ext, data, (o, mutation) in robustness.mutant_jobs(files, 200, seed=1):
            p = tmp_path / f"input.{ext}"
            p.write_bytes(data)
            r = robustness.audit_one(p, s, True, capture)
            assert r["outcome"] == "verdict", (i, o.name, mutation, r.get("traceback"))
            assert (r["label"] == "error") == (r["code"] is not None)
            by_outcome[r["label"]] += 1
            slowest = max(slowest, r["seconds"])
    assert slowest < 20, slowest
    assert by_outcome["error"] and sum(by_outcome.values()) == 200  # many mutants are unreadable, not all
    assert len(by_outcome) > 2


def test_the_harness_counts_an_exception_that_escapes_the_audit(originals, tmp_path, monkeypatch):
    from trustframe.service import audit as audit_mod

    s, files = originals

    def explode(*a, **k):
        raise KeyboardInterrupt  # a BaseException: audit_file's own catch-all lets it through

    monkeypatch.setattr(audit_mod, "audit_file", explode)
    p = tmp_path / "x.png"
    p.write_bytes(files[0].data)
    with robustness.Capture() as capture:
        r = robustness.audit_one(p, s, False, capture)
    assert r["outcome"] == "escaped" and r["exception"] == "KeyboardInterrupt" and "explode" in r["traceback"]


@pytest.fixture
def server(originals, spool):
    """A real uvicorn server on a free loopback port (upload_max_bytes 1 MB), in a thread; spooled
    uploads go to a private temp folder so that leftovers can be counted."""
    import uvicorn

    from trustframe.service.http import create_app

    s, _ = originals
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = s.model_copy(update={"upload_max_bytes": 1024**2})
    srv = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    while not srv.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", settings, spool
    srv.should_exit = True
    t.join(10)


@pytest.mark.slow
def test_hostile_uploads_under_load_never_get_a_5xx(server, originals):
    url, settings, spool = server
    _, files = originals
    cases = robustness.http_cases(files, 100, settings.upload_max_bytes, seed=1)
    assert {c.category for c in cases} >= {"valid", "mutated", "junk", "empty", "oversized", "hostile-name"}
    r = robustness.load(url, cases, concurrency=8, time_cap=120)
    assert r["sent"] == 100
    assert r["5xx"] == 0 and r["gave_up_after_retries"] == 0, r["by_category"]
    assert r["collateral_transport_errors"] == 0, r["transport_error_kinds"]
    assert r["client_errors"] == 0 and r["responses_leaking_tracebacks"] == 0
    assert r["error_responses_not_problem_json"] == 0
    assert r["by_category"]["valid"] == {"200": r["by_category"]["valid"]["200"]}
    assert set(r["by_category"]["oversized"]) <= {"413", "transport-error"}
    robustness.wait_healthy(url, 10)
    assert list(spool.iterdir()) == []  # every spooled upload was removed


@pytest.mark.slow
def test_kill_9_while_signing_leaves_no_temp_file_and_no_unregistered_output(tmp_path):
    r = robustness.run_kills(
        tmp_path / "home", tmp_path / "work", kills=2, seed=1, kinds=("png",), log=lambda *_: None
    )
    assert r["final_run_exit_code"] == 0, r["final_run_stderr"]
    assert r["temp_files_left"] == 0, r["temp_files_left_names"]
    assert r["half_written"] == 0, r["half_written_details"]
    assert r["unregistered_signed"] == 0, r["unregistered_names"]
    assert r["bindings_not_resolving"] == 0 and r["integrity_check"] == "ok"
    assert r["outputs"] >= 2  # the calibration run and the final run at least
