"""Sitemap endpoints: start a job (202), read what it stored."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from {{ cookiecutter.project_slug }}.db import SessionDep
from {{ cookiecutter.project_slug }}.deps import SettingsDep
from {{ cookiecutter.project_slug }}.jobs import service as jobs
from {{ cookiecutter.project_slug }}.jobs.queue import (
    EnqueueDep,
    submit_job,
)
from {{ cookiecutter.project_slug }}.jobs.schemas import JobAccepted
from {{ cookiecutter.project_slug }}.outbound.validate import refuse_blocked_url
from {{ cookiecutter.project_slug }}.sitemaps import service
from {{ cookiecutter.project_slug }}.sitemaps.schemas import (
    SitemapCreate,
    SitemapURLPage,
    SitemapURLRead,
)
from {{ cookiecutter.project_slug }}.sitemaps.tasks import KIND
from {{ cookiecutter.project_slug }}.types import Offset

router = APIRouter(prefix="/sitemaps", tags=["sitemaps"])
NO_JOB: dict[int | str, dict[str, str]] = {404: {"description": "No job with this id"}}


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def process_sitemap(
    body: SitemapCreate, session: SessionDep, enqueue: EnqueueDep, settings: SettingsDep
) -> JobAccepted:
    """Fetch a sitemap (or index) and store its page URLs in the background."""
    url = refuse_blocked_url(str(body.url), settings)
    job = await submit_job(session, enqueue, kind=KIND, params={"url": url})
    return JobAccepted(job_id=job.id)


@router.get("/{job_id}/urls", responses=NO_JOB)
async def list_urls(
    job_id: uuid.UUID,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> SitemapURLPage:
    """Page URLs stored by a sitemap job (404 if the job does not exist)."""
    await jobs.get_job(session, job_id=job_id)
    rows, total = await service.list_urls(session, job_id=job_id, limit=limit, offset=offset)
    return SitemapURLPage(
        items=[SitemapURLRead.model_validate(row, from_attributes=True) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )
