"""Run one job through its handler, with the job's state kept true whatever happens.

Handlers receive IDs and parameters, open their sessions with `task_session()`, commit per batch
and report progress in the same transaction as the batch. `run_job` claims the job (a lease held
by this process and renewed by its heartbeat), runs the handler under the kind's timeout, and
records the outcome: succeeded with the handler's result, failed with a readable error, or
cancelled. A failing batch's transaction is rolled back by `task_session()`, so no half-written
batch and no open transaction is left behind. A process that dies mid-job leaves a lease that
expires; recovery (`recover_once`, run by every process that runs jobs) retries the job from
its last committed batch, up to `JOB_MAX_ATTEMPTS` starts.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.db import task_session
from {{ cookiecutter.project_slug }}.errors import DomainError, database_interrupted
from {{ cookiecutter.project_slug }}.jobs import service
from {{ cookiecutter.project_slug }}.jobs.models import JobStatus
from {{ cookiecutter.project_slug }}.jobs.offload import release_memory
from {{ cookiecutter.project_slug }}.jobs.service import Attempt, Claim, Progress
from {{ cookiecutter.project_slug }}.observability.jobs import job_ended, observe_job
from {{ cookiecutter.project_slug }}.outbound.client import (
    OutboundConfig,
    build_client,
)
from {{ cookiecutter.project_slug }}.settings import Settings

logger = logging.getLogger(__name__)


class JobError(Exception):
    """A failure the job's user can read and act on: its message becomes the job's `error`."""


class JobStopped(Exception):  # noqa: N818 -- a signal to stop, not an error of the handler
    """Raised by `JobContext.progress` to end the handler at a batch boundary."""


class JobCancelledError(JobStopped):
    """A client cancelled the job: the handler stops, the batch in flight is rolled back."""


class LeaseLostError(JobStopped):
    """This attempt no longer holds the job (another process took it over): stop writing."""


def new_owner() -> str:
    """A name for this process's leases: host, pid and a nonce (pids are reused)."""
    return f"{socket.gethostname()[:150]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class JobResources:
    """What the jobs of one process share: settings, the outbound client, the lease owner name,
    the slots that bound how many jobs run at once, and the jobs waiting in its memory."""

    settings: Settings
    http: httpx.AsyncClient
    outbound: OutboundConfig
    slots: asyncio.Semaphore
    """`JOB_CONCURRENCY` slots: a job runs only while it holds one."""
    owner: str = field(default_factory=new_owner)
    waiting: set[uuid.UUID] = field(default_factory=set)
    """Pending jobs queued in this process's memory (renewed by its heartbeat until claimed)."""
    running: dict[uuid.UUID, asyncio.Task[Any]] = field(default_factory=dict)
    """The claimed jobs and their tasks: renewed by the heartbeat, cancelled at shutdown (so
    that they hand their jobs back)."""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at shutdown: no new job is claimed after it."""


@asynccontextmanager
async def job_resources(settings: Settings) -> AsyncIterator[JobResources]:
    """Open the shared outbound client for the jobs of this process; close it on exit."""
    # Everything allocated so far (modules, app, settings) lives as long as the process: keep it
    # out of the collector's full passes, which otherwise paused the loop for up to 650 ms
    # while large jobs allocated millions of short-lived objects.
    gc.freeze()
    config = OutboundConfig.from_settings(settings)
    async with build_client(config) as http:
        yield JobResources(
            settings=settings,
            http=http,
            outbound=config,
            slots=asyncio.Semaphore(settings.job_concurrency),
        )


@dataclass(frozen=True)
class JobContext:
    """What a handler gets: the job's id and parameters, shared resources, progress reports.

    `attempt` is 1 on the first run and counts up when a crashed run is retried; `checkpoint`
    is what the last committed batch of an earlier attempt saved (empty at first), so a retry
    can resume where the committed work ends.
    """

    job_id: uuid.UUID
    params: Mapping[str, Any]
    resources: JobResources
    attempt: int = 1
    checkpoint: Mapping[str, Any] = field(default_factory=dict)
    origin: Mapping[str, Any] = field(default_factory=dict)
    """The submitting request's ID and trace context (logs and traces of the job carry them)."""

    async def progress(
        self,
        session: AsyncSession,
        *,
        done: int,
        total: int | None = None,
        checkpoint: Mapping[str, Any] | None = None,
    ) -> None:
        """Record progress (and a checkpoint) inside the handler's current batch transaction.

        Also renews the lease. Raises `JobCancelledError` when a client cancelled the job and
        `LeaseLostError` when another process took it over; either rolls the batch back.
        """
        outcome = await service.report_progress(
            session,
            attempt=Attempt(self.job_id, self.resources.owner, self.attempt),
            done=done,
            total=total,
            checkpoint=checkpoint,
            lease_seconds=self.resources.settings.job_lease_seconds,
        )
        if outcome is Progress.LEASE_LOST:
            raise LeaseLostError(f"job {self.job_id} attempt {self.attempt} lost its lease")
        if outcome is Progress.CANCEL_REQUESTED:
            raise JobCancelledError("cancelled at the client's request")


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
    """Wait for a free slot, claim the job, run its handler, and record the outcome."""
    async with resources.slots:
        if resources.stopping.is_set():
            return  # still pending under this process's lease, handed back at shutdown
        resources.waiting.discard(job_id)
        context, kind = await _claim(job_id, resources)
        if context is None:
            return
        current = asyncio.current_task()
        if current is not None:
            resources.running[job_id] = current
        try:
            with observe_job(job_id, kind, attempt=context.attempt, origin=context.origin):
                await _run_attempt(context, kind, handlers.get(kind))
        finally:
            resources.running.pop(job_id, None)
    await release_memory()  # large jobs leave freed pages in glibc's arenas: hand them back


