"""The distributed task engine: a real {{ "Redis" if cookiecutter.task_engine == "redis" else "RabbitMQ" }} and a real `taskiq worker` process run the jobs."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

{% if cookiecutter.task_engine == "rabbitmq" %}import aio_pika
{% endif %}import pytest
{%- if cookiecutter.task_engine == "redis" %}
import redis.asyncio as redis
{%- endif %}
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr
from sqlalchemy import {{ "func, select, " if cookiecutter.include_sitemaps or cookiecutter.include_pages }}text
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.project_slug }}.main import create_app
{%- if cookiecutter.include_pages and not cookiecutter.include_sitemaps %}
from {{ cookiecutter.project_slug }}.pages.models import Page
{%- endif %}
from {{ cookiecutter.project_slug }}.settings import Settings
{%- if cookiecutter.include_sitemaps %}
from {{ cookiecutter.project_slug }}.sitemaps.models import SitemapURL
{%- endif %}

from tests.conftest import API_KEY_HEADERS, unavailable
{%- if cookiecutter.include_sitemaps or cookiecutter.include_pages %}
from tests.localserver import LocalServer{{ ", Reply" if not cookiecutter.include_sitemaps }}
{%- endif %}
from tests.serving import WORKER_ARGS, service_environment
{%- if cookiecutter.include_sitemaps %}
from tests.sitemaps.test_crash import CHILDREN, URLS_PER_CHILD, slow_sitemap
{%- endif %}
{% if cookiecutter.task_engine == "redis" %}
ENGINE = "redis"
"""`TASK_BROKER` of the worker tests; its URL setting is `REDIS_URL`."""
URL_VARIABLE = "TEST_REDIS_URL"
BROKER = os.environ.get(URL_VARIABLE, "redis://127.0.0.1:6379/15")
{%- else %}
ENGINE = "rabbitmq"
"""`TASK_BROKER` of the worker tests; its URL setting is `RABBITMQ_URL`."""
URL_VARIABLE = "TEST_RABBITMQ_URL"
BROKER = os.environ.get(URL_VARIABLE, "amqp://guest:guest@127.0.0.1:5672/")
{%- endif %}


def broker_answers(url: str) -> bool:
    """Whether something listens where the message broker should be."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def broker_url() -> str:
    """The broker the tests use; skipped where none runs, except in CI."""
    if not broker_answers(BROKER):
        where = urlsplit(BROKER).netloc.rpartition("@")[2]
        unavailable(f"the {ENGINE} broker does not answer at {where} (set {URL_VARIABLE})")
    return BROKER


@pytest.fixture
async def broker_settings(settings: Settings, broker_url: str) -> AsyncIterator[Settings]:
    """The run's settings with the distributed broker and a queue of this test's own.

    The queue is removed afterwards, so test runs leave nothing behind on a shared broker.
    """
    queue = f"jobs-test-{uuid.uuid4().hex[:8]}"
    yield settings.model_copy(
        update={
            "task_broker": ENGINE,
            f"{ENGINE}_url": SecretStr(broker_url),
            "task_queue_name": queue,
            "tasks_inline": False,
        }
    )
    await remove_queue(broker_url, queue)


async def remove_queue(url: str, queue: str) -> None:
    """Delete what the broker created for `queue`."""
{%- if cookiecutter.task_engine == "redis" %}
    client = redis.from_url(url)
    try:
        await client.delete(queue)  # the stream, with its consumer groups
    finally:
        await client.aclose()
{%- else %}
    connection = await aio_pika.connect(url)
    async with connection, connection.channel() as channel:
        for name in (queue, f"{queue}.dead_letter"):
            await channel.queue_delete(name)
        await channel.exchange_delete(queue)
{%- endif %}


