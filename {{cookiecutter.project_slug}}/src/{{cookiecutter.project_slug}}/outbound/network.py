"""The outbound client's transport: httpcore's connection pool on asyncio's own streams.

httpx's default transport reaches the network through anyio. Each of its reads and writes opens
a cancel scope and yields to the event loop once more, and each time the pool asks whether an
idle connection was closed by its server (6 to 7 times a request with a few idle connections)
anyio builds a dict of socket attributes, a `getpeername` system call included: 6.2 µs against
0.8 µs for the check itself. On asyncio's streams, with asyncio's timeouts, the same HTTP/1.1
pool (httpcore: parsing, keep-alive, limits, TLS by `ssl`) fetched 100 pages of 33 KB from a
local server at concurrency 8 for 257 million instructions against 307 million (valgrind; in
CPU time 0 to 18 % less over alternating rounds, as the shared machine's load moved): the page
batch spends most of its CPU in its HTTP client.

`PoolTransport` is httpx's own transport with that pool: the client, its redirects, timeouts,
errors and tracing are httpx's as before. HTTP/2 and proxies are not offered (`GuardedTransport`
pins every request to a checked address, which a proxy would bypass).
"""

# ruff: noqa: ASYNC109 -- httpcore's stream and backend interfaces take their timeouts as arguments

from __future__ import annotations

import asyncio
import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
"""httpx's own default limits."""
READ_LIMIT = 64 * 1024
"""Bytes a connection buffers before asyncio stops reading from its socket (httpcore asks for at
most this much per read)."""


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection: asyncio's stream reader and writer behind httpcore's stream interface."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._socket: socket.socket = writer.get_extra_info("socket")
        self._poll = select.poll() if hasattr(select, "poll") else None
        if self._poll is not None:  # registered once: asked 6 to 7 times a request
            self._poll.register(self._socket, select.POLLIN)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to `max_bytes` as they arrive; `b""` at the end of the stream."""
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc) or "read timed out") from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send all of `buffer` (waits while the socket's send buffer is full)."""
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            transport = self._writer.transport
            if not transport.get_write_buffer_size() and not transport.is_closing():
                return  # all of it went to the socket: nothing to wait for (a request, as a rule)
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc) or "write timed out") from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        """Close the connection without waiting for the peer."""
        self._writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Upgrade to TLS; `server_hostname` is sent (SNI) and checked against the certificate."""
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as exc:
            self._writer.close()
            raise httpcore.ConnectTimeout(str(exc) or "TLS handshake timed out") from exc
        except OSError as exc:  # ssl.SSLError included
            self._writer.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        """What httpcore asks of a connection: its TLS object, addresses, socket, and whether
        an idle connection has something to read (its server closed it, as a rule)."""
        if info == "is_readable":
            return self._writer.transport.is_closing() or self._reader.at_eof() or self._waiting()
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._socket
        return None

    def _waiting(self) -> bool:
        """Whether data or an end of stream waits in the socket, not yet read by the loop."""
        if self._poll is not None:
            return bool(self._poll.poll(0))
        readable, _, _ = select.select([self._socket], [], [], 0)  # Windows
        return bool(readable)


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens `AsyncioStream` connections for httpcore's pool."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to `host:port` (an address, as `GuardedTransport` pins every request)."""
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                    limit=READ_LIMIT,
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc) or "connect timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Not offered: the outbound client reaches checked TCP addresses only."""
        raise httpcore.ConnectError("unix sockets are not used by the outbound client")

    async def sleep(self, seconds: float) -> None:
        """Wait (httpcore waits between connection retries)."""
        await asyncio.sleep(seconds)


class PoolTransport(httpx.AsyncHTTPTransport):
    """httpx's transport whose connection pool opens `AsyncioBackend` connections.

    Everything else is httpx's own: how requests and responses are handed over, its errors,
    and the tracing instrumentation, which wraps this class's `handle_async_request` like that
    of every httpx transport. The pool httpx builds is replaced by one with the same settings
    on asyncio's streams (`_pool`, the attribute httpx's transport sends through; a test checks
    that responses come over `AsyncioStream`). HTTP/1.1 only; the limits are httpx's defaults
    unless given.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
    ) -> None:
        context = ssl_context or httpx.create_ssl_context()
        super().__init__(verify=context, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncioBackend(),
        )
