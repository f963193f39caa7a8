"""The HTTP service: `POST /v1/audit`, `GET /healthz`, and the C2PA Soft Binding Resolution API.

`create_app(settings)` builds a FastAPI app with one router per area: `audit` (the verdict) and
`softbinding` (the C2PA Soft Binding Resolution API 1.0.0, mounted under `/v1` as its server URL
`https://c2pa.example.org/v1` has it; conformance is tested with schemathesis against
`../shared/specs/c2pa-soft-binding-api.openapi.json`). Every error is an RFC 9457
`application/problem+json` document; no stack trace ever leaves the process. Served by
`trustframe serve` as `uvicorn.run(create_app(settings), host=..., port=...)`.

Operations: audits run in a bounded pool of worker processes (`service/workers.py`; a full pool
and queue answer 503 with Retry-After), `GET /metrics` serves Prometheus metrics from a registry
per app, every request gets an `X-Request-ID` and one JSON access-log line, and an optional token
bucket per client answers 429 on `/v1/...` (`rate_limit_per_minute`).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hmac
import json
import logging
import math
import re
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from pathlib import Path, PurePosixPath

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel, Field, ValidationError
from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from trustframe import __version__, media
from trustframe.errors import ConfigError, CorruptMedia, KeysMissing, TrustFrameError, UnsupportedMedia
from trustframe.provenance.manifest import b64_to_hex
from trustframe.provenance.repository import ManifestRepository, open_repository
from trustframe.service.audit import audit as audit_in_process
from trustframe.service.review import review_router
from trustframe.service.verdict import LABELS, Verdict
from trustframe.service.workers import PoolBusy, WorkerPool
from trustframe.settings import Settings, load_settings

log = logging.getLogger("trustframe.http")

PROBLEM_JSON = "application/problem+json"
API_KEY_HEADER = "X-API-Key"
UPLOAD_FIELD = "file"
OTHER_FIELDS_MAX_BYTES = 64 * 1024  # multipart parts besides `file` are read and discarded
QUERY_BODY_MAX_BYTES = 64 * 1024  # a soft-binding query document (payloads are 6 bytes)
GET_VALUE_MAX_CHARS = 4096  # longer values get 414, as the spec advises: use POST instead
MAX_RESULTS_CAP = 100  # the spec's `maxResults` has no upper bound; we answer at most this many
# C2PA manifest ids are URNs: urn:c2pa:<uuid>[:...] (2.x) or urn:uuid:<uuid> (1.x).
MANIFEST_ID = re.compile(r"urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:[\x21-\x7e]{1,480}")


# ---------------------------------------------------------------------------------------------
# Problem details (RFC 9457)


class Problem(BaseModel):
    """An RFC 9457 problem details document."""

    type: str = Field("about:blank", description="URI naming the problem type")
    title: str
    status: int
    detail: str | None = None
    code: str | None = Field(None, description="TrustFrame error code, for TrustFrameError problems")


def problem(status: int, detail: str | None = None, *, code: str | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    """An `application/problem+json` response. `code` names a TrustFrame error type."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body = {"type": f"urn:trustframe:problem:{code}" if code else "about:blank", "title": title,
            "status": status}
    if detail:
        body["detail"] = detail
    if code:
        body["code"] = code
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _problem_doc(description: str) -> dict:
    """An OpenAPI response entry for a problem+json answer."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": Problem.model_json_schema()}}}


# "4XX" also stops FastAPI from documenting its own 422 body, which we never send.
PROBLEMS = {"4XX": _problem_doc("Client error (RFC 9457 problem details)")}
AUTH_PROBLEMS = {401: _problem_doc(f"Missing or wrong `{API_KEY_HEADER}` header"), **PROBLEMS}


def _validation_detail(exc: RequestValidationError) -> str:
    """One line per error, e.g. "query.maxResults: Input should be greater than or equal to 1"."""
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
             for e in exc.errors()]
    return "; ".join(parts) or "invalid request"


def _install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail) if exc.detail else None,
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(422, _validation_detail(exc))

    @app.exception_handler(TrustFrameError)
    async def trustframe_error(_: Request, exc: TrustFrameError) -> JSONResponse:
        if exc.status >= 500:  # a server-side problem (keys, config): its message names local paths
            log.error("request failed: %s", exc)
            return problem(exc.status, "the server could not complete the request; see its log",
                           code=exc.code)
        return problem(exc.status, str(exc), code=exc.code)



class UnexpectedErrors:
    """ASGI middleware: an exception that escapes a route becomes a problem+json 500, logged here.

    Starlette's own `Exception` handler re-raises after answering, and the server then tore the
    keep-alive connection down, so the next request on it (another client's, behind a proxy)
    failed with a reset. Here nothing is re-raised once the 500 is sent, and the response says
    `Connection: close` so the client opens a fresh connection instead of reusing this one.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watch(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            if started:  # the response is on its way: nothing valid can be sent any more
                raise
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            await problem(500, "internal error; see the server log",
                          headers={"Connection": "close"})(scope, receive, send)


# ---------------------------------------------------------------------------------------------
# Operations: metrics, request ids and access logs


access_log = logging.getLogger("trustframe.http.access")
REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")  # an incoming id is kept if it fits
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # others count as OTHER
LOG_FIELDS = "trustframe.log"  # ASGI scope key: a dict of extra fields for the request's log line
UNMATCHED = "unmatched"  # the route label of a request that matched no route (never its raw path)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
AUDIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    """The app's Prometheus metrics, in a registry of its own: several apps in one process (tests)
    never share counters. Label values are bounded: route templates, known methods, statuses,
    verdict labels and error codes; never a raw path, a file name or a client."""

    def __init__(self, pool: WorkerPool):
        r = self.registry = CollectorRegistry()
        self.requests = Counter("trustframe_http_requests", "HTTP requests answered, by route template, "
                                "method and status", ["route", "method", "status"], registry=r)
        self.request_seconds = Histogram(
            "trustframe_http_request_duration_seconds", "Time from a request's arrival to the end of "
            "its response", ["route", "method"], buckets=HTTP_BUCKETS, registry=r)
        self.upload_bytes = Counter("trustframe_upload_bytes", "Request body bytes received (uploads, "
                                    "query documents), by route template", ["route"], registry=r)
        self.audit_seconds = Histogram(
            "trustframe_audit_duration_seconds", "Time from handing a spooled upload to the worker pool "
            "to its verdict, queue wait included", buckets=AUDIT_BUCKETS, registry=r)
        self.audits = Counter("trustframe_audits", "Audit verdicts, by label", ["label"], registry=r)
        self.audit_errors = Counter("trustframe_audit_errors", "Verdicts with label error, by error code "
                                    "(timeout, unsupported-media, ...)", ["code"], registry=r)
        self.shed = Counter("trustframe_audits_shed", "Audit requests answered 503 because every worker "
                            "was busy and the queue full", registry=r)
        self.rate_limited = Counter("trustframe_http_rate_limited", "Requests answered 429 by the "
                                    "rate limit", registry=r)
        Gauge("trustframe_audits_in_flight", "Audits running in a worker process",
              registry=r).set_function(lambda: pool.running)
        Gauge("trustframe_audits_queued", "Audits admitted and waiting for a worker",
              registry=r).set_function(lambda: pool.queued)
        Gauge("trustframe_audit_capacity", "Audits that may run or wait at once (audit_workers + "
              "audit_queue)", registry=r).set(pool.capacity)
        for label in LABELS:  # present from the start, at 0
            self.audits.labels(label=label)

    def audited(self, verdict: Verdict, seconds: float) -> None:
        self.audit_seconds.observe(seconds)
        self.audits.labels(label=verdict.label).inc()
        if verdict.error is not None:
            self.audit_errors.labels(code=verdict.error.code).inc()


def _request_id(scope) -> str:
    """The client's `X-Request-ID` when it is a sane short token, else a new random one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            rid = value.decode("latin-1")
            if REQUEST_ID.fullmatch(rid):
                return rid
            break
    return uuid.uuid4().hex


def _route_template(scope) -> str:
    """The matched route's path template, e.g. "/v1/manifests/{manifestId}", never the raw path.

    FastAPI hands routes of an included router their own path without the router's prefix; the
    prefix is then the part of the path before what the route's pattern matches (our prefixes
    are literal, so this stays a bounded set of values).
    """
    route = scope.get("route")
    template, pattern = getattr(route, "path", None), getattr(route, "path_regex", None)
    if not template:
        return UNMATCHED
    path = scope.get("path", "")
    if pattern is not None and not pattern.match(path):
        for i in range(1, len(path)):
            if path[i] == "/" and pattern.match(path[i:]):
                return path[:i] + template
    return template


def log_fields(request: Request) -> dict:
    """Extra fields for this request's access-log line (the audit puts its label here)."""
    return request.scope.setdefault(LOG_FIELDS, {})


class Telemetry:
    """ASGI middleware, outermost: gives each request an id (echoed as `X-Request-ID`), counts and
    times it by route template, and writes one access-log line (JSON under `trustframe serve`):
    id, method, route template, status, duration, body bytes, client address, and whatever the
    route added (an audit's label). Never a body, a file name, a header value or a key.
    """

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        rid = _request_id(scope)
        fields = scope.setdefault(LOG_FIELDS, {})
        status, received = 500, 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, rid)
            await send(message)

        try:
            await self.app(scope, counting_receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            m = self.metrics
            m.requests.labels(route=route, method=method, status=str(status)).inc()
            m.request_seconds.labels(route=route, method=method).observe(seconds)
            if received:
                m.upload_bytes.labels(route=route).inc(received)
            client = scope.get("client")
            access_log.info("request", extra={"fields": {
                "request_id": rid, "method": method, "route": route, "status": status,
                "duration_s": round(seconds, 6), "bytes_in": received,
                "client": client[0] if client else None, **fields}})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the record's `fields`, and `exc` (a
    traceback, escaped onto the same line) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
               "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        doc.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def log_config(level: str = "info") -> dict:
    """A `logging.config.dictConfig` for uvicorn's `log_config`: the server's and TrustFrame's
    logs as JSON lines on stderr; uvicorn's own access log is replaced by ours (`access_log=False`)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {"version": 1, "disable_existing_loggers": False,
            "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
            "handlers": {"stderr": handler},
            "loggers": {name: {"handlers": ["stderr"], "level": level.upper(), "propagate": False}
                        for name in ("trustframe", "uvicorn", "uvicorn.access")}}


# ---------------------------------------------------------------------------------------------
# Dependencies: settings, repository, API key, rate limit


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_repository(request: Request) -> ManifestRepository:
    """The app's manifest repository, opened on first use (opening creates the SQLite file)."""
    state = request.app.state
    if state.repository is None:
        state.repository = open_repository(state.settings)
    return state.repository


