"""The soft-binding router: the C2PA Soft Binding Resolution API 1.0.0, mounted under `/v1` as its
server URL `https://c2pa.example.org/v1` has it (conformance is tested with schemathesis against
`tests/data/c2pa-soft-binding-api.openapi.json`): lookups by binding (GET, and POST for large
values), by content (the uploaded asset's watermark, read and looked up as the audit does), a
manifest store by id, and the supported algorithms.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from trustframe.errors import ConfigError, CorruptMedia, UnsupportedMedia
from trustframe.provenance.manifest import b64_to_hex
from trustframe.provenance.repository import ManifestRepository
from trustframe.service.evidence import file_watermark, watermark_matches
from trustframe.service.http.deps import (
    AUTH_PROBLEMS,
    get_repository,
    get_settings,
    in_worker,
    rate_limit,
    refuse_when_full,
    require_api_key,
)
from trustframe.service.http.problems import problem_doc, validation_detail
from trustframe.service.http.uploads import spooled_body
from trustframe.settings import Settings

QUERY_BODY_MAX_BYTES = 64 * 1024  # a soft-binding query document (payloads are 6 bytes)
GET_VALUE_MAX_CHARS = 4096  # longer values get 414, as the spec advises: use POST instead
MAX_RESULTS_CAP = 100  # the spec's `maxResults` has no upper bound; we answer at most this many
# C2PA manifest ids are URNs: urn:c2pa:<uuid>[:...] (2.x) or urn:uuid:<uuid> (1.x).
MANIFEST_ID = re.compile(r"urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:[\x21-\x7e]{1,480}")


class SoftBindingRoute(APIRoute):
    """The spec answers malformed queries with 400 "Invalid query value", not FastAPI's 422."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as e:
                raise HTTPException(400, validation_detail(e)) from None

        return route_handler


class SoftBindingQuery(BaseModel):
    """`c2pa.softBindingQuery`."""

    alg: str
    value: str = Field(description="base64 of the soft-binding value (our watermark payload bytes)")


class Match(BaseModel):
    manifestId: str
    endpoint: str | None = None
    similarityScore: int | None = Field(None, ge=0, le=100)


class SoftBindingQueryResult(BaseModel):
    """`c2pa.softBindingQueryResult`."""

    matches: list[Match]


class Algorithm(BaseModel):
    alg: str


class WatermarkAlgorithm(Algorithm):
    # The spec's `c2pa.softBindingAlgList` puts `oneOf: [{required: [watermarks]}, {required:
    # [fingerprints]}]` on each *item* of the `watermarks` array (most likely meant for the list
    # object itself). Read literally, an item {"alg": ...} fails validation: it must also carry
    # exactly one of those two keys. We add "watermarks": true as a type marker, which satisfies
    # the schema as written and costs clients nothing (they read `alg`; the item schema allows
    # extra keys). `fingerprints` items have no such constraint.
    watermarks: bool = True


class SoftBindingAlgList(BaseModel):
    """`c2pa.softBindingAlgList`."""

    watermarks: list[WatermarkAlgorithm]
    fingerprints: list[Algorithm]


softbinding_router = APIRouter(tags=["soft binding"], route_class=SoftBindingRoute,
                               dependencies=[Depends(rate_limit), Depends(require_api_key)],
                               responses=AUTH_PROBLEMS)


def _max_results(max_results: int = Query(10, alias="maxResults", ge=1)) -> int:
    return min(max_results, MAX_RESULTS_CAP)


def _decode_value(value: str) -> str:
    """base64 soft-binding value -> payload hex; 400 "Invalid query value" when not base64."""
    try:
        return b64_to_hex(value)
    except ConfigError:
        raise HTTPException(400, "`value` is not valid base64") from None


def _endpoint(settings: Settings) -> str | None:
    """This service's soft-binding API URL, advertised in matches when `public_url` is set."""
    if not settings.public_url:
        return None
    base = settings.public_url.rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


def _result(ids: list[str], settings: Settings, score: int = 100) -> dict:
    """Matches as the spec's JSON; `endpoint` omitted unless configured (absent = this server)."""
    endpoint = _endpoint(settings)
    return {"matches": [{"manifestId": i, "similarityScore": score}
                        | ({"endpoint": endpoint} if endpoint else {}) for i in ids]}


def _lookup(repo: ManifestRepository, alg: str, value: str, max_results: int, settings: Settings) -> dict:
    # An exact binding lookup: every hit is a perfect match.
    return _result(repo.by_binding(alg, _decode_value(value), max_results), settings)


@softbinding_router.get(
    "/matches/byBinding", response_model=SoftBindingQueryResult, response_model_exclude_none=True,
    operation_id="queryByBinding", summary="Manifest ids for a soft binding",
    responses={400: problem_doc("Invalid query value"),
               414: problem_doc("Query too long, use POST instead")})
def query_by_binding(value: str = Query(description="base64 soft-binding value"),
                     alg: str = Query(description="soft-binding algorithm name"),
                     max_results: int = Depends(_max_results),
                     settings: Settings = Depends(get_settings),
                     repo: ManifestRepository = Depends(get_repository)) -> dict:
    """Exact lookup of (alg, value) in the manifest repository."""
    if len(value) > GET_VALUE_MAX_CHARS:
        raise HTTPException(414, "query too long; send it with POST /v1/matches/byBinding")
    # A client that forgets to percent-encode '+' sends it as a space (form encoding); base64 has
    # no spaces, so put the '+' back rather than answer 400.
    return _lookup(repo, alg, value.replace(" ", "+"), max_results, settings)


