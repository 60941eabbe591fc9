"""Errors a client can act on, database trouble as 503, and the handlers that render them.

- `DomainError` subclasses carry their status (and headers such as `Retry-After`).
- Unique and foreign-key violations are 409s.
- The database unable to serve now (pool exhausted, connection refused or lost, statement
  timeout) is a 503 with `Retry-After` and a short reason, never a 500.
- Validation errors (422) show at most a short prefix of each input and a bounded list.
- Any other error is a 500 that closes the connection and says so (`Connection: close`).
"""

from __future__ import annotations

import json
import logging
import math
import traceback
from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.routing import Match

logger = logging.getLogger(__name__)

# SQLSTATEs a client can cause and fix: unique and foreign-key violations.
UNIQUE_VIOLATION = "23505"
CONFLICT_SQLSTATES = frozenset({UNIQUE_VIOLATION, "23503"})
_CONFLICT_MESSAGES: dict[str, str] = {}

# SQLSTATEs that mean "not now": connection exception (08), insufficient resources (53),
# operator intervention (57, with 57014: statement timeout), and the retryable conflicts.
UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})
UNAVAILABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
STATEMENT_TIMEOUT = "57014"
DRIVER_PACKAGES = frozenset({"asyncpg", "sqlalchemy"})
RETRY_AFTER_SECONDS = 5
"""`Retry-After` of a 503: long enough for a pool to free a connection or a server to restart."""

MAX_LISTED_ERRORS = 20
"""Validation errors listed in a 422; the rest are counted in one last entry."""
MAX_INPUT_CHARS = 64
"""Characters of an input a 422 shows back."""
MAX_TEXT_CHARS = 300
"""Characters of a message or a context value a 422 shows."""


def register_conflict(constraint: str, detail: str) -> None:
    """Name the client-facing message for a violation of `constraint` (a 409)."""
    _CONFLICT_MESSAGES[constraint] = detail


class DomainError(Exception):
    """An error a client can act on; `status_code` is what the API answers."""

    status_code: ClassVar[int] = status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})


class NotFoundError(DomainError):
    """The addressed resource does not exist."""

    status_code = status.HTTP_404_NOT_FOUND


class ConflictError(DomainError):
    """The request conflicts with stored data."""

    status_code = status.HTTP_409_CONFLICT


class ServiceUnavailableError(DomainError):
    """Something the service needs cannot serve now; the client may retry after a while."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE

    def __init__(self, detail: str, *, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


def domain_error_response(exc: DomainError) -> JSONResponse:
    """The response of a `DomainError`: `{"detail": ...}`, its status and its headers.

    The exception handler and the edge's middlewares (which answer before any route) share it.
    """
    return JSONResponse(
        {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers or None
    )


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return domain_error_response(exc)


async def _integrity_error(_: Request, exc: Exception) -> JSONResponse:
    """Turn unique and foreign-key violations into 409; anything else stays a 500.

    The session dependency has already rolled the transaction back when this runs.
    """
    assert isinstance(exc, IntegrityError)
    detail = conflict_detail(exc)
    if detail is None:
        raise exc
    return JSONResponse({"detail": detail}, status_code=status.HTTP_409_CONFLICT)


def sqlstate(exc: DBAPIError) -> str:
    """The SQLSTATE of a database error ("" when the driver gave none), e.g. `UNIQUE_VIOLATION`."""
    return str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")


def conflict_detail(exc: IntegrityError) -> str | None:
    """The client-facing message of a unique or foreign-key violation; None for other errors."""
    if sqlstate(exc) not in CONFLICT_SQLSTATES:
        return None
    constraint = getattr(getattr(exc.orig, "__cause__", None), "constraint_name", None)
    return _CONFLICT_MESSAGES.get(constraint or "", "conflicts with stored data")


def database_unavailable(exc: BaseException) -> str | None:
    """The short reason for a 503 when `exc` means the database cannot serve now; else None."""
    if isinstance(exc, PoolTimeoutError):
        return "all database connections are busy; try again later"
    if isinstance(exc, DBAPIError):
        code = sqlstate(exc)
        if code == STATEMENT_TIMEOUT:
            return "the database took too long to answer; try again later"
        if (
            exc.connection_invalidated
            or code[:2] in UNAVAILABLE_SQLSTATE_CLASSES
            or code in UNAVAILABLE_SQLSTATES
        ):
            return "the database is unavailable; try again later"
        return None
    # asyncpg raises connection failures (refused, reset, timed out, unknown host) as OSError,
    # and SQLAlchemy passes them on unwrapped: only those count, not an OSError of other code.
    if isinstance(exc, OSError) and _raised_in(exc, DRIVER_PACKAGES):
        return "the database is unavailable; try again later"
    return None


def database_interrupted(exc: BaseException) -> bool:
    """Whether `exc` means the database could not serve for a while (refused, dropped, busy),
    as opposed to a statement of ours that ran too long: work that hit it may be retried."""
    if isinstance(exc, DBAPIError) and sqlstate(exc) == STATEMENT_TIMEOUT:
        return False
    return database_unavailable(exc) is not None


def _raised_in(exc: BaseException, packages: frozenset[str]) -> bool:
    """Whether `exc` passed through code of one of `packages` on its way up."""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        if str(frame.f_globals.get("__name__", "")).partition(".")[0] in packages:
            return True
    return False


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """503 with `Retry-After` for database trouble; any other error goes on to the 500."""
    reason = database_unavailable(exc)
    if reason is None:
        raise exc
    code = sqlstate(exc) if isinstance(exc, DBAPIError) else ""
    logger.warning(
        "%s %s: 503, %s (%s %s)", request.method, request.url.path, reason, type(exc).__name__, code
    )
    return JSONResponse(
        {"detail": reason},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    """422 listing at most `MAX_LISTED_ERRORS` errors, each input cut to a short prefix."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    detail = [bounded_error(error) for error in errors[:MAX_LISTED_ERRORS]]
    if len(errors) > MAX_LISTED_ERRORS:
        more = len(errors) - MAX_LISTED_ERRORS
        detail.append(
            {"loc": [], "msg": f"{more} more errors not listed", "type": "too_many_errors"}
        )
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def bounded_error(error: Mapping[str, Any]) -> dict[str, Any]:
    """One validation error with its location, message, input and context kept short."""
    bounded: dict[str, Any] = {
        "type": _cut(str(error.get("type", "")), MAX_TEXT_CHARS),
        "loc": [
            part if isinstance(part, int) else _cut(str(part), MAX_INPUT_CHARS)
            for part in error.get("loc", ())
        ],
        "msg": _cut(str(error.get("msg", "")), MAX_TEXT_CHARS),
    }
    if "input" in error:
        bounded["input"] = preview(error["input"], MAX_INPUT_CHARS)
    context = error.get("ctx")
    if isinstance(context, Mapping):
        bounded["ctx"] = {
            _cut(str(key), MAX_INPUT_CHARS): preview(value, MAX_TEXT_CHARS)
            for key, value in context.items()
        }
    return bounded


