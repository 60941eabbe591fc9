"""The sitemap job run by the job runner: a retried job counts what it stored once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from {{ cookiecutter.project_slug }}.db import SessionFactory, task_session
from {{ cookiecutter.project_slug }}.errors import sqlstate
from {{ cookiecutter.project_slug }}.jobs import service as jobs
from {{ cookiecutter.project_slug }}.jobs.models import JobStatus
from {{ cookiecutter.project_slug }}.jobs.runner import JobResources, run_job
from {{ cookiecutter.project_slug }}.sitemaps import service
from {{ cookiecutter.project_slug }}.sitemaps.models import SitemapFile, SitemapURL
from {{ cookiecutter.project_slug }}.sitemaps.parser import SitemapURL as ParsedURL
from {{ cookiecutter.project_slug }}.sitemaps.parser import parse_sitemap
from {{ cookiecutter.project_slug }}.sitemaps.tasks import KIND, process_sitemap

from tests.jobs.helpers import dead_attempt
from tests.localserver import LocalServer
from tests.sitemaps.test_router import urlset

HANDLERS = {KIND: process_sitemap}


async def test_a_retried_job_counts_what_earlier_attempts_stored_once(
    sessions: SessionFactory, resources: JobResources, site: LocalServer
) -> None:
    document = urlset(site.url(""), 300)
    site.content("/sitemap.xml", document, "application/xml")
    root = site.url("/sitemap.xml")
    async with task_session() as session:
        job_id = (await jobs.create_job(session, kind=KIND, params={"url": root})).id
    first = [item for item in parse_sitemap([document]) if isinstance(item, ParsedURL)][:100]
    await crashed_after_storing(job_id, root, first)
    settings = resources.settings.model_copy(update={"sitemap_batch_size": 40})

    await run_job(job_id, HANDLERS, dataclasses.replace(resources, settings=settings))

    async with sessions() as session:
        job = await jobs.get_job(session, job_id=job_id)
        stored = await session.scalar(select(func.count()).select_from(SitemapURL))
    assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 2)
    assert job.result is not None
    assert (job.result["urls_found"], job.result["urls_stored"]) == (300, 300)
    assert job.progress_done == 300
    assert stored == 300


async def crashed_after_storing(job_id: uuid.UUID, root: str, urls: list[ParsedURL]) -> None:
    """Attempt 1 of a process that died: `urls` stored and checkpointed, then the lease ran out."""
    async with dead_attempt(job_id) as (session, attempt):
        file_id = await service.upsert_file(session, url=root, job_id=job_id)
        new = await service.store_urls(session, sitemap_id=file_id, urls=urls)
        await jobs.report_progress(
            session,
            attempt=attempt,
            done=new,
            checkpoint={"urls_stored": new, "urls_found": new},
            lease_seconds=60,
        )


async def test_a_batch_is_stored_in_one_statement_that_counts_its_new_rows(
    sessions: SessionFactory,
) -> None:
    """Duplicates within a batch and rows stored before are skipped; the file's `url_count` and
    the returned count both say how many rows were new."""
    async with task_session() as session:
        job_id = (await jobs.create_job(session, kind=KIND, params={"url": "x"})).id
        file_id = await service.upsert_file(session, url="https://a.example/s.xml", job_id=job_id)
        urls = [ParsedURL(f"https://a.example/{number}") for number in range(5)]
        assert await service.store_urls(session, sitemap_id=file_id, urls=urls[:2]) == 2
        again = [*urls, urls[4], ParsedURL("https://a.example/" + "x" * 3000)]
        assert await service.store_urls(session, sitemap_id=file_id, urls=again) == 3

    async with sessions() as session:
        file = await session.get(SitemapFile, file_id)
        stored = await session.scalar(select(func.count()).select_from(SitemapURL))
    assert file is not None
    assert (file.url_count, stored) == (5, 5)


@contextmanager
def url_inserts(target: Connection | Engine) -> Iterator[list[str]]:
    """The inserts into `sitemap_urls` that `target` sends in the block, in order: "plain" or
    "skip stored" (`ON CONFLICT DO NOTHING`)."""
    inserts: list[str] = []

    def record(*args: Any) -> None:
        if "INSERT INTO sitemap_urls" in args[2]:
            inserts.append("skip stored" if "ON CONFLICT" in args[2] else "plain")

    event.listen(target, "before_cursor_execute", record)
    try:
        yield inserts
    finally:
        event.remove(target, "before_cursor_execute", record)


async def test_a_new_batch_is_inserted_as_it_is_and_one_with_stored_urls_skips_them(
    session: AsyncSession,
) -> None:
    """A batch the file holds none of is one plain insert (no `ON CONFLICT`: its pre-check of
    every row costs the server a third of its time); a batch holding a stored URL, here in the
    middle, fails that insert at its row, and the savepoint's rollback leaves nothing of it
    behind: the conflict-skipping insert stores the rest once. A foreign-key violation is not
    retried."""
    job_id = (await jobs.create_job(session, kind=KIND, params={"url": "x"})).id
    file_id = await service.upsert_file(session, url="https://a.example/s.xml", job_id=job_id)
    urls = [ParsedURL(f"https://a.example/{number}") for number in range(6)]
    connection = (await session.connection()).sync_connection
    assert connection is not None
    with url_inserts(connection) as inserts:
        assert await service.store_urls(session, sitemap_id=file_id, urls=urls[:3]) == 3
        assert inserts == ["plain"]
        assert await service.store_urls(session, sitemap_id=file_id, urls=urls[3:4]) == 1
        assert inserts == ["plain", "plain"]
        again = [urls[5], urls[4], urls[1], urls[5]]
        assert await service.store_urls(session, sitemap_id=file_id, urls=again) == 2
        assert inserts == ["plain", "plain", "plain", "skip stored"]
        with pytest.raises(IntegrityError) as missing:
            await service.store_urls(session, sitemap_id=file_id + 1000, urls=urls[:1])
        assert sqlstate(missing.value) == "23503"
        assert inserts[4:] == ["plain"]

    file = await session.get(SitemapFile, file_id, populate_existing=True)
    stored = await session.scalars(
        select(SitemapURL.url).where(SitemapURL.sitemap_id == file_id).order_by(SitemapURL.id)
    )
    assert file is not None
    assert file.url_count == 6
    assert list(stored) == [url.loc for url in [*urls[:4], urls[5], urls[4]]]


async def test_once_a_files_batch_repeats_urls_its_later_batches_skip_stored_ones_at_once(
    sessions: SessionFactory, resources: JobResources, site: LocalServer, engine: AsyncEngine
) -> None:
    """A sitemap repeating a URL of an earlier batch: that batch's plain insert fails and is
    redone skipping stored URLs, and the file's later batches skip them from the start."""
    origin = site.url("")
    locs = [f"{origin}/page/{number}" for number in range(10)]
    locs.insert(5, locs[0])
    entries = "".join(f"<url><loc>{loc}</loc></url>" for loc in locs)
    site.content(
        "/repeats.xml",
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'.encode(),
        "application/xml",
    )
    root = site.url("/repeats.xml")
    async with task_session() as session:
        job_id = (await jobs.create_job(session, kind=KIND, params={"url": root})).id
    settings = resources.settings.model_copy(update={"sitemap_batch_size": 4})
    with url_inserts(engine.sync_engine) as inserts:
        await run_job(job_id, HANDLERS, dataclasses.replace(resources, settings=settings))

    async with sessions() as session:
        job = await jobs.get_job(session, job_id=job_id)
        stored = await session.scalars(select(SitemapURL.url).order_by(SitemapURL.id))
        assert list(stored) == locs[:5] + locs[6:]
    assert job.status == JobStatus.SUCCEEDED
    assert job.result is not None
    assert (job.result["urls_found"], job.result["urls_stored"]) == (11, 10)
    assert inserts == ["plain", "plain", "skip stored", "skip stored"]


