"""Job endpoints: the same answers whichever task engine runs the jobs."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from {{ cookiecutter.project_slug }}.db import SessionDep
from {{ cookiecutter.project_slug }}.jobs import service
from {{ cookiecutter.project_slug }}.jobs.models import JobStatus
from {{ cookiecutter.project_slug }}.jobs.schemas import JobPage, JobRead

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("")
async def list_jobs(
    session: SessionDep,
    kind: str | None = None,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobPage:
    """List jobs, newest first, filtered by kind and status."""
    jobs, total = await service.list_jobs(
        session, kind=kind, status=status, limit=limit, offset=offset
    )
    return JobPage(
        items=[JobRead.from_job(job) for job in jobs], total=total, limit=limit, offset=offset
    )


@router.get("/{job_id}")
async def get_job(job_id: uuid.UUID, session: SessionDep) -> JobRead:
    """Return one job's status, progress, error and result (404 if absent)."""
    return JobRead.from_job(await service.get_job(session, job_id=job_id))
