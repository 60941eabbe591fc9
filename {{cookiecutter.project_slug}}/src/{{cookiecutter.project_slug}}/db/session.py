"""Sessions: the request dependency and the background-work helper share one factory.

- Route handlers: `session: SessionDep`. The transaction commits before the response is sent
  (`scope="function"`), so a failed commit is a 5xx and background work sees committed rows;
  an app with a route that takes the session in FastAPI's default request scope is refused when
  it is built and again at start-up (`assert_function_scoped`), at no cost per request.
- Background work: `async with task_session() as session:`, an isolated session from the same
  factory that commits on success, rolls back on error and always returns its connection.
- Services receive one of those sessions and never create, commit, roll back or close it.
- Every transaction of the factory starts with `SET LOCAL statement_timeout`
  (`DB_STATEMENT_TIMEOUT`): transaction-mode poolers refuse it as a startup parameter, and a
  `SET LOCAL` ends with its transaction, so no setting leaks to another client's connection.
  It travels with the transaction's `BEGIN`, in the same round trip (`db.engine`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import DependencyScopeError
from fastapi.routing import iter_route_contexts
from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

from {{ cookiecutter.project_slug }}.db.engine import (
    TransactionSettingsConnection,
    build_engine,
)
from {{ cookiecutter.project_slug }}.db.guard import GuardedSession, guarding
from {{ cookiecutter.project_slug }}.settings import Settings

logger = logging.getLogger(__name__)

SessionFactory = async_sessionmaker[AsyncSession]
"""The type of the process's session factory."""

_factories: list[SessionFactory] = []
_STATEMENT_TIMEOUT_MS = "statement_timeout_ms"
"""Key of `Session.info` holding the factory's statement timeout."""
_ASYNC_COMMIT = "async_commit"
"""Key of `Session.info`: true for the sessions of `task_session(synchronous_commit=False)`."""
ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"


class _Session(GuardedSession):
    """The synchronous session inside each `AsyncSession` of the factory (for its events and
    the runtime session guard, `db.guard`)."""


@event.listens_for(_Session, "after_begin")
def _limit_statements(session: Session, transaction: SessionTransaction, conn: Connection) -> None:
    """Start each transaction with its `SET LOCAL` settings (savepoints inherit them).

    `statement_timeout` always (`DB_STATEMENT_TIMEOUT`, unless 0); `synchronous_commit = off`
    for the sessions of `task_session(synchronous_commit=False)`. They go with the `BEGIN` the
    driver is about to send; a connection already in a transaction (a test's outer one) gets
    them one by one.
    """
    if transaction.nested:
        return
    info = session.info
    milliseconds = info.get(_STATEMENT_TIMEOUT_MS)
    settings = [f"SET LOCAL statement_timeout = {int(milliseconds)}"] if milliseconds else []
    if info.get(_ASYNC_COMMIT):
        settings.append(ASYNC_COMMIT)
    if not settings:
        return
    driver = conn.connection.driver_connection
    if not (
        isinstance(driver, TransactionSettingsConnection) and driver.begin_with("; ".join(settings))
    ):
        for statement in settings:
            conn.exec_driver_sql(statement)


@contextmanager
def bind_sessions(
    bind: AsyncEngine | AsyncConnection, *, statement_timeout: float = 0, **options: Any
) -> Iterator[SessionFactory]:
    """Install the process's session factory, bound to `bind`, for the duration of the block.

    The app's lifespan and worker start-up call this through `database_lifespan`; tests call it
    with a connection inside an outer transaction to roll back everything a test did.
    `statement_timeout` (seconds, 0 for none) limits every statement of every transaction.
    """
    factory = async_sessionmaker(
        bind,
        expire_on_commit=False,
        sync_session_class=_Session,
        info={_STATEMENT_TIMEOUT_MS: round(statement_timeout * 1000)},
        **options,
    )
    _factories.append(factory)
    try:
        yield factory
    finally:
        _factories.remove(factory)


