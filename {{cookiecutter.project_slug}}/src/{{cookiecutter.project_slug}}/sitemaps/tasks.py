"""The sitemap job: walk the sitemap tree, store page URLs in batches, one transaction each.

Fetching and parsing run ahead of storing by at most one batch (`ReadAhead`), so the network
and the database overlap and a job holds a few MB whatever the sitemap's size. A retried job
walks the tree again: rows already stored are skipped (`service.store_urls`: a batch's plain
insert fails on its first stored URL and the batch is redone with `ON CONFLICT DO NOTHING`), and
the checkpoint carries the counts, so `urls_stored` and the progress are not counted twice.

A batch's commit does not wait for its WAL to reach the disk (`task_session(synchronous_commit=
False)`: `SET LOCAL`, this transaction only, pooler-safe); the runner's commit of the job's final
status does.
That is safe because the WAL is one ordered log: flushing the final commit flushes every batch
before it, so a job that reads `succeeded` after a crash has all its rows. A crash before that
loses at most the last few batches' commits, each with the checkpoint of its own transaction
(rows, `url_count` and progress go together), and the retried job stores them again.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from {{ cookiecutter.project_slug }}.db import task_session
from {{ cookiecutter.project_slug }}.jobs.offload import ReadAhead
from {{ cookiecutter.project_slug }}.jobs.runner import (
    JobContext,
    JobError,
)
from {{ cookiecutter.project_slug }}.outbound.errors import OutboundError
from {{ cookiecutter.project_slug }}.sitemaps import service
from {{ cookiecutter.project_slug }}.sitemaps.crawl import (
    WalkStats,
    http_opener,
    walk,
)
from {{ cookiecutter.project_slug }}.sitemaps.models import MAX_URL_LENGTH
from {{ cookiecutter.project_slug }}.sitemaps.parser import SitemapError

KIND = "sitemap"
READ_AHEAD_BATCHES = 1
logger = logging.getLogger(__name__)


async def process_sitemap(context: JobContext) -> dict[str, Any]:
    """Store every page URL of the sitemap at `params["url"]`, batch by batch."""
    settings = context.resources.settings
    root = str(context.params["url"])
    if len(root) > MAX_URL_LENGTH:
        raise JobError(f"url refused: longer than {MAX_URL_LENGTH} characters")
    config = dataclasses.replace(context.resources.outbound, max_bytes=settings.sitemap_max_bytes)
    stats = WalkStats()
    # Earlier attempts' committed batches: their rows are stored (a re-walk skips them as
    # conflicts) and counted here once.
    stored = int(context.checkpoint.get("urls_stored", 0))
    done_before = int(context.checkpoint.get("urls_found", 0))
    file_ids: dict[str, int] = {}
    repeating: set[int] = set()  # files with a batch that held URLs not new (`store_urls`)
    batches = walk(
        root,
        open_sitemap=http_opener(context.resources.http, config),
        max_depth=settings.sitemap_max_depth,
        max_urls=settings.sitemap_max_urls,
        batch_size=settings.sitemap_batch_size,
        stats=stats,
    )
    try:
        async with ReadAhead(batches, READ_AHEAD_BATCHES) as ahead:
            async for batch in ahead:
                # A batch's commit returns before its WAL is on disk; the final status's waits.
                async with task_session(synchronous_commit=False) as session:
                    if batch.sitemap_url not in file_ids:
                        file_ids[batch.sitemap_url] = await service.upsert_file(
                            session, url=batch.sitemap_url, job_id=context.job_id
                        )
                    file_id = file_ids[batch.sitemap_url]
                    new = await service.store_urls(
                        session,
                        sitemap_id=file_id,
                        urls=batch.urls,
                        expect_new=file_id not in repeating,
                    )
                    if new < len(batch.urls):
                        repeating.add(file_id)
                    found = max(batch.found, done_before)
                    await context.progress(
                        session,
                        done=found,
                        checkpoint={"urls_stored": stored + new, "urls_found": found},
                    )
                stored += new
                logger.info(
                    "stored %d URL(s) from %s (%d found so far, %d new)",
                    len(batch.urls),
                    batch.sitemap_url,
                    found,
                    new,
                )
    except (SitemapError, OutboundError) as exc:
        raise JobError(str(exc)) from exc
    return {
        "sitemaps_fetched": stats.sitemaps_fetched,
        "urls_found": stats.urls_found,
        "urls_stored": stored,
        "skipped": [{"sitemap": url, "reason": reason} for url, reason in stats.errors],
    }
