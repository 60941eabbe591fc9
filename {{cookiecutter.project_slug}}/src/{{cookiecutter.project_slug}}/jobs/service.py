"""Job state changes. They use the caller's session; the caller owns the transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.errors import NotFoundError
from {{ cookiecutter.project_slug }}.jobs.models import Job, JobStatus

MAX_ERROR_LENGTH = 2000


async def create_job(session: AsyncSession, *, kind: str, params: dict[str, Any]) -> Job:
    """Add a pending job; flush so its id is known."""
    job = Job(kind=kind, params=params, status=JobStatus.PENDING, progress_done=0)
    session.add(job)
    await session.flush()
    return job


async def get_job(session: AsyncSession, *, job_id: uuid.UUID) -> Job:
    """Return the job or raise `NotFoundError`."""
    job = await session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise NotFoundError(f"job {job_id} not found")
    return job


async def list_jobs(
    session: AsyncSession,
    *,
    kind: str | None,
    status: JobStatus | None,
    limit: int,
    offset: int,
) -> tuple[list[Job], int]:
    """Return one page of jobs, newest first, with the total matching the filters."""
    query = select(Job)
    if kind is not None:
        query = query.where(Job.kind == kind)
    if status is not None:
        query = query.where(Job.status == status)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
    )
    return list(rows), total or 0


async def start_job(session: AsyncSession, *, job_id: uuid.UUID) -> Job | None:
    """Move a pending job to running; None if it is not pending (already taken or finished)."""
    return await session.scalar(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.PENDING)
        .values(status=JobStatus.RUNNING, started_at=func.now())
        .returning(Job)
    )


async def report_progress(
    session: AsyncSession, *, job_id: uuid.UUID, done: int, total: int | None = None
) -> None:
    """Record how much of the job is done (in the same transaction as the work itself)."""
    values: dict[str, Any] = {"progress_done": done}
    if total is not None:
        values["progress_total"] = total
    await session.execute(update(Job).where(Job.id == job_id).values(**values))


async def finish_job(session: AsyncSession, *, job_id: uuid.UUID, result: dict[str, Any]) -> None:
    """Mark the job succeeded with its result."""
    await session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(status=JobStatus.SUCCEEDED, result=result, finished_at=func.now())
    )


async def fail_job(session: AsyncSession, *, job_id: uuid.UUID, error: str) -> None:
    """Mark the job failed with a readable error."""
    await session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(status=JobStatus.FAILED, error=error[:MAX_ERROR_LENGTH], finished_at=func.now())
    )
