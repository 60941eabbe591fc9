"""`get_db_url()` and the connect arguments: the one way the database URL is built."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from {{ cookiecutter.project_slug }}.settings import Settings


def make(**values: Any) -> Settings:
    """Settings from explicit values only (no environment file)."""
    return Settings(_env_file=None, **values)


def test_url_from_parts_uses_asyncpg() -> None:
    settings = make(
        db_host="db.internal", db_port=6000, db_user="app", db_password="s3cret", db_name="svc"
    )
    url = settings.get_db_url()
    assert url.drivername == "postgresql+asyncpg"
    assert (url.host, url.port, url.username, url.password, url.database) == (
        "db.internal",
        6000,
        "app",
        "s3cret",
        "svc",
    )


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg2"])
def test_pasted_urls_are_served_by_asyncpg(scheme: str) -> None:
    settings = make(database_url=f"{scheme}://u:p@h:5432/d")
    assert settings.get_db_url().drivername == "postgresql+asyncpg"


def test_unknown_scheme_is_refused_without_echoing_the_secret() -> None:
    with pytest.raises(ValidationError, match="scheme 'mysql'") as error:
        make(database_url="mysql://u:topsecret@h/d")
    assert "topsecret" not in str(error.value)


def test_sslmode_in_url_is_translated_not_passed_to_asyncpg() -> None:
    settings = make(database_url="postgresql://u:p@h/d?sslmode=require&application=x")
    assert "sslmode" not in settings.get_db_url().query
    assert settings.get_db_url().query == {"application": "x"}
    assert settings.get_db_connect_args()["ssl"] == "require"


def test_verify_full_builds_a_verifying_context(tmp_path: Path) -> None:
    settings = make(database_url="postgresql://u:p@h/d?sslmode=verify-full")
    context = settings.get_db_connect_args()["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_missing_ca_file_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises((ValidationError, OSError)):
        make(db_ssl_mode="verify-full", db_ssl_root_cert=tmp_path / "absent.crt")


def test_unknown_sslmode_is_refused() -> None:
    with pytest.raises(ValidationError, match="sslmode='sometimes'"):
        make(database_url="postgresql://u:p@h/d?sslmode=sometimes")


def test_named_statements_are_off_by_default() -> None:
    args = make().get_db_connect_args()
    assert args["statement_cache_size"] == 0  # asyncpg: unnamed statements, parsed each time
    # SQLAlchemy's cache of statement descriptions stays on: it names nothing on the server
    # (tests/db/test_engine.py, tests/pooler/test_pgbouncer.py).
    assert "prepared_statement_cache_size" not in args
    assert set(args["server_settings"]) == {"application_name"}  # poolers reject the rest


def test_named_statements_only_on_request() -> None:
    args = make(db_statement_cache=True).get_db_connect_args()
    assert "statement_cache_size" not in args
    assert "prepared_statement_cache_size" not in args


def test_supabase_pooler_url() -> None:
    settings = make(
        supabase_project_ref="abcdefghijklmnopqrst",
        supabase_pooler_host="aws-1-eu-central-1.pooler.supabase.com",
        supabase_db_password=SecretStr("pw"),
    )
    url = settings.get_db_url()
    assert (url.username, url.port, url.database) == (
        "postgres.abcdefghijklmnopqrst",
        6543,
        "postgres",
    )
    assert settings.get_db_url(migrations=True).port == 5432  # session mode for Alembic


def test_pooler_host_with_plain_user_is_a_start_up_error() -> None:
    with pytest.raises(ValidationError, match=r"postgres\.<project-ref>"):
        make(
            database_url="postgresql://postgres:pw@aws-0-us-east-1.pooler.supabase.com:6543/postgres"
        )


def test_migrations_url_falls_back_to_the_app_url() -> None:
    settings = make(database_url="postgresql://u:p@h/app")
    assert settings.get_db_url(migrations=True) == settings.get_db_url()
    other = make(
        database_url="postgresql://u:p@h/app", migrations_database_url="postgresql://u:p@h:5432/mig"
    )
    assert other.get_db_url(migrations=True).database == "mig"


def test_secrets_stay_out_of_reprs() -> None:
    settings = make(database_url="postgresql://u:hunter2@h/d", db_password="hunter3")
    assert "hunter2" not in repr(settings)
    assert "hunter3" not in repr(settings)
    assert "hunter2" not in str(settings.get_db_url())


def test_database_configured_only_when_given() -> None:
    assert not make().database_configured
    assert make(db_host="x").database_configured
    assert make(database_url="postgresql://u@h/d").database_configured