@asynccontextmanager
async def database_lifespan(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """Build the engine, install the session factory, and dispose of both on exit."""
    if settings.get_db_ssl_mode() == "require":
        logger.warning(
            "database SSL mode is 'require': the connection is encrypted but the server's "
            "certificate is not verified; set DB_SSL_MODE=verify-full and DB_SSL_ROOT_CERT "
            "to the CA file (Supabase: the certificate from the dashboard)"
        )
    engine = build_engine(settings)
    guard = guarding(settings.db_session_guard, slow_transaction_ms=settings.db_slow_transaction_ms)
    try:
        with guard, bind_sessions(engine, statement_timeout=settings.db_statement_timeout):
            yield engine
    finally:
        await engine.dispose()


def _factory() -> SessionFactory:
    """The process's session factory (`bind_sessions`)."""
    if not _factories:
        raise RuntimeError(
            "no database is configured: run inside `database_lifespan(settings)` "
            "(the app's lifespan and the worker start-up do this)"
        )
    return _factories[-1]


async def get_session_dependency() -> AsyncIterator[AsyncSession]:
    """Yield the request's session; commit if the handler succeeds, roll back if it raises.

    Take it as `session: SessionDep`, or `Depends(get_session_dependency, scope="function")`:
    `assert_function_scoped` refuses any other scope when the app is built. This generator is
    the unit of work of `task_session` too; the request takes it directly, as FastAPI's
    dependency: a context manager around it cost 2 % of a `GET` by id (one more generator that
    every resumption of the request passes through).
    """
    async with _factory()() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session_dependency, scope="function")]
"""The request's session. Use this alias in every route handler that touches the database."""

_unit_of_work = asynccontextmanager(get_session_dependency)
"""The same unit of work as an `async with` block (`task_session`)."""


@asynccontextmanager
async def task_session(*, synchronous_commit: bool = True) -> AsyncIterator[AsyncSession]:
    """Open an isolated session for background work (commit per batch with `session.commit()`).

    It commits on success, rolls back on any error and always returns its connection.
    `synchronous_commit=False`: each of its transactions starts with `SET LOCAL
    synchronous_commit = off` (with the `BEGIN`, no round trip of its own), so its commits return
    before their WAL is on disk. A crash can then lose the last commits, never part of one: use
    it only for work a retry stores again, and commit the job's outcome in a session without it
    (the WAL is one ordered log: that commit flushes the earlier ones).
    """
    async with _unit_of_work() as session:
        if not synchronous_commit:
            session.info[_ASYNC_COMMIT] = True  # read when each transaction begins
        yield session


class SessionScopeError(DependencyScopeError):
    """A route takes the request's session with a scope other than "function"."""


def assert_function_scoped(app: FastAPI) -> None:
    """Refuse `app` if any route takes `get_session_dependency` with a scope but "function".

    With FastAPI's default ("request") scope the session's commit runs after the response is
    sent: a failed commit would answer 200, and background work could miss the rows. Checking
    every route's dependencies once, when the app is built (`main.create_app`) and again when it
    starts (routes added in between), costs nothing per request. Nested dependencies and
    router-level `dependencies=[...]` are walked too.

    Raises:
        SessionScopeError: naming each offending route, the parameter and the fix.
    """
    problems: list[str] = []
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if not isinstance(dependant, Dependant):
            continue
        methods = ",".join(sorted(getattr(route, "methods", None) or ())) or "WEBSOCKET"
        for owner, child in _session_dependants(dependant):
            if child.scope != "function":
                where = f"parameter {child.name!r}" if child.name else "a dependencies entry"
                problems.append(
                    f"{methods} {route.path_format}: {where} of {owner} takes "
                    f"get_session_dependency with scope {child.scope or 'request'!r}"
                )
    if problems:
        raise SessionScopeError(
            "the request's session must be function-scoped (its commit would otherwise run "
            "after the response is sent, so a failed commit would answer 200): "
            + "; ".join(problems)
            + ". Take it as `session: SessionDep` or `Depends(get_session_dependency, "
            'scope="function")`.'
        )


def _session_dependants(dependant: Dependant) -> Iterator[tuple[str, Dependant]]:
    """(the name of the callable that declares it, the dependant) for each use of the session."""
    owner = getattr(dependant.call, "__name__", "the route")
    for child in dependant.dependencies:
        if child.call is get_session_dependency:
            yield owner, child
        else:
            yield from _session_dependants(child)
