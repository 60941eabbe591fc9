"""`require` encrypts without verifying the server: start-up says so once, naming the fix."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.engine import URL

from {{ cookiecutter.project_slug }}.db import database_lifespan

from tests.conftest import settings_for

DB_LOGGERS = database_lifespan.__module__.rpartition(".")[0]  # the db package's loggers
SERVER = URL.create("postgresql+asyncpg", username="postgres", host="db.example.com", port=5432)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Warnings logged by the db package."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and record.name.startswith(DB_LOGGERS)
    ]


@pytest.mark.parametrize(
    ("url", "overrides"),
    [
        (SERVER, {"db_ssl_mode": "require"}),
        (SERVER.update_query_dict({"sslmode": "require"}), {}),
    ],
    ids=["DB_SSL_MODE", "sslmode-in-url"],
)
async def test_require_logs_one_warning_naming_verify_full(
    caplog: pytest.LogCaptureFixture, url: URL, overrides: dict[str, str]
) -> None:
    caplog.set_level(logging.WARNING)
    async with database_lifespan(settings_for(url, **overrides)):
        pass  # the engine connects lazily: no server is needed to start up
    [message] = warnings_of(caplog)
    assert "verify-full" in message
    assert "DB_SSL_ROOT_CERT" in message


@pytest.mark.parametrize("mode", ["disable", "verify-full"])
async def test_other_modes_log_no_warning(caplog: pytest.LogCaptureFixture, mode: str) -> None:
    caplog.set_level(logging.WARNING)
    async with database_lifespan(settings_for(SERVER, db_ssl_mode=mode)):
        pass
    assert warnings_of(caplog) == []
