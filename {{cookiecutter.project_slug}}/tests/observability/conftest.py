"""Helpers of the observability tests: an app with its real lifespan, log capture."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from {{ cookiecutter.project_slug }}.observability.logs import configure_logging
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import API_KEY_HEADERS


@asynccontextmanager
async def running(app: FastAPI, **transport: Any) -> AsyncIterator[AsyncClient]:
    """A client on `app` with the app's own lifespan (its engine, pool and task engine)."""
    asgi = ASGITransport(app=app, **transport)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=asgi, base_url="http://test", headers=API_KEY_HEADERS) as client,
    ):
        yield client


class Captured(io.StringIO):
    """What the log handler wrote; `lines()` parses JSON lines."""

    def lines(self) -> list[dict[str, Any]]:
        """Every line, parsed as JSON."""
        return [json.loads(line) for line in self.getvalue().splitlines() if line.strip()]


@pytest.fixture
def capture_logs() -> Iterator[Any]:
    """`capture_logs(settings)` routes every log line to a buffer, as the app would to stderr."""
    root = logging.getLogger()
    level = root.level

    def install(settings: Settings) -> Captured:
        buffer = Captured()
        configure_logging(settings, stream=buffer)
        return buffer

    yield install
    for handler in list(root.handlers):
        if handler.get_name() == "observability":
            root.removeHandler(handler)
    root.setLevel(level)
