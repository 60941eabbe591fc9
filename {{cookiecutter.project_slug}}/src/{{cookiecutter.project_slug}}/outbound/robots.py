"""robots.txt, fetched once per origin through the guarded client and parsed with Protego.

Status handling follows RFC 9309: 4xx means "no robots.txt" (allow all, except 429, which is
treated like a server error); 5xx, 429 or an unreachable host means disallow all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

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
ALLOW_ALL = Protego.parse("")
DISALLOW_ALL = Protego.parse("User-agent: *\nDisallow: /\n")


class RobotsPolicy:
    """Answers whether the configured user agent may fetch a URL; one instance per job."""

    def __init__(
        self, client: httpx.AsyncClient, config: OutboundConfig, *, user_agent: str | None = None
    ) -> None:
        self._client = client
        self._config = dataclasses.replace(
            config, max_bytes=min(config.max_bytes, ROBOTS_MAX_BYTES)
        )
        self._user_agent = user_agent or config.user_agent
        self._rules: dict[str, Protego] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def allowed(self, url: str) -> bool:
        """Whether robots.txt of the URL's origin lets the user agent fetch `url`."""
        origin = _origin(url)
        if origin is None:
            return False
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
                self._rules[origin] = await self._load(origin)
        return self._rules[origin]

    async def _load(self, origin: str) -> Protego:
        """Fetch and parse `origin`/robots.txt; map failures per RFC 9309."""
        robots_url = f"{origin}/robots.txt"
        try:
            result = await fetch(
                self._client, robots_url, config=self._config, accept="text/plain", truncate=True
            )
        except OutboundError as exc:
            logger.info("robots.txt unavailable, disallowing %s: %s", origin, exc.reason)
            return DISALLOW_ALL
        return _rules_from(result)


def _rules_from(result: FetchResult) -> Protego:
    """Rules for a fetched robots.txt response."""
    status = result.status_code
    if result.is_success:
        return Protego.parse(result.body.decode("utf-8", errors="replace"))
    if 400 <= status < 500 and status != 429:
        return ALLOW_ALL
    if 300 <= status < 400:  # a redirect without Location: treat as missing
        return ALLOW_ALL
    logger.info("robots.txt answered %s, disallowing %s", status, result.url)
    return DISALLOW_ALL


def _origin(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, or None for anything else."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    netloc = parsed.netloc.decode("ascii").rsplit("@", 1)[-1]
    return f"{parsed.scheme}://{netloc.lower()}"
