"""The API keeps its OpenAPI schema: schemathesis fuzzes every operation on the real database.

Schemathesis reads the app's OpenAPI schema, generates valid and invalid requests for each
operation (its examples, coverage and fuzzing phases, then stateful sequences that follow the
links it infers: create a profile, read it, change it, delete it) and runs all its checks on every
response: no 5xx, only documented status codes, bodies and headers that match the schema,
invalid input refused, valid input accepted, requests without the API key refused, unsupported
methods answered 405 with the right `Allow`.

The app runs on the test's event loop and database connection, so everything it writes is rolled
back after the test. Schemathesis calls the app from its own thread and event loop; `LoopBridge`
carries each request over. Runs are reproducible: a fixed seed and a bounded number of examples.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    MutableMapping,
)
from contextlib import contextmanager
{%- if cookiecutter.include_places %}
from pathlib import Path
{%- endif %}
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel{% if cookiecutter.include_places %}, SecretStr{% endif %}
from schemathesis.core.failures import FailureGroup, ServerError
from schemathesis.openapi.checks import JsonSchemaError
from sqlalchemy import text
from sqlalchemy.engine import make_url

from {{ cookiecutter.project_slug }}.db import SessionFactory, task_session
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.models import Base
from {{ cookiecutter.project_slug }}.settings import Settings
from {{ cookiecutter.project_slug }}.worker import task_engine

from tests.conftest import TEST_API_KEY, settings_for
{%- if cookiecutter.include_places %}
from tests.localserver import LocalServer, Reply
{%- endif %}

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]

SEED = 20261130
EXAMPLES = 20
"""Fuzzed requests per operation, on top of the examples and coverage cases."""
SEQUENCES = 15
"""Stateful scenarios, each a chain of up to `STEPS` linked requests."""
STEPS = 10
SCHEMA_ONLY_URL = "postgresql://schema-only.invalid/unused"
"""Building the app to read its schema opens no connection."""

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        # The key as a security scheme, so the auth checks can also send requests without it.
        "auth": {"openapi": {"APIKeyHeader": {"api_key": TEST_API_KEY}}},
        "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none"},
        "phases": {"stateful": {"max-steps": STEPS}},
        "checks": {"enabled": True},
    }
)


class LoopBridge:
    """An ASGI app that serves each request with another app, on that app's event loop.

    Schemathesis runs ASGI apps on an event loop of its own, in another thread; the app under
    test must run on the loop that holds the test's database connection. `serving` runs that
    loop in a thread for the duration of a test; each request is read in full, handled there,
    and its response passed back. An exception after the app answered is what a server would
    log: the client sees the answer (a 500 is a 500).
    """

    def __init__(self) -> None:
        self._target: tuple[ASGIApp, asyncio.AbstractEventLoop] | None = None

    @contextmanager
    def serving(self, app: ASGIApp, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        """Run `loop` in a thread and send requests to `app` on it, for the block."""
        thread = threading.Thread(target=loop.run_forever, name="test-loop", daemon=True)
        thread.start()
        self._target = (app, loop)
        try:
            yield
        finally:
            self._target = None
            loop.call_soon_threadsafe(loop.stop)
            thread.join()

    def run(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run `coroutine` on the served loop and wait for it to finish (from another thread)."""
        if self._target is None:
            raise RuntimeError("LoopBridge.serving(app, loop) is not active")
        asyncio.run_coroutine_threadsafe(coroutine, self._target[1]).result()

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection (HTTP requests; lifespan events are acknowledged only)."""
        if scope["type"] == "lifespan":  # the fixtures start what the app needs
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if self._target is None:
            raise RuntimeError("LoopBridge.serving(app, loop) is not active")
        app, loop = self._target
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        served = asyncio.run_coroutine_threadsafe(_serve(app, scope, bytes(body)), loop)
        for message in await asyncio.wrap_future(served):
            await send(message)


async def _serve(app: ASGIApp, scope: Message, body: bytes) -> list[Message]:
    """Run one request through `app`; return the messages it sent."""
    sent: list[Message] = []
    answered = asyncio.Event()
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            answered.set()

    try:
        await app(scope, receive, send)
    except Exception:
        if not answered.is_set():
            raise
    finally:
        answered.set()
    return sent


BRIDGE = LoopBridge()
{%- if cookiecutter.include_places %}
PLACES_ANSWER = Path(__file__).parent / "fixtures" / "places" / "page-1.json"


@pytest.fixture
def places_url(site: LocalServer) -> str:
    """A local fake of the Places API: every search finds the same two places, at once."""
    answer = Reply(body=PLACES_ANSWER.read_bytes(), headers={"Content-Type": "application/json"})
    site.reply("/v1/places:searchText", answer)
    return site.url("")
{%- endif %}


@pytest.fixture
async def app_loop() -> asyncio.AbstractEventLoop:
    """The event loop of the tests' fixtures and database connections: the app must run on it."""
    return asyncio.get_running_loop()


