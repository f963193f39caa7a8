"""The review page: `GET /` serves a page where a reviewer drops images and video and reads their
verdicts, laid out for people who do not read JSON.

The page is plain HTML, CSS and JavaScript under `service/static/` (no build step, nothing
fetched from elsewhere: it works offline). It calls the app's own `POST /v1/audit` and
`POST /v1/detector/heatmap` from the browser, one file at a time, and asks for the API key when
the server answers 401. The page and its files need no key: they hold no data.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().with_name("static")
# Only these files are served (no directory listing, no path from the request reaches the disk).
STATIC_FILES = {"review.css": "text/css; charset=utf-8", "review.js": "text/javascript; charset=utf-8"}

# Everything the page loads comes from this origin; uploads become blob: URLs for thumbnails.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}

review_router = APIRouter(include_in_schema=False)


@review_router.get("/")
def review_page() -> FileResponse:
    """The review page (HTML)."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=HEADERS)


@review_router.get("/static/{name}")
def review_static(name: str) -> FileResponse:
    """The page's stylesheet and script."""
    if name not in STATIC_FILES:
        raise HTTPException(404, "no such file")
    return FileResponse(STATIC_DIR / name, media_type=STATIC_FILES[name], headers=HEADERS)
