"""Operating the HTTP service: the bounded audit pool (503 + Retry-After), the per-file time limit,
graceful shutdown, /metrics, request ids and JSON access logs, the rate limit, `serve --workers`."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from trustframe import media
from trustframe.service import http
from trustframe.service.audit import audit_file
from trustframe.service.workers import WorkerPool
from trustframe.settings import load_settings

TEXT = b"just some words\n"  # audits quickly to a verdict with label "error" (unsupported-media)


@pytest.fixture(autouse=True)
def no_service_settings_in_env(monkeypatch):
    for name in ("API_KEY", "CORS_ORIGINS", "UPLOAD_MAX_BYTES", "PUBLIC_URL", "AUDIT_WORKERS",
                 "AUDIT_QUEUE", "AUDIT_TIMEOUT_S", "RATE_LIMIT_PER_MINUTE"):
        monkeypatch.delenv(f"TRUSTFRAME_{name}", raising=False)


def held_audit(path, settings, *, display_name=None, detector=True):
    """Runs in a worker process: waits until the test creates `<home>/release`, then audits for
    real. Makes "an audit is running" last exactly as long as a test needs, at no CPU cost."""
    deadline = time.monotonic() + 60
    while not (settings.home / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return audit_file(path, settings, display_name=display_name, detector=detector)


def free_port() -> int:
    """A loopback TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(app):
    """`app` under a real uvicorn server on a free loopback port: (base URL, server)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive()


def metric(text: str, name: str, **labels) -> float | None:
    """The value of one sample in a Prometheus text exposition, or None."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def assert_problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and "Traceback" not in r.text
    return body


def png_bytes(tmp_path: Path) -> bytes:
    rng = np.random.default_rng(1)
    return media.write(rng.integers(0, 256, (1, 48, 64, 3), dtype=np.uint8), tmp_path / "in.png").read_bytes()


def post_in_thread(base: str, name: str, data: bytes, results: dict) -> threading.Thread:
    def run():
        with httpx.Client(base_url=base, timeout=120) as c:
            results[name] = c.post("/v1/audit", files={"file": (name, data)})

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


# ---------------------------------------------------------------------------------------------
# The pool: 503 when full, time limit, graceful shutdown


@pytest.mark.slow
def test_a_full_pool_and_queue_answer_503_with_retry_after(home, spool, tmp_path):
    s = load_settings(audit_workers=1, audit_queue=1)
    pool = WorkerPool(1, s, queue=1, target=held_audit, warm=False)
    png = png_bytes(tmp_path)
    results: dict[str, httpx.Response] = {}
    with serving(http.create_app(s, audit_pool=pool)) as (base, _), httpx.Client(base_url=base) as c:
        def gauge(name):
            return metric(c.get("/metrics").text, name)

        running = post_in_thread(base, "running.png", png, results)
        wait_for(lambda: gauge("trustframe_audits_in_flight") == 1, "the first audit to run")
        queued = post_in_thread(base, "queued.txt", TEXT, results)
        wait_for(lambda: gauge("trustframe_audits_queued") == 1, "the second audit to wait")
        for data in (TEXT, png + b"\0" * 300_000):  # shed whatever the size, before it is spooled
            r = c.post("/v1/audit", files={"file": ("shed.png", data)})
            body = assert_problem(r, 503)
            assert 1 <= int(r.headers["retry-after"]) <= 60 and "busy" in body["detail"]
        (home.home / "release").touch()
        running.join(120)
        queued.join(120)
        assert results["running.png"].status_code == 200
        assert results["running.png"].json()["label"] == "no-evidence"
        assert results["queued.txt"].json()["error"]["code"] == "unsupported-media"
        text = c.get("/metrics").text
        assert metric(text, "trustframe_audits_shed_total") == 2
        assert metric(text, "trustframe_http_requests_total", route="/v1/audit", status="503") == 2
        assert metric(text, "trustframe_http_requests_total", route="/v1/audit", status="200") == 2
        assert metric(text, "trustframe_audits_in_flight") == metric(text, "trustframe_audits_queued") == 0
        assert c.post("/v1/audit", files={"file": ("again.txt", TEXT)}).status_code == 200  # room again
    assert list(spool.iterdir()) == []