@pytest.fixture
async def api_app(
    settings: Settings,
    sessions: SessionFactory,
{%- if cookiecutter.include_places %}
    places_url: str,
{%- endif %}
) -> AsyncIterator[FastAPI]:
    """The app, with an in-memory task engine, on the test's rolled-back transaction."""
{%- if cookiecutter.include_places %}
    places = {"google_places_api_key": SecretStr("fuzz"), "google_places_base_url": places_url}
    app_settings = settings.model_copy(update={**places, "google_places_max_pages": 1})
{%- else %}
    app_settings = settings
{%- endif %}
    app = create_app(app_settings)
    async with task_engine(app_settings) as enqueue:
        app.state.enqueue = enqueue
        yield app


@pytest.fixture
def served(api_app: FastAPI, app_loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Schemathesis's requests reach `api_app` for the duration of the test."""
    with BRIDGE.serving(api_app, app_loop):
        yield


# Read when pytest collects the tests (one test per operation) from an app built for that
# alone; the app that answers is built again for each test, on the test database.
schema = schemathesis.openapi.from_dict(
    create_app(settings_for(make_url(SCHEMA_ONLY_URL))).openapi(), config=CONFIG
)
schema.app = BRIDGE


@schema.parametrize()
# The examples of one operation share the test's transaction, as requests share a database.
@hypothesis.settings(suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
def test_operations(case: schemathesis.Case[Any], served: None) -> None:
    case.call_and_validate()


async def _empty_tables() -> None:
    """Delete every row, inside the test's transaction (rolled back after the test)."""
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with task_session() as session:
        await session.execute(text(f"TRUNCATE {tables} CASCADE"))


class Sequences(schema.as_state_machine()):  # type: ignore[misc]
    """Stateful scenarios, each from an empty database: a scenario replays the same way."""

    def setup(self) -> None:
        """Start each scenario with no rows."""
        BRIDGE.run(_empty_tables())


def test_sequences(served: None) -> None:
    Sequences.run(
        settings=hypothesis.settings(
            max_examples=SEQUENCES,
            stateful_step_count=STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )


class Shape(BaseModel):
    """What the deliberately wrong route promises."""

    count: int


def broken_app(settings: Settings) -> FastAPI:
    """The app with two deliberate bugs: a route that fails and one that breaks its schema."""
    app = create_app(settings)

    @app.get("/api/v1/broken/crash")
    async def crash() -> Shape:
        raise RuntimeError("a deliberate bug")

    @app.get("/api/v1/broken/shape", response_model=Shape)
    async def shape() -> JSONResponse:
        return JSONResponse({"count": "many"})  # a Response skips FastAPI's own validation

    return app


@pytest.mark.parametrize(
    ("path", "failure"),
    [("/api/v1/broken/crash", ServerError), ("/api/v1/broken/shape", JsonSchemaError)],
)
def test_schemathesis_reports_a_deliberate_bug(
    settings: Settings,
    app_loop: asyncio.AbstractEventLoop,
    path: str,
    failure: type[Exception],
) -> None:
    with BRIDGE.serving(broken_app(settings), app_loop):
        broken = schemathesis.openapi.from_asgi("/openapi.json", BRIDGE, config=CONFIG)
        operation = broken[path]["GET"]

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(max_examples=5, derandomize=True, database=None, deadline=None)
        def run(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate()

        with pytest.raises(FailureGroup) as raised:
            run()
    assert failure in {type(found) for found in raised.value.exceptions}
