"""`sitemap_urls.sitemap_id` keeps the rules of a foreign key, checked once per statement.

Migration 0009 replaced the row-by-row foreign key with statement-level triggers: a URL of a
missing file is refused, deleting or truncating files removes their URLs, a referenced file's id
cannot change, and a file being written to cannot be deleted under its writer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from {{ cookiecutter.project_slug }}.db import migrate
from {{ cookiecutter.project_slug }}.db.engine import build_engine
from {{ cookiecutter.project_slug }}.errors import sqlstate
from {{ cookiecutter.project_slug }}.jobs import service as jobs
from {{ cookiecutter.project_slug }}.sitemaps import service
from {{ cookiecutter.project_slug }}.sitemaps.models import SitemapURL
from {{ cookiecutter.project_slug }}.sitemaps.parser import SitemapURL as ParsedURL

from tests.conftest import FreshDatabase, settings_for

FOREIGN_KEY_VIOLATION = "23503"
LOCK_NOT_AVAILABLE = "55P03"
INSERT_URL = text("INSERT INTO sitemap_urls (sitemap_id, url) VALUES (:file, :url)")


async def new_file(session: AsyncSession, urls: int = 3) -> int:
    """A sitemap file of a new job with `urls` stored URLs; its id."""
    job_id = (await jobs.create_job(session, kind="sitemap", params={"url": "x"})).id
    file_id = await service.upsert_file(
        session, url=f"https://a.example/{uuid.uuid4().hex}.xml", job_id=job_id
    )
    pages = [ParsedURL(f"https://a.example/{number}") for number in range(urls)]
    assert await service.store_urls(session, sitemap_id=file_id, urls=pages) == urls
    return file_id


async def url_count(session: AsyncSession, file_id: int) -> int:
    """Stored URLs of a file."""
    count = select(func.count()).where(SitemapURL.sitemap_id == file_id)
    return int(await session.scalar(count) or 0)


async def test_a_url_of_a_missing_file_is_a_foreign_key_violation(session: AsyncSession) -> None:
    file_id = await new_file(session)
    with pytest.raises(IntegrityError) as raised:
        async with session.begin_nested():
            await session.execute(INSERT_URL, {"file": file_id + 1000, "url": "https://b/"})
    assert sqlstate(raised.value) == FOREIGN_KEY_VIOLATION
    assert "fk_sitemap_urls_sitemap_id_sitemap_files" in str(raised.value)
    with pytest.raises(IntegrityError):
        async with session.begin_nested():
            await session.execute(
                text("UPDATE sitemap_urls SET sitemap_id = :other WHERE sitemap_id = :file"),
                {"file": file_id, "other": file_id + 1000},
            )
    with pytest.raises(IntegrityError):  # a batch with one bad row is refused whole
        async with session.begin_nested():
            await service.store_urls(
                session, sitemap_id=file_id + 1000, urls=[ParsedURL("https://c/")]
            )
    assert await url_count(session, file_id) == 3


async def test_deleting_a_file_or_its_job_deletes_its_urls(session: AsyncSession) -> None:
    first, second, kept = [await new_file(session) for _ in range(3)]
    await session.execute(text("DELETE FROM sitemap_files WHERE id = :id"), {"id": first})
    await session.execute(
        text("DELETE FROM jobs WHERE id = (SELECT last_job_id FROM sitemap_files WHERE id = :id)"),
        {"id": second},
    )
    assert (await url_count(session, first), await url_count(session, second)) == (0, 0)
    assert await url_count(session, kept) == 3


async def test_the_id_of_a_referenced_file_cannot_change(session: AsyncSession) -> None:
    file_id = await new_file(session)
    empty = await new_file(session, urls=0)
    with pytest.raises(IntegrityError) as raised:
        async with session.begin_nested():
            await session.execute(
                text("UPDATE sitemap_files SET id = id + 1000 WHERE id = :id"), {"id": file_id}
            )
    assert sqlstate(raised.value) == FOREIGN_KEY_VIOLATION
    await session.execute(  # unreferenced: allowed, as with NO ACTION
        text("UPDATE sitemap_files SET id = id + 1000 WHERE id = :id"), {"id": empty}
    )
    await session.execute(
        text("UPDATE sitemap_files SET url_count = 7 WHERE id = :id"), {"id": file_id}
    )
    assert await url_count(session, file_id) == 3


@pytest.mark.parametrize(
    "statement",
    ["TRUNCATE sitemap_files", "TRUNCATE jobs CASCADE", "TRUNCATE sitemap_files, sitemap_urls"],
)
async def test_truncating_the_files_empties_the_urls(session: AsyncSession, statement: str) -> None:
    await new_file(session)
    await session.execute(text(statement))
    assert await session.scalar(select(func.count()).select_from(SitemapURL)) == 0


@pytest.fixture(scope="module")
async def own_engine(fresh_database: FreshDatabase) -> AsyncIterator[AsyncEngine]:
    """An engine on a database of its own (these tests commit, from two connections)."""
    settings = settings_for(await fresh_database())
    await migrate.upgrade(settings)
    engine = build_engine(settings)
    yield engine
    await engine.dispose()


async def committed_file(engine: AsyncEngine) -> int:
    """A committed sitemap file with three URLs."""
    async with engine.connect() as connection:
        session = AsyncSession(bind=connection)
        file_id = await new_file(session)
        await session.commit()
        await session.close()
    return file_id


async def refuses_to_wait(connection: AsyncConnection, statement: str, **params: int) -> str:
    """Run `statement` with a short lock timeout; the SQLSTATE it failed with."""
    await connection.execute(text("SET LOCAL lock_timeout = '200ms'"))
    try:
        await connection.execute(text(statement), params)
    except DBAPIError as error:
        return sqlstate(error) or "?"
    finally:
        await connection.rollback()
    return "ok"


async def test_a_file_being_written_to_cannot_be_deleted_under_its_writer(
    own_engine: AsyncEngine,
) -> None:
    file_id = await committed_file(own_engine)
    async with own_engine.connect() as writer, own_engine.connect() as deleter:
        await writer.execute(INSERT_URL, {"file": file_id, "url": "https://d/"})
        delete = "DELETE FROM sitemap_files WHERE id = :id"
        assert await refuses_to_wait(deleter, delete, id=file_id) == LOCK_NOT_AVAILABLE
        await writer.commit()
        await deleter.execute(text(delete), {"id": file_id})
        await deleter.commit()
        left = await deleter.scalar(
            text("SELECT count(*) FROM sitemap_urls WHERE sitemap_id = :id"), {"id": file_id}
        )
        await deleter.rollback()
    assert left == 0


async def test_a_write_to_a_file_deleted_meanwhile_fails(own_engine: AsyncEngine) -> None:
    file_id = await committed_file(own_engine)
    async with own_engine.connect() as writer, own_engine.connect() as deleter:
        await deleter.execute(text("DELETE FROM sitemap_files WHERE id = :id"), {"id": file_id})
        insert = asyncio.create_task(
            writer.execute(INSERT_URL, {"file": file_id, "url": "https://e/"})
        )
        await asyncio.sleep(0.2)
        assert not insert.done(), "the writer waits for the deleting transaction"
        await deleter.commit()
        with pytest.raises(IntegrityError) as raised:
            await insert
        await writer.rollback()
    assert sqlstate(raised.value) == FOREIGN_KEY_VIOLATION


@pytest.mark.parametrize("first_writer", ["commits", "rolls back"])
async def test_two_jobs_writing_one_file_at_once_store_each_url_once(
    own_engine: AsyncEngine, first_writer: str
) -> None:
    """The second writer's plain insert waits for the first writer's transaction. If that
    commits, the insert fails on the shared URLs and the fallback stores only the new ones; if
    it rolls back, the insert stores the whole batch."""
    file_id = await committed_file(own_engine)
    shared = [ParsedURL(f"https://c.example/{number}") for number in range(4)]
    extra = [ParsedURL(f"https://c.example/extra/{number}") for number in range(2)]
    async with own_engine.connect() as one, own_engine.connect() as two:
        first, second = AsyncSession(bind=one), AsyncSession(bind=two)
        assert await service.store_urls(first, sitemap_id=file_id, urls=shared) == len(shared)
        stored = asyncio.create_task(
            service.store_urls(second, sitemap_id=file_id, urls=[*shared, *extra])
        )
        await asyncio.sleep(0.2)
        assert not stored.done(), "the second writer waits for the first one's transaction"
        if first_writer == "commits":
            await first.commit()
            assert await stored == len(extra)
        else:
            await first.rollback()
            assert await stored == len(shared) + len(extra)
        await second.commit()
        assert await url_count(second, file_id) == 3 + len(shared) + len(extra)
        await first.close()
        await second.close()