api_key_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                              description="required when the server is configured with an api_key")


def require_api_key(key: str | None = Security(api_key_scheme),
                    settings: Settings = Depends(get_settings)) -> None:
    """401 unless `settings.api_key` is unset or the header matches it (constant-time compare)."""
    if settings.api_key is None:
        return
    expected = settings.api_key.get_secret_value().encode()
    if key is None or not hmac.compare_digest(key.encode(), expected):
        raise HTTPException(401, f"missing or wrong {API_KEY_HEADER} header",
                            headers={"WWW-Authenticate": f'ApiKey header="{API_KEY_HEADER}"'})


class RateLimiter:
    """Token buckets, one per client: `per_minute` requests a minute, in bursts of up to as many.
    In-process (each `serve --workers` process counts alone); idle buckets are dropped past
    `MAX_CLIENTS`."""

    MAX_CLIENTS = 10_000

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self.rate, self.burst = per_minute / 60.0, float(per_minute)
        self.buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)
        self.lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> float:
        """0 when `client` may make a request now (and takes its token), else seconds to wait."""
        now = time.monotonic() if now is None else now
        with self.lock:
            tokens, when = self.buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - when) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self.buckets[client] = (tokens - 1 if tokens >= 1 else tokens, now)
            if len(self.buckets) > self.MAX_CLIENTS:  # forget the full (idle) buckets
                self.buckets = {k: (t, w) for k, (t, w) in self.buckets.items()
                                if t + (now - w) * self.rate < self.burst}
        return wait