async def _claim(job_id: uuid.UUID, resources: JobResources) -> tuple[JobContext | None, str]:
    """Claim the job for a new attempt; log why not when another holder or its end wins."""
    settings = resources.settings
    async with task_session() as session:
        claim, job = await service.claim_job(
            session,
            job_id=job_id,
            owner=resources.owner,
            lease_seconds=settings.job_lease_seconds,
            max_attempts=settings.job_max_attempts,
        )
    if claim is Claim.CLAIMED and job is not None:
        if job.attempts > 1:
            logger.warning("job %s (%s): attempt %d, resuming", job.id, job.kind, job.attempts)
        context = JobContext(
            job_id=job.id,
            params=dict(job.params),
            resources=resources,
            attempt=job.attempts,
            checkpoint=dict(job.checkpoint or {}),
            origin=dict(job.origin or {}),
        )
        return context, job.kind
    if claim is Claim.EXHAUSTED and job is not None:
        logger.warning("job %s failed: %s", job_id, service.interrupted_message(job.attempts))
    elif claim is Claim.HELD and job is not None:
        logger.info(
            "job %s is running under %s's live lease; not taking it over", job_id, job.lease_owner
        )
    else:
        logger.info("job %s not run: %s", job_id, claim.value)
    return None, ""


async def _run_attempt(context: JobContext, kind: str, handler: JobHandler | None) -> None:
    """Run one attempt and record how it ended."""
    attempt = Attempt(context.job_id, context.resources.owner, context.attempt)
    timeout = context.resources.settings.job_timeout_for(kind)
    deadline = asyncio.timeout(timeout)
    try:
        if handler is None:
            raise JobError(f"no handler for job kind {kind!r}")
        async with deadline:
            result = await handler(context)
    except JobCancelledError as exc:
        logger.info("job %s (%s) cancelled", context.job_id, kind)
        await _end(attempt, JobStatus.CANCELLED, error=str(exc))
        return
    except LeaseLostError:
        logger.warning(
            "job %s (%s): another process took it over; this attempt stops", context.job_id, kind
        )
        return
    except TimeoutError as exc:
        if not deadline.expired():  # raised by the handler's own code, not our deadline
            logger.exception("job %s (%s) failed with an internal error", context.job_id, kind)
            await _end(attempt, JobStatus.FAILED, error=describe(exc))
            return
        error = f"timed out: the job ran longer than {timeout:g} s (JOB_TIMEOUT_SECONDS)"
        logger.warning("job %s (%s) failed: %s", context.job_id, kind, error)
        await _end(attempt, JobStatus.FAILED, error=error)
        return
    except asyncio.CancelledError:
        # The process is shutting down: hand the job back for another process to resume.
        await asyncio.shield(_release(attempt))
        raise
    except (JobError, DomainError) as exc:
        logger.warning("job %s (%s) failed: %s", context.job_id, kind, describe(exc))
        await _end(attempt, JobStatus.FAILED, error=describe(exc))
        return
    except Exception as exc:
        if database_interrupted(exc):
            # Nothing can be recorded now; the lease runs out and recovery retries the job
            # once the database is back (an attempt used, like a crash).
            logger.warning(
                "job %s (%s) interrupted: the database is unreachable (%s); it is retried",
                context.job_id,
                kind,
                type(exc).__name__,
            )
            return
        logger.exception("job %s (%s) failed with an internal error", context.job_id, kind)
        await _end(attempt, JobStatus.FAILED, error=describe(exc))
        return
    await _end(attempt, JobStatus.SUCCEEDED, result=result)
    logger.info("job %s (%s) succeeded", context.job_id, kind)


