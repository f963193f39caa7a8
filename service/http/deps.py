"""FastAPI dependencies shared by the routers: the app's settings and manifest repository, the
API key check, the per-client rate limit (token buckets), and per-file work in the app's audit
worker pool with its admission (503 + Retry-After when full)."""

from __future__ import annotations

import hmac
import math
import threading
import time

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from trustframe.provenance.repository import ManifestRepository, open_repository
from trustframe.service.http.problems import PROBLEMS, problem_doc
from trustframe.service.workers import CallFailed, PoolBusy, WorkerPool
from trustframe.settings import Settings

API_KEY_HEADER = "X-API-Key"
AUTH_PROBLEMS = {401: problem_doc(f"Missing or wrong `{API_KEY_HEADER}` header"), **PROBLEMS}


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


def shed(request: Request, retry_after: int, why: str) -> HTTPException:
    """A 503 with Retry-After for a request the audit pool has no room for (counted in /metrics)."""
    request.app.state.metrics.shed.inc()
    return HTTPException(503, f"{why}; retry in {retry_after} s", headers={"Retry-After": str(retry_after)})


def refuse_when_full(request: Request) -> WorkerPool:
    """The app's audit pool; 503 at once when it is full, before an upload is read (nothing is
    spooled for nothing)."""
    pool: WorkerPool = request.app.state.audit_pool
    if pool.saturated:
        raise shed(request, pool.retry_after(), "the server is shutting down" if pool.closed
                   else "all audit workers are busy and the queue is full")
    return pool


async def in_worker(request: Request, fn, path):
    """`fn(path, settings)` in the app's audit pool (`WorkerPool.call`): what fn raises is raised;
    503 + Retry-After when the pool is full or fn ran over `audit_timeout_s`, 500 when its worker
    died."""
    pool: WorkerPool = request.app.state.audit_pool
    try:
        return await pool.call(fn, path)
    except PoolBusy as e:
        raise shed(request, e.retry_after, str(e)) from None
    except CallFailed as e:
        if e.code == "timeout":
            raise HTTPException(503, str(e), headers={"Retry-After": str(pool.retry_after())}) from None
        raise HTTPException(500, str(e)) from None