@pytest.mark.slow
def test_a_file_over_the_time_limit_is_an_error_verdict_and_its_worker_is_replaced(home, spool, tmp_path):
    s = load_settings(audit_workers=1, audit_timeout_s=0.001)  # nothing finishes in 1 ms
    app = http.create_app(s)
    with TestClient(app) as c:
        pool = app.state.audit_pool
        wait_for(lambda: len(pool.pids()) == 1, "the worker to start")
        before = pool.pids()
        r = c.post("/v1/audit", files={"file": ("slow.png", png_bytes(tmp_path))})
        assert r.status_code == 200
        v = r.json()
        assert v["label"] == "error" and v["file"] == "slow.png"
        assert v["error"]["code"] == "timeout" and "audit_timeout_s" in v["error"]["message"]
        assert len(pool.pids()) == 1 and pool.pids() != before  # killed and replaced
        text = c.get("/metrics").text
        assert metric(text, "trustframe_audit_errors_total", code="timeout") == 1
        assert metric(text, "trustframe_audits_total", label="error") == 1
        # a heat map (computed in the same workers) over the limit: 503 to retry, worker replaced
        before = pool.pids()
        r = c.post("/v1/detector/heatmap", files={"file": ("slow.png", png_bytes(tmp_path))})
        body = assert_problem(r, 503)
        assert "audit_timeout_s" in body["detail"] and int(r.headers["retry-after"]) >= 1
        assert len(pool.pids()) == 1 and pool.pids() != before
    assert pool.pids() == [] and list(spool.iterdir()) == []


def test_shutdown_lets_the_audit_in_flight_finish_then_stops_the_workers(home, spool, tmp_path):
    s = load_settings(audit_workers=1)
    pool = WorkerPool(1, s, queue=0, target=held_audit, warm=False)
    results: dict[str, httpx.Response] = {}
    with serving(http.create_app(s, audit_pool=pool)) as (base, server):
        running = post_in_thread(base, "a.txt", TEXT, results)
        wait_for(lambda: pool.running == 1, "the audit to run")
        (pid,) = pool.pids()
        server.should_exit = True  # as on SIGTERM
        time.sleep(0.3)
        assert running.is_alive()  # the server waits for it
        (home.home / "release").touch()
        running.join(60)
    assert results["a.txt"].status_code == 200 and results["a.txt"].json()["label"] == "error"
    assert pool.pids() == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert list(spool.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("workers, status", [(1, 143), (2, 0)])
def test_sigterm_to_trustframe_serve_stops_it_and_leaves_nothing_in_the_temp_dir(
    home, tmp_path, workers, status
):
    """One process exits 143 (as a death by SIGTERM reports); with --workers uvicorn's supervisor
    stops its workers and returns."""
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile

    # a short path, as /tmp is: the forkservers' sockets go in it, and AF_UNIX paths end at 107 bytes
    tmp = Path(tempfile.mkdtemp(prefix="tf-test-", dir="/tmp"))
    port = free_port()
    exe = str(Path(sys.executable).parent / "trustframe")
    env = {**os.environ, "TMPDIR": str(tmp), "TRUSTFRAME_HOME": str(home.home)}
    log = tmp_path / "serve.log"  # a file, not a pipe: a pipe nobody reads fills up with access logs
    try:
        with log.open("w") as err:
            server = subprocess.Popen([exe, "serve", "--port", str(port), "--workers", str(workers)],
                                      env=env, stderr=err)
            try:
                wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), "the server to answer", 120)
                # one forkserver folder per worker (the second may still be starting)
                wait_for(lambda: len(list(tmp.rglob("pymp-*"))) == workers, "every worker's forkserver", 120)
                server.send_signal(signal.SIGTERM)
                assert server.wait(120) == status, log.read_text()[-2000:]
            finally:
                server.kill()
                server.wait()
        # torch's compile cache is torch's to keep (see the `spool` fixture); nothing else may stay
        assert sorted(p.name for p in tmp.iterdir() if not p.name.startswith("torchinductor_")) == []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# ---------------------------------------------------------------------------------------------
# Metrics, request ids, logs


def client_with_pool(s) -> tuple[TestClient, WorkerPool]:
    """A TestClient (use it in a `with` block, so that the app's lifespan runs) on an app whose pool
    has one worker that skips the warm-up (these tests audit only text files)."""
    pool = WorkerPool(1, s, queue=2, warm=False)
    return TestClient(http.create_app(s, audit_pool=pool), raise_server_exceptions=False), pool


