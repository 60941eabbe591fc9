"""Job endpoints: the same answers whichever task engine runs the jobs."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from {{ cookiecutter.project_slug }}.db import SessionDep
from {{ cookiecutter.project_slug }}.jobs import service
from {{ cookiecutter.project_slug }}.jobs.models import JobStatus
from {{ cookiecutter.project_slug }}.jobs.schemas import JobPage, JobRead
from {{ cookiecutter.project_slug }}.types import (
    Offset,
    StorableText,
)

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("")
async def list_jobs(
    session: SessionDep,
    kind: Annotated[str, StorableText(max_length=50)] | None = None,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Offset = 0,
) -> JobPage:
    """List jobs, newest first, filtered by kind and status."""
    jobs, total = await service.list_jobs(
        session, kind=kind, status=status, limit=limit, offset=offset
    )
    return JobPage(
        items=[JobRead.from_job(job) for job in jobs], total=total, limit=limit, offset=offset
    )


@router.get("/{job_id}", responses={status.HTTP_404_NOT_FOUND: {"description": "No such job"}})
async def get_job(job_id: uuid.UUID, session: SessionDep) -> JobRead:
    """Return one job's status, progress, error and result (404 if absent)."""
    return JobRead.from_job(await service.get_job(session, job_id=job_id))


@router.post(
    "/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        status.HTTP_404_NOT_FOUND: {"description": "No such job"},
        status.HTTP_409_CONFLICT: {"description": "The job already finished"},
    },
)
async def cancel_job(job_id: uuid.UUID, session: SessionDep) -> JobRead:
    """Cancel a job: a pending one at once, a running one at its next batch (409 if finished)."""
    return JobRead.from_job(await service.request_cancel(session, job_id=job_id))
