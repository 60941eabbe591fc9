"""Batch page-scraper endpoints: start a batch (202), read its pages."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from {{ cookiecutter.project_slug }}.db import SessionDep
from {{ cookiecutter.project_slug }}.deps import SettingsDep
from {{ cookiecutter.project_slug }}.errors import DomainError
from {{ cookiecutter.project_slug }}.jobs import service as jobs
from {{ cookiecutter.project_slug }}.jobs.queue import (
    EnqueueDep,
    submit_job,
)
from {{ cookiecutter.project_slug }}.jobs.schemas import JobAccepted
from {{ cookiecutter.project_slug }}.outbound.validate import refuse_blocked_url
from {{ cookiecutter.project_slug }}.pages import service
from {{ cookiecutter.project_slug }}.pages.schemas import (
    PageBatchCreate,
    PagePage,
    PageRead,
)
from {{ cookiecutter.project_slug }}.pages.tasks import KIND
from {{ cookiecutter.project_slug }}.types import Offset

router = APIRouter(prefix="/pages", tags=["pages"])
NO_JOB: dict[int | str, dict[str, str]] = {404: {"description": "No job with this id"}}


class BatchTooLargeError(DomainError):
    """More URLs than one batch may hold."""

    status_code = status.HTTP_422_UNPROCESSABLE_CONTENT


@router.post("/batches", status_code=status.HTTP_202_ACCEPTED)
async def scrape_pages(
    body: PageBatchCreate, session: SessionDep, enqueue: EnqueueDep, settings: SettingsDep
) -> JobAccepted:
    """Fetch the pages and extract their metadata in the background."""
    urls = list(dict.fromkeys(str(url) for url in body.urls))
    if len(urls) > settings.pages_max_per_batch:
        raise BatchTooLargeError(
            f"a batch holds at most {settings.pages_max_per_batch} URLs; got {len(urls)}"
        )
    checked = [refuse_blocked_url(url, settings) for url in urls]
    job = await submit_job(session, enqueue, kind=KIND, params={"urls": checked})
    return JobAccepted(job_id=job.id)


@router.get("/batches/{job_id}/pages", responses=NO_JOB)
async def list_pages(
    job_id: uuid.UUID,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    offset: Offset = 0,
) -> PagePage:
    """A batch's pages (404 if the job does not exist)."""
    await jobs.get_job(session, job_id=job_id)
    pages, total = await service.list_pages(session, job_id=job_id, limit=limit, offset=offset)
    return PagePage(
        items=[PageRead.model_validate(page) for page in pages],
        total=total,
        limit=limit,
        offset=offset,
    )
