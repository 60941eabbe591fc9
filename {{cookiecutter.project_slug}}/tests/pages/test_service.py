"""Page storage: what a page gave is stored whatever it is, and a re-run replaces it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.jobs import service as jobs
from {{ cookiecutter.project_slug }}.pages import service
from {{ cookiecutter.project_slug }}.pages.models import Page
from {{ cookiecutter.project_slug }}.pages.tasks import KIND


def outcome(url: str, **values: Any) -> dict[str, Any]:
    """A page's row as the job builds it: every column, in the job's order."""
    return {
        "url": url,
        "final_url": url,
        "status_code": 200,
        "content_type": "text/html",
        "title": None,
        "description": None,
        "canonical_url": None,
        "error": None,
        **values,
    }


async def titles(session: AsyncSession, job_id: uuid.UUID) -> dict[str, str | None]:
    rows = await session.scalars(select(Page).where(Page.job_id == job_id))
    return {page.url: page.title for page in rows}


async def test_a_rerun_replaces_what_was_stored_and_the_statement_is_built_once(
    session: AsyncSession,
) -> None:
    """The upsert is built once per column set and reused (building it took more than half of
    the insert's client time); each store still replaces the rows it names."""
    job = await jobs.create_job(session, kind=KIND, params={"urls": []})
    first, second = "https://example.com/1", "https://example.com/2"
    service.upsert_statement.cache_clear()

    await service.store_pages(
        session, job_id=job.id, pages=[outcome(first, title="Old"), outcome(second, title="Two")]
    )
    await service.store_pages(
        session, job_id=job.id, pages=[outcome(first, title="New", error=None)]
    )

    assert await titles(session, job.id) == {first: "New", second: "Two"}
    columns = tuple(key for key in outcome(first) if key != "url")
    assert service.upsert_statement(columns) is service.upsert_statement(columns)
    assert service.upsert_statement.cache_info().misses == 1


async def test_one_statement_stores_the_whole_write_and_a_repeated_url_once(
    session: AsyncSession,
) -> None:
    """A write is one execution whatever its size (rows travel as one array per column), text
    is made storable on the way, and of two outcomes for one URL the later one is kept."""
    job = await jobs.create_job(session, kind=KIND, params={"urls": []})
    urls = [f"https://example.com/{i}" for i in range(250)]
    pages = [outcome(url, title=f"T{i}\x00", status_code=i) for i, url in enumerate(urls)]
    pages.append(outcome(urls[0], title="Again", status_code=None, error="HTTP 500"))
    executions: list[bool] = []

    def count(*args: Any) -> None:
        executions.append(args[5])  # `executemany`: the driver runs the statement per row

    connection = (await session.connection()).sync_connection
    assert connection is not None
    event.listen(connection, "before_cursor_execute", count)
    try:
        await service.store_pages(session, job_id=job.id, pages=pages)
    finally:
        event.remove(connection, "before_cursor_execute", count)

    assert executions == [False]
    stored = await session.scalars(select(Page).where(Page.job_id == job.id))
    rows = {page.url: page for page in stored}
    assert len(rows) == 250
    assert (rows[urls[0]].title, rows[urls[0]].status_code, rows[urls[0]].error) == (
        "Again",
        None,
        "HTTP 500",
    )
    assert (rows[urls[7]].title, rows[urls[7]].status_code) == ("T7", 7)
