"""Request bodies streamed to temporary files, capped while they stream: a raw body
(`spooled_body`, for `/v1/matches/byContent`) and the multipart field `file` (`spooled_upload`,
for `/v1/audit` and `/v1/detector/heatmap`).

Why not Starlette's `request.form()`: it caps only the non-file fields, and spools a file part of
any size to disk before the route sees it. Here python-multipart's streaming parser feeds the
`file` part to a spool that stops at `upload_max_bytes` as the bytes arrive (Content-Length is not
trusted), other fields are counted and discarded, and the spool is always removed.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path, PurePosixPath

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

UPLOAD_FIELD = "file"
OTHER_FIELDS_MAX_BYTES = 64 * 1024  # multipart parts besides `file` are read and discarded
# The OpenAPI request body of the routes that take a multipart upload.
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [UPLOAD_FIELD],
    "properties": {UPLOAD_FIELD: {"type": "string", "format": "binary",
                                  "description": "the image or video to audit"}}}}}}}


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
