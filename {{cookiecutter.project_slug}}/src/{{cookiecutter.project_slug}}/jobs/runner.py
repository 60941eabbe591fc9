"""Run one job through its handler, with the job's state kept true whatever happens.

Handlers receive IDs and parameters, open their sessions with `task_session()`, commit per batch
and report progress in the same transaction as the batch. `run_job` marks the job running, then
succeeded with the handler's result, or failed with a readable error; a failing batch's
transaction is rolled back by `task_session()`, so no half-written batch and no open transaction
is left behind.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.db import task_session
from {{ cookiecutter.project_slug }}.errors import DomainError
from {{ cookiecutter.project_slug }}.jobs import service
from {{ cookiecutter.project_slug }}.outbound.client import (
    OutboundConfig,
    build_client,
)
from {{ cookiecutter.project_slug }}.settings import Settings

logger = logging.getLogger(__name__)


class JobError(Exception):
    """A failure the job's user can read and act on: its message becomes the job's `error`."""


@dataclass(frozen=True)
class JobResources:
    """What jobs of one process share: the settings and the one outbound HTTP client."""

    settings: Settings
    http: httpx.AsyncClient
    outbound: OutboundConfig


@asynccontextmanager
async def job_resources(settings: Settings) -> AsyncIterator[JobResources]:
    """Open the shared outbound client for the jobs of this process; close it on exit."""
    config = OutboundConfig.from_settings(settings)
    async with build_client(config) as http:
        yield JobResources(settings=settings, http=http, outbound=config)


@dataclass(frozen=True)
class JobContext:
    """What a handler gets: the job's id and parameters, shared resources, progress reports."""

    job_id: uuid.UUID
    params: Mapping[str, Any]
    resources: JobResources

    async def progress(self, session: AsyncSession, *, done: int, total: int | None = None) -> None:
        """Record progress inside the handler's current batch transaction."""
        await service.report_progress(session, job_id=self.job_id, done=done, total=total)


JobHandler = Callable[[JobContext], Awaitable[dict[str, Any]]]


class Enqueuer(Protocol):
    """The task engine's side of a job: send its id to whoever runs it."""

    async def __call__(self, job_id: uuid.UUID) -> None:
        """Hand the job to the task engine."""


def describe(exc: BaseException) -> str:
    """The job's `error` text: the message of expected failures, the type of the rest."""
    if isinstance(exc, JobError | DomainError):
        return str(exc) or type(exc).__name__
    return f"internal error ({type(exc).__name__}); see the service logs"


async def run_job(
    job_id: uuid.UUID, handlers: Mapping[str, JobHandler], resources: JobResources
) -> None:
    """Claim the pending job, run its handler, and record the outcome."""
    async with task_session() as session:
        job = await service.start_job(session, job_id=job_id)
        context = (
            None
            if job is None
            else JobContext(job_id=job.id, params=dict(job.params), resources=resources)
        )
        kind = None if job is None else job.kind
    if context is None:
        logger.info("job %s is not pending (already run or taken); skipping", job_id)
        return
    try:
        handler = handlers.get(kind or "")
        if handler is None:
            raise JobError(f"no handler for job kind {kind!r}")
        result = await handler(context)
    except asyncio.CancelledError:
        await asyncio.shield(_fail(job_id, "interrupted: the process running it shut down"))
        raise
    except Exception as exc:
        logger.exception("job %s (%s) failed", job_id, kind)
        await _fail(job_id, describe(exc))
        return
    async with task_session() as session:
        await service.finish_job(session, job_id=job_id, result=result)
    logger.info("job %s (%s) succeeded", job_id, kind)


async def _fail(job_id: uuid.UUID, error: str) -> None:
    async with task_session() as session:
        await service.fail_job(session, job_id=job_id, error=error)
