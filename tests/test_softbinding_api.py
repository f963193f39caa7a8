"""The C2PA Soft Binding Resolution API under /v1: lookups against a repository seeded with real
signed manifests, and schemathesis against the published OpenAPI document.

One file of about 400 lines: every test, the conformance run included, uses the one seeded service.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path

import jsonschema_rs
import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from trustframe import media
from trustframe.provenance.manifest import hex_to_b64
from trustframe.provenance.reading import read_manifest_store
from trustframe.provenance.repository import open_repository
from trustframe.provenance.signing import sign_file
from trustframe.service.http import create_app
from trustframe.service.workers import WorkerPool
from trustframe.settings import Settings, load_settings
from trustframe.watermark import ALG as WM_ALG

PLUS_PAYLOAD = "fbefbefbefbe"  # base64 "++++++++": a value whose '+' a client may leave unencoded
SPEC_NAME = "c2pa-soft-binding-api.openapi.json"
# Vendored from ../shared/specs (Apache-2.0, AdobeDocs/cai-soft-binding-api), so CI always has it.
SPEC = Path(__file__).parent / "data" / SPEC_NAME


@dataclass
class Signed:
    manifest_id: str
    payload: str
    mime: str


@dataclass
class Service:
    settings: Settings
    client: TestClient
    signed: dict[str, Signed]


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Service:
    """An app over a fresh data directory whose repository holds five signed manifests."""
    tmp = tmp_path_factory.mktemp("softbinding")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRUSTFRAME_HOME", str(tmp / "home"))
        s = load_settings()
        repo = open_repository(s)
        rng = np.random.default_rng(0)
        signed = {}
        for name, payload, alg, shape in [
            ("png", "0123456789ab", WM_ALG, (1, 32, 32, 3)),
            ("jpg", PLUS_PAYLOAD, WM_ALG, (1, 32, 32, 3)),
            ("mp4", "a1b2c3d4e5f6", WM_ALG, (4, 32, 32, 3)),
            ("dup1.png", "dddddddddddd", WM_ALG, (1, 16, 16, 3)),
            ("dup2.png", "dddddddddddd", WM_ALG, (1, 16, 16, 3)),  # same payload, signed later
            ("other.png", "0123456789ab", "com.example.wm.2", (1, 16, 16, 3)),
        ]:
            src = media.write(rng.integers(0, 256, shape, dtype=np.uint8), tmp / f"src.{name}", fps=4)
            r = sign_file(
                src, tmp / f"signed.{name}", soft_binding=(alg, payload), repository=repo, settings=s
            )
            signed[name] = Signed(r.manifest_id, payload, media.sniff(src))
        SEEDED.update(
            alg=WM_ALG, value=hex_to_b64(signed["png"].payload), manifest_id=signed["png"].manifest_id
        )
        # one worker, no warm-up (that would load the detector, which these routes never use)
        yield Service(s, TestClient(create_app(s, audit_pool=WorkerPool(1, s, warm=False))), signed)


def by_binding(client: TestClient, value: str, alg: str = WM_ALG, **params):
    return client.get("/v1/matches/byBinding", params={"value": value, "alg": alg, **params})


def assert_problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["title"] and body["type"]
    assert "Traceback" not in r.text
    return body


# ---------------------------------------------------------------------------------------------
# /matches/byBinding


def test_get_by_binding_hit(service):
    png = service.signed["png"]
    r = by_binding(service.client, hex_to_b64(png.payload))
    assert r.status_code == 200
    assert r.json() == {"matches": [{"manifestId": png.manifest_id, "similarityScore": 100}]}


def test_get_by_binding_miss(service):
    assert by_binding(service.client, hex_to_b64("000000000000")).json() == {"matches": []}
    assert by_binding(service.client, "").json() == {"matches": []}  # base64 of nothing
    # The right value under an algorithm nobody used for it is a miss too.
    assert by_binding(service.client, hex_to_b64(service.signed["mp4"].payload), alg="x.y.1").json() == {
        "matches": []
    }


def test_get_by_binding_plus_left_unencoded(service):
    """'+' sent raw in a query string reads as a space; it still resolves."""
    url = f"/v1/matches/byBinding?alg={WM_ALG}&value={hex_to_b64(PLUS_PAYLOAD)}"
    assert "++" in url
    r = service.client.get(url)
    assert [m["manifestId"] for m in r.json()["matches"]] == [service.signed["jpg"].manifest_id]


def test_max_results_newest_first(service):
    value = hex_to_b64("dddddddddddd")
    ids = [m["manifestId"] for m in by_binding(service.client, value).json()["matches"]]
    assert ids == [service.signed["dup2.png"].manifest_id, service.signed["dup1.png"].manifest_id]
    one = by_binding(service.client, value, maxResults=1).json()["matches"]
    assert [m["manifestId"] for m in one] == ids[:1]


@pytest.mark.parametrize(
    "params",
    [
        {"value": "not base64!", "alg": WM_ALG},
        {"value": "AQI", "alg": WM_ALG},  # bad padding
        {"value": "AQID", "alg": WM_ALG, "maxResults": 0},
        {"value": "AQID", "alg": WM_ALG, "maxResults": "ten"},
        {"value": "AQID"},  # alg missing
        {"alg": WM_ALG},  # value missing
    ],
)
def test_get_by_binding_invalid_query_is_400(service, params):
    assert_problem(service.client.get("/v1/matches/byBinding", params=params), 400)


def test_get_by_binding_too_long_is_414(service):
    assert_problem(by_binding(service.client, "A" * 8000), 414)


def test_post_by_binding(service):
    mp4 = service.signed["mp4"]
    r = service.client.post("/v1/matches/byBinding", json={"alg": WM_ALG, "value": hex_to_b64(mp4.payload)})
    assert r.json() == {"matches": [{"manifestId": mp4.manifest_id, "similarityScore": 100}]}
    miss = service.client.post(
        "/v1/matches/byBinding",
        params={"maxResults": 3},
        json={"alg": WM_ALG, "value": hex_to_b64("ffffffffffff")},
    )
    assert miss.status_code == 200 and miss.json() == {"matches": []}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"alg": "x"}',
        b'{"alg": 1, "value": "AQID"}',
        b'{"alg": "x", "value": "**"}',
    ],
)
def test_post_by_binding_invalid_is_400(service, body):
    r = service.client.post(
        "/v1/matches/byBinding", content=body, headers={"content-type": "application/json"}
    )
    assert_problem(r, 400)


def test_post_by_binding_body_is_bounded(service):
    big = b'{"alg": "x", "value": "' + b"A" * 100_000 + b'"}'
    assert_problem(service.client.post("/v1/matches/byBinding", content=big), 413)


def test_endpoint_advertised_when_public_url_set(service):
    s = service.settings.model_copy(update={"public_url": "https://tf.example.org/"})
    r = by_binding(TestClient(create_app(s)), hex_to_b64(service.signed["png"].payload))
    assert r.json()["matches"][0]["endpoint"] == "https://tf.example.org/v1"


# ---------------------------------------------------------------------------------------------
# /manifests/{manifestId}


def test_get_manifest_returns_a_readable_store(service):
    png = service.signed["png"]
    r = service.client.get(f"/v1/manifests/{png.manifest_id}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/c2pa"
    p = read_manifest_store(r.content, png.mime, settings=service.settings)
    assert p.present and p.manifest_id == png.manifest_id and p.ai_generated
    assert {"alg": WM_ALG, "value": png.payload} in p.soft_bindings
    # One manifest store per asset: the active manifest is served as that same store.
    active = service.client.get(f"/v1/manifests/{png.manifest_id}", params={"returnActiveManifest": True})
    assert active.content == r.content


def test_get_manifest_unknown_is_404(service):
    unknown = "urn:c2pa:00000000-0000-0000-0000-000000000000"
    body = assert_problem(service.client.get(f"/v1/manifests/{unknown}"), 404)
    assert unknown in body["detail"]


@pytest.mark.parametrize(
    "path", ["/v1/manifests/not-a-manifest-id", "/v1/manifests/urn:c2pa:abc?returnActiveManifest=perhaps"]
)
def test_get_manifest_invalid_is_400(service, path):
    assert_problem(service.client.get(path), 400)


# ---------------------------------------------------------------------------------------------
# /services/supportedAlgorithms


def _spec_schema(name: str) -> dict:
    import json

    return json.loads(SPEC.read_text())["components"]["schemas"][name]


def test_supported_algorithms(service):
    """Our watermark first, then the repository's other algorithms, all watermarks."""
    r = service.client.get("/v1/services/supportedAlgorithms")
    assert r.status_code == 200
    assert r.json() == {
        "watermarks": [{"alg": WM_ALG, "watermarks": True}, {"alg": "com.example.wm.2", "watermarks": True}],
        "fingerprints": [],
    }


