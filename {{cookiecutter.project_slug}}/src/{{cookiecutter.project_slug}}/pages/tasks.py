"""The page-scraper job: fetch concurrently (global and per-host limits), respect robots.txt,
store one row per URL with its metadata or its failure, and report progress as pages finish."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from typing import Any

import httpx

from {{ cookiecutter.project_slug }}.db import task_session
from {{ cookiecutter.project_slug }}.jobs.runner import JobContext
from {{ cookiecutter.project_slug }}.outbound.client import (
    OutboundConfig,
    fetch,
)
from {{ cookiecutter.project_slug }}.outbound.errors import OutboundError
from {{ cookiecutter.project_slug }}.outbound.robots import RobotsPolicy
from {{ cookiecutter.project_slug }}.pages import service
from {{ cookiecutter.project_slug }}.pages.extract import extract_metadata

KIND = "pages"
HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
PAGE_BYTES = 2 * 1024 * 1024  # metadata lives in the head: read at most this much of a page
WRITE_EVERY = 10  # pages per transaction while the batch runs


@dataclasses.dataclass
class _Limits:
    """The batch-wide and per-host concurrency limits."""

    total: asyncio.Semaphore
    per_host: int
    hosts: dict[str, asyncio.Semaphore] = dataclasses.field(default_factory=dict)

    def host(self, url: str) -> asyncio.Semaphore:
        """The semaphore of the URL's host."""
        host = httpx.URL(url).host
        if host not in self.hosts:
            self.hosts[host] = asyncio.Semaphore(self.per_host)
        return self.hosts[host]


async def scrape_batch(context: JobContext) -> dict[str, Any]:
    """Fetch every URL of the batch and store what each gave."""
    settings = context.resources.settings
    urls: list[str] = list(context.params["urls"])
    config = dataclasses.replace(context.resources.outbound, max_bytes=PAGE_BYTES)
    robots = RobotsPolicy(context.resources.http, context.resources.outbound)
    limits = _Limits(asyncio.Semaphore(settings.pages_concurrency), settings.pages_per_host)
    done = failed = 0
    pending: list[dict[str, Any]] = []
    scrapes = [
        asyncio.create_task(_scrape(context.resources.http, config, robots, limits, url))
        for url in urls
    ]
    try:
        for finished in asyncio.as_completed(scrapes):
            page = await finished
            pending.append(page)
            done += 1
            failed += page["error"] is not None
            if len(pending) >= WRITE_EVERY or done == len(urls):
                await _write(context, pending, done=done, total=len(urls))
                pending = []
    finally:
        for scrape in scrapes:
            scrape.cancel()
    return {"pages": len(urls), "succeeded": len(urls) - failed, "failed": failed}


async def _write(
    context: JobContext, pages: Iterable[dict[str, Any]], *, done: int, total: int
) -> None:
    async with task_session() as session:
        await service.store_pages(session, job_id=context.job_id, pages=list(pages))
        await context.progress(session, done=done, total=total)


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
        async with limits.total, limits.host(url):
            if not await robots.allowed(url):
                return {**page, "error": "disallowed by robots.txt"}
            result = await fetch(client, url, config=config, accept=HTML_ACCEPT, truncate=True)
    except OutboundError as exc:
        return {**page, "error": exc.reason}
    page.update(
        final_url=result.final_url,
        status_code=result.status_code,
        content_type=result.content_type,
    )
    if not result.is_success:
        return {**page, "error": f"HTTP {result.status_code}"}
    metadata = extract_metadata(
        result.body, base_url=result.final_url, content_type=result.content_type
    )
    return {**page, **dataclasses.asdict(metadata)}