def test_metrics_count_requests_by_route_template_and_audits_by_label(home):
    c, _ = client_with_pool(home)
    with c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/v1/manifests/urn:c2pa:0000-missing").status_code == 404
        assert c.get("/no/such/path/123").status_code == 404
        assert c.post("/v1/audit", files={"file": ("notes.txt", TEXT)}).json()["label"] == "error"
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    req = "trustframe_http_requests_total"
    assert metric(text, req, route="/healthz", method="GET", status="200") == 1
    assert metric(text, req, route="/v1/manifests/{manifestId}", method="GET", status="404") == 1
    assert metric(text, req, route="unmatched", method="GET", status="404") == 1
    assert metric(text, req, route="/v1/audit", method="POST", status="200") == 1
    assert "/no/such/path" not in text and "urn:c2pa:0000" not in text and "notes.txt" not in text
    seconds = "trustframe_http_request_duration_seconds_count"
    assert metric(text, seconds, route="/v1/audit", method="POST") == 1
    assert metric(text, "trustframe_audit_duration_seconds_count") == 1
    assert metric(text, "trustframe_audits_total", label="error") == 1
    assert metric(text, "trustframe_audits_total", label="ai-generated") == 0  # every label, from 0
    assert metric(text, "trustframe_audit_errors_total", code="unsupported-media") == 1
    assert metric(text, "trustframe_upload_bytes_total", route="/v1/audit") > len(TEXT)
    assert metric(text, "trustframe_audits_shed_total") == 0
    assert metric(text, "trustframe_audit_capacity") == 3
    # A registry per app: a second app starts from zero.
    c2, _ = client_with_pool(home)
    with c2:
        assert metric(c2.get("/metrics").text, req, route="/healthz", method="GET", status="200") is None


def test_metrics_need_no_api_key_but_the_api_does(home):
    c, _ = client_with_pool(load_settings(api_key="s3cret"))
    with c:
        assert c.get("/metrics").status_code == 200
        assert c.get("/v1/services/supportedAlgorithms").status_code == 401
        assert "s3cret" not in c.get("/metrics").text


def test_request_id_is_echoed_or_made(home, monkeypatch):
    c, _ = client_with_pool(home)
    with c:
        r = c.get("/healthz", headers={"X-Request-ID": "req-42.a:b"})
        assert r.headers["x-request-id"] == "req-42.a:b"
        for bad in ("x" * 65, "has space", "semi;colon", ""):
            rid = c.get("/healthz", headers={"X-Request-ID": bad}).headers["x-request-id"]
            assert rid != bad and len(rid) == 32 and int(rid, 16) >= 0
        a, b = (c.get("/healthz").headers["x-request-id"] for _ in range(2))
        assert a != b
        assert "x-request-id" in c.get("/nowhere").headers  # problems too

        def boom(*_, **__):
            raise RuntimeError("a bug")

        monkeypatch.setattr(http.audit_routes, "audit", boom)
        r = c.post("/v1/audit", files={"file": ("a.txt", TEXT)}, headers={"X-Request-ID": "crash-1"})
        assert r.status_code == 500 and r.headers["x-request-id"] == "crash-1"


def test_one_json_access_log_line_per_request_without_secrets(home, caplog):
    caplog.set_level(logging.INFO, logger="trustframe.http.access")
    c, _ = client_with_pool(load_settings(api_key="s3cret-key"))
    with c:
        c.post("/v1/audit", files={"file": ("private-name.txt", TEXT)},
               headers={"X-API-Key": "s3cret-key", "X-Request-ID": "audit-7"})
        c.get("/v1/manifests/urn:c2pa:abc", headers={"X-API-Key": "wrong"})
    formatter = http.JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records if r.name == "trustframe.http.access"]
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    audit_line, other = (json.loads(line) for line in lines)
    assert audit_line["request_id"] == "audit-7" and audit_line["msg"] == "request"
    assert (audit_line["method"], audit_line["route"], audit_line["status"]) == ("POST", "/v1/audit", 200)
    assert audit_line["label"] == "error" and audit_line["error_code"] == "unsupported-media"
    assert audit_line["duration_s"] > 0 and audit_line["bytes_in"] > len(TEXT)
    assert audit_line["level"] == "info" and audit_line["ts"].endswith("+00:00")
    assert (other["route"], other["status"]) == ("/v1/manifests/{manifestId}", 401) and "label" not in other
    joined = "\n".join(lines)
    for secret in ("s3cret-key", "wrong", "private-name", "just some words", "urn:c2pa:abc"):
        assert secret not in joined


# ---------------------------------------------------------------------------------------------
# Rate limit


