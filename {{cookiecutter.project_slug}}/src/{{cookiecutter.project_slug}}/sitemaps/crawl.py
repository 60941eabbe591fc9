"""Walk a sitemap tree breadth-first and yield its page URLs in batches, streaming.

Each sitemap's body flows from the network into the (inflating) parser chunk by chunk, and a
batch is handed over as soon as it is full: one walk holds a network chunk, a parse step and
one batch, whatever the size of the sitemap. Parsing runs off the event loop (`cpu.run`), one
bounded step at a time. Fetching is injected (`open_sitemap`), so the walk is pure of HTTP and
of the database; in the service it is `fetch_stream` of the guarded outbound client. A child
sitemap that fails is recorded in `WalkStats.errors` and skipped; a failing root sitemap or the
per-job URL cap raises.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from dataclasses import dataclass, field

import httpx

from {{ cookiecutter.project_slug }}.jobs.offload import cpu
from {{ cookiecutter.project_slug }}.outbound.client import (
    OutboundConfig,
    fetch_stream,
)
from {{ cookiecutter.project_slug }}.outbound.errors import OutboundError
from {{ cookiecutter.project_slug }}.sitemaps.parser import (
    ChildSitemap,
    SitemapError,
    SitemapItem,
    SitemapParser,
    SitemapURL,
)

OpenSitemap = Callable[[str], AbstractAsyncContextManager[AsyncIterator[bytes]]]
"""Opens a sitemap URL: its body, chunk by chunk; raises `OutboundError` or `SitemapError`."""
MAX_RECORDED_ERRORS = 100
DEFAULT_MAX_SITEMAPS = 1000


class CrawlLimitError(SitemapError):
    """The sitemaps list more page URLs than the job may take."""


@dataclass(frozen=True)
class SitemapBatch:
    """Page URLs from one sitemap (at most `batch_size` of them)."""

    sitemap_url: str
    depth: int
    urls: tuple[SitemapURL, ...]
    found: int = 0
    """Page URLs the walk had found when it handed this batch over, this batch included."""


@dataclass
class WalkStats:
    """Counters of a walk, updated as it goes; read them after the loop."""

    sitemaps_fetched: int = 0
    urls_found: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    """(sitemap URL, reason) for children that failed or were skipped (first 100)."""

    def record(self, url: str, reason: str) -> None:
        """Note a failed or skipped sitemap."""
        if len(self.errors) < MAX_RECORDED_ERRORS:
            self.errors.append((url, reason))


class SitemapFetchError(SitemapError):
    """A sitemap's server answered with a status other than 2xx."""


SITEMAP_ACCEPT = "application/xml, text/xml;q=0.9, application/gzip;q=0.8, */*;q=0.5"


