"""The job rate limit: per API key, 429 with Retry-After, counted in memory{{ " or in Redis" if cookiecutter.task_engine == "redis" }}."""

from __future__ import annotations

{% if cookiecutter.task_engine == "redis" -%}
import os
import socket
{% endif -%}
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
{%- if cookiecutter.task_engine == "redis" %}
from urllib.parse import urlsplit
{%- endif %}

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from limits.aio.storage import MemoryStorage{% if cookiecutter.task_engine == "redis" %}, RedisStorage{% endif %}
from pydantic import SecretStr, ValidationError

from {{ cookiecutter.project_slug }}.edge.ratelimit import (
    JobRateLimiter,
    build_job_limiter,
)
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import api_client{{ ", unavailable" if cookiecutter.task_engine == "redis" }}

IMPORTS = "/api/v1/profiles/imports"
{%- if cookiecutter.task_engine == "redis" %}
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
{%- endif %}


def new_key() -> str:
    """A key of this test alone, so that no other test (or earlier run) shares its counter."""
    return f"rate-test-{uuid.uuid4().hex}"


def limited(settings: Settings, rate: str, *keys: str, **overrides: object) -> Settings:
    """The run's settings with `JOB_RATE_LIMIT=rate` and `keys` as the API keys."""
    update = {"job_rate_limit": rate, "api_keys": tuple(SecretStr(key) for key in keys)}
    return settings.model_copy(update={**update, **overrides})


@asynccontextmanager
async def client_for(app: FastAPI, settings: Settings) -> AsyncIterator[AsyncClient]:
    """A client on `app`; the limiter's storage is released afterwards, as the lifespan does."""
    try:
        async with api_client(app, settings) as client:
            yield client
    finally:
        if app.state.job_limiter is not None:
            await app.state.job_limiter.aclose()


async def submit(client: AsyncClient, key: str) -> Response:
    """Submit one profile import with `key`."""
    body = {"profiles": [{"name": "Ada", "email": f"ada-{uuid.uuid4().hex[:8]}@example.com"}]}
    return await client.post(IMPORTS, json=body, headers={"X-API-Key": key})


def assert_limited(response: Response, window_seconds: int) -> None:
    """A 429 that says when to come back, within the rate's window."""
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["Retry-After"]) <= window_seconds
    assert "job submissions per API key" in response.json()["detail"]


async def test_the_limit_answers_429_with_retry_after(settings: Settings, sessions: object) -> None:
    key = new_key()
    config = limited(settings, "2/minute", key)
    app = create_app(config)
    async with client_for(app, config) as client:
        accepted = [await submit(client, key) for _ in range(2)]
        refused = await submit(client, key)
    assert [response.status_code for response in accepted] == [202, 202]
    assert_limited(refused, 60)


async def test_each_key_has_its_own_count(settings: Settings, sessions: object) -> None:
    busy, quiet = new_key(), new_key()
    config = limited(settings, "1/hour", busy, quiet)
    app = create_app(config)
    async with client_for(app, config) as client:
        assert (await submit(client, busy)).status_code == 202
        assert_limited(await submit(client, busy), 3600)
        assert (await submit(client, quiet)).status_code == 202


async def test_reads_and_other_writes_are_not_counted(settings: Settings, sessions: object) -> None:
    key = new_key()
    config = limited(settings, "1/minute", key)
    app = create_app(config)
    async with client_for(app, config) as client:
        headers = {"X-API-Key": key}
        for _ in range(3):
            assert (await client.get("/api/v1/jobs", headers=headers)).status_code == 200
        body = {"name": "Bo", "email": "bo@example.com"}
        created = await client.post("/api/v1/profiles", json=body, headers=headers)
        assert created.status_code == 201
        assert (await submit(client, key)).status_code == 202


def test_no_rate_means_no_limiter(settings: Settings) -> None:
    assert build_job_limiter(settings) is None


def test_the_default_storage_is_memory(settings: Settings) -> None:
    limiter = build_job_limiter(limited(settings, "5/minute"))
    assert isinstance(limiter, JobRateLimiter)
    assert isinstance(limiter.storage, MemoryStorage)


@pytest.mark.parametrize("rate", ["30 a minute", "-1/minute", "many", "0/minute"])
def test_an_unreadable_rate_fails_at_start_up(rate: str) -> None:
    with pytest.raises(ValidationError, match="JOB_RATE_LIMIT"):
        Settings(_env_file=None, job_rate_limit=rate)
{%- if cookiecutter.task_engine == "redis" %}


@pytest.fixture(scope="module")
def redis_url() -> str:
    """The Redis the limiter tests count in; skipped where none runs, except in CI."""
    parts = urlsplit(REDIS)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 2):
            pass
    except OSError:
        unavailable(f"Redis does not answer at {parts.hostname}:{parts.port} (set TEST_REDIS_URL)")
    return REDIS


async def test_web_processes_share_one_count_in_redis(
    settings: Settings, sessions: object, redis_url: str
) -> None:
    """Two apps (two web processes) with TASK_BROKER=redis: the second sees the first's count."""
    key = new_key()
    config = limited(settings, "2/minute", key, task_broker="redis", redis_url=SecretStr(redis_url))
    first, second = create_app(config), create_app(config)
    assert isinstance(first.state.job_limiter.storage, RedisStorage)
    # The jobs themselves run in memory here: only the count goes through Redis.
    async with client_for(first, settings) as one, client_for(second, settings) as two:
        assert (await submit(one, key)).status_code == 202
        assert (await submit(two, key)).status_code == 202
        assert_limited(await submit(one, key), 60)
        assert_limited(await submit(two, key), 60)


async def test_an_unreachable_redis_is_503_not_500(settings: Settings, sessions: object) -> None:
    key = new_key()
    nowhere = SecretStr("redis://127.0.0.1:9/0")  # a port nothing listens on
    config = limited(settings, "2/minute", key, task_broker="redis", redis_url=nowhere)
    app = create_app(config)
    async with client_for(app, settings) as client:
        response = await submit(client, key)
    assert response.status_code == 503
    assert response.json() == {"detail": "the rate limiter is unavailable; try again later"}
    assert "Retry-After" in response.headers
{%- endif %}
