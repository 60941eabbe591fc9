"""The page-scraper job: fetch concurrently (global and per-host limits), respect robots.txt,
store one row per URL with its metadata or its failure, and report progress as pages finish.

One page never fails the batch: a URL that cannot be stored (longer than its column) is skipped
and listed in the result, and what a page gives is made storable before insert. HTML is read up
to `</head>` (at most `PAGE_BYTES`) and parsed on the event loop when the head is small
(`INLINE_PARSE_BYTES`), off it otherwise. A retried batch skips the URLs an earlier attempt
stored and counts them as done.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing
from typing import Any

import httpx

from {{ cookiecutter.project_slug }}.db import task_session
from {{ cookiecutter.project_slug }}.jobs.offload import cpu
from {{ cookiecutter.project_slug }}.jobs.runner import JobContext
from {{ cookiecutter.project_slug }}.outbound.client import (
    FetchStream,
    OutboundConfig,
    fetch_stream,
)
from {{ cookiecutter.project_slug }}.outbound.errors import OutboundError
from {{ cookiecutter.project_slug }}.outbound.robots import (
    RobotsPolicy,
    shared_cache,
)
from {{ cookiecutter.project_slug }}.pages import service
from {{ cookiecutter.project_slug }}.pages.extract import HTML_TYPES, extract_metadata

KIND = "pages"
HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
PAGE_BYTES = 2 * 1024 * 1024  # metadata lives in the head: read at most this much of a page
KEEPALIVE_DRAIN_BYTES = 256 * 1024
"""After `</head>`, a rest of the page up to this size (by its Content-Length) is read and
dropped: a response closed with its body unread closes its connection, and a new connection per
page (TCP set-up, a server thread) cost the batch more than the bytes do."""
DRAIN_SECONDS = 1.0  # at most this long: a slow rest only costs the connection, never the page
WRITE_SECONDS = 1.0
"""Pages and progress are written once this long has passed since the last write (and at the
batch's end): progress shows while the batch runs, and a process killed mid-batch loses at most
this much fetching (the retry skips what is stored)."""
WRITE_EVERY = 100
"""...or sooner, once this many pages wait (a batch of `PAGES_MAX_PER_BATCH` at most is one
statement). A batch that takes under `WRITE_SECONDS` is thus one transaction: writing every 25
pages gave a fast batch of 100 three more, which cost it about 16 % more CPU and 15 to 25 % of
its speed (measured side by side on loopback), for progress that changed within a second."""
INLINE_PARSE_BYTES = 16 * 1024
"""A head up to this size is parsed on the event loop (0.1-0.2 ms for a usual 2 KB head, about
2 ms for 16 KB of nothing but tags); a larger one goes to the CPU pool. The hop to the pool and
back cost more than parsing a usual head does."""
SHOWN_URL = 200  # characters of a skipped URL shown in the result
_HEAD_END = re.compile(rb"</head\s*>", re.IGNORECASE)


@dataclasses.dataclass
class _Limits:
    """The batch-wide and per-host concurrency limits."""

    total: asyncio.Semaphore
    per_host: int
    hosts: dict[str, asyncio.Semaphore] = dataclasses.field(default_factory=dict)

    def host(self, host: str) -> asyncio.Semaphore:
        """The semaphore of a host."""
        if host not in self.hosts:
            self.hosts[host] = asyncio.Semaphore(self.per_host)
        return self.hosts[host]


async def scrape_batch(context: JobContext) -> dict[str, Any]:
    """Fetch every URL of the batch and store what each gave."""
    settings = context.resources.settings
    urls: list[str] = list(dict.fromkeys(context.params["urls"]))  # one row per URL
    skipped = [(url, reason) for url in urls if (reason := service.unstorable_url(url))]
    storable = [url for url in urls if not service.unstorable_url(url)]
    already: set[str] = set()
    if context.attempt > 1:  # only an earlier attempt can have stored pages of this batch
        async with task_session() as session:
            already = await service.stored_urls(session, job_id=context.job_id, urls=storable)
    config = dataclasses.replace(context.resources.outbound, max_bytes=PAGE_BYTES)
    http = context.resources.http
    robots = RobotsPolicy(http, context.resources.outbound, cache=shared_cache(http))
    limits = _Limits(asyncio.Semaphore(settings.pages_concurrency), settings.pages_per_host)
    done = len(skipped) + len(already)
    pending: list[dict[str, Any]] = []
    scrapes = [
        asyncio.create_task(_scrape(context.resources.http, config, robots, limits, url))
        for url in storable
        if url not in already
    ]
    loop = asyncio.get_running_loop()
    written_at = loop.time()
    counts: tuple[int, int] | None = None
    wrote = wrote_failed = 0  # rows this attempt wrote, and how many of them are failures
    try:
        for finished in asyncio.as_completed(scrapes):
            pending.append(await finished)
            done += 1
            due = len(pending) >= WRITE_EVERY or loop.time() - written_at >= WRITE_SECONDS
            if due or done == len(urls):
                counts = await _write(context, pending, done=done, total=len(urls))
                wrote += len(pending)
                wrote_failed += sum(page["error"] is not None for page in pending)
                pending = []
                written_at = loop.time()
        if not scrapes:  # nothing left to fetch (all stored by an earlier attempt, or skipped)
            counts = await _write(context, [], done=done, total=len(urls))
    finally:
        for scrape in scrapes:
            scrape.cancel()
    if context.attempt == 1:  # every row of the batch is one this attempt wrote
        counts = (wrote, wrote_failed)
    elif counts is None:  # the last write counts the rows; count them here if it did not
        async with task_session() as session:
            counts = await service.count_pages(session, job_id=context.job_id)
    stored, failed = counts
    return {
        "pages": len(urls),
        "succeeded": stored - failed,
        "failed": failed + len(skipped),
        "skipped": [{"url": _shown(url), "reason": reason} for url, reason in skipped],
    }


def _shown(url: str) -> str:
    """The URL as the result lists it: cut, with a mark, when very long."""
    return url if len(url) <= SHOWN_URL else f"{url[:SHOWN_URL]}..."


async def _write(
    context: JobContext, pages: Iterable[dict[str, Any]], *, done: int, total: int
) -> tuple[int, int] | None:
    """Store pages and progress in one transaction. The last write of a retried batch
    (`done == total`) also counts the batch's rows, stored and failed, in it, earlier attempts'
    included (one transaction less); a first attempt counts the rows it wrote itself."""
    async with task_session() as session:
        await service.store_pages(session, job_id=context.job_id, pages=list(pages))
        await context.progress(session, done=done, total=total)
        if done == total and context.attempt > 1:
            return await service.count_pages(session, job_id=context.job_id)
    return None


async def _scrape(
    client: httpx.AsyncClient,
    config: OutboundConfig,
    robots: RobotsPolicy,
    limits: _Limits,
    url: str,
) -> dict[str, Any]:
    """One URL's row: metadata on success, the reason otherwise."""
    page: dict[str, Any] = {
        "url": url,
        "final_url": None,
        "status_code": None,
        "content_type": None,
        "title": None,
        "description": None,
        "canonical_url": None,
        "error": None,
    }
    try:
        parsed = httpx.URL(url)
        # The host's slot first: a page waiting for its busy host holds no batch-wide slot,
        # so pages of other hosts still use every one (a batch sorted by host ran two at a time).
        async with limits.host(parsed.host), limits.total:
            if not await robots.allowed(url, parsed=parsed):
                return {**page, "error": "disallowed by robots.txt"}
            async with fetch_stream(client, parsed, config=config, accept=HTML_ACCEPT) as response:
                page.update(
                    final_url=response.final_url,
                    status_code=response.status_code,
                    content_type=response.content_type,
                )
                if not response.is_success:
                    return {**page, "error": f"HTTP {response.status_code}"}
                body = await _read_head(response)
    except OutboundError as exc:
        return {**page, "error": exc.reason}
    if len(body) <= INLINE_PARSE_BYTES:
        metadata = extract_metadata(
            body, base_url=page["final_url"], content_type=page["content_type"]
        )
    else:
        metadata = await cpu.run(
            extract_metadata, body, base_url=page["final_url"], content_type=page["content_type"]
        )
    page.update(  # not `dataclasses.asdict`, which deep-copies: 8 times the time
        title=metadata.title,
        description=metadata.description,
        canonical_url=metadata.canonical_url,
    )
    return page


async def _read_head(response: FetchStream) -> bytes:
    """The page up to `</head>` (metadata lives there; what follows is not parsed), at most
    `PAGE_BYTES`; nothing when the content type says it is not HTML."""
    if response.media_type is not None and response.media_type not in HTML_TYPES:
        return b""
    body = bytearray()
    async with aclosing(response.iter_bytes(truncate=True)) as chunks:
        async for chunk in chunks:
            searched = max(len(body) - 8, 0)  # `</head >` may straddle two chunks
            body += chunk
            if head := _HEAD_END.search(body, searched):
                if _small_rest(response, len(body)):
                    await _drain(chunks)
                return bytes(body[: head.end()])
    return bytes(body)


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read and drop the rest of a body, so that its connection serves the next request; give up
    (the connection is then closed) after `DRAIN_SECONDS` or on any error."""
    with contextlib.suppress(OutboundError, TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in chunks:
                pass


def _small_rest(response: FetchStream, received: int) -> bool:
    """Whether the unread rest of the body is known and at most `KEEPALIVE_DRAIN_BYTES`."""
    declared = response.headers.get("content-length", "")
    return declared.isdigit() and int(declared) - received <= KEEPALIVE_DRAIN_BYTES
