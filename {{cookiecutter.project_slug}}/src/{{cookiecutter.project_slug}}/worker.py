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
    job_resources,
    run_job,
)
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

    async def open_database(_: TaskiqState) -> None:
        if broker.is_worker_process:  # the web process opened both in its own lifespan
            await stack.enter_async_context(database_lifespan(settings))
            runtime.resources = await stack.enter_async_context(job_resources(settings))

    async def close_database(_: TaskiqState) -> None:
        await stack.aclose()

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, open_database)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, close_database)
    return broker


@asynccontextmanager
async def task_engine(settings: Settings) -> AsyncIterator[Enqueuer]:
    """Start the broker for this web process; yield the function that enqueues a job."""
    runtime = _Runtime()
    broker = build_broker(settings, runtime)
    task = broker.find_task(RUN_JOB)
    assert task is not None

    async def enqueue(job_id: uuid.UUID) -> None:
        await task.kiq(str(job_id))

    async with job_resources(settings) as resources:
        runtime.resources = resources
        await broker.startup()
        try:
            yield enqueue
        finally:
            if isinstance(broker, InMemoryBroker):
                await _drain(broker)
            await broker.shutdown()


async def _drain(broker: InMemoryBroker) -> None:
    """Give in-process jobs a grace period, then cancel them (they are marked failed)."""
    try:
        await asyncio.wait_for(broker.wait_all(), SHUTDOWN_GRACE_SECONDS)
    except TimeoutError:
        running = list(broker._running_tasks)
        logger.warning("cancelling %d unfinished in-process job(s) at shutdown", len(running))
        for pending in running:
            pending.cancel()
        for pending in running:
            with contextlib.suppress(asyncio.CancelledError):
                await pending


@cache
def _worker_broker() -> AsyncBroker:
    return build_broker(get_settings())


def __getattr__(name: str) -> AsyncBroker:
    """`broker` for `taskiq worker <package>.worker:broker`, built on first use only."""
    if name == "broker":
        return _worker_broker()
    raise AttributeError(name)