def http_opener(client: httpx.AsyncClient, config: OutboundConfig) -> OpenSitemap:
    """An `open_sitemap` for `walk` on the guarded client: the body of a 2xx, else an error."""

    @asynccontextmanager
    async def open_sitemap(url: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """The body of `url`, chunk by chunk, while the response is open."""
        async with fetch_stream(client, url, config=config, accept=SITEMAP_ACCEPT) as response:
            if not response.is_success:
                raise SitemapFetchError(
                    f"sitemap unavailable: {url} answered HTTP {response.status_code}"
                )
            async with aclosing(response.iter_bytes()) as chunks:
                yield chunks

    return open_sitemap


def normalize_url(url: str) -> str:
    """The URL with lower-case scheme and host, no default port, no fragment (for cycles)."""
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL:
        return url.strip()
    return str(parsed.copy_with(fragment=None, path=parsed.path or "/"))


async def walk(
    root_url: str,
    *,
    open_sitemap: OpenSitemap,
    max_depth: int,
    max_urls: int,
    batch_size: int,
    max_sitemaps: int = DEFAULT_MAX_SITEMAPS,
    stats: WalkStats | None = None,
) -> AsyncGenerator[SitemapBatch]:
    """Yield batches of page URLs from `root_url` and the sitemaps it indexes, breadth-first.

    Indexes nested deeper than `max_depth` (the root is depth 0) and already seen sitemaps are
    skipped, and so is every sitemap after the first `max_sitemaps` tried. Past `max_urls` page
    URLs, the URLs up to the cap are yielded, then `CrawlLimitError`.
    """
    stats = stats if stats is not None else WalkStats()
    queue: deque[tuple[str, int]] = deque([(root_url, 0)])
    seen = {normalize_url(root_url)}
    tried = 0
    while queue:
        url, depth = queue.popleft()
        if tried >= max_sitemaps:
            stats.record(url, f"skipped: more than {max_sitemaps} sitemaps in one job")
            continue
        tried += 1
        reads = _read(url, depth, open_sitemap, batch_size, stats, is_root=depth == 0)
        async with aclosing(reads):
            async for batch, children in reads:
                _enqueue(children, depth + 1, max_depth, queue, seen, stats)
                allowed = _take(batch, max_urls, stats)
                if allowed.urls:
                    yield allowed
                if len(allowed.urls) < len(batch.urls):
                    raise CrawlLimitError(
                        f"too many URLs: the sitemaps list more than {max_urls:,} pages "
                        "(the limit per job)"
                    )


async def _read(
    url: str,
    depth: int,
    open_sitemap: OpenSitemap,
    batch_size: int,
    stats: WalkStats,
    *,
    is_root: bool,
) -> AsyncGenerator[tuple[SitemapBatch, list[str]]]:
    """Stream one sitemap into (batch of pages, child sitemap URLs) pairs, `batch_size` each.

    A failing child is recorded (what it gave before failing is still yielded); a failing root
    raises.
    """
    pages: list[SitemapURL] = []
    children: list[str] = []
    try:
        async with open_sitemap(url) as body:
            stats.sitemaps_fetched += 1
            parser = SitemapParser()
            chunks = aiter(body)
            while True:
                chunk = await anext(chunks, None)
                steps = parser.close() if chunk is None else parser.feed(chunk)
                while (items := await cpu.run(_next_step, steps)) is not None:
                    _sort(items, pages, children)
                    while len(pages) >= batch_size or len(children) >= batch_size:
                        yield (
                            SitemapBatch(url, depth, tuple(pages[:batch_size])),
                            children[:batch_size],
                        )
                        pages, children = pages[batch_size:], children[batch_size:]
                if chunk is None:
                    break
    except (OutboundError, SitemapError) as exc:
        if is_root:
            raise
        stats.record(url, exc.reason)
    yield SitemapBatch(url, depth, tuple(pages)), children


def _sort(items: list[SitemapItem], pages: list[SitemapURL], children: list[str]) -> None:
    """Append pages and child sitemaps (a document has one kind or the other)."""
    for item in items:
        if isinstance(item, ChildSitemap):
            children.append(item.loc)
        else:
            pages.append(item)


def _next_step(steps: Iterator[list[SitemapItem]]) -> list[SitemapItem] | None:
    """Parse one step (at most 64 KB of XML): its finished entries, or None at the end."""
    return next(steps, None)


def _enqueue(
    children: list[str],
    depth: int,
    max_depth: int,
    queue: deque[tuple[str, int]],
    seen: set[str],
    stats: WalkStats,
) -> None:
    """Queue unseen child sitemaps, or record them as skipped when too deep."""
    for child in children:
        key = normalize_url(child)
        if key in seen:
            continue
        seen.add(key)
        if depth > max_depth:
            stats.record(child, f"skipped: sitemap indexes nested deeper than {max_depth} levels")
            continue
        queue.append((child, depth))


def _take(batch: SitemapBatch, max_urls: int, stats: WalkStats) -> SitemapBatch:
    """The part of `batch` that fits under `max_urls`, counted into `urls_found`."""
    urls = batch.urls[: max(max_urls - stats.urls_found, 0)]
    stats.urls_found += len(urls)
    return dataclasses.replace(batch, urls=urls, found=stats.urls_found)
