"""Errors as RFC 9457 `application/problem+json`: the `Problem` document, `problem()` responses,
their OpenAPI entries, the app's exception handlers, and the middleware that turns an exception
escaping a route into a 500 problem (no stack trace ever leaves the process)."""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from trustframe.errors import TrustFrameError

log = logging.getLogger("trustframe.http")

PROBLEM_JSON = "application/problem+json"


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


def problem_doc(description: str) -> dict:
    """An OpenAPI response entry for a problem+json answer."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": Problem.model_json_schema()}}}


# "4XX" also stops FastAPI from documenting its own 422 body, which we never send.
PROBLEMS = {"4XX": problem_doc("Client error (RFC 9457 problem details)")}


def validation_detail(exc: RequestValidationError) -> str:
    """One line per error, e.g. "query.maxResults: Input should be greater than or equal to 1"."""
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
             for e in exc.errors()]
    return "; ".join(parts) or "invalid request"


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail) if exc.detail else None,
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(422, validation_detail(exc))

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
