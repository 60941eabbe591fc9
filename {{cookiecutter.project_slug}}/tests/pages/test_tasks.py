"""The page-scraper job run by the job runner: hostile items stay per item, retries resume."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import select

from {{ cookiecutter.project_slug }}.db import SessionFactory, task_session
from {{ cookiecutter.project_slug }}.jobs import service as jobs
from {{ cookiecutter.project_slug }}.jobs.models import Job, JobStatus
from {{ cookiecutter.project_slug }}.jobs.runner import JobResources, run_job
from {{ cookiecutter.project_slug }}.pages import service, tasks
from {{ cookiecutter.project_slug }}.pages.models import Page
from {{ cookiecutter.project_slug }}.pages.tasks import KIND, scrape_batch

from tests.jobs.helpers import dead_attempt
from tests.localserver import LocalServer, Reply

HANDLERS = {KIND: scrape_batch}
HTML = {"Content-Type": "text/html"}
PAGE = (
    b"<!DOCTYPE html><html><head><title>Kept alive</title></head><body>"
    + b"<p>filler</p>" * 4000  # about 50 KB after the head, as pages are
    + b'<link rel="canonical" href="https://elsewhere.example/"></body></html>'
)


async def new_job(urls: list[str]) -> uuid.UUID:
    """A committed pending batch of `urls`, as the API would create it."""
    async with task_session() as session:
        return (await jobs.create_job(session, kind=KIND, params={"urls": urls})).id


async def pages_of(sessions: SessionFactory, job_id: uuid.UUID) -> dict[str, Page]:
    async with sessions() as session:
        rows = await session.scalars(select(Page).where(Page.job_id == job_id))
        return {page.url: page for page in rows}


async def finished(sessions: SessionFactory, job_id: uuid.UUID) -> Job:
    async with sessions() as session:
        return await jobs.get_job(session, job_id=job_id)


async def test_a_url_too_long_to_store_is_skipped_and_the_rest_stored(
    sessions: SessionFactory, resources: JobResources, site: LocalServer
) -> None:
    """The issue's batch: a 2,123-character URL and a 300-character Content-Type among good
    pages. Before: `failed`, "internal error (DBAPIError)", every page lost."""
    long_type = "text/html; " + "x" * 300
    site.reply("/typed", Reply(body=b"<title>Typed</title>", headers={"Content-Type": long_type}))
    site.content("/fine", "<title>Fine</title>", "text/html")
    too_long = site.url("/p/" + "a" * (2123 - len(site.url("/p/"))))
    urls = [site.url("/typed"), too_long, site.url("/fine")]
    job_id = await new_job(urls)

    await run_job(job_id, HANDLERS, resources)

    job = await finished(sessions, job_id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert (job.progress_done, job.progress_total) == (3, 3)
    assert job.result is not None
    assert (job.result["pages"], job.result["succeeded"], job.result["failed"]) == (3, 2, 1)
    assert job.result["skipped"] == [
        {
            "url": too_long[:200] + "...",
            "reason": "URL too long: 2,123 characters (at most 2,048 are stored)",
        }
    ]
    assert len(site.requests) == len(site.hits("/typed")) + len(site.hits("/fine")) + len(
        site.hits("/robots.txt")
    )
    pages = await pages_of(sessions, job_id)
    assert set(pages) == {site.url("/typed"), site.url("/fine")}
    assert pages[site.url("/typed")].content_type == long_type[:255]
    assert pages[site.url("/fine")].title == "Fine"


async def test_a_retried_batch_skips_the_pages_an_earlier_attempt_stored(
    sessions: SessionFactory, resources: JobResources, site: LocalServer
) -> None:
    for number in range(3):
        site.content(f"/p/{number}", f"<title>Page {number}</title>", "text/html")
    urls = [site.url(f"/p/{number}") for number in range(3)]
    job_id = await new_job(urls)
    # Attempt 1, in a process that then died: stored the first page, in the batch's transaction.
    async with dead_attempt(job_id) as (session, attempt):
        await service.store_pages(session, job_id=job_id, pages=[stored_before(urls[0])])
        await jobs.report_progress(session, attempt=attempt, done=1, total=3, lease_seconds=60)

    await run_job(job_id, HANDLERS, resources)

    job = await finished(sessions, job_id)
    assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 2)
    assert (job.progress_done, job.progress_total) == (3, 3)
    assert job.result == {"pages": 3, "succeeded": 3, "failed": 0, "skipped": []}
    assert site.hits("/p/0") == []  # not fetched again
    pages = await pages_of(sessions, job_id)
    assert [pages[url].title for url in urls] == ["Stored by attempt 1", "Page 1", "Page 2"]


def stored_before(url: str) -> dict[str, Any]:
    """The row attempt 1 stored for `url`."""
    return {
        "url": url,
        "final_url": url,
        "status_code": 200,
        "content_type": "text/html",
        "title": "Stored by attempt 1",
        "description": None,
        "canonical_url": None,
        "error": None,
    }


@dataclasses.dataclass
class KeepAliveSite:
    """What `keepalive_site` saw: requests served per connection, (path, arrival) of pages."""

    origin: str
    connections: list[int] = dataclasses.field(default_factory=list)
    arrivals: list[tuple[str, float]] = dataclasses.field(default_factory=list)


@asynccontextmanager
async def keepalive_site(
    host: str = "127.0.0.1", delay: float = 0.0
) -> AsyncIterator[KeepAliveSite]:
    """An HTTP/1.1 server on `host` that keeps connections alive, counts the requests of each,
    and answers each page (`PAGE`) after `delay` seconds, robots.txt at once with a 404."""
    seen = KeepAliveSite(origin="")

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections.append(0)
        index = len(seen.connections) - 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                seen.connections[index] += 1
                path = head.split(b" ", 2)[1].decode()
                robots = path == "/robots.txt"
                if not robots:
                    seen.arrivals.append((path, time.monotonic()))
                    await asyncio.sleep(delay)
                status, body = (b"404 Not Found", b"") if robots else (b"200 OK", PAGE)
                writer.write(
                    b"HTTP/1.1 %s\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s"
                    % (status, len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, host, 0)
    seen.origin = f"http://{host}:{server.sockets[0].getsockname()[1]}"
    try:
        yield seen
    finally:
        server.close()
        await server.wait_closed()


async def test_pages_reuse_connections_and_only_the_head_is_parsed(
    sessions: SessionFactory, resources: JobResources
) -> None:
    """Twelve pages of one host: the rest of each page after `</head>` is read and dropped, so
    the per-host connections are reused (before: a new connection per page); metadata comes
    from the head only (the canonical link placed in the body is not taken)."""
    async with keepalive_site() as site:
        urls = [f"{site.origin}/p/{number}" for number in range(12)]
        job_id = await new_job(urls)
        await run_job(job_id, HANDLERS, resources)

    job = await finished(sessions, job_id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert sum(site.connections) == 13  # twelve pages and robots.txt
    assert len(site.connections) <= resources.settings.pages_per_host + 1, site.connections
    pages = await pages_of(sessions, job_id)
    assert {page.title for page in pages.values()} == {"Kept alive"}
    assert {page.canonical_url for page in pages.values()} == {None}


async def test_a_slow_rest_after_the_head_costs_the_connection_not_the_page(
    sessions: SessionFactory, resources: JobResources, site: LocalServer
) -> None:
    """The head arrives at once, the rest of the page over 7.5 s (longer than the fetch's time
    budget): the rest is given up after `DRAIN_SECONDS` and the page keeps its metadata."""
    head = b"<html><head><title>Slow tail</title></head><body>"
    site.reply(
        "/slow",
        Reply(body=head + b"x" * (5 * len(head)), chunks=6, delay=1.5, headers=HTML),
    )
    job_id = await new_job([site.url("/slow")])
    started = time.monotonic()

    await run_job(job_id, HANDLERS, resources)

    assert time.monotonic() - started < 4.0
    page = (await pages_of(sessions, job_id))[site.url("/slow")]
    assert (page.title, page.error) == ("Slow tail", None)


def record_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the `done` count of every write of pages and progress the batch makes."""
    writes: list[int] = []
    write = tasks._write

    async def recorded(
        context: Any, pages: Any, *, done: int, total: int
    ) -> tuple[int, int] | None:
        writes.append(done)
        return await write(context, pages, done=done, total=total)

    monkeypatch.setattr(tasks, "_write", recorded)
    return writes