def _client(request: Request, settings: Settings) -> str:
    """The rate limit's client: the configured API key's holder (one bucket for that key), else the
    client address (also for wrong keys, so that guessing keys is limited too)."""
    key = request.headers.get(API_KEY_HEADER)
    if settings.api_key is not None and key is not None and hmac.compare_digest(
            key.encode(), settings.api_key.get_secret_value().encode()):
        return "api-key"
    return "address:" + (request.client.host if request.client else "unknown")


async def rate_limit(request: Request, settings: Settings = Depends(get_settings)) -> None:
    """429 with Retry-After past `rate_limit_per_minute` (off when 0). Checked before the key."""
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is None:
        return
    wait = limiter.take(_client(request, settings))
    if wait:
        request.app.state.metrics.rate_limited.inc()
        raise HTTPException(429, f"rate limit of {limiter.per_minute} requests per minute exceeded",
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})


# ---------------------------------------------------------------------------------------------
# Streaming request bodies to temporary files, bounded while streaming


class _TooLarge(Exception):
    pass


def _safe_name(filename: str | None, default: str = "upload") -> str:
    """A harmless base name for a client-supplied file name (kept so that messages cite it)."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")[-100:]
    return name or default


class _Spool:
    """A file in a fresh temporary directory (under `tempfile.gettempdir()`) that receives an
    upload, capped at `limit` bytes; `remove()` deletes both.
    """

    def __init__(self, limit: int, name: str):
        self.dir = Path(tempfile.mkdtemp(prefix="trustframe-upload-"))
        self.path = self.dir / name
        try:
            self.file = open(self.path, "xb")  # noqa: SIM115 - closed in remove()
        except OSError:
            self.dir.rmdir()
            raise
        self.limit = limit
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise _TooLarge
        self.file.write(data)

    def remove(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)
        self.dir.rmdir()


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"upload exceeds the limit of {limit} bytes")


@contextlib.asynccontextmanager
async def spooled_body(request: Request, limit: int, name: str) -> AsyncIterator[Path]:
    """The raw request body in a temporary file; 413 past `limit` bytes; removed afterwards."""
    spool = _Spool(limit, name)
    try:
        try:
            async for chunk in request.stream():
                await run_in_threadpool(spool.write, chunk)
        except _TooLarge:
            raise _too_large(limit) from None
        spool.file.close()
        yield spool.path
    finally:
        spool.remove()


class _MultipartUpload:
    """python-multipart callbacks that send the `file` part to a `_Spool` and count the rest."""

    def __init__(self, limit: int):
        self.limit = limit
        self.spool: _Spool | None = None
        self.filename: str | None = None
        self.complete = False
        self.other_bytes = 0
        self._headers: dict[bytes, bytes] = {}
        self._field = self._value = b""
        self._into_spool = False

    def callbacks(self) -> dict[str, Callable]:
        return {"on_part_begin": self._part_begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
                "on_part_end": self._part_end}

    def _part_begin(self) -> None:
        self._headers, self._field, self._value, self._into_spool = {}, b"", b"", False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if params.get(b"name") == UPLOAD_FIELD.encode() and self.spool is None:
            self.filename = params[b"filename"].decode("utf-8", "replace") if b"filename" in params else None
            self.spool = _Spool(self.limit, _safe_name(self.filename))
            self._into_spool = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._into_spool:
            self.spool.write(data[start:end])
        else:  # other fields (and repeated `file` parts) are discarded, but still bounded
            self.other_bytes += end - start
            if self.other_bytes > OTHER_FIELDS_MAX_BYTES:
                raise _TooLarge

    def _part_end(self) -> None:
        if self._into_spool:
            self.complete = True
        self._into_spool = False


@contextlib.asynccontextmanager
async def spooled_upload(request: Request, limit: int) -> AsyncIterator[tuple[Path, str | None]]:
    """(temporary path, client filename) of the multipart field `file`, streamed and capped at
    `limit` bytes as it arrives (Content-Length is not trusted); the file is removed afterwards.
    """
    ctype, params = parse_options_header(request.headers.get("content-type"))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise HTTPException(415, f"expected multipart/form-data with the file in field `{UPLOAD_FIELD}`")
    upload = _MultipartUpload(limit)
    try:
        try:
            parser = MultipartParser(params[b"boundary"], upload.callbacks())
            async for chunk in request.stream():
                await run_in_threadpool(parser.write, chunk)
            parser.finalize()
        except _TooLarge:
            raise _too_large(limit) from None
        except (MultipartParseError, ValueError) as e:
            raise HTTPException(400, f"malformed multipart body: {e}") from None
        if upload.spool is None:
            raise RequestValidationError([{"type": "missing", "loc": ("body", UPLOAD_FIELD),
                                           "msg": "Field required", "input": None}])
        if not upload.complete:
            raise HTTPException(400, f"multipart body ends inside field `{UPLOAD_FIELD}`")
        upload.spool.file.close()
        yield upload.spool.path, upload.filename
    finally:
        if upload.spool is not None:
            upload.spool.remove()


# ---------------------------------------------------------------------------------------------
# The audit router


audit_router = APIRouter(tags=["audit"])

UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [UPLOAD_FIELD],
    "properties": {UPLOAD_FIELD: {"type": "string", "format": "binary",
                                  "description": "the image or video to audit"}}}}}}}


@audit_router.get("/healthz", summary="Liveness check (no API key needed)")
def healthz() -> dict:
    return {"status": "ok", "version": __version__}


_request_pool: contextvars.ContextVar[WorkerPool | None] = contextvars.ContextVar(
    "trustframe_audit_pool", default=None)


async def audit(path: Path, *, settings: Settings, filename: str) -> Verdict:
    """The audit behind `POST /v1/audit`: in the calling request's worker pool (raises `PoolBusy`
    when it is full), or in a thread of this process when called outside a request. The route
    calls it by this module's name, so an embedding application can wrap or replace it.
    """
    pool = _request_pool.get()
    if pool is None:
        return await run_in_threadpool(audit_in_process, path, settings=settings, filename=filename)
    return await pool.submit(path, filename)


def _shed(request: Request, retry_after: int, why: str) -> HTTPException:
    request.app.state.metrics.shed.inc()
    return HTTPException(503, f"{why}; retry in {retry_after} s", headers={"Retry-After": str(retry_after)})


@audit_router.post(
    "/v1/audit", response_model=Verdict, dependencies=[Depends(rate_limit), Depends(require_api_key)],
    summary="Audit one uploaded image or video",
    responses={413: _problem_doc("Upload larger than `upload_max_bytes`"),
               429: _problem_doc("Over `rate_limit_per_minute`; see Retry-After"),
               503: _problem_doc("Every audit worker busy and the queue full; see Retry-After"),
               **AUTH_PROBLEMS},
    openapi_extra=UPLOAD_BODY)
async def audit_upload(request: Request, settings: Settings = Depends(get_settings)) -> Response:
    """Multipart upload in field `file` -> the Verdict (JSON schema "trustframe.verdict/1").

    Unreadable media still gets 200: the audit succeeded and says so with label "error"; so does
    a file still running after `audit_timeout_s` (error code "timeout"). 503 with Retry-After when
    `audit_workers` audits run and `audit_queue` wait already (checked before the upload is read,
    and again when it is handed over).
    """
    pool: WorkerPool = request.app.state.audit_pool
    if pool.saturated:  # shed before reading the upload: nothing is spooled for nothing
        raise _shed(request, pool.retry_after(), "the server is shutting down" if pool.closed
                    else "all audit workers are busy and the queue is full")
    async with spooled_upload(request, settings.upload_max_bytes) as (path, filename):
        name = PurePosixPath((filename or "").replace("\\", "/")).name or path.name
        token = _request_pool.set(pool)
        started = time.perf_counter()
        try:
            verdict = await audit(path, settings=settings, filename=name)
        except PoolBusy as e:
            raise _shed(request, e.retry_after, str(e)) from None
        finally:
            _request_pool.reset(token)
    request.app.state.metrics.audited(verdict, time.perf_counter() - started)
    log_fields(request).update({"label": verdict.label}
                               | ({"error_code": verdict.error.code} if verdict.error else {}))
    return JSONResponse(verdict.to_dict())


def heatmap_png(path: Path, settings: Settings) -> bytes:
    """The detector's heat map of a file: its highest-scoring frame with P(AI) per 8x8 patch
    painted over it, as PNG bytes. Raises TrustFrameError for media it cannot read or score."""
    import io

    from PIL import Image

    from trustframe.detector.api import load

    frames = media.read(path, max_frames=settings.audit_frames, settings=settings)
    r = load(settings.detector_preset).score(frames, heatmap=True)
    buf = io.BytesIO()
    Image.fromarray(r.heatmap_image()).save(buf, format="PNG")
    return buf.getvalue()


@audit_router.post(
    "/v1/detector/heatmap", dependencies=[Depends(rate_limit), Depends(require_api_key)],
    summary="The detector's heat map of one uploaded image or video (PNG)",
    responses={200: {"content": {"image/png": {}}, "description": "the highest-scoring frame, "
                     "P(AI-generated) per 8x8 patch painted over it (transparent = 0, red = 1)"},
               413: _problem_doc("Upload larger than `upload_max_bytes`"),
               415: _problem_doc("Not an image or video"), 422: _problem_doc("Unreadable media"),
               **AUTH_PROBLEMS},
    openapi_extra=UPLOAD_BODY)
async def detector_heatmap(request: Request, settings: Settings = Depends(get_settings)) -> Response:
    async with spooled_upload(request, settings.upload_max_bytes) as (path, _):
        png = await run_in_threadpool(heatmap_png, path, settings)
    return Response(png, media_type="image/png")


# ---------------------------------------------------------------------------------------------
# The soft-binding router: C2PA Soft Binding Resolution API 1.0.0


class SoftBindingRoute(APIRoute):
    """The spec answers malformed queries with 400 "Invalid query value", not FastAPI's 422."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as e:
                raise HTTPException(400, _validation_detail(e)) from None

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


