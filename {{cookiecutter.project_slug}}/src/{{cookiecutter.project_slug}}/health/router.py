"""`/health` answers without the database; `/health/db` answers through the session dependency."""

from __future__ import annotations

import logging

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from {{ cookiecutter.project_slug }}.db import SessionDep

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/health", tags=["health"])


@router.get("")
async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/db", responses={503: {"description": "The database did not answer"}})
async def health_db(session: SessionDep) -> JSONResponse:
    """The database answers a query through the request's session (503 if not)."""
    try:
        await session.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        logger.warning("database health check failed: %s", type(exc).__name__)
        await session.rollback()
        return JSONResponse(
            {"status": "unavailable", "detail": "the database did not answer"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return JSONResponse({"status": "ok"})
