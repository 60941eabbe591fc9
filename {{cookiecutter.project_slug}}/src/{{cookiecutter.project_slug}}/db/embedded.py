"""An embedded, throwaway PostgreSQL for machines without a database server (development only).

`make run` and `make test` use it when `DATABASE_URL` / `TEST_DATABASE_URL` are unset. It is the
`pgserver` package: real PostgreSQL binaries shipped in a wheel, reached over a Unix socket.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from {{ cookiecutter.project_slug }}.settings import ASYNC_DRIVER


@contextmanager
def embedded_postgres(data_dir: Path, *, keep: bool) -> Iterator[URL]:
    """Start PostgreSQL on `data_dir` and yield its URL; stop it (and delete it unless `keep`)."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns on import when XDG_RUNTIME_DIR is unset (containers, CI).
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
            from pgserver.postgres_server import get_server  # dev dependency, imported on use
    except ImportError as exc:  # pragma: no cover - depends on how the project was installed
        raise RuntimeError(
            "no database is configured and the embedded PostgreSQL is not installed: "
            "set DATABASE_URL, or install the dev tools (make install: uv sync)"
        ) from exc
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it narrates every pg_ctl call
    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir, cleanup_mode="stop" if keep else "delete")
    try:
        url = make_url(server.get_uri())  # noqa: SL005 parses the socket URL pgserver reports
        yield url.set(drivername=ASYNC_DRIVER)
    finally:
        server.cleanup()
