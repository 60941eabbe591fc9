"""robots.txt: fetched once per origin, parsed with Protego, failures mapped per RFC 9309."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest
from protego import Protego

from {{ cookiecutter.project_slug }}.outbound.client import (
    OutboundConfig,
    build_client,
)
from {{ cookiecutter.project_slug }}.outbound.guard import Allowlist
from {{ cookiecutter.project_slug }}.outbound.robots import (
    RobotsCache,
    RobotsPolicy,
    shared_cache,
)

from tests.localserver import FIXTURES, LocalServer, Reply
from tests.outbound.conftest import closed_port

AGENT = "testbot/1.0"
WILDCARD = (FIXTURES / "robots" / "wildcard.txt").read_bytes()


def policy(client: httpx.AsyncClient, config: OutboundConfig) -> RobotsPolicy:
    return RobotsPolicy(client, config, user_agent=AGENT)


async def test_wildcard_rules(
    server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    server.content("/robots.txt", WILDCARD)
    robots = policy(client, local_config)
    assert await robots.allowed(server.url("/"))
    assert await robots.allowed(server.url("/docs/guide.pdf?download=1"))
    assert not await robots.allowed(server.url("/docs/guide.pdf"))
    assert not await robots.allowed(server.url("/private/report"))
    assert await robots.allowed(server.url("/private/open-day"))
    assert await robots.sitemaps(server.url("/")) == ["http://SERVER/files/sitemaps/index.xml"]


async def test_agent_specific_group(
    server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    server.content("/robots.txt", WILDCARD)
    other = RobotsPolicy(
        client, local_config, user_agent="Mozilla/5.0 (compatible; my-other-bot/2)"
    )
    assert not await other.allowed(server.url("/"))


async def test_fetched_once_per_origin(server: LocalServer) -> None:
    server.content("/robots.txt", "User-agent: *\nDisallow: /no\nCrawl-delay: 2\n")
    config = OutboundConfig(allowlist=Allowlist.parse("localhost, 127.0.0.0/8"), timeout=2.0)
    async with build_client(config) as client:
        robots = policy(client, config)
        urls = [server.url(f"/page/{n}") for n in range(5)]
        assert all(await asyncio.gather(*(robots.allowed(url) for url in urls)))
        assert not await robots.allowed(server.url("/no", host="localhost"))
        assert await robots.crawl_delay(server.url("/")) == 2.0
    hosts = sorted(request.headers["host"].split(":")[0] for request in server.requests)
    assert hosts == ["127.0.0.1", "localhost"]


@pytest.mark.parametrize(("status", "allowed"), [(404, True), (410, True), (401, True)])
async def test_missing_robots_allows_all(
    status: int,
    allowed: bool,
    server: LocalServer,
    client: httpx.AsyncClient,
    local_config: OutboundConfig,
) -> None:
    server.reply("/robots.txt", Reply(status=status))
    assert await policy(client, local_config).allowed(server.url("/anything")) is allowed


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_error_disallows_all(
    status: int, server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    server.reply("/robots.txt", Reply(status=status))
    assert not await policy(client, local_config).allowed(server.url("/anything"))


async def test_unreachable_host_disallows_all(
    client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    assert not await policy(client, local_config).allowed(f"http://127.0.0.1:{closed_port()}/")


async def test_timeout_disallows_all(server: LocalServer, local_config: OutboundConfig) -> None:
    server.reply("/robots.txt", Reply(body=b"User-agent: *\nAllow: /\n", delay=2.0))
    config = dataclasses.replace(local_config, timeout=0.2)
    async with build_client(config) as client:
        assert not await policy(client, config).allowed(server.url("/"))


async def test_blocked_origin_disallows(client: httpx.AsyncClient) -> None:
    config = OutboundConfig()
    robots = policy(client, config)
    assert not await robots.allowed("http://169.254.169.254/latest/meta-data/")
    assert not await robots.allowed("ftp://example.com/file")


async def test_redirected_robots_is_followed(
    server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    server.redirect("/robots.txt", "/files/robots/wildcard.txt", status=301)
    assert not await policy(client, local_config).allowed(server.url("/private/x"))


async def test_oversized_robots_is_cut_not_refused(server: LocalServer) -> None:
    body = b"User-agent: *\nDisallow: /secret\n" + b"# padding\n" * 80_000
    server.reply("/robots.txt", Reply(body=body, headers={"Content-Type": "text/plain"}))
    config = OutboundConfig(allowlist=Allowlist.parse("127.0.0.1"), max_bytes=10 * 1024 * 1024)
    async with build_client(config) as client:
        robots = policy(client, config)
        assert not await robots.allowed(server.url("/secret"))
        assert await robots.allowed(server.url("/public"))


async def test_settled_rules_are_shared_through_the_cache(
    server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    """Batch after batch on one site: robots.txt is fetched once while the cache keeps it."""
    server.content("/robots.txt", "User-agent: *\nDisallow: /no\n")
    cache = shared_cache(client)
    assert shared_cache(client) is cache
    for _ in range(3):
        robots = RobotsPolicy(client, local_config, user_agent=AGENT, cache=cache)
        assert await robots.allowed(server.url("/yes"))
        assert not await robots.allowed(server.url("/no"))
    assert len(server.hits("/robots.txt")) == 1


@pytest.mark.parametrize("status", [503, 429])
async def test_failures_are_not_cached(
    status: int, server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    """A failure disallows this policy's fetches and is asked again by the next policy."""
    server.reply("/robots.txt", Reply(status=status))
    cache = RobotsCache()
    for _ in range(2):
        robots = RobotsPolicy(client, local_config, user_agent=AGENT, cache=cache)
        assert not await robots.allowed(server.url("/page"))
    assert len(server.hits("/robots.txt")) == 2
    server.content("/robots.txt", "User-agent: *\nAllow: /\n")
    robots = RobotsPolicy(client, local_config, user_agent=AGENT, cache=cache)
    assert await robots.allowed(server.url("/page"))


