"""Errors as Problem Details (RFC 9457, application/problem+json {"type", "title", "status", "detail"}): one handler
per project exception type, as the CLI turns them into one line in one place. Never a stack trace: an error nobody
expected is logged here and answered 500 with a generic detail.

`type` is a URN naming the kind of problem (urn:orderstream:problem:<title as a slug>: no page to dereference).
Extension members carry what a client acts on: `behind` for a view that is late, `reason`/`version` for a refused
command. Errors the broker or a database cause are 503 with Retry-After.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger("orderstream.api")

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_S = 1


class Problem(Exception):
    """An error the API answers as it is: status, title, detail, extra members and headers."""

    def __init__(
        self, status: int, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.headers, self.extra = status, title, detail, headers or {}, extra


def not_found(detail: str) -> Problem:
    return Problem(404, "Not Found", detail)


def problem_response(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    slug = title.lower().replace(" ", "-")
    body = {"type": f"urn:orderstream:problem:{slug}", "title": title, "status": status, "detail": detail}
    return JSONResponse(body | extra, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _unavailable(detail: str, **extra: Any) -> JSONResponse:
    return problem_response(503, "Service Unavailable", detail, {"Retry-After": str(RETRY_AFTER_S)}, **extra)


def install(app: FastAPI) -> None:
    """Register one handler per exception type the core raises (imports here: the core's error types)."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from orderstream.domain.validation import ValidationError
    from orderstream.ops.read_your_writes import TokenRefused, TokenUnreachable, ViewBehind
    from orderstream.producers.commands import ReplyTimeout, SendError
    from orderstream.views.queries import QueryError
    from orderstream.views.store import NotInitialized, SchemaMismatch, StoreError

    async def problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, exc.headers, **exc.extra)

    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        title = {401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed", 413: "Content Too Large"}
        detail = exc.detail if isinstance(exc.detail, str) else "the request was refused"
        return problem_response(exc.status_code, title.get(exc.status_code, "Error"), detail, exc.headers)

    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "request"
        return problem_response(422, "Unprocessable Content", f"{where}: {first['msg']}")

    async def invalid_command(_: Request, exc: ValidationError) -> JSONResponse:
        return problem_response(422, "Unprocessable Content", str(exc))

    async def bad_query(_: Request, exc: Exception) -> JSONResponse:
        return problem_response(400, "Bad Request", str(exc))

    async def view_behind(_: Request, exc: ViewBehind) -> JSONResponse:
        return _unavailable(str(exc), behind=exc.behind, token=str(exc.token))

    async def view_missing(_: Request, exc: StoreError) -> JSONResponse:
        return _unavailable(str(exc))

    async def database_down(_: Request, exc: DBAPIError) -> JSONResponse:
        log.warning("database error: %s", type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__)
        return _unavailable("a view's database does not answer; try again")

    async def broker_down(_: Request, exc: SendError) -> JSONResponse:
        return _unavailable(str(exc))

    async def no_reply(_: Request, exc: ReplyTimeout) -> JSONResponse:
        return problem_response(504, "Gateway Timeout", str(exc), {"Retry-After": str(RETRY_AFTER_S)})

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected %s answering a request", type(exc).__name__, exc_info=exc)
        return problem_response(500, "Internal Server Error", "an unexpected error happened; it was logged")

    app.add_exception_handler(Problem, problem)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(ValidationError, invalid_command)
    for kind in (QueryError, TokenRefused, TokenUnreachable):
        app.add_exception_handler(kind, bad_query)
    app.add_exception_handler(ViewBehind, view_behind)
    for kind in (NotInitialized, SchemaMismatch, StoreError):
        app.add_exception_handler(kind, view_missing)
    for kind in (OperationalError, DBAPIError):
        app.add_exception_handler(kind, database_down)
    app.add_exception_handler(SendError, broker_down)
    app.add_exception_handler(ReplyTimeout, no_reply)
    app.add_exception_handler(Exception, unexpected)
