"""Command line: `python -m <package> serve | start | migrate | downgrade{{ " | debug-sitemap" if cookiecutter.include_sitemaps }}`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from {{ cookiecutter.project_slug }}.db import migrate
from {{ cookiecutter.project_slug }}.db.embedded import embedded_postgres
from {{ cookiecutter.project_slug }}.observability.logs import configure_logging
from {{ cookiecutter.project_slug }}.settings import (
    Settings,
    get_settings,
)
{%- if cookiecutter.include_sitemaps %}
from {{ cookiecutter.project_slug }}.sitemaps import debug as sitemap_debug
{%- endif %}

PACKAGE = __name__.rpartition(".")[0]
logger = logging.getLogger(PACKAGE)
EMBEDDED_DATA_DIR = Path(".data/postgres")


@contextmanager
def configured_database() -> Iterator[Settings]:
    """Yield settings; start the embedded PostgreSQL first if no database is configured."""
    settings = get_settings()
    if settings.database_configured:
        yield settings
        return
    with embedded_postgres(EMBEDDED_DATA_DIR, keep=True) as url:
        logger.info("no DATABASE_URL: using the embedded PostgreSQL in %s", EMBEDDED_DATA_DIR)
        # Worker processes started by uvicorn inherit the environment, hence the variable.
        os.environ["DATABASE_URL"] = url.render_as_string(hide_password=False)
        get_settings.cache_clear()
        try:
            yield get_settings()
        finally:
            del os.environ["DATABASE_URL"]
            get_settings.cache_clear()


def serve(_: argparse.Namespace) -> int:
    """Migrate to head, then serve the API."""
    with configured_database() as settings:
        asyncio.run(migrate.upgrade(settings))
        uvicorn.run(
            f"{PACKAGE}.main:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.web_concurrency,
            log_level=settings.log_level.lower(),
            log_config=None,
        )
    return 0


def start(args: argparse.Namespace) -> int:
    """Serve the API in production: configured database only, no migrations, N workers."""
    settings = get_settings()
    if not settings.database_configured:
        logger.error(
            "`start` needs a configured database: set DATABASE_URL (or DB_HOST, or "
            "SUPABASE_POOLER_HOST); `serve` is the development command with an embedded database"
        )
        return 2
    host: str = args.host or settings.host
    port: int = args.port or settings.port
    logger.info(
        "serving on %s:%d with %d worker(s), each with a pool of %d+%d connections",
        host,
        port,
        settings.web_concurrency,
        settings.db_pool_size,
        settings.db_max_overflow,
    )
    uvicorn.run(
        f"{PACKAGE}.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=settings.web_concurrency,
        log_level=settings.log_level.lower(),
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=20,
    )
    return 0


def upgrade(args: argparse.Namespace) -> int:
    """Migrate the database up to a revision."""
    with configured_database() as settings:
        asyncio.run(migrate.upgrade(settings, args.revision))
    return 0


def downgrade(args: argparse.Namespace) -> int:
    """Migrate the database down to a revision."""
    with configured_database() as settings:
        asyncio.run(migrate.downgrade(settings, args.revision))
    return 0


{%- if cookiecutter.include_sitemaps %}


def debug_sitemap(args: argparse.Namespace) -> int:
    """Run the sitemap flow for one URL in the foreground, printing each step."""
    logging.getLogger(PACKAGE).setLevel(logging.INFO)
    with configured_database() as settings:
        asyncio.run(migrate.upgrade(settings))
        return asyncio.run(sitemap_debug.debug_sitemap(settings, args.url))
{%- endif %}


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with one sub-command per task."""
    parser = argparse.ArgumentParser(prog=f"python -m {PACKAGE}", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help=serve.__doc__).set_defaults(handler=serve)
    run = commands.add_parser("start", help=start.__doc__)
    run.add_argument("--host", help="interface to bind (default: HOST, 127.0.0.1)")
    run.add_argument("--port", type=int, help="port to bind (default: PORT, 8000)")
    run.set_defaults(handler=start)
    up = commands.add_parser("migrate", help=upgrade.__doc__)
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(handler=upgrade)
    down = commands.add_parser("downgrade", help=downgrade.__doc__)
    down.add_argument("revision")
    down.set_defaults(handler=downgrade)
{%- if cookiecutter.include_sitemaps %}
    debug = commands.add_parser("debug-sitemap", help=debug_sitemap.__doc__)
    debug.add_argument("url", help="the sitemap or sitemap index to process")
    debug.set_defaults(handler=debug_sitemap)
{%- endif %}
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line."""
    args = build_parser().parse_args(argv)
    # The same handler as the app's and the workers' (JSON lines in production); uvicorn is run with
    # log_config=None so that its own supervisor lines go through it too.
    configure_logging(get_settings())
    result: int = args.handler(args)
    return result
