"""The runtime session guard (`db/guard.py`): each rule it watches, on the real database.

`tests/conftest.py` runs every test under the strict guard; the tests here open a
`collecting()` block of their own to catch the violations they cause on purpose.
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import BackgroundTasks
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.db import SessionDep, SessionFactory, task_session
from {{ cookiecutter.project_slug }}.db.guard import (
    SessionGuardError,
    Violation,
    collecting,
    guarding,
)
from {{ cookiecutter.project_slug }}.jobs.runner import JobResources
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.outbound.client import fetch
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import api_client
from tests.localserver import LocalServer

PROJECT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).with_name("guard_cases.py")
COUNTER = "db_client_session_guard_violations_total"


def line_of(marker: str, path: Path = Path(__file__)) -> str:
    """`name.py:N` of the line of `path` that ends with the comment `# marker`."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.endswith(f"# {marker}"):
            return f"{path.name}:{number}"
    raise AssertionError(f"no line marked {marker!r} in {path}")


def reported(violations: list[Violation]) -> list[tuple[str, str]]:
    """Each violation's kind and the file name and line of its site."""
    return [(violation.kind, Path(violation.site).name) for violation in violations]


def counted(kind: str) -> float:
    """The violations of `kind` counted so far in this process."""
    return REGISTRY.get_sample_value(COUNTER, {"kind": kind}) or 0.0


@pytest.fixture
def page(site: LocalServer) -> str:
    """URL of a small page on the local web site."""
    site.content("/page", "hello")
    return site.url("/page")


def test_strict_mode_fails_a_test_that_holds_a_session_across_a_fetch(
    database_server: URL,
) -> None:
    plugins = ["-p", "pytest_asyncio.plugin", "-p", "no:cacheprovider"]  # and no others: faster
    result = subprocess.run(  # the suite's own conftest, in a pytest of its own
        [sys.executable, "-m", "pytest", str(CASES), *plugins, "-q"],
        cwd=PROJECT,
        env={
            **os.environ,
            "TEST_DATABASE_URL": database_server.render_as_string(hide_password=False),
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "FAILED tests/db/guard_cases.py::test_holds_a_session_across_a_fetch" in output
    assert "held_during_fetch" in output
    assert f"session opened at tests/db/{line_of('held-site', CASES)}" in output
    # The test that ends its transaction first passes; the two others also fail at their end.
    assert "1 failed, 2 passed, 2 errors" in output
    assert "ERROR tests/db/guard_cases.py::test_ends_the_transaction" not in output
    assert "ERROR tests/db/guard_cases.py::test_leaves_a_session_open" in output  # at its end
    assert "unclosed_session" in output
    assert f"session opened at tests/db/{line_of('unclosed-site', CASES)}" in output


async def test_the_fetch_is_refused_before_it_is_sent(
    sessions: SessionFactory, resources: JobResources, site: LocalServer, page: str
) -> None:
    with collecting() as violations:
        async with task_session() as session:  # held-site
            await session.execute(text("SELECT 1"))
            with pytest.raises(SessionGuardError, match="held_during_fetch"):
                await fetch(resources.http, page, config=resources.outbound)  # fetch-site
    assert reported(violations) == [("held_during_fetch", line_of("held-site"))]
    assert f"request to 127.0.0.1 ({line_of('fetch-site')})" in violations[0].detail
    assert site.requests == []  # refused before it was sent


async def test_a_fetch_after_the_transaction_ends_is_allowed(
    sessions: SessionFactory, resources: JobResources, page: str
) -> None:
    with collecting() as violations:
        async with task_session() as session:
            await session.execute(text("SELECT 1"))
            await session.commit()  # the connection goes back: the session holds none
            result = await fetch(resources.http, page, config=resources.outbound)
    assert result.body == b"hello"
    assert violations == []


async def test_log_mode_warns_once_per_site_and_counts_every_violation(
    sessions: SessionFactory,
    resources: JobResources,
    page: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = counted("held_during_fetch")
    with (
        caplog.at_level(logging.WARNING, logger=guarding.__module__),
        guarding("log", slow_transaction_ms=0),
        collecting() as violations,
    ):
        for _ in range(2):
            async with task_session() as session:  # logged-site
                await session.execute(text("SELECT 1"))
                result = await fetch(resources.http, page, config=resources.outbound)
    assert result.body == b"hello"  # not refused
    assert violations == []  # only strict mode records them for the tests
    assert counted("held_during_fetch") == before + 2
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "held_during_fetch" in warnings[0]
    assert line_of("logged-site") in warnings[0]


async def test_off_mode_reports_nothing(
    sessions: SessionFactory, resources: JobResources, page: str
) -> None:
    before = counted("held_during_fetch")
    with guarding("off", slow_transaction_ms=1), collecting() as violations:
        async with task_session() as session:
            await session.execute(text("SELECT pg_sleep(0.01)"))
            await fetch(resources.http, page, config=resources.outbound)
    assert violations == []
    assert counted("held_during_fetch") == before


async def test_a_slow_transaction_is_reported_with_its_site(sessions: SessionFactory) -> None:
    with guarding("strict", slow_transaction_ms=250), collecting() as violations:
        async with task_session() as session:
            await session.execute(text("SELECT 1"))
        async with task_session() as session:  # slow-site
            await session.execute(text("SELECT pg_sleep(0.4)"))
    assert reported(violations) == [("slow_transaction", line_of("slow-site"))]
    assert "DB_SLOW_TRANSACTION_MS=250" in violations[0].detail
    with guarding("strict", slow_transaction_ms=0), collecting() as violations:  # 0: never
        async with task_session() as session:
            await session.execute(text("SELECT pg_sleep(0.3)"))
    assert violations == []


async def test_a_session_left_open_is_reported_with_its_site(sessions: SessionFactory) -> None:
    with collecting() as violations:
        session = sessions()  # unclosed-site
        await session.execute(text("SELECT 1"))
        async with sessions() as closed:
            await closed.execute(text("SELECT 1"))
    await session.close()
    assert reported(violations) == [("unclosed_session", line_of("unclosed-site"))]


async def test_a_session_collected_unclosed_is_reported(sessions: SessionFactory) -> None:
    async def leak() -> None:
        session = sessions()  # leaked-site
        await session.execute(text("SELECT 1"))

    with collecting() as violations:
        await leak()
        gc.collect()
    assert reported(violations) == [("unclosed_session", line_of("leaked-site"))]
    assert "garbage-collected without close() while holding a connection" in str(violations[0])


async def test_a_request_session_used_after_the_response_is_reported(
    settings: Settings, sessions: SessionFactory
) -> None:
    async def late(session: AsyncSession) -> None:
        await session.execute(text("SELECT 1"))

    app = create_app(settings)  # with the guard's middleware, as in production

    @app.post("/late")  # late-site
    async def hand_the_session_over(session: SessionDep, tasks: BackgroundTasks) -> None:
        tasks.add_task(late, session)  # noqa: SL006 the mistake under test

    with collecting() as violations:
        async with api_client(app, settings) as client:
            response = await client.post("/late")
    assert response.status_code == 200
    assert reported(violations) == [
        ("checkout_after_response", line_of("late-site")),
        ("unclosed_session", line_of("late-site")),  # used again, never closed again
    ]
