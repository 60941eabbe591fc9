"""robots.txt, fetched once per origin through the guarded client and parsed with Protego.

Status handling follows RFC 9309: 4xx means "no robots.txt" (allow all, except 429, which is
treated like a server error); 5xx, 429 or an unreachable host means disallow all.

A `RobotsCache` keeps the rules of answers that settle the question (2xx, or a 4xx other than
429) for `ROBOTS_CACHE_SECONDS`, so that batch after batch on the same sites does not fetch
robots.txt again each time (RFC 9309 lets a crawler keep it up to 24 hours); a failure
(disallow all) is never kept, the next policy asks again. Its memory is bounded: a robots.txt
larger than `ROBOTS_CACHE_ENTRY_BYTES` is not kept, and the bodies kept add up to at most
`ROBOTS_CACHE_BYTES`. `shared_cache(client)` is the cache of the rules fetched through one
client: the jobs of a process share it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import weakref
from collections import OrderedDict

import httpx
from protego import Protego

from {{ cookiecutter.project_slug }}.outbound.client import (
    FetchResult,
    OutboundConfig,
    fetch,
)
from {{ cookiecutter.project_slug }}.outbound.errors import OutboundError

logger = logging.getLogger(__name__)

ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: parse at least the first 500 KiB
ROBOTS_CACHE_SECONDS = 300.0  # how long settled rules are kept (RFC 9309: at most 24 hours)
ROBOTS_CACHE_ORIGINS = 1024  # origins kept (least recently stored dropped first)
ROBOTS_CACHE_ENTRY_BYTES = 64 * 1024  # a larger robots.txt is used by its policy, not kept
ROBOTS_CACHE_BYTES = 2 * 1024 * 1024  # robots.txt bytes kept in all (oldest dropped first)
ALLOW_ALL = Protego.parse("")
DISALLOW_ALL = Protego.parse("User-agent: *\nDisallow: /\n")


class RobotsCache:
    """Parsed robots.txt rules by origin, each kept `seconds` after it was fetched; at most
    `origins` of them, from robots.txt bodies of at most `entry_bytes` adding up to at most
    `total_bytes` (the oldest are dropped first)."""

    def __init__(
        self,
        seconds: float = ROBOTS_CACHE_SECONDS,
        origins: int = ROBOTS_CACHE_ORIGINS,
        *,
        entry_bytes: int = ROBOTS_CACHE_ENTRY_BYTES,
        total_bytes: int = ROBOTS_CACHE_BYTES,
    ) -> None:
        self.seconds = seconds
        self.origins = origins
        self.entry_bytes = entry_bytes
        self.total_bytes = total_bytes
        self._entries: OrderedDict[str, tuple[float, Protego, int]] = OrderedDict()
        self._bytes = 0

    def get(self, origin: str) -> Protego | None:
        """The rules of `origin` if fetched less than `seconds` ago, else None."""
        entry = self._entries.get(origin)
        if entry is None:
            return None
        expires, rules, size = entry
        if time.monotonic() >= expires:
            del self._entries[origin]
            self._bytes -= size
            return None
        return rules

    def put(self, origin: str, rules: Protego, size: int) -> None:
        """Keep the rules of `origin`, parsed from `size` bytes (not kept past `entry_bytes`);
        drop the oldest entries past `origins` or `total_bytes`."""
        if size > self.entry_bytes:
            return
        previous = self._entries.pop(origin, None)
        if previous is not None:
            self._bytes -= previous[2]
        self._entries[origin] = (time.monotonic() + self.seconds, rules, size)
        self._bytes += size
        while len(self._entries) > self.origins or self._bytes > self.total_bytes:
            self._bytes -= self._entries.popitem(last=False)[1][2]


_SHARED: weakref.WeakKeyDictionary[httpx.AsyncClient, RobotsCache] = weakref.WeakKeyDictionary()


def shared_cache(client: httpx.AsyncClient) -> RobotsCache:
    """The cache of the rules fetched through `client`; it lives as long as the client."""
    cache = _SHARED.get(client)
    if cache is None:
        cache = _SHARED[client] = RobotsCache()
    return cache


class RobotsPolicy:
    """Answers whether the configured user agent may fetch a URL; one instance per job.

    With a `cache` (one per client: `shared_cache(client)`), settled rules are taken from it
    and stored in it; without one, each instance fetches every origin's robots.txt once.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        config: OutboundConfig,
        *,
        user_agent: str | None = None,
        cache: RobotsCache | None = None,
    ) -> None:
        self._client = client
        self._config = dataclasses.replace(
            config, max_bytes=min(config.max_bytes, ROBOTS_MAX_BYTES)
        )
        self._user_agent = user_agent or config.user_agent
        self._rules: dict[str, Protego] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._cache = cache

    async def allowed(self, url: str, *, parsed: httpx.URL | None = None) -> bool:
        """Whether robots.txt of the URL's origin lets the user agent fetch `url`.

        `parsed` is `httpx.URL(url)` when the caller has it already (it spares a parse). Asked
        for every page: rules this policy holds already are taken without a coroutine.
        """
        origin = _origin(url if parsed is None else parsed)
        if origin is None:
            return False
        rules = self._rules.get(origin)
        if rules is None:
            rules = await self._rules_for(origin)
        return rules.can_fetch(url, self._user_agent)

    async def crawl_delay(self, url: str) -> float | None:
        """The Crawl-delay for the user agent at the URL's origin, if any."""
        origin = _origin(url)
        if origin is None:
            return None
        return (await self._rules_for(origin)).crawl_delay(self._user_agent)

    async def sitemaps(self, url: str) -> list[str]:
        """The Sitemap URLs that robots.txt of the URL's origin lists."""
        origin = _origin(url)
        if origin is None:
            return []
        return list((await self._rules_for(origin)).sitemaps)

    async def _rules_for(self, origin: str) -> Protego:
        """The parsed rules of `origin`, fetched on first use (concurrent callers wait)."""
        if origin in self._rules:
            return self._rules[origin]
        async with self._locks.setdefault(origin, asyncio.Lock()):
            if origin not in self._rules:
                cached = self._cache.get(origin) if self._cache is not None else None
                if cached is None:
                    cached, size = await self._load(origin)
                    if size is not None and self._cache is not None:
                        self._cache.put(origin, cached, size)
                self._rules[origin] = cached
        return self._rules[origin]

    async def _load(self, origin: str) -> tuple[Protego, int | None]:
        """Fetch and parse `origin`/robots.txt; map failures per RFC 9309. Also gives the size
        of a body that settles the question, None for a failure (it is asked again later)."""
        robots_url = f"{origin}/robots.txt"
        try:
            result = await fetch(
                self._client, robots_url, config=self._config, accept="text/plain", truncate=True
            )
        except OutboundError as exc:
            logger.info("robots.txt unavailable, disallowing %s: %s", origin, exc.reason)
            return DISALLOW_ALL, None
        return _rules_from(result)


def _rules_from(result: FetchResult) -> tuple[Protego, int | None]:
    """Rules for a fetched robots.txt response, and the size of the body they were parsed from
    when they settle the question (None when they do not)."""
    status = result.status_code
    if result.is_success:
        return Protego.parse(result.body.decode("utf-8", errors="replace")), len(result.body)
    if 400 <= status < 500 and status != 429:
        return ALLOW_ALL, 0
    if 300 <= status < 400:  # a redirect without Location: treat as missing
        return ALLOW_ALL, 0
    logger.info("robots.txt answered %s, disallowing %s", status, result.url)
    return DISALLOW_ALL, None


def _origin(url: str | httpx.URL) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, or None for anything else."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except httpx.InvalidURL:
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    netloc = parsed.netloc.decode("ascii").rsplit("@", 1)[-1]
    return f"{parsed.scheme}://{netloc.lower()}"
