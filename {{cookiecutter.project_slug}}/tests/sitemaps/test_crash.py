"""A job survives SIGKILL of the process running it: real processes, real kills.

The service runs as `python -m <package> start` (the production command) with the in-memory task
engine and a lease of two seconds. A slow local sitemap keeps the job busy long enough to kill
the service mid-job; a new service process recovers the job when the dead one's lease expires.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.project_slug }}.jobs.models import Job
from {{ cookiecutter.project_slug }}.settings import Settings
from {{ cookiecutter.project_slug }}.sitemaps.models import SitemapURL

from tests.localserver import LocalServer, Reply
from tests.serving import Service, running_service

CHILDREN = 16
URLS_PER_CHILD = 200
CHILD_DELAY = 0.25  # seconds each child sitemap takes to answer: the job runs about 4 s
SERVICE_SETTINGS = {
    "JOB_LEASE_SECONDS": "2",
    "OUTBOUND_ALLOWLIST": "127.0.0.0/8, ::1",
    "LOG_LEVEL": "INFO",
}


def slow_sitemap(site: LocalServer) -> str:
    """An index of `CHILDREN` sitemaps of `URLS_PER_CHILD` pages each, every child slow."""
    children = "".join(
        f"<sitemap><loc>{site.url(f'/child-{number}.xml')}</loc></sitemap>"
        for number in range(CHILDREN)
    )
    site.content(
        "/index.xml",
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{children}'
        "</sitemapindex>",
        "application/xml",
    )
    for number in range(CHILDREN):
        urls = "".join(
            f"<url><loc>https://example.com/{number}/{page}</loc></url>"
            for page in range(URLS_PER_CHILD)
        )
        body = f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
        site.reply(
            f"/child-{number}.xml",
            Reply(
                body=body.encode(),
                headers={"Content-Type": "application/xml"},
                delay=CHILD_DELAY,
            ),
        )
    return site.url("/index.xml")


def job_state(service: Service, job_id: str) -> dict[str, object]:
    """The job as the API reports it."""
    response = httpx.get(f"{service.base_url}/api/v1/jobs/{job_id}", timeout=5)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def wait_until(service: Service, job_id: str, done: set[str], seconds: float) -> dict[str, object]:
    """Poll until the job's status is one of `done` (or its progress passes a mark)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = job_state(service, job_id)
        if str(job["status"]) in done:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {done} in {seconds} s: {job}")


def wait_for_progress(service: Service, job_id: str, at_least: int) -> None:
    """Poll until the job has stored some batches (it is mid-work)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        progress = job_state(service, job_id)["progress"]
        assert isinstance(progress, dict)
        if int(progress["done"]) >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} made no progress")


def kill_mid_job_and_restart(workdir: Path, settings: Settings, root: str) -> dict[str, object]:
    """Submit the job, SIGKILL the service mid-job, start a new one; return the finished job."""
    with running_service(workdir, settings.get_db_url(), SERVICE_SETTINGS) as first:
        response = httpx.post(f"{first.base_url}/api/v1/sitemaps", json={"url": root}, timeout=5)
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        wait_for_progress(first, job_id, at_least=2 * URLS_PER_CHILD)
        first.process.kill()  # SIGKILL: no shutdown code runs
        first.process.wait(timeout=10)
    with running_service(workdir, settings.get_db_url(), SERVICE_SETTINGS) as second:
        job = wait_until(second, job_id, {"succeeded", "failed", "cancelled"}, seconds=120)
        assert job["status"] == "succeeded", (job, second.output()[-3000:])
        return job


@pytest.mark.usefixtures("committed")
async def test_sigkill_of_the_web_process_mid_job_loses_nothing(
    settings: Settings, site: LocalServer, tmp_path: Path, engine: AsyncEngine
) -> None:
    root = slow_sitemap(site)

    job = await asyncio.to_thread(kill_mid_job_and_restart, tmp_path, settings, root)

    assert job["attempts"] == 2
    assert job["finished_at"] is not None
    async with engine.connect() as connection:
        stored = await connection.scalar(select(func.count()).select_from(SitemapURL))
        distinct = await connection.scalar(select(func.count(func.distinct(SitemapURL.url))))
        owner = await connection.scalar(
            select(Job.lease_owner).where(Job.id == uuid.UUID(str(job["id"])))
        )
    assert stored == distinct == CHILDREN * URLS_PER_CHILD, "every URL stored exactly once"
    assert owner is None, "the finished job holds no lease"