def test_rate_limit_answers_429_with_retry_after(home):
    c, _ = client_with_pool(load_settings(rate_limit_per_minute=2))
    with c:
        for _ in range(2):
            assert c.get("/v1/services/supportedAlgorithms").status_code == 200
        r = c.get("/v1/services/supportedAlgorithms")
        body = assert_problem(r, 429)
        assert 1 <= int(r.headers["retry-after"]) <= 30 and "2 requests per minute" in body["detail"]
        assert_problem(c.post("/v1/audit", files={"file": ("a.txt", TEXT)}), 429)  # one bucket per client
        assert c.get("/healthz").status_code == 200 and c.get("/metrics").status_code == 200  # not limited
        assert metric(c.get("/metrics").text, "trustframe_http_rate_limited_total") == 2
    # Off by default.
    c, _ = client_with_pool(home)
    with c:
        assert all(c.get("/v1/services/supportedAlgorithms").status_code == 200 for _ in range(5))


def test_rate_limit_buckets_the_api_key_apart_from_addresses(home):
    c, _ = client_with_pool(load_settings(rate_limit_per_minute=1, api_key="k"))
    with c:
        path = "/v1/services/supportedAlgorithms"
        assert c.get(path, headers={"X-API-Key": "k"}).status_code == 200
        assert_problem(c.get(path, headers={"X-API-Key": "k"}), 429)
        # Wrong keys count against the address: guessing keys is limited too.
        assert_problem(c.get(path, headers={"X-API-Key": "guess-1"}), 401)
        assert_problem(c.get(path, headers={"X-API-Key": "guess-2"}), 429)


def test_rate_limiter_refills():
    limiter = http.RateLimiter(60)  # one a second, bursts of 60
    assert all(limiter.take("a", now=0.0) == 0 for _ in range(60))
    assert limiter.take("a", now=0.0) == pytest.approx(1.0)
    assert limiter.take("b", now=0.0) == 0  # another client
    assert limiter.take("a", now=1.0) == 0 and limiter.take("a", now=1.0) > 0


# ---------------------------------------------------------------------------------------------
# trustframe serve


def test_serve_workers_runs_the_app_factory_in_n_processes(home, run_cli, monkeypatch):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    assert run_cli("serve", "--workers", "3", "--port", "8123")[0] == 0
    app, kw = calls.pop()
    assert app == "trustframe.service.http:create_app" and kw["factory"] and kw["workers"] == 3
    assert kw["port"] == 8123 and kw["access_log"] is False
    assert kw.get("timeout_worker_healthcheck", 30) == 30  # slow-starting workers are not killed
    assert kw["log_config"]["formatters"]["json"]["()"].endswith("JsonFormatter")
    assert run_cli("serve")[0] == 0
    app, kw = calls.pop()
    assert app.state.settings.home == home.home and "workers" not in kw
    assert run_cli("serve", "--workers", "0")[0] == 2


# ---------------------------------------------------------------------------------------------
# The other per-file work in the same pool: heat maps, /matches/byContent


@pytest.mark.slow
def test_heat_maps_and_content_matches_run_in_the_audit_pool_under_its_bound(home, spool, tmp_path):
    """With the one worker busy and no queue, both answer 503 + Retry-After before reading the
    upload; once it is free, the same worker computes them (none is started or replaced), and
    what fails in it (a text file) comes back as the route's own problem."""
    from PIL import Image

    s = load_settings(audit_workers=1, audit_queue=0)
    pool = WorkerPool(1, s, queue=0, target=held_audit, warm=False)
    png = png_bytes(tmp_path)
    results: dict[str, httpx.Response] = {}
    with serving(http.create_app(s, audit_pool=pool)) as (base, _), \
            httpx.Client(base_url=base, timeout=120) as c:
        def heatmap(name, data):
            return c.post("/v1/detector/heatmap", files={"file": (name, data)})

        def by_content(data, kind="image/png"):
            return c.post("/v1/matches/byContent", content=data, headers={"content-type": kind})

        running = post_in_thread(base, "running.png", png, results)
        wait_for(lambda: pool.running == 1, "the audit to run")
        for r in (heatmap("a.png", png), by_content(png)):
            body = assert_problem(r, 503)
            assert 1 <= int(r.headers["retry-after"]) <= 60 and "busy" in body["detail"]
        (home.home / "release").touch()
        running.join(120)
        assert results["running.png"].status_code == 200
        (pid,) = pool.pids()

        r = heatmap("a.png", png)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(r.content)).size == (64, 48)
        assert by_content(png).json() == {"matches": []}
        assert_problem(heatmap("a.txt", TEXT), 415)
        assert_problem(by_content(TEXT, "text/plain"), 415)
        assert pool.pids() == [pid]
        assert metric(c.get("/metrics").text, "trustframe_audits_shed_total") == 2
    assert list(spool.iterdir()) == []
