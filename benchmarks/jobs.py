"""Run the generated project's real jobs in a fresh process and print what they cost, as JSON.

- `python -m benchmarks.jobs sitemap PACKAGE DATABASE_URL SITEMAP_URL`: one sitemap job through
  the project's own runner (`jobs.runner.run_job`), session helper and outbound client, as
  `debug-sitemap` runs it; prints its duration and the process's RSS before and at peak.
- `python -m benchmarks.jobs store PACKAGE DATABASE_URL URLS`: the sitemap job's write path
  alone: `URLS` page URLs (built in memory, nothing fetched or parsed) stored with
  `sitemaps.service.store_urls`, one `task_session()` per `SITEMAP_BATCH_SIZE` batch, timed; the
  ceiling of the job against COPY.
- `python -m benchmarks.jobs pages PACKAGE DATABASE_URL URLS_FILE ROUNDS`: per round, one
  page-scraper batch through the same runner, then a plain httpx client fetching the same pages
  at the same concurrency (the local server's capacity); prints pages per second of both. Like
  the job's outbound client, the plain client is built once per process and keeps its
  connections from round to round; the job is timed from its claim to its end record (creating
  it and reading it back are the benchmark's, not the batch's).

A process per measurement keeps peak RSS attributable to the job alone.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import resource
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from benchmarks import content

ALLOWLIST = "127.0.0.0/8"


def _modules(package: str) -> dict[str, ModuleType]:
    names = ["settings", "db", "jobs.runner", "jobs.service", "sitemaps.tasks", "pages.tasks"]
    names += ["sitemaps.service", "sitemaps.parser", "observability.process"]
    return {name: importlib.import_module(f"{package}.{name}") for name in names}


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@asynccontextmanager
async def _service(m: dict[str, ModuleType], database_url: str) -> AsyncIterator[Any]:
    settings = m["settings"].Settings(
        database_url=database_url, outbound_allowlist=ALLOWLIST, log_level="WARNING"
    )
    m["observability.process"].setup_process(settings)  # as a worker process starts
    async with (
        m["db"].database_lifespan(settings),
        m["jobs.runner"].job_resources(settings) as resources,
    ):
        yield resources


async def _run(m: dict[str, ModuleType], resources: Any, kind: str, params: dict[str, Any]) -> Any:
    """Create a job and run it with the project's runner; return the finished job."""
    job, _ = await _run_timed(m, resources, kind, params)
    return job


async def _run_timed(
    m: dict[str, ModuleType], resources: Any, kind: str, params: dict[str, Any]
) -> tuple[Any, float]:
    """Create a job and run it with the project's runner; return the finished job and the
    seconds `run_job` took (claim, handler, end record)."""
    handlers = {
        m["sitemaps.tasks"].KIND: m["sitemaps.tasks"].process_sitemap,
        m["pages.tasks"].KIND: m["pages.tasks"].scrape_batch,
    }
    async with m["db"].task_session() as session:
        job = await m["jobs.service"].create_job(session, kind=kind, params=params)
    job_id: uuid.UUID = job.id
    started = time.perf_counter()
    await m["jobs.runner"].run_job(job_id, handlers, resources)
    seconds = time.perf_counter() - started
    async with m["db"].task_session() as session:
        return await m["jobs.service"].get_job(session, job_id=job_id), seconds


async def sitemap(package: str, database_url: str, url: str) -> dict[str, Any]:
    """One sitemap job, timed end to end (fetch, parse, store), with RSS before and at peak."""
    m = _modules(package)
    async with _service(m, database_url) as resources:
        baseline = _rss_kib()
        started = time.perf_counter()
        job = await _run(m, resources, m["sitemaps.tasks"].KIND, {"url": url})
        seconds = time.perf_counter() - started
    result = job.result or {}
    return {
        "status": job.status.value,
        "error": job.error,
        "seconds": seconds,
        "urls_stored": int(result.get("urls_stored", 0)),
        "baseline_rss_kib": baseline,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


async def store(package: str, database_url: str, count: int) -> dict[str, Any]:
    """The sitemap job's store path alone: `count` URLs in `SITEMAP_BATCH_SIZE` transactions."""
    m = _modules(package)
    parsed = m["sitemaps.parser"].SitemapURL
    urls = [parsed(loc, lastmod, "weekly", 0.5) for loc, lastmod in content.entries("s", count)]
    async with _service(m, database_url) as resources:
        batch = int(resources.settings.sitemap_batch_size)
        async with m["db"].task_session() as session:
            job = await m["jobs.service"].create_job(session, kind="sitemap", params={})
            file_id = await m["sitemaps.service"].upsert_file(
                session, url="http://127.0.0.1/store.xml", job_id=job.id
            )
        started = time.perf_counter()
        stored = 0
        for start in range(0, count, batch):
            async with m["db"].task_session() as session:
                stored += await m["sitemaps.service"].store_urls(
                    session, sitemap_id=file_id, urls=urls[start : start + batch]
                )
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "urls_stored": stored, "batch_size": batch}


async def _plain_fetch(client: httpx.AsyncClient, urls: Sequence[str], concurrency: int) -> float:
    """Fetch every URL with a bare client at `concurrency`; return the seconds taken."""
    limit = asyncio.Semaphore(concurrency)

    async def one(url: str) -> int:
        async with limit:
            response = await client.get(url)
            return len(response.content)

    started = time.perf_counter()
    sizes = await asyncio.gather(*(one(url) for url in urls))
    seconds = time.perf_counter() - started
    if not all(sizes):
        raise RuntimeError("the plain client got an empty page")
    return seconds


async def pages(package: str, database_url: str, urls_file: str, rounds: int) -> dict[str, Any]:
    """Page-scraper batches and a plain client on the same pages, round after round.

    Both clients live as long as the process and keep their connections between rounds: a
    plain client built anew each round paid for its TLS context (loading the CA bundle, about
    20 ms of CPU, for plain http) and eight new connections, which the job's client does not.
    """
    m = _modules(package)
    urls: list[str] = json.loads(Path(urls_file).read_text())
    job_rates: list[float] = []
    plain_rates: list[float] = []
    async with _service(m, database_url) as resources:
        concurrency = int(resources.settings.pages_concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=30.0) as plain:
            for _ in range(rounds):
                job, seconds = await _run_timed(m, resources, m["pages.tasks"].KIND, {"urls": urls})
                job_rates.append(len(urls) / seconds)
                result = job.result or {}
                if job.status.value != "succeeded" or result.get("failed"):
                    raise RuntimeError(f"page batch did not succeed: {job.error or result}")
                plain_rates.append(len(urls) / await _plain_fetch(plain, urls, concurrency))
    return {
        "pages": len(urls),
        "concurrency": concurrency,
        "per_host": int(resources.settings.pages_per_host),
        "job_pages_per_s": job_rates,
        "plain_pages_per_s": plain_rates,
    }


def main(argv: Sequence[str]) -> None:
    """Dispatch to a sub-command and print its JSON."""
    command, package, database_url, *rest = argv
    if command == "sitemap":
        output = asyncio.run(sitemap(package, database_url, rest[0]))
    elif command == "store":
        output = asyncio.run(store(package, database_url, int(rest[0])))
    elif command == "pages":
        output = asyncio.run(pages(package, database_url, rest[0], int(rest[1])))
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(output))


if __name__ == "__main__":
    main(sys.argv[1:])
