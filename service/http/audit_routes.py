"""The audit router: `GET /healthz`, `POST /v1/audit` (one upload in, one Verdict out) and
`POST /v1/detector/heatmap` (the detector's heat map as PNG), both in the app's worker pool (503
when it is full).
"""

from __future__ import annotations

import contextvars
import time
from pathlib import Path, PurePosixPath

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from trustframe import __version__
from trustframe.service.audit import audit as audit_in_process
from trustframe.service.evidence import heatmap_png
from trustframe.service.http.deps import (
    AUTH_PROBLEMS,
    get_settings,
    in_worker,
    rate_limit,
    refuse_when_full,
    require_api_key,
    shed,
)
from trustframe.service.http.problems import problem_doc
from trustframe.service.http.telemetry import log_fields
from trustframe.service.http.uploads import UPLOAD_BODY, spooled_upload
from trustframe.service.verdict import Verdict
from trustframe.service.workers import PoolBusy, WorkerPool
from trustframe.settings import Settings

audit_router = APIRouter(tags=["audit"])


@audit_router.get("/healthz", summary="Liveness check (no API key needed)")
def healthz() -> dict:
    return {"status": "ok", "version": __version__}


_request_pool: contextvars.ContextVar[WorkerPool | None] = contextvars.ContextVar(
    "trustframe_audit_pool", default=None)


async def audit(path: Path, *, settings: Settings, filename: str) -> Verdict:
    """The audit behind `POST /v1/audit`: in the calling request's worker pool (raises `PoolBusy`
    when it is full), or in a thread of this process when called outside a request. The route
    calls it by this module's name (`trustframe.service.http.audit_routes.audit`), so an embedding
    application can wrap or replace it.
    """
    pool = _request_pool.get()
    if pool is None:
        return await run_in_threadpool(audit_in_process, path, settings=settings, filename=filename)
    return await pool.submit(path, filename)


@audit_router.post(
    "/v1/audit", response_model=Verdict, dependencies=[Depends(rate_limit), Depends(require_api_key)],
    summary="Audit one uploaded image or video",
    responses={413: problem_doc("Upload larger than `upload_max_bytes`"),
               429: problem_doc("Over `rate_limit_per_minute`; see Retry-After"),
               503: problem_doc("Every audit worker busy and the queue full; see Retry-After"),
               **AUTH_PROBLEMS},
    openapi_extra=UPLOAD_BODY)
async def audit_upload(request: Request, settings: Settings = Depends(get_settings)) -> Response:
    """Multipart upload in field `file` -> the Verdict (JSON schema "trustframe.verdict/1").

    Unreadable media still gets 200: the audit succeeded and says so with label "error"; so does
    a file still running after `audit_timeout_s` (error code "timeout"). 503 with Retry-After when
    `audit_workers` audits run and `audit_queue` wait already (checked before the upload is read,
    and again when it is handed over).
    """
    pool = refuse_when_full(request)
    async with spooled_upload(request, settings.upload_max_bytes) as (path, filename):
        name = PurePosixPath((filename or "").replace("\\", "/")).name or path.name
        token = _request_pool.set(pool)
        started = time.perf_counter()
        try:
            verdict = await audit(path, settings=settings, filename=name)
        except PoolBusy as e:
            raise shed(request, e.retry_after, str(e)) from None
        finally:
            _request_pool.reset(token)
    request.app.state.metrics.audited(verdict, time.perf_counter() - started)
    log_fields(request).update({"label": verdict.label}
                               | ({"error_code": verdict.error.code} if verdict.error else {}))
    return JSONResponse(verdict.to_dict())


@audit_router.post(
    "/v1/detector/heatmap", dependencies=[Depends(rate_limit), Depends(require_api_key)],
    summary="The detector's heat map of one uploaded image or video (PNG)",
    responses={200: {"content": {"image/png": {}}, "description": "the highest-scoring frame, "
                     "P(AI-generated) per 16x16 patch painted over it (transparent = 0, red = 1)"},
               413: problem_doc("Upload larger than `upload_max_bytes`"),
               415: problem_doc("Not an image or video"), 422: problem_doc("Unreadable media"),
               503: problem_doc("Every audit worker busy and the queue full, or over "
                                "`audit_timeout_s`; see Retry-After"),
               **AUTH_PROBLEMS},
    openapi_extra=UPLOAD_BODY)
async def detector_heatmap(request: Request, settings: Settings = Depends(get_settings)) -> Response:
    """Multipart upload in field `file` -> PNG, computed in the audit worker pool like an audit."""
    refuse_when_full(request)
    async with spooled_upload(request, settings.upload_max_bytes) as (path, _):
        png = await in_worker(request, heatmap_png, path)
    return Response(png, media_type="image/png")
