"""The engine's round trips: the statement timeout rides on `BEGIN`, the pre-ping asks only idle
connections, with one query, and a statement run again costs one round trip, naming nothing on
the server.

Both are pooler-safe: `tests/pooler/test_statement_timeout.py` and the restart test of
`tests/pooler/test_pgbouncer.py` run them behind a real pgbouncer in transaction mode.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import event, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.project_slug }}.db import database_lifespan, task_session
from {{ cookiecutter.project_slug }}.db import engine as engine_module
from {{ cookiecutter.project_slug }}.db.engine import (
    TransactionSettingsConnection,
    build_engine,
)
from {{ cookiecutter.project_slug }}.db.session import bind_sessions
from {{ cookiecutter.project_slug }}.settings import Settings

SHOW = text("SHOW statement_timeout")
PID = text("SELECT pg_backend_pid()")
ASYNC = text("SHOW synchronous_commit")


@contextmanager
def sent_statements(engine: AsyncEngine) -> Iterator[tuple[list[str], list[str]]]:
    """Record what the engine's new connections send: (simple queries, SQLAlchemy statements).

    asyncpg's query logger sees the simple queries (`BEGIN`, `COMMIT`, the pre-ping); SQLAlchemy's
    `before_cursor_execute` sees every statement it sends through a cursor.
    """
    simple: list[str] = []
    cursor: list[str] = []

    def on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(
            lambda record: simple.append(record.query)
        )

    def on_cursor(*args: Any) -> None:
        cursor.append(args[2])

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "before_cursor_execute", on_cursor)
    try:
        yield simple, cursor
    finally:
        event.remove(engine.sync_engine, "connect", on_connect)
        event.remove(engine.sync_engine, "before_cursor_execute", on_cursor)


@pytest.fixture
async def small_pool(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine of one pooled connection, so that each checkout gets the same one back."""
    engine = build_engine(settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0}))
    yield engine
    await engine.dispose()


async def test_the_timeout_travels_with_begin_in_one_round_trip(settings: Settings) -> None:
    impatient = settings.model_copy(update={"db_statement_timeout": 0.25})
    async with database_lifespan(impatient) as engine:
        with sent_statements(engine) as (simple, cursor):
            async with task_session() as session:
                assert await session.scalar(SHOW) == "250ms"
                await session.commit()
                assert await session.scalar(SHOW) == "250ms"  # the next transaction has it too
    assert simple.count("BEGIN; SET LOCAL statement_timeout = 250") == 2, simple
    assert not [query for query in simple if query.startswith("BEGIN") and "SET" not in query]
    assert not [statement for statement in cursor if "statement_timeout =" in statement], cursor


async def test_a_task_session_may_commit_without_waiting_for_the_disk(settings: Settings) -> None:
    """`synchronous_commit=False` rides on the `BEGIN`, in that session's transactions only."""
    impatient = settings.model_copy(update={"db_statement_timeout": 0.25})
    async with database_lifespan(impatient) as engine:
        with sent_statements(engine) as (simple, cursor):
            async with task_session(synchronous_commit=False) as session:
                assert await session.scalar(ASYNC) == "off"
                await session.commit()
                assert await session.scalar(ASYNC) == "off"  # the next transaction too
                assert await session.scalar(SHOW) == "250ms"
            async with task_session() as session:
                assert await session.scalar(ASYNC) == "on"
    both = "BEGIN; SET LOCAL statement_timeout = 250; SET LOCAL synchronous_commit = off"
    assert simple.count(both) == 2, simple
    assert simple.count("BEGIN; SET LOCAL statement_timeout = 250") == 1, simple
    assert not [statement for statement in cursor if "SET LOCAL" in statement], cursor


async def test_a_connection_already_in_a_transaction_gets_the_setting_on_its_own(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))  # BEGIN sent: a test's outer transaction
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, TransactionSettingsConnection)
        assert driver.begin_with("SET LOCAL statement_timeout = 1234") is False
        with bind_sessions(
            connection, statement_timeout=0.5, join_transaction_mode="create_savepoint"
        ) as factory:
            async with factory() as session:
                assert await session.scalar(SHOW) == "500ms"
        await connection.rollback()


