"""The engine's pool: connections stay open while they are needed, and close when they idle.

SQLAlchemy's asyncio queue pool keeps at most `pool_size` idle connections: it closes every
connection returned beyond them at once, whether or not a checkout is waiting or about to ask.
When the load hovers above `pool_size` it closes and reopens connections all the time; at 16 to
64 concurrent requests on `DB_POOL_SIZE=5` that was one new connection every 10 to 25 requests
(measured with `make bench`), each a TCP connect, a login and, through a pooler, a TLS handshake.

`IdlePool` is that pool (`DB_POOL_SIZE`, `DB_MAX_OVERFLOW`, `DB_POOL_TIMEOUT`,
`DB_POOL_RECYCLE`, events) with a different queue of idle connections:

- a returned connection goes straight to the longest-waiting checkout, if any;
- otherwise it stays open, on top of the idle ones; checkouts take the most recently returned
  one (last in, first out), so a quiet service uses a few warm connections and leaves the rest
  idle;
- connections beyond `pool_size` that stayed idle `IDLE_TIMEOUT` seconds are closed when a
  connection is next returned: the pool shrinks back to `pool_size` after a burst.

The pool still never holds more than `pool_size + max_overflow` connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import await_only
from sqlalchemy.util.queue import Empty, QueueCommon

IDLE_TIMEOUT = 60.0
"""Seconds a connection beyond `pool_size` may stay idle before the pool closes it."""


class _IdleConnections(QueueCommon[ConnectionPoolEntry]):
    """The pool's idle connections, newest last, and the checkouts waiting for one."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        self.maxsize = maxsize
        """`pool_size`: SQLAlchemy reports it as the pool's size."""
        self.use_lifo = use_lifo
        self._idle: deque[tuple[float, ConnectionPoolEntry]] = deque()
        self._waiting: deque[asyncio.Future[ConnectionPoolEntry]] = deque()

    def qsize(self) -> int:
        """Idle connections."""
        return len(self._idle)

    def empty(self) -> bool:
        """Whether no connection is idle."""
        return not self._idle

    def full(self) -> bool:
        """Never: the pool's overflow count bounds the connections, not this queue."""
        return False

    def put(
        self, item: ConnectionPoolEntry, block: bool = True, timeout: float | None = None
    ) -> None:
        """Take a returned connection back (see `put_nowait`)."""
        self.put_nowait(item)

    def put_nowait(self, item: ConnectionPoolEntry) -> None:
        """Hand a returned connection to the longest-waiting checkout, or keep it idle."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():  # a waiter that timed out or was cancelled is skipped
                waiter.set_result(item)
                return
        self._idle.append((time.monotonic(), item))

    def get_nowait(self) -> ConnectionPoolEntry:
        """The most recently returned idle connection (the oldest with `use_lifo=False`)."""
        if not self._idle:
            raise Empty
        return (self._idle.pop() if self.use_lifo else self._idle.popleft())[1]

    def get(self, block: bool = True, timeout: float | None = None) -> ConnectionPoolEntry:
        """An idle connection, waiting up to `timeout` seconds for one when `block` is true.

        Called by the pool inside SQLAlchemy's greenlet: the wait suspends the calling task,
        not the event loop. Raises `Empty` when none came back in time.
        """
        if self._idle or not block:
            return self.get_nowait()
        return await_only(self._wait(seconds=timeout))

    async def _wait(self, *, seconds: float | None) -> ConnectionPoolEntry:
        waiter: asyncio.Future[ConnectionPoolEntry] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            async with asyncio.timeout(seconds):
                return await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return waiter.result()  # handed over as the time ran out: take it
            raise Empty from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.put_nowait(waiter.result())  # cancelled after the hand-over: pass it on
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
            if waiter.cancelled():
                # Never handed a connection: off the queue now rather than at the next return,
                # or an exhausted pool piles up its timed-out checkouts (a return may have
                # skipped it already).
                with contextlib.suppress(ValueError):
                    self._waiting.remove(waiter)

    def stale(self, keep: int, idle_since: float) -> list[ConnectionPoolEntry]:
        """Remove and return the idle connections returned before `idle_since`, keeping `keep`."""
        removed: list[ConnectionPoolEntry] = []
        while len(self._idle) > keep and self._idle[0][0] < idle_since:
            removed.append(self._idle.popleft()[1])
        return removed


class IdlePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool with `_IdleConnections` (see the module docstring)."""

    _queue_class = _IdleConnections

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        """Take `record` back, then close overflow connections idle for `IDLE_TIMEOUT`."""
        idle = self._pool
        assert isinstance(idle, _IdleConnections)
        idle.put_nowait(record)
        for each in idle.stale(idle.maxsize, time.monotonic() - IDLE_TIMEOUT):
            try:
                each.close()
            finally:
                self._dec_overflow()
