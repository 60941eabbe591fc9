"""The runtime session guard: the session rules of docs/database.md, watched while the code runs.

sessionlint reads the code; this guard watches it run. It listens to the events of the
factory's sessions (`GuardedSession` is the base of every session that `SessionDep` and
`task_session()` hand out), to the one outbound client (an httpx request hook) and to the
responses (`watch_request`, called by the request middleware), and reports:

- `held_during_fetch`: a task sends an outbound HTTP request while a session it began still
  holds a database connection (an open transaction). The connection sits idle for the whole
  round trip: this is how scrapers exhaust pools.
- `slow_transaction`: a transaction stayed open longer than `DB_SLOW_TRANSACTION_MS`.
- `unclosed_session`: a session its owner never closed (garbage-collected unclosed, or still
  open when a test ends).
- `checkout_after_response`: a session opened by a request held a connection when the
  response was sent (a commit after the response), or checked one out afterwards (a
  `BackgroundTasks` function given the request's session).

Each report names where the session was opened: the first caller outside SQLAlchemy and this
package, or the route's endpoint for the request's session. `DB_SESSION_GUARD` sets the mode:
`log` logs a warning once per kind and site and counts every violation in
`db_client_session_guard_violations_total{kind}`; `strict` does the same, raises
`SessionGuardError` where the violation happens when it can (the outbound request hook) and
records every violation for `collecting()`, which the tests use to fail the test that caused it;
`off` keeps no books.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import sys
import time
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import fastapi
import httpx
import sqlalchemy
import starlette
from prometheus_client import Counter
from sqlalchemy import Connection, event
from sqlalchemy.orm import Session, SessionTransaction
from starlette.types import Scope

logger = logging.getLogger(__name__)

Mode = Literal["off", "log", "strict"]
"""`off`: no bookkeeping; `log`: warn once per site and count; `strict`: also raise and record."""
Kind = Literal[
    "held_during_fetch", "slow_transaction", "unclosed_session", "checkout_after_response"
]
"""What a violation broke (the `kind` label of the counter)."""

VIOLATIONS = Counter(
    "db_client_session_guard_violations",
    "Session rules broken at run time, by kind (docs/database.md, the runtime session guard)",
    ["kind"],
)


def _folder(module: Any) -> str:
    return str(Path(module.__file__).parent) + os.sep


_DB_PACKAGE = str(Path(__file__).parent) + os.sep
_OUTBOUND_PACKAGE = str(Path(__file__).parent.parent / "outbound") + os.sep
_SESSION_PLUMBING = (_folder(sqlalchemy), _DB_PACKAGE, contextlib.__file__)
"""Frames skipped to find where a session was opened."""
_FETCH_PLUMBING = (
    _folder(httpx),
    _OUTBOUND_PACKAGE,
    _DB_PACKAGE,
    _folder(asyncio),
    contextlib.__file__,
)
"""Frames skipped to find where an outbound request was made."""
_FRAMEWORK = (_folder(fastapi), _folder(starlette))
"""A session first called from here is a dependency's: the route's endpoint names it."""


@dataclass(frozen=True)
class Violation:
    """One broken rule: its kind, where the session was opened, and what happened."""

    kind: Kind
    site: str
    """Where the session was opened (`path/to/file.py:42`)."""
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail} (session opened at {self.site})"


class SessionGuardError(RuntimeError):
    """Raised in strict mode where a violation happens (before an outbound request is sent)."""

    def __init__(self, violation: Violation) -> None:
        super().__init__(str(violation))
        self.violation = violation


class _Request:
    """A request seen by `watch_request`: its task, and whether its response went out."""

    __slots__ = ("holding", "scope", "sent", "task")

    def __init__(self, scope: Scope, task: asyncio.Task[Any] | None) -> None:
        self.scope = scope
        self.task = task
        self.sent = False
        self.holding: set[_Record] = set()


_request: ContextVar[_Request | None] = ContextVar("session_guard_request", default=None)


class _Record:
    """What the guard knows of one session (never the session itself)."""

    __slots__ = ("closed", "collector", "filename", "lineno", "ref", "request", "since", "task")

    def __init__(self, filename: str, lineno: int) -> None:
        self.filename = filename
        self.lineno = lineno
        self.closed = False
        self.since: int | None = None
        """`perf_counter_ns()` when its transaction got a connection; None when it holds none."""
        self.task: asyncio.Task[Any] | None = None
        self.request: _Request | None = None
        self.collector: list[Violation] | None = None
        self.ref: weakref.ref[Session] | None = None

    @property
    def site(self) -> str:
        """`file:line`, relative to the working directory when under it."""
        filename, cwd = self.filename, os.getcwd() + os.sep
        if filename.startswith(cwd):
            filename = filename[len(cwd) :]
        return f"{filename}:{self.lineno}"


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no event loop in this thread
        return None


def _caller(frame: FrameType | None, skipped: tuple[str, ...]) -> tuple[str, int]:
    """The file and line of the first frame, from `frame` outwards, not in `skipped`."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(skipped):
            return filename, frame.f_lineno
        frame = frame.f_back
    return "<unknown>", 0


