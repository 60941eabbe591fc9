"""Walking sitemap trees over HTTP: gzip children, depth, cycles, caps and failures."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from {{ cookiecutter.project_slug }}.outbound.client import (
    OutboundConfig,
    build_client,
)
from {{ cookiecutter.project_slug }}.outbound.errors import (
    BlockedURLError,
    FetchTimeoutError,
)
from {{ cookiecutter.project_slug }}.outbound.guard import Allowlist
from {{ cookiecutter.project_slug }}.sitemaps.crawl import (
    CrawlLimitError,
    SitemapBatch,
    SitemapFetchError,
    WalkStats,
    http_opener,
    normalize_url,
    walk,
)
from {{ cookiecutter.project_slug }}.sitemaps.parser import MalformedSitemapError

from tests.jobs.test_offload import Ticker
from tests.localserver import LocalServer, Reply
from tests.sitemaps.conftest import gzip_stream, one_huge_token, url_entries

CONFIG = OutboundConfig(allowlist=Allowlist.parse("127.0.0.1/32"), timeout=2.0)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with build_client(CONFIG) as client:
        yield client


async def collect(
    server: LocalServer,
    client: httpx.AsyncClient,
    root: str,
    stats: WalkStats,
    *,
    max_depth: int = 3,
    max_urls: int = 1000,
    batch_size: int = 100,
) -> list[SitemapBatch]:
    batches = walk(
        server.url(root),
        open_sitemap=http_opener(client, CONFIG),
        max_depth=max_depth,
        max_urls=max_urls,
        batch_size=batch_size,
        stats=stats,
    )
    return [batch async for batch in batches]


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    """A body that arrives in `parts`."""
    for part in parts:
        yield part


def locs(batches: list[SitemapBatch]) -> list[str]:
    return [url.loc for batch in batches for url in batch.urls]


async def test_index_with_gzip_children(server: LocalServer, client: httpx.AsyncClient) -> None:
    stats = WalkStats()
    batches = await collect(server, client, "/files/sitemaps/index.xml", stats)
    assert [batch.sitemap_url for batch in batches] == [
        server.url("/files/sitemaps/pages-a.xml.gz"),
        server.url("/files/sitemaps/pages-b.xml.gz"),
    ]
    assert {batch.depth for batch in batches} == {1}
    assert locs(batches) == [
        "https://shop.example.com/",
        "https://shop.example.com/products?id=1&color=red",
        "https://shop.example.com/caf%C3%A9",
        "https://blog.example.com/one",
        "https://blog.example.com/two",
    ]
    assert (stats.sitemaps_fetched, stats.urls_found, stats.errors) == (3, 5, [])
    assert len(server.hits("/files/sitemaps/pages-a.xml.gz")) == 1  # the duplicate is skipped


async def test_batches_are_bounded(server: LocalServer, client: httpx.AsyncClient) -> None:
    batches = await collect(server, client, "/files/sitemaps/index.xml", WalkStats(), batch_size=2)
    assert [len(batch.urls) for batch in batches] == [2, 1, 2]


async def test_nesting_beyond_the_depth_limit_is_skipped(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    stats = WalkStats()
    batches = await collect(server, client, "/files/sitemaps/nested-0.xml", stats, max_depth=2)
    assert locs(batches) == ["https://deep.example.com/level-0", "https://deep.example.com/level-1"]
    assert [batch.depth for batch in batches] == [1, 2]
    skipped = "skipped: sitemap indexes nested deeper than 2 levels"
    assert stats.errors == [
        (server.url("/files/sitemaps/nested-3.xml"), skipped),
        (server.url("/files/sitemaps/level-2.xml"), skipped),
    ]
    assert server.hits("/files/sitemaps/nested-3.xml") == []
    assert stats.sitemaps_fetched == 5  # nested-0, -1, -2 and level-0, -1


async def test_index_cycle_is_walked_once(server: LocalServer, client: httpx.AsyncClient) -> None:
    stats = WalkStats()
    batches = await collect(server, client, "/files/sitemaps/cycle-a.xml", stats, max_depth=10)
    assert locs(batches) == ["https://blog.example.com/one", "https://blog.example.com/two"]
    assert [request.path for request in server.requests] == [
        "/files/sitemaps/cycle-a.xml",
        "/files/sitemaps/cycle-b.xml",
        "/files/sitemaps/pages-b.xml",
    ]
    assert stats.sitemaps_fetched == 3


async def test_job_cap_yields_up_to_the_cap_then_raises(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    stats = WalkStats()
    received: list[SitemapBatch] = []

    async def drain() -> None:
        async for batch in walk(
            server.url("/files/sitemaps/index.xml"),
            open_sitemap=http_opener(client, CONFIG),
            max_depth=1,
            max_urls=4,
            batch_size=100,
            stats=stats,
        ):
            received.append(batch)

    with pytest.raises(CrawlLimitError) as caught:
        await drain()
    assert len(locs(received)) == stats.urls_found == 4
    assert (
        caught.value.reason
        == "too many URLs: the sitemaps list more than 4 pages (the limit per job)"
    )


async def test_failing_children_are_recorded_and_skipped(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    children = ["/missing.xml", "/files/sitemaps/bomb.xml", "/files/sitemaps/pages-b.xml"]
    index = "".join(f"<sitemap><loc>{server.url(path)}</loc></sitemap>" for path in children)
    index += "<sitemap><loc>http://169.254.169.254/latest/meta-data/</loc></sitemap>"
    server.content("/index.xml", f"<sitemapindex>{index}</sitemapindex>", "application/xml")
    stats = WalkStats()
    batches = await collect(server, client, "/index.xml", stats)
    assert locs(batches) == ["https://blog.example.com/one", "https://blog.example.com/two"]
    reasons = dict(stats.errors)
    assert reasons[server.url("/missing.xml")].endswith("answered HTTP 404")
    assert reasons[server.url("/files/sitemaps/bomb.xml")].startswith("unsafe XML")
    assert "cloud metadata" in reasons["http://169.254.169.254/latest/meta-data/"]
    assert stats.sitemaps_fetched == 3


async def test_failing_root_raises(server: LocalServer, client: httpx.AsyncClient) -> None:
    with pytest.raises(SitemapFetchError, match="HTTP 404"):
        await collect(server, client, "/nothing-here.xml", WalkStats())
    with pytest.raises(MalformedSitemapError):
        await collect(server, client, "/files/sitemaps/malformed.xml", WalkStats())


async def test_blocked_root_raises(client: httpx.AsyncClient) -> None:
    batches = walk(
        "http://10.0.0.1/sitemap.xml",
        open_sitemap=http_opener(client, CONFIG),
        max_depth=1,
        max_urls=10,
        batch_size=10,
    )
    with pytest.raises(BlockedURLError):
        await anext(batches)


async def test_sitemap_count_is_capped() -> None:
    """An index of many children stops at `max_sitemaps` fetches (pure: fetching injected)."""
    fetched: list[str] = []
    children = "".join(
        f"<sitemap><loc>https://example.com/s{n}.xml</loc></sitemap>" for n in range(20)
    )

    @asynccontextmanager
    async def open_sitemap(url: str) -> AsyncIterator[AsyncIterator[bytes]]:
        fetched.append(url)
        if url.endswith("root.xml"):
            yield chunks(f"<sitemapindex>{children}</sitemapindex>".encode())
        else:
            yield chunks(b"<urlset><url><loc>" + url.encode() + b"#page</loc></url></urlset>")

    stats = WalkStats()
    batches = walk(
        "https://example.com/root.xml",
        open_sitemap=open_sitemap,
        max_depth=1,
        max_urls=100,
        batch_size=10,
        max_sitemaps=5,
        stats=stats,
    )
    assert len([batch async for batch in batches]) == 4
    assert (len(fetched), stats.sitemaps_fetched, len(stats.errors)) == (5, 5, 16)


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("HTTP://Example.COM:80/a#frag", "http://example.com/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com:443/x?q=1", "https://example.com/x?q=1"),
    ],
)
def test_normalize_url(url: str, normal: str) -> None:
    assert normalize_url(url) == normal


async def test_the_loop_runs_between_the_batches_of_one_download(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    """50,000 URLs, gzip: a few network chunks, each inflating to megabytes of XML.

    Parsed on the loop, the batches of one chunk would follow each other without the loop
    running anything else; parsed in the CPU pool, it runs between any two of them.
    """
    body = b"".join(gzip_stream(url_entries(50_000)))
    server.reply("/big.xml.gz", Reply(body=body, headers={"Content-Type": "application/gzip"}))
    ticker = Ticker()
    ticking = asyncio.create_task(ticker.run())
    ticks: list[int] = []
    try:
        async for batch in walk(
            server.url("/big.xml.gz"),
            open_sitemap=http_opener(client, CONFIG),
            max_depth=0,
            max_urls=100_000,
            batch_size=1000,  # about 100 KB of XML: more than one parse step
        ):
            assert len(batch.urls) == 1000
            ticks.append(ticker.ticks)
    finally:
        ticker.stop()
        await ticking
    assert len(ticks) == 50
    assert len(body) < 1024 * 1024  # a handful of network chunks for 50 batches
    assert all(after > before for before, after in itertools.pairwise(ticks))


async def test_bombs_in_an_index_are_refused_each(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    """An index of three gzip bombs (one 8 MB comment each): three refusals, one batch."""
    bomb = b"".join(gzip_stream(one_huge_token(b"<!--", 8 * 1024 * 1024, b"-->")))
    children = ["/bomb-1.xml.gz", "/bomb-2.xml.gz", "/bomb-3.xml.gz", "/files/sitemaps/pages-b.xml"]
    for path in children[:3]:
        server.reply(path, Reply(body=bomb, headers={"Content-Type": "application/gzip"}))
    index = "".join(f"<sitemap><loc>{server.url(path)}</loc></sitemap>" for path in children)
    server.content("/index.xml", f"<sitemapindex>{index}</sitemapindex>", "application/xml")
    stats = WalkStats()
    batches = await collect(server, client, "/index.xml", stats)
    assert locs(batches) == ["https://blog.example.com/one", "https://blog.example.com/two"]
    reasons = dict(stats.errors)
    for path in children[:3]:
        assert reasons[server.url(path)].startswith("token too large: a comment of more than")


async def test_a_trickling_sitemap_is_stopped_by_the_total_timeout(
    server: LocalServer,
) -> None:
    """Bytes keep coming, each in time for the read timeout: the total budget ends it."""
    config = dataclasses.replace(CONFIG, timeout=1.0, total_timeout=0.5)
    trickle = Reply(stream=lambda: iter([b"<urlset>"] + [b" "] * 100), delay=0.05)
    server.reply("/slow.xml", trickle)
    server.reply("/slow-child.xml", trickle)
    index = f"<sitemapindex><sitemap><loc>{server.url('/slow-child.xml')}</loc></sitemap>"
    server.content("/index.xml", index + "</sitemapindex>", "application/xml")
    async with build_client(config) as client:
        with pytest.raises(FetchTimeoutError, match=r"longer than 0\.5s"):
            await anext(
                walk(
                    server.url("/slow.xml"),
                    open_sitemap=http_opener(client, config),
                    max_depth=1,
                    max_urls=10,
                    batch_size=10,
                )
            )
        stats = WalkStats()
        batches = walk(
            server.url("/index.xml"),
            open_sitemap=http_opener(client, config),
            max_depth=1,
            max_urls=10,
            batch_size=10,
            stats=stats,
        )
        assert [batch async for batch in batches] == []
    assert stats.errors == [
        (
            server.url("/slow-child.xml"),
            f"timeout: {server.url('/slow-child.xml')} took longer than 0.5s",
        )
    ]
