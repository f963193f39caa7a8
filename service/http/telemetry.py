"""Operations: Prometheus metrics (a registry per app, served at `GET /metrics`), request ids, and
one JSON access-log line per request (`Telemetry`, `JsonFormatter`, `log_config`)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from starlette.datastructures import MutableHeaders

from trustframe.service.verdict import LABELS, Verdict
from trustframe.service.workers import WorkerPool

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


ops_router = APIRouter(include_in_schema=False)


@ops_router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus metrics (text format, or OpenMetrics when asked). No API key: they hold counts by
    route template, status and verdict label only; keep the port inside your network."""
    encoder, content_type = choose_encoder(request.headers.get("accept"))
    return Response(encoder(request.app.state.metrics.registry), media_type=content_type)