async def _end(
    attempt: Attempt,
    status: JobStatus,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Record the attempt's outcome, unless another attempt took the job over meanwhile."""
    async with task_session() as session:
        ended = await service.finish_attempt(
            session, attempt=attempt, status=status, result=result, error=error
        )
    if ended:
        job_ended(status.value)  # metrics and the job's span
    else:
        logger.warning(
            "job %s attempt %d ended (%s) after losing its lease; outcome not recorded",
            attempt.job_id,
            attempt.number,
            status.value,
        )


async def _release(attempt: Attempt) -> None:
    """Hand the job back at shutdown; a failure here only delays recovery until the lease ends."""
    try:
        async with task_session() as session:
            released = await service.release_attempt(session, attempt=attempt)
    except Exception:
        logger.exception(
            "job %s: could not hand it back; it is retried when its lease expires", attempt.job_id
        )
        return
    if released:
        logger.warning(
            "job %s handed back unfinished at shutdown; it resumes elsewhere", attempt.job_id
        )


async def heartbeat_once(resources: JobResources) -> int:
    """Renew the leases of every job this process holds (running, or waiting in its memory)."""
    async with task_session() as session:
        return await service.renew_leases(
            session,
            owner=resources.owner,
            lease_seconds=resources.settings.job_lease_seconds,
            running=set(resources.running),
            waiting=set(resources.waiting),
        )


async def recover_once(
    resources: JobResources, enqueue: Enqueuer, *, holds_in_memory: bool
) -> service.Recovered:
    """Re-send the jobs whose holder died, fail those out of attempts; return what it did.

    With `holds_in_memory` (the in-memory engine) re-sent jobs wait in this process's memory
    under its lease; otherwise they go back to the durable broker.
    """
    settings = resources.settings
    async with task_session() as session:
        recovered = await service.recover_jobs(
            session,
            owner=resources.owner,
            lease_seconds=settings.job_lease_seconds,
            max_attempts=settings.job_max_attempts,
            holds_in_memory=holds_in_memory,
        )
    for job_id in recovered.failed:
        logger.warning(
            "job %s failed: %s", job_id, "interrupted on every attempt (JOB_MAX_ATTEMPTS)"
        )
    refused: list[uuid.UUID] = []
    for job_id in recovered.resend:
        logger.warning("job %s: its holder stopped; sending it again", job_id)
        if holds_in_memory:
            resources.waiting.add(job_id)
        try:
            await enqueue(job_id)
        except Exception as exc:
            logger.warning("job %s: the task engine refused it (%s); retrying later", job_id, exc)
            refused.append(job_id)
    if refused:
        async with task_session() as session:
            await service.retry_send_soon(session, owner=resources.owner, job_ids=refused)
    return recovered


async def maintain(resources: JobResources, enqueue: Enqueuer, *, holds_in_memory: bool) -> None:
    """Heartbeat and recovery, every third of a lease, until cancelled; errors are survived."""
    interval = resources.settings.job_lease_seconds / 3
    while True:
        try:
            await heartbeat_once(resources)
            await recover_once(resources, enqueue, holds_in_memory=holds_in_memory)
        except Exception as exc:  # the database may be restarting: try again next round
            logger.warning("job heartbeat/recovery failed (%s); retrying", type(exc).__name__)
        await asyncio.sleep(interval)


async def hand_back_waiting(resources: JobResources) -> None:
    """At shutdown: expire the leases of jobs still waiting in memory, so others take them now."""
    try:
        async with task_session() as session:
            await service.hand_back_waiting(session, owner=resources.owner)
    except Exception:
        logger.exception("could not hand back waiting jobs; they are retried when leases expire")


async def stop_running(resources: JobResources, grace: float) -> None:
    """Claim no more jobs; give running ones `grace` seconds, then cancel them (handed back)."""
    resources.stopping.set()
    running = set(resources.running.values())
    if not running:
        return
    _, unfinished = await asyncio.wait(running, timeout=grace)
    if unfinished:
        logger.warning("handing back %d unfinished job(s) at shutdown", len(unfinished))
    for task in unfinished:
        task.cancel()
    await asyncio.gather(*unfinished, return_exceptions=True)
