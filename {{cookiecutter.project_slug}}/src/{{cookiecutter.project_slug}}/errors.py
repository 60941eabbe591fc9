"""Domain errors that carry their HTTP status, and the handlers that render them."""

from __future__ import annotations

import logging
from typing import ClassVar

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

logger = logging.getLogger(__name__)

# SQLSTATEs a client can cause and fix: unique and foreign-key violations.
CONFLICT_SQLSTATES = frozenset({"23505", "23503"})
_CONFLICT_MESSAGES: dict[str, str] = {}


def register_conflict(constraint: str, detail: str) -> None:
    """Name the client-facing message for a violation of `constraint` (a 409)."""
    _CONFLICT_MESSAGES[constraint] = detail


class DomainError(Exception):
    """An error a client can act on; `status_code` is what the API answers."""

    status_code: ClassVar[int] = status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(DomainError):
    """The addressed resource does not exist."""

    status_code = status.HTTP_404_NOT_FOUND


class ConflictError(DomainError):
    """The request conflicts with stored data."""

    status_code = status.HTTP_409_CONFLICT


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


async def _integrity_error(_: Request, exc: Exception) -> JSONResponse:
    """Turn unique and foreign-key violations into 409; anything else stays a 500.

    The session dependency has already rolled the transaction back when this runs.
    """
    assert isinstance(exc, IntegrityError)
    detail = conflict_detail(exc)
    if detail is None:
        raise exc
    return JSONResponse({"detail": detail}, status_code=status.HTTP_409_CONFLICT)


def conflict_detail(exc: IntegrityError) -> str | None:
    """The client-facing message of a unique or foreign-key violation; None for other errors."""
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if sqlstate not in CONFLICT_SQLSTATES:
        return None
    constraint = getattr(getattr(exc.orig, "__cause__", None), "constraint_name", None)
    return _CONFLICT_MESSAGES.get(constraint or "", "conflicts with stored data")


def install_error_handlers(app: FastAPI) -> None:
    """Register the domain and integrity error handlers on `app`."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
