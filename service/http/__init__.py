"""The HTTP service: `POST /v1/audit`, `GET /healthz`, `POST /v1/prompts/check`, the review page and
the C2PA Soft Binding Resolution API.

`create_app(settings)` builds a FastAPI app with one router per area: `audit` (the verdict),
`softbinding` (the C2PA Soft Binding Resolution API 1.0.0, under `/v1`), `prompts` (would the
generator take a prompt), the review page (`service/review.py`) and `GET /metrics`. Every error is an RFC 9457
`application/problem+json` document; no stack trace ever leaves the process. Served by
`trustframe serve` as `uvicorn.run(create_app(settings), host=..., port=...)`.

Operations: audits run in a bounded pool of worker processes (`service/workers.py`; a full pool
and queue answer 503 with Retry-After), `GET /metrics` serves Prometheus metrics from a registry
per app, every request gets an `X-Request-ID` and one JSON access-log line, and an optional token
bucket per client answers 429 on `/v1/...` (`rate_limit_per_minute`).

One module per concern:

    problems.py            problem+json documents, exception handlers, the 500 middleware
    deps.py                dependencies: settings, repository, API key, rate limit
    uploads.py             request bodies streamed to capped temporary files (multipart and raw)
    telemetry.py           metrics, request ids, the JSON access log, GET /metrics
    audit_routes.py        GET /healthz, POST /v1/audit, POST /v1/detector/heatmap
    softbinding_routes.py  the C2PA Soft Binding Resolution API
    prompt_routes.py       POST /v1/prompts/check
    app.py                 create_app and the lifespan that runs the audit worker pool
"""

from trustframe.service.evidence import heatmap_png
from trustframe.service.http.app import create_app, lifespan
from trustframe.service.http.audit_routes import audit, audit_router
from trustframe.service.http.deps import API_KEY_HEADER, RateLimiter, get_repository, get_settings
from trustframe.service.http.problems import PROBLEM_JSON, Problem, UnexpectedErrors, problem
from trustframe.service.http.softbinding_routes import softbinding_router
from trustframe.service.http.telemetry import JsonFormatter, Metrics, Telemetry, log_config, log_fields

__all__ = [
    "API_KEY_HEADER", "PROBLEM_JSON", "JsonFormatter", "Metrics", "Problem", "RateLimiter", "Telemetry",
    "UnexpectedErrors", "audit", "audit_router", "create_app", "get_repository", "get_settings",
    "heatmap_png", "lifespan", "log_config", "log_fields", "problem", "softbinding_router",
]  # fmt: skip