def _endpoint(scope: Scope) -> tuple[str, int] | None:
    """The file and first line of the route's endpoint, once the router has matched it."""
    endpoint = scope.get("endpoint")
    code = getattr(inspect.unwrap(endpoint), "__code__", None) if endpoint else None
    return (code.co_filename, code.co_firstlineno) if code is not None else None


class _Guard:
    """The process's guard: its mode and books."""

    def __init__(self) -> None:
        self.mode: Mode = "off"
        self.slow_ms = 0
        self.logged: set[tuple[Kind, str]] = set()
        self.collectors: list[list[Violation]] = []
        self.open: dict[weakref.ref[Session], _Record] = {}
        """The sessions not closed, by a weak reference that reports them if collected."""
        self.held: dict[asyncio.Task[Any], set[_Record]] = {}
        self.finalized: deque[_Record] = deque()
        """Records of sessions garbage-collected, reported on the next call (not inside GC)."""

    def opened(self, session: Session) -> _Record:
        """Track a new session: where it was opened, by which request, in which test."""
        self.drain()
        record = _Record(*_caller(sys._getframe(2), _SESSION_PLUMBING))
        request = _request.get()
        if request is not None and not request.sent and request.task is _current_task():
            record.request = request
            if record.filename.startswith(_FRAMEWORK):
                record.filename, record.lineno = _endpoint(request.scope) or (
                    record.filename,
                    record.lineno,
                )
        record.collector = self.collectors[-1] if self.collectors else None
        record.ref = weakref.ref(session, self._collected)
        self.open[record.ref] = record
        return record

    def _collected(self, ref: weakref.ref[Session]) -> None:
        """Weak reference callback, run inside the garbage collector: only note the record."""
        record = self.open.get(ref)
        if record is not None:
            self.finalized.append(record)

    def closed(self, record: _Record) -> None:
        """The owner closed the session."""
        record.closed = True
        if record.ref is not None:
            self.open.pop(record.ref, None)

    def began(self, record: _Record) -> None:
        """The session's transaction got a connection, in the current task."""
        if record.closed and record.ref is not None:  # used after close(): close it again
            record.closed = False
            self.open[record.ref] = record
        record.since = time.perf_counter_ns()
        record.task = _current_task()
        if record.task is not None:
            self.held.setdefault(record.task, set()).add(record)
        request = record.request
        if request is not None:
            if request.sent:
                self.report(
                    "checkout_after_response",
                    record,
                    "a session of the request checked out a connection after the response was "
                    "sent (pass IDs to background work; it opens task_session())",
                )
            else:
                request.holding.add(record)

    def ended(self, record: _Record) -> None:
        """The session's transaction ended: its connection is released."""
        since, record.since = record.since, None
        self._release(record)
        if since is None or not self.slow_ms:
            return
        elapsed_ms = (time.perf_counter_ns() - since) / 1e6
        if elapsed_ms > self.slow_ms:
            self.report(
                "slow_transaction",
                record,
                f"a transaction stayed open {elapsed_ms:.0f} ms "
                f"(DB_SLOW_TRANSACTION_MS={self.slow_ms})",
            )

    def _release(self, record: _Record) -> None:
        task, record.task = record.task, None
        if task is not None and (held := self.held.get(task)) is not None:
            held.discard(record)
            if not held:
                del self.held[task]
        if record.request is not None:
            record.request.holding.discard(record)

    def before_fetch(self, url: httpx.URL) -> None:
        """An outbound request is about to be sent by the current task."""
        task = _current_task()
        held = self.held.get(task) if task is not None else None
        if not held:
            return
        record = min(held, key=lambda each: each.since or 0)
        filename, lineno = _caller(sys._getframe(1), _FETCH_PLUMBING)
        violation = self.report(
            "held_during_fetch",
            record,
            f"a database connection is held while awaiting an outbound request to {url.host} "
            f"({Path(filename).name}:{lineno}); end the transaction before fetching",
        )
        if self.mode == "strict":
            raise SessionGuardError(violation)

    def response_sent(self, request: _Request) -> None:
        """The request's response went out: its sessions must hold no connection."""
        request.sent = True
        for record in sorted(request.holding, key=lambda each: each.since or 0):
            self.report(
                "checkout_after_response",
                record,
                "a session of the request still held a connection when the response was sent "
                "(its transaction ends after the response: take SessionDep)",
            )

    def drain(self) -> None:
        """Report the sessions garbage-collected since the last call."""
        while self.finalized:
            record = self.finalized.popleft()
            if record.closed:
                continue
            self.closed(record)
            holding = record.since is not None
            self._release(record)
            self.report(
                "unclosed_session",
                record,
                "a session was garbage-collected without close()"
                + (" while holding a connection" if holding else "")
                + "; open sessions with `async with`",
            )

    def report(self, kind: Kind, record: _Record, detail: str) -> Violation:
        """Count, log once per kind and site, and (strict) record a violation."""
        violation = Violation(kind, record.site, detail)
        VIOLATIONS.labels(kind=kind).inc()
        if (kind, violation.site) not in self.logged:
            self.logged.add((kind, violation.site))
            logger.warning("session guard: %s", violation)
        if self.mode == "strict" and self.collectors:
            collector = record.collector
            if not any(each is collector for each in self.collectors):
                collector = self.collectors[-1]  # the block it was opened in has ended
            assert collector is not None
            collector.append(violation)
        return violation

    @contextmanager
    def collecting(self) -> Iterator[list[Violation]]:
        found: list[Violation] = []
        self.collectors.append(found)
        try:
            yield found
        finally:
            self.drain()
            left = [record for record in self.open.values() if record.collector is found]
            for record in sorted(left, key=lambda each: (each.filename, each.lineno)):
                self.closed(record)
                self.report(
                    "unclosed_session",
                    record,
                    "a session was still open at the end of the block; open sessions "
                    "with `async with`",
                )
            index = next(i for i, each in enumerate(self.collectors) if each is found)
            del self.collectors[index]


