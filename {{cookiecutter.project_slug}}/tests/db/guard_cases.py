"""Tests that `tests/db/test_guard.py` runs in a pytest of their own (the suite skips this file).

With the strict session guard of `tests/conftest.py`, the first fails where it sends the
request: it holds its session's connection while it waits on an outbound request. The second
ends the transaction first, and passes. The third fails at its end, in the guard's fixture: it
never closes its session.
"""

from __future__ import annotations

from sqlalchemy import text

from {{ cookiecutter.project_slug }}.db import SessionFactory, task_session
from {{ cookiecutter.project_slug }}.jobs.runner import JobResources
from {{ cookiecutter.project_slug }}.outbound.client import fetch

from tests.localserver import LocalServer


async def test_holds_a_session_across_a_fetch(
    sessions: SessionFactory, resources: JobResources, site: LocalServer
) -> None:
    site.content("/page", "hello")
    async with task_session() as session:  # held-site
        await session.execute(text("SELECT 1"))
        await fetch(resources.http, site.url("/page"), config=resources.outbound)


async def test_ends_the_transaction_before_the_fetch(
    sessions: SessionFactory, resources: JobResources, site: LocalServer
) -> None:
    site.content("/page", "hello")
    async with task_session() as session:
        await session.execute(text("SELECT 1"))
    result = await fetch(resources.http, site.url("/page"), config=resources.outbound)
    assert result.body == b"hello"


async def test_leaves_a_session_open(sessions: SessionFactory) -> None:
    session = sessions()  # unclosed-site
    await session.execute(text("SELECT 1"))