async def test_a_batch_keeps_each_urls_fields_together(sessions: SessionFactory) -> None:
    """URLs and change frequencies travel as one string each: every row still gets its own
    fields, a missing or empty change frequency is NULL, a URL holding the separator is skipped
    and a change frequency holding it is refused."""
    when = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    batch = [
        ParsedURL("https://a.example/1", when, "daily", 0.3),
        ParsedURL("https://a.example/2"),
        ParsedURL("https://a.example/3", None, "weekly", None),
        ParsedURL("https://a.example/4", None, "", 1.0),
        ParsedURL("https://a.example/\x1f5", when, "daily", 0.1),
    ]
    async with task_session() as session:
        job_id = (await jobs.create_job(session, kind=KIND, params={"url": "x"})).id
        file_id = await service.upsert_file(session, url="https://a.example/s.xml", job_id=job_id)
        assert await service.store_urls(session, sitemap_id=file_id, urls=batch) == 4
        alone = [ParsedURL("https://a.example/6", when)]
        assert await service.store_urls(session, sitemap_id=file_id, urls=alone) == 1
        with pytest.raises(ValueError, match="U\\+001F"):
            await service.store_urls(
                session, sitemap_id=file_id, urls=[ParsedURL("https://a.example/7", None, "\x1f")]
            )

    async with sessions() as session:
        rows = await session.execute(
            select(SitemapURL.url, SitemapURL.lastmod, SitemapURL.changefreq, SitemapURL.priority)
            .where(SitemapURL.sitemap_id == file_id)
            .order_by(SitemapURL.id)
        )
        stored = [tuple(row) for row in rows]
    assert stored == [
        ("https://a.example/1", when, "daily", 0.3),
        ("https://a.example/2", None, None, None),
        ("https://a.example/3", None, "weekly", None),
        ("https://a.example/4", None, None, 1.0),
        ("https://a.example/6", when, None, None),
    ]