def test_supported_algorithms_oneof_as_written(service):
    """The spec's odd per-item oneOf: a bare {"alg"} item fails it; our marked items pass."""
    validator = jsonschema_rs.Draft4Validator(_spec_schema("c2pa.softBindingAlgList"))
    assert not validator.is_valid({"watermarks": [{"alg": WM_ALG}]})
    assert validator.is_valid(service.client.get("/v1/services/supportedAlgorithms").json())


# ---------------------------------------------------------------------------------------------
# /matches/byContent


def _upload(client: TestClient, path: Path, **params):
    return client.post(
        "/v1/matches/byContent",
        params=params,
        content=path.read_bytes(),
        headers={"content-type": media.sniff(path)},
    )


def test_by_content_unmarked_asset_and_bad_type(service, tmp_path):
    """An asset without our watermark gets an empty list, a text file 415."""
    png = tmp_path / "a.png"
    media.write(np.zeros((1, 16, 16, 3), np.uint8), png)
    assert _upload(service.client, png).json() == {"matches": []}
    r = service.client.post(
        "/v1/matches/byContent", content=b"just words", headers={"content-type": "text/plain"}
    )
    assert_problem(r, 415)


def test_by_content_uses_hint(service, tmp_path):
    png = tmp_path / "a.png"
    media.write(np.zeros((1, 16, 16, 3), np.uint8), png)
    mp4 = service.signed["mp4"]
    r = _upload(service.client, png, hintAlg=WM_ALG, hintValue=hex_to_b64(mp4.payload))
    assert [m["manifestId"] for m in r.json()["matches"]] == [mp4.manifest_id]
    # An unusable hint is ignored, not an error.
    assert _upload(service.client, png, hintAlg=WM_ALG, hintValue="%%%").json() == {"matches": []}


