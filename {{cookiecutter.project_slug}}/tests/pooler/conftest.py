"""A real pgbouncer in transaction mode in front of the test server, and the tools to watch it.

The suite needs the `pgbouncer` and `psql` binaries. Where they are missing the tests skip with
the reason, except under `CI=true`, where a missing binary fails the run.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from {{ cookiecutter.project_slug }}.db import migrate
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import FreshDatabase, settings_for, unavailable
from tests.serving import free_port

SERVER_USER = "postgres"
"""pgbouncer and initdb refuse to run as root; as root the suite runs them as this user."""
POOL_SIZE = 4
"""pgbouncer's `default_pool_size` (and `max_db_connections`): server connections per database."""
PREPARED_STATEMENTS_SINCE = (1, 21)
"""The first pgbouncer with `max_prepared_statements` (statement tracking); it must stay 0."""

Row = dict[str, str]


def require_binary(name: str, *candidates: str, purpose: str) -> str:
    """The path of `name`; skip (or fail under `CI=true`) with the reason when it is missing."""
    found = shutil.which(name) or next(
        (path for path in candidates if os.access(path, os.X_OK)), None
    )
    if not found:
        unavailable(f"`{name}` is not installed; it is needed {purpose}")
    return found


def as_server_user(command: Sequence[str]) -> list[str]:
    """`command`, run as the postgres user when the tests run as root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", SERVER_USER, "--", *command]
    return list(command)


def server_directory(prefix: str) -> Path:
    """A fresh directory the server user owns (outside pytest's root-only temp tree)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVER_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def chown_to_server_user(*paths: Path) -> None:
    """Hand files to the server user when running as root."""
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVER_USER)
        for path in paths:
            os.chown(path, entry.pw_uid, entry.pw_gid)


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Wait until 127.0.0.1:`port` accepts connections; fail with the log if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s:\n{log.read_text()[-3000:]}")