async def test_cached_rules_expire(
    server: LocalServer, client: httpx.AsyncClient, local_config: OutboundConfig
) -> None:
    server.content("/robots.txt", "User-agent: *\nDisallow: /\n")
    cache = RobotsCache(seconds=0.0)
    robots = RobotsPolicy(client, local_config, user_agent=AGENT, cache=cache)
    assert not await robots.allowed(server.url("/page"))
    server.content("/robots.txt", "User-agent: *\nAllow: /\n")
    robots = RobotsPolicy(client, local_config, user_agent=AGENT, cache=cache)
    assert await robots.allowed(server.url("/page"))
    assert len(server.hits("/robots.txt")) == 2


def test_the_cache_keeps_at_most_its_origins() -> None:
    cache = RobotsCache(origins=2)
    first, second, third = (Protego.parse(f"Sitemap: /{n}.xml") for n in range(3))
    cache.put("http://a", first, 10)
    cache.put("http://b", second, 10)
    cache.put("http://c", third, 10)
    assert cache.get("http://a") is None
    assert cache.get("http://b") is second
    assert cache.get("http://c") is third


def test_the_cache_keeps_at_most_its_bytes() -> None:
    """Hostile sites serving large robots.txt files cannot fill the process's memory: a large
    one is not kept, and the bodies kept add up to at most `total_bytes`."""
    cache = RobotsCache(entry_bytes=100, total_bytes=250)
    rules = [Protego.parse(f"Sitemap: /{n}.xml") for n in range(4)]
    cache.put("http://large", rules[0], 101)
    assert cache.get("http://large") is None
    cache.put("http://a", rules[1], 100)
    cache.put("http://b", rules[2], 100)
    cache.put("http://a", rules[1], 100)  # stored again: counted once, now the newest
    cache.put("http://c", rules[3], 100)
    assert cache.get("http://b") is None
    assert cache.get("http://a") is rules[1]
    assert cache.get("http://c") is rules[3]


async def test_a_large_robots_txt_is_used_but_not_kept(server: LocalServer) -> None:
    body = b"User-agent: *\nDisallow: /secret\n" + b"# padding\n" * 8_000  # 80 KB
    server.reply("/robots.txt", Reply(body=body, headers={"Content-Type": "text/plain"}))
    config = OutboundConfig(allowlist=Allowlist.parse("127.0.0.1"), max_bytes=1024 * 1024)
    cache = RobotsCache()
    async with build_client(config) as client:
        for _ in range(2):
            robots = RobotsPolicy(client, config, user_agent=AGENT, cache=cache)
            assert not await robots.allowed(server.url("/secret"))
    assert len(server.hits("/robots.txt")) == 2
