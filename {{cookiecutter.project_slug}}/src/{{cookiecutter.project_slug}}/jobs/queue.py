"""The router's side of jobs: create the row, commit, then hand the id to the task engine."""

from __future__ import annotations

import logging
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.edge.ratelimit import JobSubmissionGuard
from {{ cookiecutter.project_slug }}.errors import DomainError
from {{ cookiecutter.project_slug }}.jobs import service
from {{ cookiecutter.project_slug }}.jobs.models import Job
from {{ cookiecutter.project_slug }}.jobs.runner import Enqueuer

logger = logging.getLogger(__name__)
SUBMIT_LEASE_SECONDS = 60.0
"""Until a process takes the job (its heartbeat or a claim), it is recoverable after this:
covers a web process that dies between the commit and the hand-over to the task engine."""


class TaskEngineUnavailableError(DomainError):
    """The task engine did not accept the job."""

    status_code = 503


async def get_enqueuer(request: Request, _: JobSubmissionGuard) -> Enqueuer:
    """The task engine started by the app's lifespan, for a caller with a key within its rate."""
    return cast(Enqueuer, request.app.state.enqueue)


EnqueueDep = Annotated[Enqueuer, Depends(get_enqueuer)]
"""Every route that submits jobs takes it: it brings the API key check and the job rate limit."""


async def submit_job(
    session: AsyncSession, enqueue: Enqueuer, *, kind: str, params: dict[str, Any]
) -> Job:
    """Create a job, commit it, and enqueue its id (routers only: this ends the transaction).

    The commit comes first so that whoever runs the job can read its row. If the task engine
    refuses the job, the job is marked failed and the client gets a 503. If this process dies
    between the commit and the hand-over, the job's short unowned lease lets recovery send it.
    """
    job = await service.create_job(
        session, kind=kind, params=params, lease_seconds=SUBMIT_LEASE_SECONDS
    )
    await session.commit()
    try:
        await enqueue(job.id)
    except Exception as exc:
        logger.warning("could not enqueue job %s: %s", job.id, exc)
        await service.fail_job(session, job_id=job.id, error=f"could not enqueue: {exc}")
        await session.commit()
        raise TaskEngineUnavailableError("the task engine is unavailable; try again later") from exc
    return job