def _watermark_ships() -> bool:
    from trustframe.weights import presets

    return bool(presets("watermark"))


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
    responses={400: _problem_doc("Invalid query value"),
               414: _problem_doc("Query too long, use POST instead")})
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
    responses={400: _problem_doc("Invalid query value")},
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


def _match_content(path: Path, alg: str | None, max_results: int, settings: Settings,
                   repo: ManifestRepository) -> tuple[list[str], int]:
    """Manifest ids whose watermark payload the asset carries, and the match score (0..100).

    Nothing while no watermark model ships (there is no content-based soft binding to compute).
    """
    ships = _watermark_ships()
    try:
        media.probe(path, settings)
        frames = media.read(path, max_frames=settings.audit_frames, settings=settings) if ships else None
    except (UnsupportedMedia, CorruptMedia) as e:
        # The spec documents 415 "Invalid asset type" as this operation's only client error.
        raise HTTPException(415, str(e)) from None
    if frames is None:
        return [], 0
    from trustframe.provenance.keys import watermark_key
    from trustframe.watermark import detect

    try:
        key = watermark_key(settings)
    except KeysMissing:
        return [], 0  # no watermark key, so no watermark can be read
    r = detect(frames, key=key)
    if not (r.detected and r.payload) or (alg is not None and alg != r.alg):
        return [], 0
    # The payload survived error correction; the score says how sure the detection is.
    return repo.by_binding(r.alg, r.payload, max_results), max(0, min(100, round(100 * (1 - r.p_value))))