async def test_a_slow_batch_commits_its_progress_at_least_once_a_second(
    sessions: SessionFactory,
    resources: JobResources,
    site: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ten slow pages, fewer than `WRITE_EVERY`: progress is committed on time, not only at the
    end, so clients see it and a killed process loses at most `WRITE_SECONDS` of fetching."""
    monkeypatch.setattr(tasks, "WRITE_SECONDS", 0.3)
    writes = record_writes(monkeypatch)
    for number in range(10):
        site.reply(f"/slow/{number}", Reply(body=b"<title>Slow</title>", delay=0.3, headers=HTML))
    job_id = await new_job([site.url(f"/slow/{number}") for number in range(10)])

    await run_job(job_id, HANDLERS, resources)

    job = await finished(sessions, job_id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert writes[-1] == 10
    assert len(writes) >= 2, writes  # committed mid-batch, not only at the end
    assert len(await pages_of(sessions, job_id)) == 10


async def test_a_fast_batch_is_written_in_one_transaction(
    sessions: SessionFactory,
    resources: JobResources,
    site: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Thirty pages answered at once, under `WRITE_SECONDS`: pages and progress go in one write
    at the end. Before, a write every 25 pages cost a fast batch of 100 three more transactions
    (about 16 % more CPU) for progress that changed within a second."""
    monkeypatch.setattr(tasks, "WRITE_SECONDS", 60.0)  # no write for time, however slow the run
    writes = record_writes(monkeypatch)
    for number in range(30):
        site.content(f"/fast/{number}", f"<title>Fast {number}</title>", "text/html")
    job_id = await new_job([site.url(f"/fast/{number}") for number in range(30)])

    await run_job(job_id, HANDLERS, resources)

    job = await finished(sessions, job_id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert writes == [30]
    assert job.result == {"pages": 30, "succeeded": 30, "failed": 0, "skipped": []}
    assert len(await pages_of(sessions, job_id)) == 30


async def test_pages_waiting_for_a_busy_host_leave_the_batch_slots_to_other_hosts(
    sessions: SessionFactory, resources: JobResources
) -> None:
    """A batch sorted by host, two slots, one per host: the other host's page is fetched
    alongside the busy host's first page. Before, the busy host's second page took the other
    slot while it waited for its host, and the other host waited for both."""
    settings = resources.settings.model_copy(update={"pages_concurrency": 2, "pages_per_host": 1})
    limited = dataclasses.replace(resources, settings=settings)
    async with (
        keepalive_site("127.0.0.1", 0.4) as busy_site,
        keepalive_site("127.0.0.2") as other_site,
    ):
        urls = [f"{busy_site.origin}/p/{number}" for number in range(3)]
        urls.append(f"{other_site.origin}/p/0")
        job_id = await new_job(urls)
        await run_job(job_id, HANDLERS, limited)

    job = await finished(sessions, job_id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    busy, other = busy_site.arrivals, other_site.arrivals
    assert [path for path, _ in busy] == ["/p/0", "/p/1", "/p/2"]
    assert len(other) == 1
    assert other[0][1] < busy[1][1]  # not after the busy host's second page


async def test_robots_txt_is_fetched_once_for_batches_in_a_row(
    sessions: SessionFactory, resources: JobResources
) -> None:
    """The jobs of a process share the robots.txt rules they fetched (for
    `ROBOTS_CACHE_SECONDS`): a second batch on the same site does not fetch it again."""
    async with keepalive_site() as site:
        for _ in range(2):
            job_id = await new_job([f"{site.origin}/p/{number}" for number in range(3)])
            await run_job(job_id, HANDLERS, resources)
            assert (await finished(sessions, job_id)).status is JobStatus.SUCCEEDED
    assert sum(site.connections) == 7  # six pages and robots.txt once
