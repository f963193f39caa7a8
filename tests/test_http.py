"""The HTTP app: POST /v1/audit, /healthz, problem+json errors, API key, CORS, serving."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from trustframe import media
from trustframe.errors import KeysMissing, MediaTooLarge
from trustframe.provenance.signing import sign_file
from trustframe.service.http import create_app
from trustframe.service.workers import WorkerPool
from trustframe.settings import Settings, load_settings

BOUNDARY = "tf-test-boundary"


@pytest.fixture(autouse=True)
def no_service_settings_in_env(monkeypatch):
    """Each test configures the service itself (`home`, from conftest, is the data directory)."""
    for name in ("API_KEY", "CORS_ORIGINS", "UPLOAD_MAX_BYTES", "PUBLIC_URL"):
        monkeypatch.delenv(f"TRUSTFRAME_{name}", raising=False)


def client(**settings) -> TestClient:
    """The app over these settings. Its one audit worker skips the warm-up and the detector, so it
    starts in a fraction of a second: these tests are about HTTP; the detector's place in the
    verdict is tested in test_detector.py, and the default pool under a real server is
    `test_serves_under_uvicorn`."""
    s = load_settings(**settings)
    pool = WorkerPool(1, s, detector=False, warm=False)
    return TestClient(create_app(s, audit_pool=pool), raise_server_exceptions=False)


def signed(home: Settings, name: str, frames: int = 1) -> Path:
    """A signed, AI-declaring PNG or MP4 made from seeded noise, beside the data directory."""
    data = np.random.default_rng(7).integers(0, 256, (frames, 48, 64, 3), dtype=np.uint8)
    src = media.write(data, home.home.parent / f"src-{name}", fps=8)
    return sign_file(src, home.home.parent / name, soft_binding=("org.trustframe.wm.1", "00112233aabb"),
                     settings=home).path


def upload(c: TestClient, name: str, data: bytes, **kw) -> httpx.Response:
    return c.post("/v1/audit", files={"file": (name, data)}, **kw)


def multipart_body(name: str, data: bytes) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n")
    return head.encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def assert_problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert {"type", "title", "status"} <= body.keys() and body["status"] == status
    assert "Traceback" not in r.text and 'File "' not in r.text
    return body


# ---------------------------------------------------------------------------------------------
# POST /v1/audit


@pytest.mark.parametrize("name, frames, media_type", [("clip.png", 1, "image/png"),
                                                       ("clip.mp4", 6, "video/mp4")])
def test_audit_signed_media(home, spool, name, frames, media_type):
    path = signed(home, name, frames)
    r = upload(client(), name, path.read_bytes())
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    v = r.json()
    assert v["schema"] == "trustframe.verdict/1"
    assert (v["file"], v["media_type"], v["label"]) == (name, media_type, "ai-generated")
    assert v["provenance"]["present"] and v["provenance"]["state"] == "trusted"
    assert v["provenance"]["manifest_id"].startswith("urn:c2pa:")
    assert list(spool.iterdir()) == []


def test_audit_text_file_is_a_verdict_with_error(home, spool):
    """Unreadable media is still a successful audit: 200 with label "error"."""
    r = upload(client(), "notes.txt", b"just some words\n")
    assert r.status_code == 200
    v = r.json()
    assert v["label"] == "error" and v["error"]["code"] == "unsupported-media"
    assert v["file"] == "notes.txt" and "notes.txt" in v["error"]["message"]
    assert list(spool.iterdir()) == []


def test_audit_client_path_is_not_used(home, spool):
    r = upload(client(), "../../etc/evil name.png", b"\x89PNG\r\n\x1a\n broken")
    assert r.status_code == 200
    assert r.json()["file"] == "evil name.png" and r.json()["label"] == "error"
    assert list(spool.iterdir()) == []


def test_audit_missing_field_is_422(home, spool):
    body = assert_problem(client().post("/v1/audit", files={"upload": ("a.png", b"x")}), 422)
    assert "file" in body["detail"]


def test_audit_needs_multipart(home):
    assert_problem(client().post("/v1/audit", content=b"raw", headers={"content-type": "image/png"}), 415)


def test_audit_truncated_multipart_is_400(home, spool):
    body = multipart_body("a.png", b"\x89PNG" + b"x" * 1000)[:-40]
    r = client().post("/v1/audit", content=body,
                      headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert_problem(r, 400)
    assert list(spool.iterdir()) == []


def test_upload_limit(home, spool):
    c = client(upload_max_bytes=1000)
    assert upload(c, "a.bin", b"\0" * 1000).status_code == 200  # the limit itself is allowed
    body = assert_problem(upload(c, "a.bin", b"\0" * 1001), 413)
    assert "1000" in body["detail"]
    assert list(spool.iterdir()) == []


def test_upload_limit_counts_streamed_bytes(home, spool):
    """A chunked upload declares no Content-Length: the limit is counted on the bytes received."""
    body = multipart_body("big.png", b"\x89PNG" + b"x" * 50_000)

    def chunks():
        for i in range(0, len(body), 4096):
            yield body[i:i + 4096]

    r = client(upload_max_bytes=10_000).post(
        "/v1/audit", content=chunks(), headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert "content-length" not in r.request.headers
    assert_problem(r, 413)
    assert list(spool.iterdir()) == []


def test_audit_failure_leaves_no_file_and_no_trace(home, spool, monkeypatch):
    def boom(*_, **__):
        raise RuntimeError("secret internals at /srv/x.py")

    monkeypatch.setattr("trustframe.service.http.audit_routes.audit", boom)
    body = assert_problem(upload(client(), "a.png", b"data"), 500)
    assert "secret" not in str(body)
    assert list(spool.iterdir()) == []


def test_trustframe_errors_map_to_their_status(home, monkeypatch):
    def too_big(*_, **__):
        raise MediaTooLarge("a.mp4: declared width 99999 px exceeds the limit 8192")

    monkeypatch.setattr("trustframe.service.http.audit_routes.audit", too_big)
    body = assert_problem(upload(client(), "a.mp4", b"data"), 413)
    assert body["code"] == "media-too-large" and body["type"] == "urn:trustframe:problem:media-too-large"
    assert "99999" in body["detail"]


def test_server_side_errors_do_not_leak_paths(home, monkeypatch):
    def no_keys(*_, **__):
        raise KeysMissing("no signing keys in /srv/secret/keys; run `trustframe keys init`")

    monkeypatch.setattr("trustframe.service.http.audit_routes.audit", no_keys)
    body = assert_problem(upload(client(), "a.png", b"data"), 500)
    assert body["code"] == "keys-missing" and "/srv/secret" not in str(body)


# ---------------------------------------------------------------------------------------------
# Errors, auth, CORS, docs


def test_unknown_route_and_method_are_problems(home):
    c = client()
    assert_problem(c.get("/v1/nothing-here"), 404)
    assert_problem(c.get("/v1/audit"), 405)


def test_healthz_docs_and_openapi(home):
    c = client()
    assert c.get("/healthz").json()["status"] == "ok"
    assert c.get("/docs").status_code == 200
    spec = c.get("/openapi.json").json()
    assert {"/v1/audit", "/healthz", "/v1/matches/byBinding", "/v1/matches/byContent",
            "/v1/manifests/{manifestId}", "/v1/services/supportedAlgorithms"} <= spec["paths"].keys()
    assert "multipart/form-data" in spec["paths"]["/v1/audit"]["post"]["requestBody"]["content"]
    assert "422" not in spec["paths"]["/v1/matches/byBinding"]["get"]["responses"]


def test_create_app_reads_settings_from_the_environment(home):
    assert create_app().state.settings.home == home.home


def test_api_key(home):
    c = client(api_key="s3cret")
    png = b"\x89PNG\r\n\x1a\n"
    body = assert_problem(upload(c, "a.png", png), 401)
    assert "X-API-Key" in body["detail"]
    assert_problem(upload(c, "a.png", png, headers={"X-API-Key": "s3cre"}), 401)
    assert_problem(upload(c, "a.png", png, headers={"X-API-Key": "s3cret-and-more"}), 401)
    assert upload(c, "a.png", png, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert_problem(c.get("/v1/services/supportedAlgorithms"), 401)
    # Liveness and the docs stay open.
    for path in ("/healthz", "/docs", "/openapi.json"):
        assert c.get(path).status_code == 200, path
    # Without a configured key nothing is asked for.
    assert upload(client(), "a.png", png).status_code == 200


def test_cors(home):
    origin = "https://viewer.example.org"
    c = client(cors_origins=[origin])
    pre = c.options("/v1/audit", headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                          "Access-Control-Request-Headers": "x-api-key"})
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == origin
    assert "x-api-key" in pre.headers["access-control-allow-headers"].lower()
    assert c.get("/healthz", headers={"Origin": origin}).headers["access-control-allow-origin"] == origin
    assert "access-control-allow-origin" not in c.get("/healthz", headers={"Origin": "https://evil.example"}).headers
    # Not configured: no CORS headers at all.
    assert "access-control-allow-origin" not in client().get("/healthz", headers={"Origin": origin}).headers


# ---------------------------------------------------------------------------------------------
# Served as `trustframe serve` does it


@pytest.mark.slow
def test_serves_under_uvicorn(home, spool):
    import uvicorn

    png = signed(home, "served.png")
    server = uvicorn.Server(uvicorn.Config(create_app(load_settings(upload_max_bytes=200_000)),
                                           host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            assert http.get("/healthz").status_code == 200
            assert http.get("/docs").status_code == 200
            assert http.get("/openapi.json").json()["info"]["title"] == "TrustFrame"
            v = http.post("/v1/audit", files={"file": ("served.png", png.read_bytes())}).json()
            assert v["label"] == "ai-generated"
            # the server's own pool runs the detector: the HTTP verdict carries its score
            assert v["detector"]["model"] == "tfdet-s" and 0.0 <= v["detector"]["score"] <= 1.0
            assert v["detector"]["label"] in ("likely-ai", "uncertain", "likely-real")
            r = http.post("/v1/audit", files={"file": ("big.png", b"\x89PNG" + b"x" * 300_000)})
            assert_problem(r, 413)
    finally:
        server.should_exit = True
        thread.join(10)
    assert list(spool.iterdir()) == []
