"""The one engine factory, and the two driver details that keep its round trips few.

- `TransactionSettingsConnection`: asyncpg's connection class, able to send a transaction's
  `SET LOCAL` in the same round trip as its `BEGIN` (the session factory's statement timeout).
- The pre-ping (`DB_POOL_PRE_PING`): `SELECT 1` as a simple query, one round trip, on every
  checkout. SQLAlchemy's own pre-ping opens and rolls back a transaction around a prepared
  statement: four round trips when the statement caches are off.
"""

from __future__ import annotations

from typing import Any, cast

from asyncpg import Connection as DriverConnection
from asyncpg import PostgresError
from sqlalchemy import event
from sqlalchemy.engine.interfaces import AdaptedConnection
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection

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


def _ping(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
    """Pre-ping on checkout: `SELECT 1` as a simple query (no transaction, no prepared statement).

    A connection that fails it (closed by a pooler restart, a terminated backend, a dropped
    network) invalidates every connection the pool made before now, and the pool hands out a
    fresh one instead, as SQLAlchemy's `pool_pre_ping` does. Any error counts: asyncpg reports a
    backend terminated while the connection sat in the pool as a socket error, a server error or,
    when the server's notice arrived first, an `InternalClientError` of its protocol state.
    """
    try:
        cast(AdaptedConnection, dbapi_connection).run_async(
            lambda driver: driver.execute("SELECT 1")
        )
    except Exception as exc:  # `SELECT 1` fails only with its connection
        raise InvalidatePoolError(f"pre-ping failed: {exc!r}") from exc


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
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_recycle=settings.db_pool_recycle,
        )
    engine = create_async_engine(settings.get_db_url(migrations=migrations), **options)
    if settings.db_pool_pre_ping and not migrations:
        event.listen(engine.sync_engine, "checkout", _ping)
    return engine