def preview(value: Any, limit: int) -> Any:
    """`value` as JSON can carry it, at most about `limit` characters (a string when cut)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if value.bit_length() <= 64 else _cut(_int_text(value), limit)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # JSON has no NaN or Infinity
    if isinstance(value, str):
        return _cut(value, limit)
    if isinstance(value, bytes | bytearray):
        return _cut(bytes(value[: limit * 4]).decode("utf-8", "replace"), limit)
    if isinstance(value, Mapping | list | tuple):
        text, complete = _sketch(value, limit)
        if not complete:
            return text + "…"
        if isinstance(value, Mapping):
            return {_cut(str(key), limit): preview(item, limit) for key, item in value.items()}
        return [preview(item, limit) for item in value]
    return _cut(str(value), limit)


def _sketch(value: Any, limit: int) -> tuple[str, bool]:
    """A JSON rendering of `value` cut at `limit` characters, and whether it is complete.

    The walk stops at the limit, so a huge input costs no more than a small one.
    """
    parts: list[str] = []
    size = 0

    def add(piece: str) -> bool:
        nonlocal size
        parts.append(piece)
        size += len(piece)
        return size <= limit

    def walk(item: Any) -> bool:
        if isinstance(item, Mapping):
            pairs = (
                (index, json.dumps(_cut(str(key), limit), ensure_ascii=False), child)
                for index, (key, child) in enumerate(item.items())
            )
            opened = add("{")
            for index, key, child in pairs:
                if not (opened and (index == 0 or add(", ")) and add(f"{key}: ") and walk(child)):
                    return False
            return opened and add("}")
        if isinstance(item, list | tuple):
            opened = add("[")
            for index, child in enumerate(item):
                if not (opened and (index == 0 or add(", ")) and walk(child)):
                    return False
            return opened and add("]")
        return add(json.dumps(preview(item, limit), ensure_ascii=False))

    complete = walk(value)
    return "".join(parts)[:limit], complete


def _int_text(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # beyond Python's digit limit for int-to-str conversion
        return f"an integer of {value.bit_length()} bits"


def _cut(text: str, limit: int) -> str:
    """`text` up to `limit` characters, lone surrogates escaped (UTF-8 cannot carry them)."""
    short = text if len(text) <= limit else text[:limit] + "…"
    return short.encode("utf-8", "backslashreplace").decode("utf-8")


async def _server_error(_: Request, exc: Exception) -> JSONResponse:
    """The 500 of an unhandled error, announcing that the connection closes after it.

    Starlette re-raises the error after sending this response, so that the server logs it;
    uvicorn then closes the connection. `Connection: close` tells the client so, instead of
    letting it send its next request on a connection about to be reset.
    """
    return JSONResponse(
        {"detail": "internal server error"},
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
        headers={"Connection": "close"},
    )


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def _method_not_allowed(request: Request, _: Exception) -> JSONResponse:
    """405 whose `Allow` names every method of the path (Starlette's names one route's only)."""
    allowed = [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    headers = {"Allow": ", ".join(allowed)}
    return JSONResponse({"detail": "Method Not Allowed"}, status_code=405, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the domain, database, validation and server error handlers on `app`."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(OSError, _database_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)
    app.add_exception_handler(status.HTTP_405_METHOD_NOT_ALLOWED, _method_not_allowed)
