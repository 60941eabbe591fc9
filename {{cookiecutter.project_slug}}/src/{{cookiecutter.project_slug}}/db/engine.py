"""The one engine factory, and the pool and driver details that keep its round trips few.

- The pool (`db.pool.IdlePool`): SQLAlchemy's asyncio queue pool, except that connections stay
  open while they are needed and close after idling (the last returned is the next handed out).
- `TransactionSettingsConnection`: asyncpg's connection class, able to send a transaction's
  `SET LOCAL` in the same round trip as its `BEGIN` (the session factory's statement timeout,
  and `synchronous_commit = off` for `task_session(synchronous_commit=False)`).
- The pre-ping (`DB_POOL_PRE_PING`) on checkout: a connection the server closed is replaced
  without a round trip; one idle for `PING_AFTER_IDLE` seconds or more is first asked
  `SELECT 1` as a simple query, one round trip. SQLAlchemy's own pre-ping opens and rolls back a
  transaction around a prepared statement on every checkout: four round trips when asyncpg's
  statement cache is off.
- Statements (`Settings.get_db_connect_args`): unnamed, so nothing of them outlives a
  transaction on the server; each execution sends the statement's text with its parameters in
  one round trip, and SQLAlchemy keeps what the server described of it per connection.
"""

from __future__ import annotations

import time
from typing import Any, cast

from asyncpg import Connection as DriverConnection
from asyncpg import PostgresError
from sqlalchemy import event
from sqlalchemy.engine.interfaces import AdaptedConnection
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection

from {{ cookiecutter.project_slug }}.db.pool import IdlePool
from {{ cookiecutter.project_slug }}.settings import Settings


class TransactionSettingsConnection(DriverConnection):  # type: ignore[misc]  # untyped asyncpg
    """asyncpg's connection, sending a transaction's first settings with its `BEGIN`.

    SQLAlchemy's asyncpg dialect sends `BEGIN` lazily, just before a transaction's first
    statement. `begin_with("SET LOCAL ...")` queues a statement for that `BEGIN`: both travel as
    one simple query, so the setting costs no round trip of its own and still ends with its
    transaction (pooler-safe). Whatever the connection sends next takes the queued statement
    off, so it never reaches a later transaction.
    """

    __slots__ = ("_begin_with",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._begin_with: str | None = None

    def begin_with(self, statement: str) -> bool:
        """Queue `statement` for the next `BEGIN`; False if a transaction is already open."""
        if self.is_in_transaction():
            return False
        self._begin_with = statement
        return True

    async def execute(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109  # asyncpg's signature
    ) -> str:
        """asyncpg's `execute`, with the queued statement appended to a `BEGIN`."""
        queued, self._begin_with = self._begin_with, None
        if queued is None or args or not query.startswith("BEGIN"):
            return str(await super().execute(query, *args, timeout=timeout))
        try:
            return str(await super().execute(f"{query.rstrip(';')}; {queued}", timeout=timeout))
        except PostgresError:
            if self.is_in_transaction():  # BEGIN passed, the setting failed: never reuse this
                self.terminate()
            raise


PING_AFTER_IDLE = 0.5
"""Seconds a pooled connection may have been idle and still be handed out without a `SELECT 1`
(HikariCP's `aliveBypassWindowMs` default). A server that closes a connection (a pooler restart,
a terminated backend) sends its close at once, and the event loop marks the connection closed,
which the checkout sees without a round trip. Only a close still in flight when a connection
idle for less than this is handed out goes unseen: that request fails with a 5xx, as any request
in flight at that moment does."""
_RETURNED = "returned_at"
"""Key of a pool entry's `info`: `time.monotonic()` when its connection was last connected or
returned to the pool."""


def _ping(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
    """Pre-ping on checkout: refuse a closed connection; ask an idle one `SELECT 1`.

    `SELECT 1` goes as a simple query (no transaction, no prepared statement), and only to a
    connection idle for `PING_AFTER_IDLE` seconds or more: under load, connections come back
    within milliseconds and checkouts cost no round trip. A connection that is closed or fails
    the query (a pooler restart, a terminated backend, a dropped network) invalidates every
    connection the pool made before now, and the pool hands out a fresh one instead, as
    SQLAlchemy's `pool_pre_ping` does. Any error counts: asyncpg reports a backend terminated
    while the connection sat in the pool as a socket error, a server error or, when the server's
    notice arrived first, an `InternalClientError` of its protocol state.
    """
    adapted = cast(AdaptedConnection, dbapi_connection)
    if adapted.driver_connection.is_closed():
        raise InvalidatePoolError("pre-ping: the server closed the connection")
    if time.monotonic() - record.info.get(_RETURNED, 0.0) < PING_AFTER_IDLE:
        return
    try:
        adapted.run_async(lambda driver: driver.execute("SELECT 1"))
    except Exception as exc:  # `SELECT 1` fails only with its connection
        raise InvalidatePoolError(f"pre-ping failed: {exc!r}") from exc


def _returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """Note when a connection was connected or returned: the pre-ping skips recent ones."""
    record.info[_RETURNED] = time.monotonic()


def build_engine(settings: Settings, *, migrations: bool = False) -> AsyncEngine:
    """Build an engine from settings: pooler-safe connect args, pool limits from settings.

    `migrations=True` uses the migrations URL and no pool (Alembic opens one connection).
    """
    connect_args = settings.get_db_connect_args(migrations=migrations)
    connect_args["connection_class"] = TransactionSettingsConnection
    options: dict[str, Any] = {"connect_args": connect_args, "echo": settings.db_echo}
    if migrations:
        options["poolclass"] = NullPool  # every connection is new: nothing to ping
    else:
        options.update(
            poolclass=IdlePool,
            pool_use_lifo=True,  # warm connections first: idle ones close, recent ones skip pings
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_recycle=settings.db_pool_recycle,
        )
    engine = create_async_engine(settings.get_db_url(migrations=migrations), **options)
    if settings.db_pool_pre_ping and not migrations:
        event.listen(engine.sync_engine, "checkout", _ping)
        event.listen(engine.sync_engine, "connect", _returned)
        event.listen(engine.sync_engine, "checkin", _returned)
    return engine
