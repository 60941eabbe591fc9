"""The guarded client and `fetch`: pinned connections, redirects, limits, errors."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import tracemalloc
import zlib
from typing import Any

import httpx
import pytest

from {{ cookiecutter.project_slug }}.outbound.client import (
    DECODE_STEP,
    OutboundConfig,
    build_client,
    fetch,
    fetch_stream,
)
from {{ cookiecutter.project_slug }}.outbound.errors import (
    BlockedURLError,
    BodyDecodingError,
    ConnectionFailedError,
    FetchTimeoutError,
    TooLargeError,
    TooManyRedirectsError,
)
from {{ cookiecutter.project_slug }}.outbound.guard import Allowlist
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.localserver import LocalServer, Reply
from tests.outbound.conftest import FakeDNS, closed_port


async def test_fetches_a_file(
    server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    url = server.url("/files/outbound/page.html")
    result = await fetch(client, url, config=local_config, accept="text/html")
    assert (result.status_code, result.url, result.final_url) == (200, url, url)
    assert result.media_type == "text/html"
    assert result.content_type == "text/html; charset=utf-8"
    assert b"<title>Acme Widgets" in result.body
    request = server.hits("/files/outbound/page.html")[0]
    assert request.headers["user-agent"] == local_config.user_agent
    assert request.headers["accept"] == "text/html"
    assert request.headers["host"] == f"127.0.0.1:{server.port}"


async def test_cookies_a_server_sets_are_neither_kept_nor_sent(
    server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    """One client serves every job of a process: one site's cookies stay out of other
    requests, and a server setting a new cookie with every response does not grow the client."""
    server.routes["/cookie"] = lambda _: Reply(
        body=b"ok", headers={"Set-Cookie": f"c{len(server.requests)}=v; Path=/"}
    )
    for _ in range(20):
        await fetch(client, server.url("/cookie"), config=local_config)
    client.cookies.set("chosen", "by-the-caller")  # the caller's own cookies are sent
    await fetch(client, server.url("/cookie"), config=local_config)
    sent = [request.headers.get("cookie") for request in server.hits("/cookie")]
    assert sent == [None] * 20 + ["chosen=by-the-caller"]
    assert [cookie.name for cookie in client.cookies.jar] == ["chosen"]


async def test_loopback_is_refused_without_allowlist(server: LocalServer) -> None:
    config = OutboundConfig()
    async with build_client(config) as client:
        with pytest.raises(BlockedURLError) as caught:
            await fetch(client, server.url("/files/robots/wildcard.txt"), config=config)
    assert "loopback" in caught.value.reason
    assert server.requests == []


async def test_client_refuses_even_without_fetch(server: LocalServer) -> None:
    async with build_client(OutboundConfig()) as client:
        with pytest.raises(BlockedURLError):
            await client.get(server.url("/"))
    assert server.requests == []


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "http://user:pw@127.0.0.1/", "http://[::ffff:127.0.0.1]/"]
)
async def test_fetch_refuses_unsafe_urls(
    url: str, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    config = dataclasses.replace(local_config, allowlist=Allowlist())
    with pytest.raises(BlockedURLError):
        await fetch(client, url, config=config)


async def test_follows_a_redirect_chain(
    server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    server.redirect("/start", "/middle", status=301)
    server.redirect("/middle", server.url("/files/robots/wildcard.txt"), status=307)
    result = await fetch(client, server.url("/start"), config=local_config)
    assert result.status_code == 200
    assert result.url == server.url("/start")
    assert result.final_url == server.url("/files/robots/wildcard.txt")
    assert [request.path for request in server.requests] == [
        "/start",
        "/middle",
        "/files/robots/wildcard.txt",
    ]


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/files/robots/wildcard.txt",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "file:///etc/passwd",
    ],
)
async def test_redirect_hops_are_rechecked(target: str, server: LocalServer) -> None:
    """Only the name `localhost` is allowlisted: a hop to an address must pass on its own."""
    config = OutboundConfig(allowlist=Allowlist.parse("localhost"), timeout=2.0)
    server.redirect("/jump", target.format(port=server.port))
    async with build_client(config) as client:
        with pytest.raises(BlockedURLError):
            await fetch(client, server.url("/jump", host="localhost"), config=config)
    assert [request.path for request in server.requests] == ["/jump"]


async def test_too_many_redirects(
    server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    server.redirect("/loop", "/loop")
    config = dataclasses.replace(local_config, max_redirects=3)
    with pytest.raises(TooManyRedirectsError) as caught:
        await fetch(client, server.url("/loop"), config=config)
    assert "more than 3" in caught.value.reason
    assert len(server.hits("/loop")) == 4


async def test_server_errors_are_returned(
    server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    server.reply("/down", Reply(status=503, body=b"maintenance"))
    result = await fetch(client, server.url("/down"), config=local_config)
    assert (result.status_code, result.is_success, result.body) == (503, False, b"maintenance")


async def test_declared_oversized_body_is_refused(
    server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    server.content("/big", b"x" * (local_config.max_bytes + 1))
    with pytest.raises(TooLargeError) as caught:
        await fetch(client, server.url("/big"), config=local_config)
    assert f"larger than {local_config.max_bytes} bytes" in caught.value.reason


async def test_streamed_oversized_body_is_refused(
    server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    body = b"y" * (local_config.max_bytes * 3)
    server.reply("/stream", Reply(body=body, chunked=True, chunks=12))
    with pytest.raises(TooLargeError):
        await fetch(client, server.url("/stream"), config=local_config)


async def test_truncate_cuts_at_the_limit(
    server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    server.reply("/stream", Reply(body=b"z" * (local_config.max_bytes * 2), chunked=True))
    result = await fetch(client, server.url("/stream"), config=local_config, truncate=True)
    assert len(result.body) == local_config.max_bytes


async def test_slow_server_times_out(server: LocalServer, local_config: OutboundConfig) -> None:
    server.reply("/slow", Reply(body=b"late", delay=2.0))
    config = dataclasses.replace(local_config, timeout=0.2)
    async with build_client(config) as client:
        with pytest.raises(FetchTimeoutError) as caught:
            await fetch(client, server.url("/slow"), config=config)
    assert caught.value.reason.startswith("timeout:")


async def test_slow_drip_body_hits_the_total_timeout(
    server: LocalServer, local_config: OutboundConfig
) -> None:
    server.reply("/drip", Reply(body=b"d" * 100, chunks=10, delay=0.15))
    config = dataclasses.replace(local_config, timeout=1.0, total_timeout=0.5)
    async with build_client(config) as client:
        with pytest.raises(FetchTimeoutError) as caught:
            await fetch(client, server.url("/drip"), config=config)
    assert "longer than 0.5s" in caught.value.reason


async def test_refused_connection(client: httpx.AsyncClient, local_config: OutboundConfig) -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    with pytest.raises(ConnectionFailedError) as caught:
        await fetch(client, url, config=local_config)
    assert caught.value.reason.startswith("connection failed: 127.0.0.1")


async def test_connects_to_the_checked_address_with_the_original_host(
    server: LocalServer, fake_dns: FakeDNS, local_config: OutboundConfig
) -> None:
    """`pinned.test` exists only in our resolver: the request can only arrive pinned."""
    fake_dns({"pinned.test": ["127.0.0.1"]})
    async with build_client(local_config) as client:
        result = await fetch(
            client,
            server.url("/files/robots/wildcard.txt", host="pinned.test"),
            config=local_config,
        )
    assert result.status_code == 200
    assert server.requests[0].headers["host"] == f"pinned.test:{server.port}"


async def test_host_resolving_to_private_address_is_refused(
    server: LocalServer, fake_dns: FakeDNS
) -> None:
    fake_dns({"rebind.test": ["127.0.0.1"]})
    config = OutboundConfig()
    async with build_client(config) as client:
        with pytest.raises(BlockedURLError) as caught:
            await fetch(client, server.url("/", host="rebind.test"), config=config)
    assert caught.value.reason == "blocked address: rebind.test (127.0.0.1) is a loopback address"
    assert server.requests == []


async def test_next_address_is_tried_when_one_refuses(
    server: LocalServer, fake_dns: FakeDNS, local_config: OutboundConfig
) -> None:
    fake_dns({"dual.test": ["127.0.0.2", "127.0.0.1"]})
    config = dataclasses.replace(local_config, allowlist=Allowlist.parse("127.0.0.0/8"))
    async with build_client(config) as client:
        result = await fetch(client, server.url("/files/data.txt", host="dual.test"), config=config)
    assert result.status_code == 404  # reached the server on the second address


async def test_https_keeps_the_name_for_sni_and_host(fake_dns: FakeDNS) -> None:
    """The transport is the point here, so the network is replaced by a recording transport."""
    fake_dns({"secure.test": ["93.184.216.34"], "other.test": ["93.184.216.34"]})
    seen: list[httpx.Request] = []
    created: list[httpx.MockTransport] = []

    def inner() -> httpx.MockTransport:
        created.append(httpx.MockTransport(lambda request: _record(seen, request)))
        return created[-1]

    config = OutboundConfig()
    async with build_client(config, inner=inner) as client:
        await fetch(client, "https://secure.test/a", config=config)
        await fetch(client, "https://other.test/b", config=config)
        await fetch(client, "http://secure.test/c", config=config)
    assert [str(request.url) for request in seen] == [
        "https://93.184.216.34/a",
        "https://93.184.216.34/b",
        "http://93.184.216.34/c",
    ]
    assert [request.headers["host"] for request in seen] == [
        "secure.test",
        "other.test",
        "secure.test",
    ]
    sni = [request.extensions.get("sni_hostname") for request in seen]
    assert sni == ["secure.test", "other.test", None]
    assert len(created) == 3  # plain http, and one TLS pool per host name


def _record(seen: list[httpx.Request], request: httpx.Request) -> httpx.Response:
    seen.append(request)
    return httpx.Response(200, text="ok")


def test_config_from_settings() -> None:
    values: dict[str, Any] = {
        "outbound_allowlist": "127.0.0.1/32, intranet.example",
        "outbound_timeout": 4.0,
        "outbound_max_bytes": 1234,
        "outbound_max_redirects": 2,
        "outbound_user_agent": "probe/1.0",
    }
    config = OutboundConfig.from_settings(Settings(_env_file=None, **values))
    assert config.allowlist == Allowlist.parse("127.0.0.1/32, intranet.example")
    assert (config.timeout, config.total_timeout) == (4.0, 12.0)
    assert (config.max_bytes, config.max_redirects, config.user_agent) == (1234, 2, "probe/1.0")


async def test_stream_hands_the_body_over_as_it_arrives(
    server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    pieces = [bytes([65 + number]) * 50_000 for number in range(8)]
    server.reply("/big", Reply(stream=lambda: iter(pieces), headers={"Content-Type": "text/x"}))
    config = dataclasses.replace(local_config, max_bytes=1024 * 1024)
    async with fetch_stream(client, server.url("/big"), config=config) as response:
        assert (response.status_code, response.media_type) == (200, "text/x")
        chunks = [chunk async for chunk in response.iter_bytes()]
    assert b"".join(chunks) == b"".join(pieces)
    assert len(chunks) > 1


async def test_stream_follows_and_rechecks_redirects(server: LocalServer) -> None:
    config = OutboundConfig(allowlist=Allowlist.parse("localhost"), timeout=2.0)
    server.redirect("/jump", f"http://127.0.0.1:{server.port}/files/robots/wildcard.txt")
    async with build_client(config) as client:
        with pytest.raises(BlockedURLError):
            async with fetch_stream(client, server.url("/jump", host="localhost"), config=config):
                pass
    assert [request.path for request in server.requests] == ["/jump"]


async def test_stream_refuses_a_body_past_the_limit(
    server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    server.reply("/endless", Reply(stream=lambda: iter([b"x" * 10_000] * 100)))
    received: list[bytes] = []
    with pytest.raises(TooLargeError):
        await drain(client, server.url("/endless"), local_config, received)
    assert sum(map(len, received)) <= local_config.max_bytes


async def drain(
    client: httpx.AsyncClient, url: str, config: OutboundConfig, received: list[bytes]
) -> None:
    """Stream `url` to the end, collecting the chunks."""
    async with fetch_stream(client, url, config=config) as response:
        async for chunk in response.iter_bytes():
            received.append(chunk)


async def test_a_trickling_stream_hits_the_total_timeout(
    server: LocalServer, local_config: OutboundConfig
) -> None:
    server.reply("/trickle", Reply(stream=lambda: iter([b"."] * 100), delay=0.05))
    config = dataclasses.replace(local_config, timeout=1.0, total_timeout=0.5)
    async with build_client(config) as client:
        with pytest.raises(FetchTimeoutError, match=r"longer than 0\.5s"):
            await drain(client, server.url("/trickle"), config, [])


async def test_time_the_caller_spends_on_chunks_is_not_counted(
    server: LocalServer, local_config: OutboundConfig
) -> None:
    """Storing what arrived (here: a pause) does not use up the time budget of the server."""
    server.reply("/fast", Reply(stream=lambda: iter([b"a" * 1000] * 3)))
    config = dataclasses.replace(local_config, timeout=1.0, total_timeout=0.5)
    received = b""
    async with (
        build_client(config) as client,
        fetch_stream(client, server.url("/fast"), config=config) as response,
    ):
        async for chunk in response.iter_bytes():
            received += chunk
            await asyncio.sleep(0.6)  # longer than the whole budget
    assert received == b"a" * 3000


async def test_content_encoding_is_undone_in_bounded_steps(
    server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    """A 20 MB gzip bomb sent as `Content-Encoding: gzip` never sits whole in memory."""
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024))
    server.reply("/bomb", Reply(body=bomb, headers={"Content-Encoding": "gzip"}))
    config = dataclasses.replace(local_config, max_bytes=32 * 1024 * 1024)
    sizes: list[int] = []
    tracemalloc.start()
    try:
        async with fetch_stream(client, server.url("/bomb"), config=config) as response:
            async for chunk in response.iter_bytes():
                sizes.append(len(chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(sizes) == 20 * 1024 * 1024
    assert max(sizes) <= DECODE_STEP
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes"
    with pytest.raises(TooLargeError):
        await fetch(client, server.url("/bomb"), config=local_config)


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data, wbits=-15)),  # raw, as some servers send
    ],
)
async def test_encoded_bodies_are_decoded(
    encoding: str,
    compress: Any,
    server: LocalServer,
    client: httpx.AsyncClient,
    local_config: OutboundConfig,
) -> None:
    page = b"<title>Encoded</title>" * 100
    server.reply("/page", Reply(body=compress(page), headers={"Content-Encoding": encoding}))
    assert (await fetch(client, server.url("/page"), config=local_config)).body == page


async def test_a_broken_encoding_is_an_outbound_error(
    server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    server.reply("/broken", Reply(body=b"not gzip at all", headers={"Content-Encoding": "gzip"}))
    with pytest.raises(BodyDecodingError, match="broken compression"):
        await fetch(client, server.url("/broken"), config=local_config)
