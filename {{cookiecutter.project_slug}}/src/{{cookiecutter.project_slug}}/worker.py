{%- if cookiecutter.task_engine != "none" -%}
"""The task engine: taskiq, in memory by default, {{ "Redis Streams" if cookiecutter.task_engine == "redis" else "RabbitMQ" }} with worker processes to scale out.

The web process starts it in its lifespan (`task_engine`). Worker processes run
`taskiq worker <package>.worker:broker`; they open the database through the same
`database_lifespan` and run jobs with the same `run_job`, so the jobs API does not change when
the engine does.
"""
{%- else -%}
"""The task engine: taskiq's in-memory broker, running jobs in the web process.

The web process starts it in its lifespan (`task_engine`). To scale out later, swap the broker in
`build_broker` for a distributed taskiq broker and run `taskiq worker <package>.worker:broker`
processes: they open the database through the same `database_lifespan` and run jobs with the same
`run_job`, so the jobs API does not change when the engine does.
"""
{%- endif %}

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import cache

from taskiq import AsyncBroker, InMemoryBroker, TaskiqEvents, TaskiqState
{%- if cookiecutter.task_engine == "rabbitmq" %}
from taskiq_aio_pika import AioPikaBroker, Exchange, Queue
{%- elif cookiecutter.task_engine == "redis" %}
from taskiq_redis import RedisStreamBroker
{%- endif %}

from {{ cookiecutter.project_slug }}.db import database_lifespan
from {{ cookiecutter.project_slug }}.jobs.runner import (
    Enqueuer,
    JobHandler,
    JobResources,
    hand_back_waiting,
    job_resources,
    maintain,
    run_job,
    stop_running,
)
from {{ cookiecutter.project_slug }}.observability import metrics, tracing
from {{ cookiecutter.project_slug }}.observability.process import setup_process
{%- if cookiecutter.include_pages %}
from {{ cookiecutter.project_slug }}.pages import tasks as pages_tasks
{%- endif %}
{%- if cookiecutter.include_places %}
from {{ cookiecutter.project_slug }}.places import tasks as places_tasks
{%- endif %}
from {{ cookiecutter.project_slug }}.profiles import tasks as profiles_tasks
from {{ cookiecutter.project_slug }}.settings import (
    Settings,
    get_settings,
)
{%- if cookiecutter.include_sitemaps %}
from {{ cookiecutter.project_slug }}.sitemaps import tasks as sitemap_tasks
{%- endif %}

logger = logging.getLogger(__name__)
RUN_JOB = "jobs.run"
SHUTDOWN_GRACE_SECONDS = 10.0

HANDLERS: dict[str, JobHandler] = {
    profiles_tasks.KIND: profiles_tasks.import_profiles,
{%- if cookiecutter.include_sitemaps %}
    sitemap_tasks.KIND: sitemap_tasks.process_sitemap,
{%- endif %}
{%- if cookiecutter.include_places %}
    places_tasks.KIND: places_tasks.search_places,
{%- endif %}
{%- if cookiecutter.include_pages %}
    pages_tasks.KIND: pages_tasks.scrape_batch,
{%- endif %}
}
"""Job kind -> handler. Each feature's `tasks.py` provides its handler."""


class _Runtime:
    """The job resources of this process, opened by the web lifespan or the worker start-up."""

    resources: JobResources | None = None


