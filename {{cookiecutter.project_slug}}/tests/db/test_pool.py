"""The engine's pool (`db.pool.IdlePool`): connections stay open while needed, close after idling.

SQLAlchemy's own asyncio queue pool fails all but the timeout test: it closes every connection
returned beyond `pool_size` idle ones, checkouts waiting or not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from {{ cookiecutter.project_slug }}.db import pool as pool_module
from {{ cookiecutter.project_slug }}.db.engine import build_engine
from {{ cookiecutter.project_slug }}.settings import Settings

PID = text("SELECT pg_backend_pid()")


@pytest.fixture
async def two(settings: Settings) -> AsyncIterator[tuple[AsyncEngine, list[object]]]:
    """An engine of pool_size 1 and max_overflow 1; the connections it closed."""
    engine = build_engine(
        settings.model_copy(
            update={"db_pool_size": 1, "db_max_overflow": 1, "db_pool_timeout": 0.5}
        )
    )
    closed: list[object] = []
    event.listen(engine.sync_engine, "close", lambda *args: closed.append(args))
    yield engine, closed
    await engine.dispose()


async def _open(engine: AsyncEngine) -> tuple[AsyncConnection, int]:
    connection = await engine.connect()
    pid = int(await connection.scalar(PID))
    await connection.rollback()
    return connection, pid


async def test_connections_returned_at_once_serve_the_checkouts_waiting_for_them(
    two: tuple[AsyncEngine, list[object]],
) -> None:
    """Two connections returned in one turn of the event loop go to the two waiting checkouts."""
    engine, closed = two
    holding = asyncio.Barrier(2)

    async def checkout() -> int:
        async with engine.connect() as connection:
            pid = int(await connection.scalar(PID))
            async with asyncio.timeout(10):
                await holding.wait()  # both hold a connection at the same time
            await connection.rollback()
        return pid

    (first, one), (second, other) = await _open(engine), await _open(engine)
    waiters = [asyncio.create_task(checkout()) for _ in range(2)]
    await asyncio.sleep(0.1)  # both wait: the pool is at pool_size + max_overflow
    assert not any(waiter.done() for waiter in waiters)
    await asyncio.gather(first.close(), second.close())  # returned in the same turn
    assert set(await asyncio.gather(*waiters)) == {one, other}  # the same two connections
    assert closed == []


async def test_a_connection_beyond_pool_size_stays_open_for_the_next_checkout(
    two: tuple[AsyncEngine, list[object]],
) -> None:
    engine, closed = two
    (first, one), (second, other) = await _open(engine), await _open(engine)
    await first.close()
    await second.close()  # two idle for a pool_size of 1: both stay open
    assert closed == []
    (again, pid), (more, pid_more) = await _open(engine), await _open(engine)
    assert pid == other  # the last returned is handed out first
    assert {pid, pid_more} == {one, other}  # no new connection
    await again.close()
    await more.close()


async def test_idle_connections_beyond_pool_size_close_after_the_idle_timeout(
    two: tuple[AsyncEngine, list[object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool_module, "IDLE_TIMEOUT", 0.2)
    engine, closed = two
    (first, one), (second, _) = await _open(engine), await _open(engine)
    await first.close()
    await asyncio.sleep(0.3)
    await second.close()  # `first` idled past the timeout and is beyond pool_size: closed
    assert len(closed) == 1
    (again, pid), (more, _) = await _open(engine), await _open(engine)
    assert pid != one  # the closed one is not handed out again; the pool may grow back
    await again.close()
    await more.close()
    await asyncio.sleep(0.3)
    async with engine.connect() as connection:  # a return closes the stale one, keeps one
        await connection.scalar(PID)
    assert engine.sync_engine.pool.checkedin() == 1  # type: ignore[attr-defined]


async def test_a_checkout_that_finds_no_connection_in_time_fails_with_the_pool_timeout(
    two: tuple[AsyncEngine, list[object]],
) -> None:
    engine, _ = two
    (first, _), (second, _) = await _open(engine), await _open(engine)
    try:
        with pytest.raises(PoolTimeoutError):
            await engine.connect()
        # The waiter that timed out takes nothing: the next return is kept for the next checkout.
        await first.close()
        async with engine.connect() as connection:
            await connection.scalar(PID)
    finally:
        await second.close()


async def test_a_cancelled_checkout_passes_its_connection_on(
    two: tuple[AsyncEngine, list[object]],
) -> None:
    """A connection handed to a checkout that is cancelled before it runs is not lost."""
    engine, closed = two
    (first, one), (second, other) = await _open(engine), await _open(engine)

    async def connect() -> AsyncConnection:
        return await engine.connect()

    doomed = asyncio.create_task(connect())
    await asyncio.sleep(0.1)  # waiting
    await first.close()  # handed to `doomed`...
    doomed.cancel()  # ...which is cancelled before it resumes
    with pytest.raises(asyncio.CancelledError):
        await doomed
    async with engine.connect() as connection:  # the connection is idle again, not lost
        assert await connection.scalar(PID) == one
    await second.close()
    assert closed == []
    assert other != one


async def test_checkouts_that_time_out_leave_no_waiter_behind(
    two: tuple[AsyncEngine, list[object]],
) -> None:
    """An exhausted pool whose checkouts keep timing out does not pile them up."""
    engine, _ = two
    (first, _), (second, _) = await _open(engine), await _open(engine)
    try:
        for _ in range(3):
            with pytest.raises(PoolTimeoutError):
                await engine.connect()
        idle = engine.sync_engine.pool._pool  # type: ignore[attr-defined]
        assert isinstance(idle, pool_module._IdleConnections)
        assert len(idle._waiting) == 0
    finally:
        await first.close()
        await second.close()
