"""Walk a sitemap tree breadth-first and yield its page URLs in batches.

Fetching is injected (`fetch_bytes`), so the walk is pure of HTTP and of the database; in the
service it is `fetch` of the guarded outbound client. A child sitemap that fails is recorded in
`WalkStats.errors` and skipped; a failing root sitemap or the per-job URL cap raises.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import httpx

from {{ cookiecutter.project_slug }}.outbound.client import (
    OutboundConfig,
    fetch,
)
from {{ cookiecutter.project_slug }}.outbound.errors import OutboundError
from {{ cookiecutter.project_slug }}.sitemaps.parser import (
    ChildSitemap,
    SitemapError,
    SitemapURL,
    parse_sitemap,
)

FetchBytes = Callable[[str], Awaitable[bytes]]
PARSE_CHUNK = 64 * 1024
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


def http_fetcher(client: httpx.AsyncClient, config: OutboundConfig) -> FetchBytes:
    """A `fetch_bytes` for `walk` on the guarded client: the body of a 2xx, else an error."""

    async def fetch_bytes(url: str) -> bytes:
        result = await fetch(client, url, config=config, accept=SITEMAP_ACCEPT)
        if not result.is_success:
            raise SitemapFetchError(
                f"sitemap unavailable: {url} answered HTTP {result.status_code}"
            )
        return result.body

    return fetch_bytes


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
    fetch_bytes: FetchBytes,
    max_depth: int,
    max_urls: int,
    batch_size: int,
    max_sitemaps: int = DEFAULT_MAX_SITEMAPS,
    stats: WalkStats | None = None,
) -> AsyncIterator[SitemapBatch]:
    """Yield batches of page URLs from `root_url` and the sitemaps it indexes, breadth-first.

    Indexes nested deeper than `max_depth` (the root is depth 0) and already seen sitemaps are
    skipped. Past `max_urls` page URLs, the URLs up to the cap are yielded, then `CrawlLimitError`.
    """
    stats = stats if stats is not None else WalkStats()
    queue: deque[tuple[str, int]] = deque([(root_url, 0)])
    seen = {normalize_url(root_url)}
    while queue:
        url, depth = queue.popleft()
        if stats.sitemaps_fetched >= max_sitemaps:
            stats.record(url, f"skipped: more than {max_sitemaps} sitemaps in one job")
            continue
        body = await _fetch(url, fetch_bytes, stats, is_root=depth == 0)
        if body is None:
            continue
        for batch, children in _read(url, depth, body, batch_size, stats, is_root=depth == 0):
            _enqueue(children, depth + 1, max_depth, queue, seen, stats)
            allowed = _take(batch, max_urls, stats)
            if allowed.urls:
                yield allowed
            if len(allowed.urls) < len(batch.urls):
                raise CrawlLimitError(
                    f"too many URLs: the sitemaps list more than {max_urls:,} pages "
                    "(the limit per job)"
                )


async def _fetch(
    url: str, fetch_bytes: FetchBytes, stats: WalkStats, *, is_root: bool
) -> bytes | None:
    """The sitemap's body; a failing child is recorded and gives None, a failing root raises."""
    try:
        body = await fetch_bytes(url)
    except (OutboundError, SitemapError) as exc:
        if is_root:
            raise
        stats.record(url, exc.reason)
        return None
    stats.sitemaps_fetched += 1
    return body


def _read(
    url: str, depth: int, body: bytes, batch_size: int, stats: WalkStats, *, is_root: bool
) -> Iterator[tuple[SitemapBatch, list[str]]]:
    """Parse `body` into (batch of pages, child sitemap URLs) pairs, `batch_size` pages each."""
    pages: list[SitemapURL] = []
    children: list[str] = []
    try:
        for item in parse_sitemap(_slices(body)):
            if isinstance(item, ChildSitemap):
                children.append(item.loc)
            else:
                pages.append(item)
            if len(pages) >= batch_size or len(children) >= batch_size:
                yield SitemapBatch(url, depth, tuple(pages)), children
                pages, children = [], []
    except SitemapError as exc:
        if is_root:
            raise
        stats.record(url, exc.reason)
    yield SitemapBatch(url, depth, tuple(pages)), children


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
    room = max(max_urls - stats.urls_found, 0)
    if len(batch.urls) > room:
        batch = dataclasses.replace(batch, urls=batch.urls[:room])
    stats.urls_found += len(batch.urls)
    return batch


def _slices(body: bytes) -> Iterator[bytes]:
    """`body` in parser-sized slices."""
    view = memoryview(body)
    for start in range(0, len(body), PARSE_CHUNK):
        yield bytes(view[start : start + PARSE_CHUNK])