def test_by_content_with_watermark_model(service, tmp_path, monkeypatch):
    """The detected payload is looked up in the repository, and `alg` filters it.

    The watermark is stubbed (the real one, read in a worker process: the next test); the wiring
    is what is tested, so the route's worker call runs here, where the stub is.
    """
    from trustframe.service.http import softbinding_routes

    async def in_this_process(request, fn, path):
        return fn(path, request.app.state.settings)

    monkeypatch.setattr(softbinding_routes, "in_worker", in_this_process)
    mp4 = service.signed["mp4"]
    seen = {}

    def detect(frames, key):
        seen["frames"], seen["key"] = frames, key
        return types.SimpleNamespace(detected=True, p_value=1e-12, payload=mp4.payload, alg=WM_ALG)

    fake = types.ModuleType("trustframe.watermark")
    fake.ALG, fake.detect = WM_ALG, detect
    monkeypatch.setitem(sys.modules, "trustframe.watermark", fake)
    clip = tmp_path / "stripped.mp4"
    media.write(np.zeros((3, 16, 16, 3), np.uint8), clip, fps=3)
    r = _upload(service.client, clip)
    assert r.json() == {"matches": [{"manifestId": mp4.manifest_id, "similarityScore": 100}]}
    assert len(seen["frames"]) == 3 and len(seen["key"]) == 32
    assert _upload(service.client, clip, alg="x.y.1").json() == {"matches": []}
    algs = service.client.get("/v1/services/supportedAlgorithms").json()["watermarks"]
    assert algs[0]["alg"] == WM_ALG and len(algs) == 2


