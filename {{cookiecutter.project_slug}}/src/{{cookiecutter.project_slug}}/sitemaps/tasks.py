"""The sitemap job: walk the sitemap tree, store page URLs in batches, one transaction each."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from {{ cookiecutter.project_slug }}.db import task_session
from {{ cookiecutter.project_slug }}.jobs.runner import (
    JobContext,
    JobError,
)
from {{ cookiecutter.project_slug }}.outbound.errors import OutboundError
from {{ cookiecutter.project_slug }}.sitemaps import service
from {{ cookiecutter.project_slug }}.sitemaps.crawl import (
    WalkStats,
    http_fetcher,
    walk,
)
from {{ cookiecutter.project_slug }}.sitemaps.parser import SitemapError

KIND = "sitemap"
logger = logging.getLogger(__name__)


async def process_sitemap(context: JobContext) -> dict[str, Any]:
    """Store every page URL of the sitemap at `params["url"]`, batch by batch."""
    settings = context.resources.settings
    config = dataclasses.replace(context.resources.outbound, max_bytes=settings.sitemap_max_bytes)
    stats = WalkStats()
    stored = 0
    file_ids: dict[str, int] = {}
    batches = walk(
        str(context.params["url"]),
        fetch_bytes=http_fetcher(context.resources.http, config),
        max_depth=settings.sitemap_max_depth,
        max_urls=settings.sitemap_max_urls,
        batch_size=settings.sitemap_batch_size,
        stats=stats,
    )
    try:
        async for batch in batches:
            async with task_session() as session:
                if batch.sitemap_url not in file_ids:
                    file_ids[batch.sitemap_url] = await service.upsert_file(
                        session, url=batch.sitemap_url, job_id=context.job_id
                    )
                stored += await service.store_urls(
                    session, sitemap_id=file_ids[batch.sitemap_url], urls=batch.urls
                )
                await context.progress(session, done=stats.urls_found)
            logger.info(
                "stored %d URL(s) from %s (%d found so far, %d new)",
                len(batch.urls),
                batch.sitemap_url,
                stats.urls_found,
                stored,
            )
    except (SitemapError, OutboundError) as exc:
        raise JobError(str(exc)) from exc
    return {
        "sitemaps_fetched": stats.sitemaps_fetched,
        "urls_found": stats.urls_found,
        "urls_stored": stored,
        "skipped": [{"sitemap": url, "reason": reason} for url, reason in stats.errors],
    }