@softbinding_router.post(
    "/matches/byContent", response_model=SoftBindingQueryResult, response_model_exclude_none=True,
    operation_id="uploadFile", summary="Manifest ids for an uploaded asset (through its watermark)",
    responses={413: _problem_doc("Upload larger than `upload_max_bytes`"),
               415: _problem_doc("Invalid asset type")},
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
    binding the client already holds is looked up too. An empty list while no watermark ships.
    """
    async with spooled_body(request, settings.upload_max_bytes, "asset") as path:
        ids, score = await run_in_threadpool(_match_content, path, alg, max_results, settings, repo)
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
               400: _problem_doc("Invalid C2PA Manifest Id supplied"),
               404: _problem_doc("C2PA Manifest Id not found")})
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
    """Our watermark (when a watermark model ships) plus every algorithm the repository indexes.

    All of them are watermarks: the repository's soft bindings are watermark payloads.
    """
    algs = []
    if _watermark_ships():
        from trustframe.watermark import ALG

        algs.append(ALG)
    algs += [a for a in repo.algorithms() if a not in algs]
    return {"watermarks": [{"alg": a, "watermarks": True} for a in algs], "fingerprints": []}


# ---------------------------------------------------------------------------------------------
# The app


ops_router = APIRouter(include_in_schema=False)


@ops_router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus metrics (text format, or OpenMetrics when asked). No API key: they hold counts by
    route template, status and verdict label only; keep the port inside your network."""
    encoder, content_type = choose_encoder(request.headers.get("accept"))
    return Response(encoder(request.app.state.metrics.registry), media_type=content_type)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the audit workers with the server; on shutdown (after uvicorn has let the requests in
    flight finish) let any audit still queued or running finish, then stop the workers."""
    pool: WorkerPool = app.state.audit_pool
    await run_in_threadpool(pool.start)
    try:
        yield
    finally:
        await run_in_threadpool(pool.close)


def create_app(settings: Settings | None = None, *, audit_pool: WorkerPool | None = None) -> FastAPI:
    """The HTTP app; `settings` default to `load_settings()`. Serves `/docs` and `/openapi.json`.

    Audits run in `audit_pool`, by default `audit_workers` processes behind a queue of
    `audit_queue`; its processes start with the server (or on first use when no lifespan runs,
    e.g. a `TestClient` outside a `with` block) and stop with it.
    """
    s = settings or load_settings()
    app = FastAPI(title="TrustFrame", version=__version__, lifespan=lifespan,
                  description="Audit images and video for AI provenance (C2PA Content Credentials, "
                  "watermark, detector), and resolve soft bindings with the C2PA Soft Binding "
                  "Resolution API under `/v1`. Errors are RFC 9457 problem details.",
                  openapi_tags=[{"name": "audit", "description": "One file in, one Verdict out"},
                                {"name": "soft binding",
                                 "description": "C2PA Soft Binding Resolution API 1.0.0"}])
    app.state.settings = s
    app.state.repository = None
    app.state.audit_pool = audit_pool or WorkerPool(s.audit_workers, s, queue=s.audit_queue)
    app.state.metrics = Metrics(app.state.audit_pool)
    app.state.rate_limiter = RateLimiter(s.rate_limit_per_minute) if s.rate_limit_per_minute else None
    _install_problem_handlers(app)
    app.add_middleware(UnexpectedErrors)
    app.include_router(audit_router)
    app.include_router(softbinding_router, prefix="/v1")
    app.include_router(review_router)  # GET /: the review page
    app.include_router(ops_router)  # GET /metrics
    if s.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=s.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=[API_KEY_HEADER, "Content-Type"])
    app.add_middleware(Telemetry, metrics=app.state.metrics)  # outermost: sees every answer
    return app
