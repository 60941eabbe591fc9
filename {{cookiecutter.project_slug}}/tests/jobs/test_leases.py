"""Leases: a job survives the death of the process running it, and stops when told to.

These tests play the dead or competing processes by claiming jobs under other owner names and
expiring leases in the database; `tests/sitemaps/test_crash.py` kills real processes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import uuid
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.project_slug }}.db import SessionFactory, task_session
from {{ cookiecutter.project_slug }}.db.engine import build_engine
from {{ cookiecutter.project_slug }}.db.session import bind_sessions
from {{ cookiecutter.project_slug }}.jobs import service
from {{ cookiecutter.project_slug }}.jobs.models import Job, JobStatus
from {{ cookiecutter.project_slug }}.jobs.queue import SUBMIT_LEASE_SECONDS
from {{ cookiecutter.project_slug }}.jobs.runner import (
    JobContext,
    JobError,
    JobHandler,
    JobResources,
    LeaseLostError,
    heartbeat_once,
    recover_once,
    run_job,
)
from {{ cookiecutter.project_slug }}.jobs.service import Attempt, Claim
from {{ cookiecutter.project_slug }}.profiles.models import Profile
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import settings_for
from tests.jobs.helpers import claim_as, expire, load, new_job
from tests.serving import free_port

SEEN: list[tuple[int, dict[str, Any]]] = []


async def resumes(context: JobContext) -> dict[str, Any]:
    """Records the attempt and checkpoint it was started with."""
    SEEN.append((context.attempt, dict(context.checkpoint)))
    return {"attempt": context.attempt}


async def cancelled_between_batches(context: JobContext) -> dict[str, Any]:
    """Stores a batch, is cancelled by a client, then tries a second batch."""
    for number in range(2):
        async with task_session() as session:
            session.add(Profile(name=f"P{number}", email=f"p{number}@example.com"))
            await context.progress(session, done=number + 1, total=2)
        if number == 0:
            async with task_session() as session:
                await service.request_cancel(session, job_id=context.job_id)
    return {}


async def sleeps(context: JobContext) -> dict[str, Any]:
    """Runs for a long time (until cancelled or timed out)."""
    await asyncio.sleep(3600)
    return {}


async def refuses(context: JobContext) -> dict[str, Any]:
    """An expected failure."""
    raise JobError("the sitemap is not XML")


HANDLERS: dict[str, JobHandler] = {
    "resumes": resumes,
    "cancelled": cancelled_between_batches,
    "sleeps": sleeps,
    "refuses": refuses,
}


async def test_a_crashed_attempt_is_taken_over_and_resumes_from_its_checkpoint(
    sessions: SessionFactory, resources: JobResources
) -> None:
    SEEN.clear()
    job_id = await new_job("resumes")
    job = await claim_as(job_id, "dead-process")
    async with task_session() as session:
        await service.report_progress(
            session,
            attempt=Attempt(job_id, "dead-process", job.attempts),
            done=5,
            checkpoint={"next_page": 2},
            lease_seconds=60,
        )
    await expire(job_id)

    await run_job(job_id, HANDLERS, resources)

    assert SEEN == [(2, {"next_page": 2})]
    finished = await load(sessions, job_id)
    assert (finished.status, finished.attempts, finished.result) == (
        JobStatus.SUCCEEDED,
        2,
        {"attempt": 2},
    )
    assert finished.lease_owner is None


async def test_a_live_lease_is_never_taken_over(
    sessions: SessionFactory, resources: JobResources
) -> None:
    SEEN.clear()
    job_id = await new_job("resumes")
    await claim_as(job_id, "busy-process")

    await run_job(job_id, HANDLERS, resources)  # a duplicate delivery

    assert SEEN == []
    held = await load(sessions, job_id)
    assert (held.status, held.lease_owner, held.attempts) == (
        JobStatus.RUNNING,
        "busy-process",
        1,
    )


@pytest.mark.parametrize("left_by_a_dead_process", [False, True])
async def test_processes_claiming_one_job_at_once_start_one_attempt(
    engine: AsyncEngine, left_by_a_dead_process: bool
) -> None:
    # Each claimer has a connection of its own (the `sessions` fixture would share one), so
    # the claims really race in the database; the job is committed and deleted afterwards.
    with bind_sessions(engine):
        job_id = await new_job("resumes")
        try:
            if left_by_a_dead_process:  # several recoverers take it over at the same moment
                await claim_as(job_id)
                await expire(job_id)

            async def claim(owner: str) -> Claim:
                async with task_session() as session:
                    claim, _ = await service.claim_job(
                        session, job_id=job_id, owner=owner, lease_seconds=60, max_attempts=3
                    )
                return claim

            claims = await asyncio.gather(*(claim(f"process-{number}") for number in range(6)))

            assert sorted(claim.value for claim in claims) == ["claimed"] + ["held"] * 5
            async with task_session() as session:
                job = await service.get_job(session, job_id=job_id)
            assert job.attempts == (2 if left_by_a_dead_process else 1)
            assert job.lease_owner == f"process-{claims.index(Claim.CLAIMED)}"
        finally:
            async with task_session() as session:
                await session.execute(delete(Job).where(Job.id == job_id))


async def test_a_zombie_attempt_cannot_write_after_a_takeover(
    sessions: SessionFactory, resources: JobResources
) -> None:
    job_id = await new_job("resumes")
    await claim_as(job_id, "zombie")
    await expire(job_id)
    await claim_as(job_id, "successor")
    zombie = JobContext(
        job_id=job_id, params={}, resources=dataclasses.replace(resources, owner="zombie")
    )

    async def late_batch() -> None:
        async with task_session() as session:
            session.add(Profile(name="Late", email="late@example.com"))
            await zombie.progress(session, done=1)

    with pytest.raises(LeaseLostError):
        await late_batch()

    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Profile)) == 0
    assert (await load(sessions, job_id)).progress_done == 0


async def test_recovery_resends_fails_and_cancels(
    sessions: SessionFactory, resources: JobResources
) -> None:
    crashed, exhausted, cancelled, alive = [await new_job("resumes") for _ in range(4)]
    for job_id in (crashed, exhausted, cancelled, alive):
        await claim_as(job_id, "dead-process")
    await expire(crashed)
    await expire(exhausted, attempts=3)
    await expire(cancelled, cancel_requested_at=func.now())
    sent: list[uuid.UUID] = []

    async def enqueue(job_id: uuid.UUID) -> None:
        sent.append(job_id)

    recovered = await recover_once(resources, enqueue, holds_in_memory=False)

    assert sent == [crashed] == list(recovered.resend)
    assert (await load(sessions, crashed)).status is JobStatus.PENDING
    failed = await load(sessions, exhausted)
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None
    assert failed.error.startswith("interrupted 3 times: the process running it stopped")
    assert (await load(sessions, cancelled)).status is JobStatus.CANCELLED
    assert (await load(sessions, alive)).status is JobStatus.RUNNING


async def test_a_job_never_handed_to_the_engine_is_sent_by_recovery(
    sessions: SessionFactory, resources: JobResources
) -> None:
    # Created and committed as `submit_job` does; the process died before the hand-over.
    async with task_session() as session:
        job_id = (
            await service.create_job(
                session, kind="resumes", params={}, lease_seconds=SUBMIT_LEASE_SECONDS
            )
        ).id
    await expire(job_id)
    sent: list[uuid.UUID] = []

    async def enqueue(job_id: uuid.UUID) -> None:
        sent.append(job_id)

    await recover_once(resources, enqueue, holds_in_memory=False)
    assert sent == [], "a broker may still hold it: not re-sent before ten leases"
    async with task_session() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_expires_at=func.now() - dt.timedelta(hours=1))
        )
    await recover_once(resources, enqueue, holds_in_memory=False)
    assert sent == [job_id]
    await expire(job_id)
    await recover_once(resources, enqueue, holds_in_memory=True)
    assert sent == [job_id, job_id], "in memory, nothing else can hold it: sent at expiry"


async def test_an_in_memory_job_of_a_dead_process_is_taken_by_the_recoverer(
    sessions: SessionFactory, resources: JobResources
) -> None:
    job_id = await new_job("resumes")
    async with task_session() as session:  # pending in the memory of a process that died
        await session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                lease_owner="dead-process", lease_expires_at=func.now() - dt.timedelta(seconds=1)
            )
        )
    sent: list[uuid.UUID] = []

    async def enqueue(job_id: uuid.UUID) -> None:
        sent.append(job_id)

    await recover_once(resources, enqueue, holds_in_memory=True)

    assert sent == [job_id]
    assert job_id in resources.waiting
    assert (await load(sessions, job_id)).lease_owner == resources.owner


async def test_the_heartbeat_renews_only_the_jobs_this_process_runs(
    sessions: SessionFactory, resources: JobResources
) -> None:
    # The database says this process holds the job, but no task of it runs the job any more
    # (its end could not be recorded): the lease must run out so that recovery retries it.
    orphan = await new_job("resumes")
    await claim_as(orphan, resources.owner)
    await expire(orphan)
    sent: list[uuid.UUID] = []

    async def enqueue(job_id: uuid.UUID) -> None:
        sent.append(job_id)

    assert await heartbeat_once(resources) == 0
    await recover_once(resources, enqueue, holds_in_memory=False)

    assert sent == [orphan]


async def refused_connection() -> BaseException:
    """The error a real connection attempt to a port where no database listens raises."""
    engine = build_engine(
        settings_for(make_url(f"postgresql://postgres@127.0.0.1:{free_port()}/x"))
    )
    try:
        async with engine.connect():
            pass
    except Exception as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("something answered on a free port")


async def test_losing_the_database_interrupts_the_attempt_for_a_retry(
    sessions: SessionFactory, resources: JobResources, caplog: pytest.LogCaptureFixture
) -> None:
    error = await refused_connection()

    async def loses_the_database(context: JobContext) -> dict[str, Any]:
        raise error

    job_id = await new_job("loses")
    with caplog.at_level(logging.WARNING, logger=run_job.__module__):
        await run_job(job_id, {"loses": loses_the_database}, resources)

    interrupted = await load(sessions, job_id)
    assert (interrupted.status, interrupted.error) == (JobStatus.RUNNING, None), "not failed"
    assert "the database is unreachable" in caplog.text
    assert await heartbeat_once(resources) == 0, "its lease is left to run out"
    await expire(job_id)
    sent: list[uuid.UUID] = []

    async def enqueue(job_id: uuid.UUID) -> None:
        sent.append(job_id)

    await recover_once(resources, enqueue, holds_in_memory=False)
    assert sent == [job_id]


async def test_a_job_the_broker_refused_is_sent_again_next_round(
    sessions: SessionFactory, resources: JobResources
) -> None:
    job_id = await new_job("resumes")
    await claim_as(job_id, "dead-process")
    await expire(job_id)
    sent: list[uuid.UUID] = []

    async def refuse(job_id: uuid.UUID) -> None:
        raise ConnectionError("broker not ready")

    async def enqueue(job_id: uuid.UUID) -> None:
        sent.append(job_id)

    await recover_once(resources, refuse, holds_in_memory=False)
    await heartbeat_once(resources)  # must not keep the refused job's lease alive
    await recover_once(resources, enqueue, holds_in_memory=False)

    assert sent == [job_id]
    assert (await load(sessions, job_id)).status is JobStatus.PENDING


async def test_cancel_stops_the_handler_at_its_next_batch(
    sessions: SessionFactory, resources: JobResources
) -> None:
    job_id = await new_job("cancelled")

    await run_job(job_id, HANDLERS, resources)

    job = await load(sessions, job_id)
    assert (job.status, job.progress_done, job.error) == (
        JobStatus.CANCELLED,
        1,
        "cancelled at the client's request",
    )
    async with sessions() as session:
        stored = list(await session.scalars(select(Profile.email)))
    assert stored == ["p0@example.com"], "the batch in flight was rolled back"


async def test_a_job_running_too_long_fails_with_a_timeout(
    sessions: SessionFactory, resources: JobResources, settings: Settings
) -> None:
    limited = settings.model_copy(update={"job_timeout_seconds": {"*": 60.0, "sleeps": 0.2}})
    job_id = await new_job("sleeps")

    await run_job(job_id, HANDLERS, dataclasses.replace(resources, settings=limited))

    job = await load(sessions, job_id)
    assert job.status is JobStatus.FAILED
    assert job.error == "timed out: the job ran longer than 0.2 s (JOB_TIMEOUT_SECONDS)"


async def test_shutdown_hands_the_job_back_without_using_an_attempt(
    sessions: SessionFactory, resources: JobResources
) -> None:
    started = asyncio.Event()

    async def waits(context: JobContext) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(3600)
        return {}

    job_id = await new_job("waits")
    running = asyncio.create_task(run_job(job_id, {"waits": waits}, resources))
    await started.wait()

    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    job = await load(sessions, job_id)
    assert (job.status, job.attempts, job.finished_at) == (JobStatus.PENDING, 0, None)
    async with sessions() as session:
        expired = await session.scalar(
            select(Job.lease_expires_at <= func.now()).where(Job.id == job_id)
        )
    assert expired, "handed back with an expired lease: the next recovery round re-sends it"


async def test_jobs_beyond_the_concurrency_wait_their_turn(
    sessions: SessionFactory, resources: JobResources, settings: Settings
) -> None:
    active = peak = 0

    async def counts(context: JobContext) -> dict[str, Any]:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        return {}

    one_at_a_time = dataclasses.replace(resources, slots=asyncio.Semaphore(1))
    jobs = [await new_job("counts") for _ in range(3)]

    await asyncio.gather(*(run_job(job, {"counts": counts}, one_at_a_time) for job in jobs))

    assert peak == 1
    for job_id in jobs:
        assert (await load(sessions, job_id)).status is JobStatus.SUCCEEDED


async def test_an_expected_failure_logs_one_warning_line(
    sessions: SessionFactory, resources: JobResources, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = await new_job("refuses")
    with caplog.at_level(logging.INFO, logger=run_job.__module__):
        await run_job(job_id, HANDLERS, resources)

    records = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.getMessage() for record in records] == [
        f"job {job_id} (refuses) failed: the sitemap is not XML"
    ]
    assert records[0].exc_info is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (600, {"*": 600.0}),
        ('{"*": 60, "sitemap": 7200}', {"*": 60.0, "sitemap": 7200.0}),
    ],
)
def test_timeouts_are_set_per_kind_or_for_all(value: object, expected: dict[str, float]) -> None:
    settings = Settings(_env_file=None, job_timeout_seconds=value)
    assert settings.job_timeout_seconds == expected
    assert settings.job_timeout_for("other") == expected["*"]