async def test_a_queued_setting_never_reaches_a_later_transaction(small_pool: AsyncEngine) -> None:
    async with small_pool.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, TransactionSettingsConnection)
        assert driver.begin_with("SET LOCAL statement_timeout = 1234") is True
        assert await driver.execute("SELECT 1") == "SELECT 1"  # not a BEGIN: the setting is off
        assert await connection.scalar(SHOW) == "0"  # SQLAlchemy's BEGIN carries nothing
        await connection.rollback()


async def test_a_setting_that_fails_leaves_no_connection_behind(
    settings: Settings, small_pool: AsyncEngine
) -> None:
    # 2**31 ms is beyond statement_timeout's range: BEGIN passes, the SET LOCAL fails.
    with bind_sessions(small_pool, statement_timeout=2**31 / 1000) as factory:
        async with factory() as session:
            with pytest.raises(DBAPIError, match="statement_timeout"):
                await session.scalar(text("SELECT 1"))
    # The connection inside its half-begun transaction was closed, not handed out again.
    async with small_pool.connect() as connection:
        assert await connection.scalar(SHOW) == "0"
        assert await connection.scalar(text("SELECT 1")) == 1


async def test_the_pre_ping_asks_only_an_idle_connection_one_simple_query(
    small_pool: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sent_statements(small_pool) as (simple, cursor):
        for _ in range(3):  # back-to-back checkouts: the connection was used a moment ago
            async with small_pool.connect() as connection:
                await connection.scalar(text("SELECT 2"))
        assert "SELECT 1" not in simple, simple
        monkeypatch.setattr(engine_module, "PING_AFTER_IDLE", 0.05)
        for _ in range(2):
            await asyncio.sleep(0.1)  # idle for longer than the window: pinged
            async with small_pool.connect() as connection:
                await connection.scalar(text("SELECT 2"))
    assert simple.count("SELECT 1") == 2, simple
    assert [query for query in simple if query != "SELECT 1"] == ["BEGIN;", "ROLLBACK;"] * 5
    assert cursor == ["SELECT 2"] * 5  # no statement of a ping of SQLAlchemy's own


async def _terminate(observer: AsyncEngine, pid: int) -> None:
    async with observer.connect() as connection:
        assert await connection.scalar(text(f"SELECT pg_terminate_backend({int(pid)})"))
        await connection.rollback()


@pytest.mark.parametrize("pre_ping", [True, False])
async def test_the_pre_ping_replaces_an_idle_connection_whose_backend_was_terminated(
    settings: Settings,
    engine: AsyncEngine,
    pre_ping: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the ping, the terminated connection is replaced unseen; without it, the query fails.

    The window is 0: every checkout counts as idle and pings, whether or not the close has
    reached the event loop yet (the race the round trip is there for).
    """
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE", 0.0)
    lone = build_engine(
        settings.model_copy(
            update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_pre_ping": pre_ping}
        )
    )
    try:
        async with lone.connect() as connection:
            first = await connection.scalar(PID)
        await _terminate(engine, first)
        async with lone.connect() as connection:
            if pre_ping:
                assert await connection.scalar(PID) != first
            else:
                with pytest.raises(DBAPIError) as caught:
                    await connection.scalar(PID)
                assert caught.value.connection_invalidated
    finally:
        await lone.dispose()


async def test_a_recently_used_connection_the_server_closed_is_replaced_without_a_query(
    settings: Settings, engine: AsyncEngine
) -> None:
    """Inside the window no `SELECT 1` is sent: the close the server sent is seen locally."""
    lone = build_engine(settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0}))
    try:
        with sent_statements(lone) as (simple, _):
            async with lone.connect() as connection:
                first = await connection.scalar(PID)
                driver = (await connection.get_raw_connection()).driver_connection
            assert isinstance(driver, TransactionSettingsConnection)
            closed = asyncio.Event()
            driver.add_termination_listener(lambda _: closed.set())
            await _terminate(engine, first)
            async with asyncio.timeout(10):  # the server's close reaches the event loop
                await closed.wait()
            assert driver.is_closed()
            async with lone.connect() as connection:
                assert await connection.scalar(PID) != first
        assert "SELECT 1" not in simple, simple
    finally:
        await lone.dispose()


class Relay:
    """A TCP relay in front of PostgreSQL that counts the client's sends.

    The driver waits for the server's answer before it sends again, so each burst of client
    data the relay reads is one round trip.
    """

    def __init__(self, host: str, port: int, socket_dir: str | None) -> None:
        self.target = (host, port, socket_dir)
        self.sends = 0
        self.tasks: set[asyncio.Task[None]] = set()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, count: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                self.sends += count
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port, socket_dir = self.target
        if socket_dir:  # a server on a Unix socket (the embedded default)
            socket = f"{socket_dir}/.s.PGSQL.{port}"
            server_reader, server_writer = await asyncio.open_unix_connection(socket)
        else:
            server_reader, server_writer = await asyncio.open_connection(host, port)
        for pipe in (
            self._pipe(reader, server_writer, count=True),
            self._pipe(server_reader, writer, count=False),
        ):
            task = asyncio.create_task(pipe)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)


@contextlib.asynccontextmanager
async def relayed(settings: Settings) -> AsyncIterator[tuple[Relay, AsyncEngine]]:
    """An engine of one connection whose traffic goes through a `Relay`."""
    url = make_url(settings.get_db_url())
    socket_dir = url.query.get("host")
    relay = Relay(
        url.host or "127.0.0.1",
        url.port or 5432,
        socket_dir if isinstance(socket_dir, str) and socket_dir.startswith("/") else None,
    )
    server = await asyncio.start_server(relay.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    relayed_url = (
        url.difference_update_query(["host"])
        .set(host="127.0.0.1", port=port)
        .render_as_string(hide_password=False)
    )
    engine = build_engine(
        settings.model_copy(
            update={"database_url": SecretStr(relayed_url), "db_pool_size": 1, "db_max_overflow": 0}
        )
    )
    try:
        yield relay, engine
    finally:
        await engine.dispose()
        server.close()
        for task in list(relay.tasks):
            task.cancel()


ADD_ONE = text("SELECT CAST(:n AS integer) + 1")


async def test_a_statement_run_again_costs_one_round_trip_and_names_nothing(
    settings: Settings,
) -> None:
    """The statement's description is kept per connection (SQLAlchemy's cache); the server
    keeps nothing: no named statement, so any pooled server connection can run it."""
    async with relayed(settings) as (relay, engine), engine.connect() as connection:
        assert await connection.scalar(ADD_ONE, {"n": 1}) == 2  # described, then run
        before = relay.sends
        assert await connection.scalar(ADD_ONE, {"n": 2}) == 3
        assert relay.sends - before == 1  # Parse, Bind, Execute and Sync in one send
        named = text("SELECT count(*) FROM pg_prepared_statements")
        assert await connection.scalar(named) == 0
        await connection.rollback()


async def test_a_kept_statement_is_parsed_again_wherever_it_runs(engine: AsyncEngine) -> None:
    """Another client's statement replaces the unnamed one on a pooled server connection, as a
    transaction-mode pooler allows between transactions: the kept statement still runs, because
    every execution sends its text again."""
    async with engine.connect() as connection:
        assert await connection.scalar(ADD_ONE, {"n": 1}) == 2
        driver = (await connection.get_raw_connection()).driver_connection
        assert isinstance(driver, TransactionSettingsConnection)
        assert await driver.fetchval("SELECT 'another statement'") == "another statement"
        assert await connection.scalar(ADD_ONE, {"n": 2}) == 3
        await connection.rollback()


async def test_a_column_retyped_under_a_kept_statement_fails_until_new_connections(
    small_pool: AsyncEngine,
) -> None:
    """A migration that changes a column's type while the service runs: the statement kept on a
    connection fails loudly (never wrong data), and a new connection runs it (a restart; the
    docs say so)."""
    select_value = text("SELECT v FROM retyped WHERE v = :v")
    async with small_pool.begin() as connection:
        await connection.execute(text("CREATE TABLE retyped (v integer)"))
        await connection.execute(text("INSERT INTO retyped VALUES (7)"))
    try:
        async with small_pool.connect() as connection:
            assert await connection.scalar(select_value, {"v": 7}) == 7  # described and kept
            await connection.rollback()
        async with small_pool.begin() as connection:
            await connection.execute(text("ALTER TABLE retyped ALTER COLUMN v TYPE bigint"))
        async with small_pool.connect() as connection:
            with pytest.raises(DBAPIError, match="insufficient data left in message"):
                await connection.scalar(select_value, {"v": 7})
            await connection.rollback()
        await small_pool.dispose()  # new connections, nothing kept
        async with small_pool.connect() as connection:
            assert await connection.scalar(select_value, {"v": 7}) == 7
            await connection.rollback()
    finally:
        async with small_pool.begin() as connection:
            await connection.execute(text("DROP TABLE retyped"))
