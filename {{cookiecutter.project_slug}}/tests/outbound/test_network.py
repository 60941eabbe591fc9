"""The outbound transport on asyncio's streams (`outbound/network.py`) against local servers:
TLS checked against the pinned name, keep-alive reuse, connections the server closed while idle,
and httpx's errors for refusals and timeouts."""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from {{ cookiecutter.project_slug }}.outbound.network import AsyncioStream, PoolTransport

from tests.serving import free_port
from tests.tls import Authority

SITE = "pages.test"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Read one request's head and answer `ok`, kept alive; False when the client left."""
    try:
        await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return False
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    await writer.drain()
    return True


class Server:
    """A local server that counts its connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.names: list[str | None] = []  # the TLS server names clients sent
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        finally:
            writer.close()


@asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server(handler)
    if tls is not None:
        tls.sni_callback = lambda _, name, __: server.names.append(name)
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield server


def server_tls(authority: Authority, name: str) -> ssl.SSLContext:
    """A server context with a certificate for `name` signed by `authority`."""
    key, certificate = authority.issue(name)
    with tempfile.TemporaryDirectory() as directory:
        chain, secret = Path(directory) / "cert.pem", Path(directory) / "key.pem"
        chain.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        secret.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(chain, secret)
    return context


def client_tls(authority: Authority) -> ssl.SSLContext:
    """A client context that trusts `authority` only."""
    pem = authority.certificate.public_bytes(serialization.Encoding.PEM).decode()
    return ssl.create_default_context(cadata=pem)


async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await answer(reader, writer):
        pass


async def one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer as if keeping the connection, then close it while the client holds it idle."""
    await answer(reader, writer)


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(5)


async def test_https_is_checked_against_the_pinned_host_name() -> None:
    authority = Authority.create("outbound tests CA")
    async with (
        serving(keep_alive, server_tls(authority, SITE)) as server,
        httpx.AsyncClient(transport=PoolTransport(ssl_context=client_tls(authority))) as client,
    ):
        # As `GuardedTransport` sends it: to the checked address, named by Host and TLS name.
        response = await client.get(
            f"https://127.0.0.1:{server.port}/",
            headers={"Host": SITE},
            extensions={"sni_hostname": SITE},
        )
        assert (response.status_code, response.text) == (200, "ok")
        assert server.names == [SITE]
        assert response.extensions["network_stream"].get_extra_info("ssl_object") is not None


@pytest.mark.parametrize(
    ("certifier", "name"),
    [
        # Another name on the same address (`GuardedTransport` keeps a pool per host name: a
        # pool reuses a connection by address, whatever name it was opened for).
        ("outbound tests CA", "another.test"),
        ("another CA", SITE),  # the right name, signed by an authority the client does not trust
    ],
)
async def test_a_certificate_for_another_name_or_by_another_authority_is_refused(
    certifier: str, name: str
) -> None:
    authority = Authority.create("outbound tests CA")
    signer = authority if certifier == "outbound tests CA" else Authority.create(certifier)
    async with (
        serving(keep_alive, server_tls(signer, SITE)) as server,
        httpx.AsyncClient(transport=PoolTransport(ssl_context=client_tls(authority))) as client,
    ):
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            await client.get(f"https://127.0.0.1:{server.port}/", extensions={"sni_hostname": name})


@pytest.mark.parametrize(("handler", "connections"), [(keep_alive, 1), (one_per_connection, 3)])
async def test_a_connection_is_reused_until_its_server_closes_it(
    handler: Handler, connections: int
) -> None:
    async with (
        serving(handler) as server,
        httpx.AsyncClient(transport=PoolTransport()) as client,
    ):
        for _ in range(3):
            response = await client.get(f"http://127.0.0.1:{server.port}/")
            assert response.text == "ok"
            # httpx's transport sends through the replaced pool (`PoolTransport._pool`).
            assert isinstance(response.extensions["network_stream"], AsyncioStream)
            await asyncio.sleep(0.05)  # `one_per_connection` closes it meanwhile
        assert server.connections == connections


async def test_refusals_and_timeouts_are_httpx_errors() -> None:
    async with httpx.AsyncClient(transport=PoolTransport(), timeout=0.3) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{free_port()}/")
        async with serving(silent) as server:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(f"http://127.0.0.1:{server.port}/")
        # A server that accepts the connection and never answers the TLS handshake.
        async with serving(silent) as server:
            with pytest.raises(httpx.ConnectTimeout):
                await client.get(f"https://127.0.0.1:{server.port}/")