@pytest.mark.slow
def test_by_content_with_the_real_watermark_matches_the_audit(home, tmp_path):
    """The shipped watermark, end to end: a protected clip re-encoded without its manifest resolves to
    the same manifest through `/v1/matches/byContent` as through the audit (one lookup serves both)."""
    import trustframe
    from trustframe.service.protect import protect_frames
    from trustframe.testing import scene

    signed = protect_frames(media.Frames(scene(16, 256, 256), fps=24.0), tmp_path / "marked.mp4",
                            source_type="trainedAlgorithmicMedia", settings=home)
    stripped = media.write(media.read(signed.path), tmp_path / "stripped.mp4", crf=28)
    v = trustframe.audit(stripped, settings=home, detector=False)
    assert v.provenance.recovered and v.provenance.manifest_id == signed.manifest_id
    client = TestClient(create_app(home))
    matches = _upload(client, stripped).json()["matches"]
    assert [m["manifestId"] for m in matches] == [v.provenance.manifest_id]
    assert 90 <= matches[0]["similarityScore"] <= 100
    assert _upload(client, stripped, alg="x.y.1").json() == {"matches": []}  # another algorithm
    unmarked = media.write(media.Frames(scene(16, 256, 256, seed=1), fps=24.0), tmp_path / "plain.mp4")
    assert _upload(client, unmarked).json() == {"matches": []}


def test_by_content_too_large(service, tmp_path):
    s = service.settings.model_copy(update={"upload_max_bytes": 100})
    png = tmp_path / "a.png"
    media.write(np.random.default_rng(1).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8), png)
    assert_problem(_upload(TestClient(create_app(s)), png), 413)


def test_api_key_guards_the_soft_binding_routes(service):
    s = service.settings.model_copy(update={"api_key": SecretStr("k3y")})
    client = TestClient(create_app(s))
    assert_problem(client.get("/v1/services/supportedAlgorithms"), 401)
    assert client.get("/v1/services/supportedAlgorithms", headers={"X-API-Key": "k3y"}).status_code == 200


# ---------------------------------------------------------------------------------------------
# Conformance: schemathesis against the published specification (base path /v1, from its
# server URL https://c2pa.example.org/v1), bounded and deterministic.

SEEDED: dict[str, str] = {}  # a stored binding and manifest id, set by `service`
RESPONSES: list[tuple[str, int, bytes]] = []  # (operation, status, body) of every conformance call

schema = schemathesis.openapi.from_path(SPEC)
# The spec accepts any image/video/audio/model asset; send generated bytes as they are.
schemathesis.serializer.alias(["video/*", "audio/*", "model/*"], "application/octet-stream")


# Random values would never hit the repository: half of the generated queries get a seeded
# binding or manifest id instead, so that non-empty answers are checked against the spec too.
def _sometimes_seeded(context, original, path: str, keys: dict[str, str]):
    if context.operation.path != path or not SEEDED or not isinstance(original, dict):
        return st.just(original)
    return st.sampled_from([original, {**original, **{k: SEEDED[v] for k, v in keys.items()}}])


@schema.hook
def flatmap_query(context, query):
    return _sometimes_seeded(context, query, "/matches/byBinding", {"alg": "alg", "value": "value"})


@schema.hook
def flatmap_body(context, body):
    return _sometimes_seeded(context, body, "/matches/byBinding", {"alg": "alg", "value": "value"})


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    return _sometimes_seeded(
        context, path_parameters, "/manifests/{manifestId}", {"manifestId": "manifest_id"}
    )


@schema.parametrize()
@settings(
    max_examples=25, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
def test_conforms_to_the_c2pa_specification(case, service):
    r = case.call_and_validate(
        app=service.client.app,
        timeout=120,  # /matches/byContent waits for its audit worker to start on first use
        checks=[schemathesis.checks.not_a_server_error, schemathesis.checks.response_schema_conformance],
    )
    RESPONSES.append((f"{case.method} {case.path}", r.status_code, r.content))


def test_conformance_run_saw_hits(service):
    """The run above answered real matches and served a real manifest, not only misses."""
    assert RESPONSES, "the conformance test must run first (same module, defined above)"
    assert any(
        op == "GET /matches/byBinding" and status == 200 and b"manifestId" in body
        for op, status, body in RESPONSES
    )
    assert any(
        op == "POST /matches/byBinding" and status == 200 and b"manifestId" in body
        for op, status, body in RESPONSES
    )
    assert any(op == "GET /manifests/{manifestId}" and status == 200 for op, status, _ in RESPONSES)