def start_worker(
    settings: Settings,
    broker_url: str,
    log: Path,
    extra: Mapping[str, str] | None = None,
    *,
    wait_tasks: float = 20,
) -> subprocess.Popen[str]:
    """Start a `taskiq worker` process with the same settings, as on another host."""
    env = service_environment(
        settings.get_db_url(),
        LOG_LEVEL="INFO",
        TASK_BROKER=ENGINE,
        **{f"{ENGINE.upper()}_URL": broker_url},
        TASK_QUEUE_NAME=settings.task_queue_name,
        OUTBOUND_ALLOWLIST=settings.outbound_allowlist,
        **(extra or {}),
    )
    command = [sys.executable, *WORKER_ARGS, "--workers", "1"]
    with log.open("a") as output:
        return subprocess.Popen(
            [*command, "--wait-tasks-timeout", f"{wait_tasks}"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: kill the worker and its children
        )


def stop_worker(process: subprocess.Popen[str]) -> None:
    """SIGTERM the worker's process group; SIGKILL it if it does not stop."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


StartWorker = Callable[..., subprocess.Popen[str]]
"""`start(extra_settings=None, *, wait_tasks=20)`: one more worker process."""


@pytest.fixture
def workers(broker_settings: Settings, broker_url: str, tmp_path: Path) -> Iterator[StartWorker]:
    """Start worker processes on demand; all are stopped (and their log shown) afterwards."""
    log = tmp_path / "workers.log"
    started: list[subprocess.Popen[str]] = []

    def start(
        extra: Mapping[str, str] | None = None, *, wait_tasks: float = 20
    ) -> subprocess.Popen[str]:
        started.append(start_worker(broker_settings, broker_url, log, extra, wait_tasks=wait_tasks))
        return started[-1]

    try:
        yield start
    finally:
        for process in started:
            stop_worker(process)
        print(log.read_text())  # shown by pytest when the test failed


@pytest.fixture
def worker(workers: StartWorker) -> subprocess.Popen[str]:
    """A `taskiq worker` process with the same settings, as on another host."""
    return workers()


@pytest.fixture
async def live_client(broker_settings: Settings, committed: None) -> AsyncIterator[AsyncClient]:
    """A client on an app with its real lifespan (real commits, the distributed broker)."""
    app = create_app(broker_settings)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(
            transport=ASGITransport(app=app), base_url="http://test", headers=API_KEY_HEADERS
        ) as client,
    ):
        yield client


async def wait_for(client: AsyncClient, job_id: str, seconds: float = 60) -> dict[str, object]:
    """Poll the jobs API until the job has finished."""
    async with asyncio.timeout(seconds):
        while True:
            job = (await client.get(f"/api/v1/jobs/{job_id}")).json()
            if job["status"] in {"succeeded", "failed", "cancelled"}:
                return job  # type: ignore[no-any-return]
            await asyncio.sleep(0.2)


async def test_a_worker_process_runs_the_job(
    live_client: AsyncClient, worker: subprocess.Popen[str]
) -> None:
    body = {"profiles": [{"name": "Ada", "email": "ada@example.com"}]}
    response = await live_client.post("/api/v1/profiles/imports", json=body)
    assert response.status_code == 202
    job = await wait_for(live_client, response.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert worker.poll() is None, "the worker is still serving"
    profiles = (await live_client.get("/api/v1/profiles")).json()
    assert [item["email"] for item in profiles["items"]] == ["ada@example.com"]


async def test_a_job_whose_message_the_broker_lost_is_sent_again(
    live_client: AsyncClient,
    workers: StartWorker,
    broker_settings: Settings,
    broker_url: str,
    engine: AsyncEngine,
) -> None:
    body = {"profiles": [{"name": "Ada", "email": "ada@example.com"}]}
    response = await live_client.post("/api/v1/profiles/imports", json=body)
    job_id = response.json()["job_id"]
    # The broker restarts without persistence before any worker took the message...
    await remove_queue(broker_url, broker_settings.task_queue_name)
    # ...and ten leases pass: recovery re-sends a pending job nobody claimed for that long.
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE jobs SET lease_expires_at = now() - interval '1 hour' WHERE id = :id"),
            {"id": uuid.UUID(job_id)},
        )

    workers({"JOB_LEASE_SECONDS": "2"})

    job = await wait_for(live_client, job_id)
    assert (job["status"], job["attempts"]) == ("succeeded", 1), job


async def test_a_failing_job_is_marked_failed_by_the_worker(
    live_client: AsyncClient, worker: subprocess.Popen[str], engine: AsyncEngine
) -> None:
    taken = await live_client.post("/api/v1/profiles", json={"name": "a", "email": "a@example.com"})
    assert taken.status_code == 201
    body = {"profiles": [{"name": name, "email": f"{name}@example.com"} for name in "ba"]}
    response = await live_client.post("/api/v1/profiles/imports", json=body)
    job = await wait_for(live_client, response.json()["job_id"])
    assert job["status"] == "failed"
    assert "already exists" in str(job["error"])
    profiles = (await live_client.get("/api/v1/profiles")).json()
    assert profiles["total"] == 1, "the failed import left no profile behind"
    async with engine.connect() as connection:
        stuck = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%'"
            )
        )
    assert stuck == 0, "the failed job left a transaction open"

{%- if cookiecutter.include_sitemaps or cookiecutter.include_pages %}
{%- if cookiecutter.include_sitemaps %}


SLOW_JOB_PATH = "/api/v1/sitemaps"
SLOW_JOB_ROWS = CHILDREN * URLS_PER_CHILD
MID_JOB = 2 * URLS_PER_CHILD
"""Progress after which the slow job is mid-work (two child sitemaps stored)."""
WORKER_SETTINGS = {"JOB_LEASE_SECONDS": "2"}


def slow_job(site: LocalServer) -> dict[str, object]:
    """The body of a sitemap job that takes about 4 s (16 slow child sitemaps)."""
    return {"url": slow_sitemap(site)}


async def stored_rows(engine: AsyncEngine) -> tuple[int | None, int | None]:
    """(rows, distinct URLs) the slow job stored."""
    async with engine.connect() as connection:
        rows = await connection.scalar(select(func.count()).select_from(SitemapURL))
        distinct = await connection.scalar(select(func.count(func.distinct(SitemapURL.url))))
    return rows, distinct
{%- else %}


SLOW_JOB_PATH = "/api/v1/pages/batches"
SLOW_JOB_ROWS = 16
MID_JOB = 8
"""Progress after which the slow job is mid-work (half its pages committed: the batch writes at
least once a second, `pages.tasks.WRITE_SECONDS`)."""
WORKER_SETTINGS = {"JOB_LEASE_SECONDS": "2", "PAGES_CONCURRENCY": "1"}


def slow_job(site: LocalServer) -> dict[str, object]:
    """The body of a page batch that takes about 4 s (16 pages fetched one at a time)."""
    site.reply("/robots.txt", Reply(status=404))
    for number in range(SLOW_JOB_ROWS):
        html = f"<html><head><title>Page {number}</title></head></html>".encode()
        site.reply(
            f"/page-{number}", Reply(body=html, headers={"Content-Type": "text/html"}, delay=0.25)
        )
    return {"urls": [site.url(f"/page-{number}") for number in range(SLOW_JOB_ROWS)]}


async def stored_rows(engine: AsyncEngine) -> tuple[int | None, int | None]:
    """(rows, distinct URLs) the slow job stored."""
    async with engine.connect() as connection:
        rows = await connection.scalar(select(func.count()).select_from(Page))
        distinct = await connection.scalar(select(func.count(func.distinct(Page.url))))
    return rows, distinct
{%- endif %}


async def wait_for_progress(client: AsyncClient, job_id: str, *, attempt: int, done: int) -> None:
    """Poll until the job's attempt `attempt` has committed at least `done` items."""
    async with asyncio.timeout(60):
        while True:
            job = (await client.get(f"/api/v1/jobs/{job_id}")).json()
            if job["attempts"] == attempt and job["progress"]["done"] >= done:
                return
            await asyncio.sleep(0.05)


def kill(process: subprocess.Popen[str]) -> None:
    """SIGKILL the worker and its children: no shutdown code runs, nothing is acknowledged."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


async def submit_slow_job(client: AsyncClient, site: LocalServer) -> str:
    """Start the slow job through the API; return its id."""
    response = await client.post(SLOW_JOB_PATH, json=slow_job(site))
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


async def test_a_worker_killed_mid_job_is_replaced_and_nothing_is_lost(
    live_client: AsyncClient, workers: StartWorker, site: LocalServer, engine: AsyncEngine
) -> None:
    job_id = await submit_slow_job(live_client, site)
    first = workers(WORKER_SETTINGS)
    await wait_for_progress(live_client, job_id, attempt=1, done=MID_JOB)

    kill(first)
    workers(WORKER_SETTINGS)

    job = await wait_for(live_client, job_id, seconds=120)
    assert (job["status"], job["attempts"]) == ("succeeded", 2), job
    assert await stored_rows(engine) == (SLOW_JOB_ROWS, SLOW_JOB_ROWS), "each stored once"


async def test_a_job_killed_on_every_attempt_fails_with_the_count(
    live_client: AsyncClient, workers: StartWorker, site: LocalServer
) -> None:
    limits = {**WORKER_SETTINGS, "JOB_MAX_ATTEMPTS": "2"}
    job_id = await submit_slow_job(live_client, site)
    for attempt in (1, 2):
        doomed = workers(limits)
        await wait_for_progress(live_client, job_id, attempt=attempt, done=1)
        kill(doomed)

    workers(limits)

    job = await wait_for(live_client, job_id, seconds=60)
    assert (job["status"], job["attempts"]) == ("failed", 2), job
    assert str(job["error"]).startswith("interrupted 2 times: the process running it stopped")


async def test_sigterm_hands_the_job_back_without_using_an_attempt(
    live_client: AsyncClient, workers: StartWorker, site: LocalServer, engine: AsyncEngine
) -> None:
    job_id = await submit_slow_job(live_client, site)
    first = workers(WORKER_SETTINGS, wait_tasks=0.5)
    await wait_for_progress(live_client, job_id, attempt=1, done=MID_JOB)

    stop_worker(first)  # SIGTERM: waits 0.5 s for the job, then hands it back
    handed_back = (await live_client.get(f"/api/v1/jobs/{job_id}")).json()
    workers(WORKER_SETTINGS)

    job = await wait_for(live_client, job_id, seconds=120)
    assert first.returncode == 0, "the worker shut down cleanly"
    assert (handed_back["status"], handed_back["attempts"]) == ("pending", 0), handed_back
    assert (job["status"], job["attempts"]) == ("succeeded", 1), job
    assert await stored_rows(engine) == (SLOW_JOB_ROWS, SLOW_JOB_ROWS), "each stored once"
{%- endif %}
