"""`debug-sitemap`: the sitemap flow for one URL in the foreground, printing each step.

The seed's `debug_sitemap_flow.py`, done right: the same job, runner, session helper and outbound
client as the service, so what it shows is what the service does.
"""

from __future__ import annotations

import json

from {{ cookiecutter.project_slug }}.db import (
    database_lifespan,
    task_session,
)
from {{ cookiecutter.project_slug }}.jobs import service as jobs
from {{ cookiecutter.project_slug }}.jobs.models import JobStatus
from {{ cookiecutter.project_slug }}.jobs.runner import (
    job_resources,
    run_job,
)
from {{ cookiecutter.project_slug }}.outbound.validate import (
    RefusedURLError,
    refuse_blocked_url,
)
from {{ cookiecutter.project_slug }}.settings import Settings
from {{ cookiecutter.project_slug }}.sitemaps import service as sitemaps
from {{ cookiecutter.project_slug }}.sitemaps import tasks as sitemap_tasks


async def debug_sitemap(settings: Settings, url: str) -> int:
    """The same job, runner, session helper and outbound client as the service, in one process."""
    print(f"1. database  {settings.get_db_url()}")  # the password is masked
    try:
        url = refuse_blocked_url(url, settings)
    except RefusedURLError as error:
        print(f"2. refused   {error.detail}")
        return 2
    async with database_lifespan(settings), job_resources(settings) as resources:
        async with task_session() as session:
            job = await jobs.create_job(session, kind=sitemap_tasks.KIND, params={"url": url})
        print(f"2. job       {job.id} created for {url}")
        print("3. running   (each stored batch is logged below)")
        handlers = {sitemap_tasks.KIND: sitemap_tasks.process_sitemap}
        await run_job(job.id, handlers, resources)
        async with task_session() as session:
            job = await jobs.get_job(session, job_id=job.id)
            sample, total = await sitemaps.list_urls(session, job_id=job.id, limit=5, offset=0)
    print(f"4. status    {job.status.value}")
    if job.error:
        print(f"   error     {job.error}")
    print(f"5. result    {json.dumps(job.result)}")
    print(f"6. stored    {total} URL(s) listed for this job; first ones:")
    for row in sample:
        print(f"   - {row.url}")
    return 0 if job.status is JobStatus.SUCCEEDED else 1
