"""The app factory: `create_app(settings)` puts the routers, problem handlers, middleware and the
audit worker pool together; `lifespan` starts and stops the pool with the server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from trustframe import __version__
from trustframe.service.http.audit_routes import audit_router
from trustframe.service.http.deps import API_KEY_HEADER, RateLimiter
from trustframe.service.http.problems import UnexpectedErrors, install_problem_handlers
from trustframe.service.http.prompt_routes import prompt_router
from trustframe.service.http.softbinding_routes import softbinding_router
from trustframe.service.http.telemetry import Metrics, Telemetry, ops_router
from trustframe.service.review import review_router
from trustframe.service.workers import WorkerPool
from trustframe.settings import Settings, load_settings


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
                                {"name": "prompts", "description": "Would the generator take a prompt"},
                                {"name": "soft binding",
                                 "description": "C2PA Soft Binding Resolution API 1.0.0"}])
    app.state.settings = s
    app.state.repository = None
    app.state.audit_pool = audit_pool or WorkerPool(s.audit_workers, s, queue=s.audit_queue)
    app.state.metrics = Metrics(app.state.audit_pool)
    app.state.rate_limiter = RateLimiter(s.rate_limit_per_minute) if s.rate_limit_per_minute else None
    install_problem_handlers(app)
    app.add_middleware(UnexpectedErrors)
    app.include_router(audit_router)
    app.include_router(softbinding_router, prefix="/v1")
    app.include_router(prompt_router)
    app.include_router(review_router)  # GET /: the review page
    app.include_router(ops_router)  # GET /metrics
    if s.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=s.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=[API_KEY_HEADER, "Content-Type"])
    app.add_middleware(Telemetry, metrics=app.state.metrics)  # outermost: sees every answer
    return app
