"""`run_job`: the job's state stays true on success, on failure and on repeated delivery."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.db import SessionFactory, task_session
from {{ cookiecutter.project_slug }}.jobs.models import JobStatus
from {{ cookiecutter.project_slug }}.jobs.runner import (
    JobContext,
    JobError,
    JobHandler,
    JobResources,
    run_job,
)
from {{ cookiecutter.project_slug }}.profiles.models import Profile

from tests.jobs.helpers import load, new_job


async def profile_count(sessions: SessionFactory) -> int:
    """Count stored profiles."""
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Profile)) or 0)


async def store_batch(session: AsyncSession, start: int, size: int) -> None:
    """Add `size` profiles numbered from `start` and flush them."""
    session.add_all(
        Profile(name=f"P{i}", email=f"p{i}@example.com") for i in range(start, start + size)
    )
    await session.flush()


async def two_batches(context: JobContext) -> dict[str, Any]:
    """A well-behaved handler: one transaction per batch, progress with each batch."""
    size = int(context.params["batch"])
    for number in range(2):
        async with task_session() as session:
            await store_batch(session, number * size, size)
            await context.progress(session, done=(number + 1) * size, total=2 * size)
    return {"stored": 2 * size}


async def fails_in_second_batch(context: JobContext) -> dict[str, Any]:
    """Commits one batch, then fails half way through the second."""
    async with task_session() as session:
        await store_batch(session, 0, 3)
        await context.progress(session, done=3, total=6)
    async with task_session() as session:
        await store_batch(session, 3, 2)
        raise JobError("upstream answered 503 for page 2")
    raise AssertionError("unreachable")  # pragma: no cover


async def crashes(context: JobContext) -> dict[str, Any]:
    """A bug: an unexpected exception."""
    raise KeyError("missing")


HANDLERS: dict[str, JobHandler] = {
    "two_batches": two_batches,
    "fails_in_second_batch": fails_in_second_batch,
    "crashes": crashes,
}


async def test_success_records_result_and_progress(
    sessions: SessionFactory, resources: JobResources
) -> None:
    job_id = await new_job("two_batches", batch=5)
    await run_job(job_id, HANDLERS, resources)
    job = await load(sessions, job_id)
    assert job.status is JobStatus.SUCCEEDED
    assert job.result == {"stored": 10}
    assert (job.progress_done, job.progress_total) == (10, 10)
    assert job.started_at is not None
    assert job.finished_at is not None
    assert job.error is None
    assert await profile_count(sessions) == 10


async def test_failure_keeps_committed_batches_and_rolls_back_the_partial_one(
    sessions: SessionFactory, resources: JobResources
) -> None:
    job_id = await new_job("fails_in_second_batch")
    await run_job(job_id, HANDLERS, resources)
    job = await load(sessions, job_id)
    assert job.status is JobStatus.FAILED
    assert job.error == "upstream answered 503 for page 2"
    assert (job.progress_done, job.progress_total) == (3, 6)
    assert await profile_count(sessions) == 3  # the second batch left nothing behind


async def test_unexpected_errors_are_named_without_internals(
    sessions: SessionFactory, resources: JobResources
) -> None:
    job_id = await new_job("crashes")
    await run_job(job_id, HANDLERS, resources)
    job = await load(sessions, job_id)
    assert job.status is JobStatus.FAILED
    assert job.error == "internal error (KeyError); see the service logs"


async def test_unknown_kind_fails_the_job(
    sessions: SessionFactory, resources: JobResources
) -> None:
    job_id = await new_job("nobody_handles_this")
    await run_job(job_id, HANDLERS, resources)
    job = await load(sessions, job_id)
    assert job.status is JobStatus.FAILED
    assert job.error == "no handler for job kind 'nobody_handles_this'"


async def test_a_job_runs_once_even_if_delivered_twice(
    sessions: SessionFactory, resources: JobResources
) -> None:
    job_id = await new_job("two_batches", batch=2)
    await run_job(job_id, HANDLERS, resources)
    await run_job(job_id, HANDLERS, resources)
    assert (await load(sessions, job_id)).status is JobStatus.SUCCEEDED
    assert await profile_count(sessions) == 4