def build_broker(settings: Settings, runtime: _Runtime | None = None) -> AsyncBroker:
    """Return the broker {{ "chosen by `TASK_BROKER`" if cookiecutter.task_engine != "none" else "(in memory)" }}, with the one job task registered."""
    runtime = runtime or _Runtime()
{%- if cookiecutter.task_engine == "redis" %}
    broker: AsyncBroker
    if settings.task_broker == "redis":
        broker = RedisStreamBroker(
            settings.redis_url.get_secret_value(), queue_name=settings.task_queue_name
        )
    else:
        broker = InMemoryBroker(await_inplace=settings.tasks_inline)
{%- elif cookiecutter.task_engine == "rabbitmq" %}
    broker: AsyncBroker
    if settings.task_broker == "rabbitmq":
        name = settings.task_queue_name
        broker = AioPikaBroker(
            settings.rabbitmq_url.get_secret_value(),
            exchange=Exchange(name=name),
            task_queues=[Queue(name=name)],
            dead_letter_queue=Queue(name=f"{name}.dead_letter"),
        )
    else:
        broker = InMemoryBroker(await_inplace=settings.tasks_inline)
{%- else %}
    broker: AsyncBroker = InMemoryBroker(await_inplace=settings.tasks_inline)
{%- endif %}

    async def run(job_id: str) -> None:
        if runtime.resources is None:
            raise RuntimeError("the task engine was not started (task_engine or a worker)")
        await run_job(uuid.UUID(job_id), HANDLERS, runtime.resources)

    broker.register_task(run, task_name=RUN_JOB)
    stack = AsyncExitStack()

    async def start_worker(_: TaskiqState) -> None:
        if not broker.is_worker_process:  # the web process opens both in its own lifespan
            return
        setup_process(settings)  # logs, error reports, traces (docs/operations.md)
        engine = await stack.enter_async_context(database_lifespan(settings))
        metrics.observe_pool(engine)
        tracing.instrument_engine(engine)
        resources = await stack.enter_async_context(job_resources(settings))
        runtime.resources = resources
        task = broker.find_task(RUN_JOB)
        assert task is not None

        async def resend(job_id: uuid.UUID) -> None:
            await task.kiq(str(job_id))

        await stack.enter_async_context(
            _maintained(resources, resend, holds_in_memory=isinstance(broker, InMemoryBroker))
        )

    async def stop_worker(_: TaskiqState) -> None:
        if runtime.resources is not None:
            await stop_running(runtime.resources, grace=0)
        await stack.aclose()
        metrics.process_exiting()

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, start_worker)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, stop_worker)
    return broker


@asynccontextmanager
async def _maintained(
    resources: JobResources, enqueue: Enqueuer, *, holds_in_memory: bool
) -> AsyncIterator[None]:
    """Run the heartbeat and recovery loop for the block; at exit hand back waiting jobs."""
    maintenance = asyncio.create_task(
        maintain(resources, enqueue, holds_in_memory=holds_in_memory), name="jobs-maintenance"
    )
    try:
        yield
    finally:
        maintenance.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await maintenance
        if holds_in_memory:
            await hand_back_waiting(resources)


@asynccontextmanager
async def task_engine(settings: Settings) -> AsyncIterator[Enqueuer]:
    """Start the broker for this web process; yield the function that enqueues a job.

    With the in-memory broker the web process runs the jobs itself: it also runs their
    heartbeat and recovery (unless `tasks_inline`, where jobs run inside the request).
    """
    runtime = _Runtime()
    broker = build_broker(settings, runtime)
    task = broker.find_task(RUN_JOB)
    assert task is not None
    in_memory = isinstance(broker, InMemoryBroker)

    async with job_resources(settings) as resources:
        runtime.resources = resources

        async def enqueue(job_id: uuid.UUID) -> None:
            if in_memory:
                resources.waiting.add(job_id)  # held under this process's lease until claimed
            await task.kiq(str(job_id))

        await broker.startup()
        try:
            if in_memory and not settings.tasks_inline:
                async with _maintained(resources, enqueue, holds_in_memory=True):
                    try:
                        yield enqueue
                    finally:
                        await stop_running(resources, grace=SHUTDOWN_GRACE_SECONDS)
            else:
                yield enqueue
        finally:
            if isinstance(broker, InMemoryBroker):
                await _cancel_waiting(broker)
            await broker.shutdown()


async def _cancel_waiting(broker: InMemoryBroker) -> None:
    """Cancel in-memory deliveries still queued for a slot (their leases were handed back)."""
    queued = list(broker._running_tasks)
    for pending in queued:
        pending.cancel()
    await asyncio.gather(*queued, return_exceptions=True)


@cache
def _worker_broker() -> AsyncBroker:
    return build_broker(get_settings())


def __getattr__(name: str) -> AsyncBroker:
    """`broker` for `taskiq worker <package>.worker:broker`, built on first use only."""
    if name == "broker":
        return _worker_broker()
    raise AttributeError(name)