_guard = _Guard()


class GuardedSession(Session):
    """The factory's synchronous session class: it tells the guard it was opened and closed."""

    _guard_record: _Record | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if _guard.mode != "off":
            self._guard_record = _guard.opened(self)

    def close(self) -> None:
        """Close the session (see `Session.close`)."""
        self._closed_by_owner()
        super().close()

    def reset(self) -> None:
        """Close the session for reuse (see `Session.reset`)."""
        self._closed_by_owner()
        super().reset()

    def invalidate(self) -> None:
        """Close the session, invalidating its connections (see `Session.invalidate`)."""
        self._closed_by_owner()
        super().invalidate()

    def _closed_by_owner(self) -> None:
        if self._guard_record is not None:
            _guard.closed(self._guard_record)


@event.listens_for(GuardedSession, "after_begin")
def _after_begin(session: Session, transaction: SessionTransaction, conn: Connection) -> None:
    record: _Record | None = getattr(session, "_guard_record", None)
    if record is not None and transaction.parent is None:
        _guard.began(record)


@event.listens_for(GuardedSession, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    record: _Record | None = getattr(session, "_guard_record", None)
    if record is not None and transaction.parent is None and record.since is not None:
        _guard.ended(record)


async def check_outbound_request(request: httpx.Request) -> None:
    """httpx request hook of the outbound client: no connection may be held across a fetch."""
    if _guard.mode != "off":
        _guard.before_fetch(request.url)


Watched = tuple[_Request, Token[_Request | None]]
"""A request the guard watches, and how to stop watching it (`watch_request`)."""


def watch_request(scope: Scope) -> Watched | None:
    """Link the sessions the current task opens from now on to the HTTP request `scope`.

    `observability.middleware.RequestMiddleware` calls this when a request starts (in the task
    that runs the route and its dependencies), `response_sent` after the response's last body
    message, and `unwatch_request` when the request ends. None when the guard is off.
    """
    if _guard.mode == "off":
        return None
    request = _Request(scope, _current_task())
    return request, _request.set(request)


def response_sent(watched: Watched) -> None:
    """The watched request's response went out: its sessions must hold no connection now."""
    _guard.response_sent(watched[0])


def unwatch_request(watched: Watched) -> None:
    """The watched request ended: sessions opened later in this task belong to no request."""
    _request.reset(watched[1])


@contextmanager
def guarding(mode: Mode, *, slow_transaction_ms: int) -> Iterator[None]:
    """Run the guard in `mode` for the block (then restore the previous mode)."""
    previous = _guard.mode, _guard.slow_ms
    _guard.mode, _guard.slow_ms = mode, slow_transaction_ms
    try:
        yield
    finally:
        _guard.mode, _guard.slow_ms = previous


@contextmanager
def collecting() -> Iterator[list[Violation]]:
    """Collect, in strict mode, the violations of the sessions opened in the block.

    At the end of the block, sessions opened in it and not closed are reported as unclosed.
    `tests/conftest.py` wraps every test in one and fails the test when it is not empty.
    """
    with _guard.collecting() as found:
        yield found