@softbinding_router.post(
    "/matches/byBinding", response_model=SoftBindingQueryResult, response_model_exclude_none=True,
    operation_id="queryByLargeBinding", summary="Manifest ids for a soft binding sent as JSON",
    responses={400: problem_doc("Invalid query value")},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": SoftBindingQuery.model_json_schema()}}}})
async def query_by_large_binding(request: Request, max_results: int = Depends(_max_results),
                                 settings: Settings = Depends(get_settings),
                                 repo: ManifestRepository = Depends(get_repository)) -> dict:
    """The same lookup, with the query as a `c2pa.softBindingQuery` JSON body (read bounded)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > QUERY_BODY_MAX_BYTES:
            raise HTTPException(413, f"query document exceeds {QUERY_BODY_MAX_BYTES} bytes")
    try:
        query = SoftBindingQuery.model_validate_json(bytes(body))
    except ValidationError as e:
        msg = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
                        for err in e.errors(include_input=False))
        raise HTTPException(400, f"invalid query document: {msg}") from None
    return await run_in_threadpool(_lookup, repo, query.alg, query.value, max_results, settings)


async def _match_content(request: Request, path: Path, alg: str | None, max_results: int,
                         repo: ManifestRepository) -> tuple[list[str], int]:
    """Manifest ids whose watermark payload the asset carries, and the match score (0..100): the
    audit's own watermark lookup (`service.evidence.file_watermark`, read in the audit worker pool,
    then `watermark_matches`)."""
    try:
        r = await in_worker(request, file_watermark, path)
    except (UnsupportedMedia, CorruptMedia) as e:
        # The spec documents 415 "Invalid asset type" as this operation's only client error.
        raise HTTPException(415, str(e)) from None
    if r is None or (alg is not None and alg != r.alg):
        return [], 0
    # The payload survived error correction; the score says how sure the detection is.
    return watermark_matches(r, repo, max_results), max(0, min(100, round(100 * (1 - r.p_value))))


@softbinding_router.post(
    "/matches/byContent", response_model=SoftBindingQueryResult, response_model_exclude_none=True,
    operation_id="uploadFile", summary="Manifest ids for an uploaded asset (through its watermark)",
    responses={413: problem_doc("Upload larger than `upload_max_bytes`"),
               415: problem_doc("Invalid asset type"),
               503: problem_doc("Every audit worker busy and the queue full, or over "
                                "`audit_timeout_s`; see Retry-After")},
    openapi_extra={"requestBody": {"required": True, "content": {
        t: {"schema": {"type": "string", "format": "binary"}} for t in ("image/*", "video/*")}}})
async def query_by_content(
        request: Request,
        alg: str | None = Query(None, description="only this soft-binding algorithm"),
        max_results: int = Depends(_max_results),
        hint_alg: str | None = Query(None, alias="hintAlg"),
        hint_value: str | None = Query(None, alias="hintValue", description="base64"),
        settings: Settings = Depends(get_settings),
        repo: ManifestRepository = Depends(get_repository)) -> dict:
    """Detect the watermark in the asset and look its payload up; a (hintAlg, hintValue) soft
    binding the client already holds is looked up too."""
    refuse_when_full(request)
    async with spooled_body(request, settings.upload_max_bytes, "asset") as path:
        ids, score = await _match_content(request, path, alg, max_results, repo)
    result = _result(ids, settings, score)
    if hint_alg and hint_value and (alg is None or alg == hint_alg):
        try:
            hinted = _lookup(repo, hint_alg, hint_value, max_results, settings)["matches"]
        except HTTPException:  # an unusable hint is no reason to fail the query
            hinted = []
        seen = {m["manifestId"] for m in result["matches"]}
        result["matches"] += [m for m in hinted if m["manifestId"] not in seen]
        result["matches"] = result["matches"][:max_results]
    return result


@softbinding_router.get(
    "/manifests/{manifestId}", operation_id="getManifestById", summary="A manifest store by id",
    response_class=Response,
    responses={200: {"description": "The C2PA manifest store (JUMBF)",
                     "content": {"application/c2pa": {"schema": {"type": "string", "format": "binary"}}}},
               400: problem_doc("Invalid C2PA Manifest Id supplied"),
               404: problem_doc("C2PA Manifest Id not found")})
def get_manifest(manifest_id: str = PathParam(alias="manifestId"),
                 return_active: bool = Query(False, alias="returnActiveManifest"),  # same answer
                 repo: ManifestRepository = Depends(get_repository)) -> Response:
    """The stored manifest store as `application/c2pa` bytes.

    `returnActiveManifest` returns the same bytes: the repository keeps one manifest store per
    signed asset, whose active manifest is the one the id names, and a store is what a C2PA
    reader accepts (a lone manifest box is not a valid JUMBF manifest store).
    """
    if not MANIFEST_ID.fullmatch(manifest_id):
        raise HTTPException(400, "not a C2PA manifest id (expected urn:c2pa:<uuid>...)")
    stored = repo.get(manifest_id)
    if stored is None:
        raise HTTPException(404, f"no manifest {manifest_id}")
    return Response(stored.store, media_type="application/c2pa")


@softbinding_router.get(
    "/services/supportedAlgorithms", response_model=SoftBindingAlgList,
    operation_id="getSupportedBindings", summary="Soft-binding algorithms this service resolves")
def supported_algorithms(repo: ManifestRepository = Depends(get_repository)) -> dict:
    """Our watermark plus every other algorithm the repository indexes.

    All of them are watermarks: the repository's soft bindings are watermark payloads.
    """
    from trustframe.watermark import ALG

    algs = [ALG] + [a for a in repo.algorithms() if a != ALG]
    return {"watermarks": [{"alg": a, "watermarks": True} for a in algs], "fingerprints": []}
