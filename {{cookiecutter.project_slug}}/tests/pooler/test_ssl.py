"""SSL modes against a real TLS PostgreSQL started for the test, with a throwaway CA.

The server listens on 127.0.0.1 and 127.0.0.2 with a certificate for 127.0.0.1 only, and its
pg_hba.conf accepts TLS connections only. `require` connects (encrypted, unverified);
`verify-full` with the right CA connects; a wrong CA, or a host not in the certificate, is refused.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import text
from sqlalchemy.engine import URL

from {{ cookiecutter.project_slug }}.db.engine import build_engine

from tests.conftest import settings_for
from tests.pooler.conftest import (
    SERVER_USER,
    as_server_user,
    chown_to_server_user,
    require_binary,
    server_directory,
)
from tests.serving import free_port
from tests.tls import Authority

pytestmark = pytest.mark.pooler

CERTIFIED_HOST = "127.0.0.1"
UNCERTIFIED_HOST = "127.0.0.2"  # the same server (all of 127/8 is loopback), not in the cert
INITDB_OPTIONS = ("-U", SERVER_USER, "-A", "trust", "--no-sync", "-E", "UTF8", "--locale", "C")


def postgres_binaries() -> Path:
    """The directory holding initdb and pg_ctl (PATH, else the newest /usr/lib/postgresql)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    if installed:
        return installed[-1].parent
    return Path(require_binary("initdb", purpose="to start a TLS PostgreSQL")).parent


@dataclass(frozen=True)
class TlsServer:
    """A running TLS-only PostgreSQL, and the files a client needs."""

    port: int
    right_ca: Path
    wrong_ca: Path

    def url(self, host: str) -> URL:
        """The URL of the server's `postgres` database at `host`."""
        return URL.create("postgresql+asyncpg", username=SERVER_USER, host=host, port=self.port)


@pytest.fixture(scope="module")
def server() -> Iterator[TlsServer]:
    """initdb a cluster as the postgres user, give it a certificate, start it TLS-only."""
    binaries = postgres_binaries()
    directory = server_directory("tls-postgres-")
    data = directory / "data"
    authority, stranger = Authority.create("pooler tests CA"), Authority.create("another CA")
    port = free_port()
    try:
        subprocess.run(
            as_server_user([str(binaries / "initdb"), "-D", str(data), *INITDB_OPTIONS]),
            check=True,
            capture_output=True,
        )
        key, certificate = authority.issue(CERTIFIED_HOST)
        (data / "server.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        (data / "server.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (data / "server.key").chmod(0o600)
        (data / "pg_hba.conf").write_text(
            "local all all trust\nhostssl all all 127.0.0.0/8 trust\n"
        )
        chown_to_server_user(data / "server.crt", data / "server.key", data / "pg_hba.conf")
        options = (
            f"-p {port} -k {directory} -c listen_addresses={CERTIFIED_HOST},{UNCERTIFIED_HOST} "
            "-c ssl=on -c fsync=off -c max_connections=20"
        )
        start = ("-l", str(directory / "server.log"), "-w", "-t", "30", "start")
        subprocess.run(
            as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-o", options, *start]),
            check=True,
            capture_output=True,
        )
        yield TlsServer(
            port, authority.write(directory / "ca.crt"), stranger.write(directory / "other.crt")
        )
    finally:
        subprocess.run(
            as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(directory, ignore_errors=True)


async def encrypted(url: URL, **settings: Any) -> bool:
    """Connect with the application's engine factory; whether the session is encrypted."""
    engine = build_engine(settings_for(url, db_connect_timeout=5, **settings))
    try:
        async with engine.connect() as connection:
            query = text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            return bool(await connection.scalar(query))
    finally:
        await engine.dispose()


async def refusal(url: URL, **settings: Any) -> str:
    """The error text (with its causes) of a connection attempt that must fail."""
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the message is what is checked
        await encrypted(url, **settings)
    messages: list[str] = []
    seen: BaseException | None = caught.value
    while seen is not None:
        messages.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    return " | ".join(messages)


async def test_require_connects_encrypted_without_verifying(server: TlsServer) -> None:
    assert await encrypted(server.url(UNCERTIFIED_HOST), db_ssl_mode="require")


async def test_disable_is_refused_by_a_tls_only_server(server: TlsServer) -> None:
    assert "no encryption" in await refusal(server.url(CERTIFIED_HOST), db_ssl_mode="disable")


async def test_verify_full_with_the_right_ca_connects(server: TlsServer) -> None:
    url = server.url(CERTIFIED_HOST)
    assert await encrypted(url, db_ssl_mode="verify-full", db_ssl_root_cert=server.right_ca)


async def test_verify_full_with_a_wrong_ca_is_refused(server: TlsServer) -> None:
    url = server.url(CERTIFIED_HOST)
    message = await refusal(url, db_ssl_mode="verify-full", db_ssl_root_cert=server.wrong_ca)
    assert "certificate verify failed" in message


async def test_verify_full_with_a_host_not_in_the_certificate_is_refused(
    server: TlsServer,
) -> None:
    url = server.url(UNCERTIFIED_HOST)
    message = await refusal(url, db_ssl_mode="verify-full", db_ssl_root_cert=server.right_ca)
    assert "certificate verify failed" in message
    assert UNCERTIFIED_HOST in message  # "IP address mismatch, certificate is not valid for ..."


async def test_sslmode_in_the_url_is_translated(server: TlsServer) -> None:
    query = {"sslmode": "verify-full", "sslrootcert": str(server.right_ca)}
    assert await encrypted(server.url(CERTIFIED_HOST).update_query_dict(query))