@dataclass
class PgBouncer:
    """A pgbouncer process in transaction mode, configured by the suite."""

    binary: str
    psql: str
    upstream: URL
    directory: Path
    port: int = field(default_factory=free_port)
    pool_size: int = POOL_SIZE
    process: subprocess.Popen[bytes] | None = None

    @property
    def version(self) -> tuple[int, ...]:
        """pgbouncer's version, from `pgbouncer --version`."""
        output = subprocess.run(
            [self.binary, "--version"], capture_output=True, text=True, check=True
        ).stdout
        match = re.search(r"PgBouncer (\d+)\.(\d+)(?:\.(\d+))?", output)
        assert match, output
        return tuple(int(part) for part in match.groups("0"))

    @property
    def supports_prepared_statements(self) -> bool:
        """Whether this pgbouncer can track prepared statements (and so must be told not to)."""
        return self.version >= PREPARED_STATEMENTS_SINCE

    @property
    def log(self) -> Path:
        """pgbouncer's own output."""
        return self.directory / "pgbouncer.log"

    def url(self, database: str) -> URL:
        """The URL a client uses to reach `database` through pgbouncer."""
        return self.upstream.set(host="127.0.0.1", port=self.port, database=database)

    def write_config(self) -> Path:
        """Write pgbouncer.ini and the user list; return the ini's path."""
        user = self.upstream.username or SERVER_USER
        password = self.upstream.password or ""
        userlist = self.directory / "userlist.txt"
        userlist.write_text(f'"{user}" "{password}"\n')
        userlist.chmod(0o600)
        settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "unix_socket_dir": "",
            "auth_type": "md5" if password else "trust",
            "auth_file": str(userlist),
            "admin_users": user,
            "pool_mode": "transaction",
            "default_pool_size": str(self.pool_size),
            "max_db_connections": str(self.pool_size),
            "min_pool_size": "0",
            "reserve_pool_size": "0",
            "max_client_conn": "500",
            "server_login_retry": "1",
            "query_wait_timeout": "20",
            "ignore_startup_parameters": "extra_float_digits",
            "pidfile": str(self.directory / "pgbouncer.pid"),
        }
        if self.supports_prepared_statements:
            settings["max_prepared_statements"] = "0"  # what the tests are about: no tracking
        host = self.upstream.host or "127.0.0.1"
        port = self.upstream.port or 5432
        lines = ["[databases]", f"* = host={host} port={port}", "", "[pgbouncer]"]
        lines += [f"{key} = {value}" for key, value in settings.items()]
        ini = self.directory / "pgbouncer.ini"
        ini.write_text("\n".join(lines) + "\n")
        chown_to_server_user(userlist, ini)
        return ini

    def start(self) -> None:
        """Start pgbouncer and wait until it accepts connections."""
        ini = self.write_config()
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                as_server_user([self.binary, str(ini)]), stdout=sink, stderr=subprocess.STDOUT
            )
        wait_for_port(self.port, self.process, self.log, timeout=10)

    def stop(self) -> None:
        """Shut pgbouncer down at once (SIGTERM: clients are disconnected)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            # runuser forwards SIGTERM to pgbouncer.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()

    def _psql(self, command: str) -> list[str]:
        user = self.upstream.username or SERVER_USER
        base = [self.psql, "-X", "-q", "--csv", "-h", "127.0.0.1", "-p", str(self.port)]
        return [*base, "-U", user, "-d", "pgbouncer", "-c", command]

    def _psql_env(self) -> dict[str, str]:
        env = {**os.environ, "PGCONNECT_TIMEOUT": "5"}
        if self.upstream.password:
            env["PGPASSWORD"] = self.upstream.password
        return env

    def admin(self, command: str) -> list[Row]:
        """Run an admin-console command (`SHOW POOLS`, ...) with the psql CLI; rows as dicts."""
        result = subprocess.run(
            self._psql(command),
            env=self._psql_env(),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql {command!r} failed: {result.stderr.strip()}")
        return list(csv.DictReader(io.StringIO(result.stdout)))

    async def admin_async(self, command: str) -> list[Row]:
        """`admin()` without blocking the event loop (for sampling under load)."""
        process = await asyncio.create_subprocess_exec(
            *self._psql(command),
            env=self._psql_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=10)
        if process.returncode != 0:
            raise RuntimeError(f"psql {command!r} failed: {stderr.decode().strip()}")
        return list(csv.DictReader(io.StringIO(stdout.decode())))


@pytest.fixture(scope="session")
def pgbouncer(settings: Settings, database_server: URL) -> Iterator[PgBouncer]:
    """pgbouncer (transaction mode, small pool) in front of the test server, for the session.

    Depends on `settings` so that the run's migrated database exists before pgbouncer starts.
    """
    binary = require_binary(
        "pgbouncer",
        "/usr/sbin/pgbouncer",
        "/usr/local/sbin/pgbouncer",
        "/usr/local/bin/pgbouncer",
        purpose="to test the service behind a transaction-mode pooler",
    )
    psql = require_binary("psql", purpose="to read the pgbouncer admin console")
    if not database_server.host or database_server.host.startswith("/"):
        unavailable("pgbouncer needs a TCP PostgreSQL: set TEST_DATABASE_URL")
    bouncer = PgBouncer(binary, psql, database_server, server_directory("pgbouncer-"))
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(bouncer.directory, ignore_errors=True)


@pytest.fixture(scope="session")
async def pooler_database(fresh_database: FreshDatabase, pgbouncer: PgBouncer) -> URL:
    """A migrated database of the test server used only by the pooler tests (direct URL).

    Only the service's backends connect to it, so `pg_stat_activity` counts are exact.
    """
    url = await fresh_database()
    await migrate.upgrade(settings_for(url))
    return url


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A working directory for service processes (no developer `.env` in it)."""
    path = Path(tempfile.mkdtemp(prefix="pooler-service-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
