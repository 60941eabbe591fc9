"""Jobs in the states tests need: new, claimed by another process, or left by a dead one."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.db import SessionFactory, task_session
from {{ cookiecutter.project_slug }}.jobs import service
from {{ cookiecutter.project_slug }}.jobs.models import Job
from {{ cookiecutter.project_slug }}.jobs.service import Attempt, Claim

DEAD = "dead-process"
"""The lease owner name of the process that died."""


async def new_job(kind: str, **params: Any) -> uuid.UUID:
    """A committed pending job."""
    async with task_session() as session:
        return (await service.create_job(session, kind=kind, params=params)).id


async def load(sessions: SessionFactory, job_id: uuid.UUID) -> Job:
    """The job as a new session sees it."""
    async with sessions() as session:
        return await service.get_job(session, job_id=job_id)


async def claim_as(job_id: uuid.UUID, owner: str = DEAD, *, lease: float = 60) -> Job:
    """Claim the job for `owner`, as another process would."""
    async with task_session() as session:
        claim, job = await service.claim_job(
            session, job_id=job_id, owner=owner, lease_seconds=lease, max_attempts=3
        )
    assert claim is Claim.CLAIMED
    assert job is not None
    return job


async def expire(job_id: uuid.UUID, **values: Any) -> None:
    """Make the job's lease run out (its owner stopped renewing it), setting `values` too."""
    async with task_session() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_expires_at=func.now() - dt.timedelta(seconds=1), **values)
        )


@asynccontextmanager
async def dead_attempt(job_id: uuid.UUID) -> AsyncIterator[tuple[AsyncSession, Attempt]]:
    """Attempt 1 of a process that dies after the block: yield one batch's session and the
    attempt to report progress with; the batch commits, then the lease runs out."""
    job = await claim_as(job_id)
    async with task_session() as session:
        yield session, Attempt(job_id, DEAD, job.attempts)
    await expire(job_id)
