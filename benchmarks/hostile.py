"""Hostile sitemaps and memory under load: a real service process, measured from outside.

Each scenario starts the baked service afresh (uvicorn, one process, the in-memory task engine,
`OUTBOUND_ALLOWLIST=127.0.0.1`) on the run's database, drives it only over HTTP, and kills it at
the end whatever happened. A hostile server (`benchmarks.hostile_server`, another process) serves
the sitemaps. Every wait has a deadline: a job that never finishes is reported as such.

- `bench_hostile`: `/health` latency (p50, p99, max) probed at a steady rate while one job
  processes each hostile sitemap (gzip bomb, index of bombs, trickle), plus a baseline without
  a job; with each job's final status, error and duration.
- `bench_memory`: RSS of the service process (and of any children it starts) sampled while
  N large sitemap jobs submitted at once run to the end: baseline before, peak, after a settle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import math
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import (
    Context,
    Service,
    background,
    descendants,
    execute,
    free_port,
    log,
    rss_of,
    uvicorn_service,
    wait_for_port,
)
from benchmarks.keys import FINAL_STATUSES, HOSTILE_JOBS, TARGETS

Figures = dict[str, Any]

FINAL = frozenset(FINAL_STATUSES)
HEALTH_P99_TARGET_MS = TARGETS["hostile.worst_p99_ms"][1]
PEAK_RSS_TARGET_MIB = TARGETS["memory.peak_rss_mib"][1]
MIB = 1024 * 1024
PROBE_CONNECTIONS = 32
"""Connections the `/health` prober may open at once (probes beyond wait for one)."""
PROBE_CATCH_UP = 10.0
"""Seconds probes already due when a window closes may still take to count as answered."""


@dataclass(frozen=True)
class Sizes:
    """What the hostile and memory figures measure; `--quick` and BENCH_ARGS override them."""

    bomb_mib: float = 45.0
    """Size of the one XML comment the gzip bomb inflates to."""
    bomb_children: int = 3
    """Bombs listed by the sitemap index."""
    trickle_seconds: float = 60.0
    """How long the trickling response takes to send a small sitemap."""
    trickle_tick: float = 1.0
    """Seconds between the trickle's writes of a few bytes."""
    baseline_seconds: float = 5.0
    """How long `/health` is probed without a job."""
    hostile_timeout: float = 180.0
    """Seconds a hostile job may take before the harness gives up on it."""
    memory_jobs: int = 20
    """Large sitemap jobs submitted at once."""
    memory_urls: int = 50_000
    """Entries per large sitemap."""
    memory_entry_bytes: int = 950
    """Bytes of each `<url>` entry (loc and lastmod): 50,000 x 950 is about 47.5 MB."""
    memory_gzip: bool = False
    """Serve the large sitemaps gzip-compressed instead of plain."""
    memory_timeout: float = 900.0
    """Seconds all large jobs may take before the harness gives up on them."""
    settle_seconds: float = 5.0
    """Pause before the baseline RSS and after the last job, before the final RSS."""
    probe_interval_ms: float = 20.0
    """One `/health` probe falls due every this many milliseconds."""
    rss_interval_ms: float = 50.0
    """RSS is sampled every this many milliseconds."""
    service_env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment of the service (`--service-env JOB_CONCURRENCY=4`)."""


QUICK = Sizes(
    bomb_mib=1.0,
    trickle_seconds=3.0,
    trickle_tick=0.5,
    baseline_seconds=1.0,
    hostile_timeout=60.0,
    memory_jobs=3,
    memory_urls=300,
    memory_timeout=120.0,
    settle_seconds=1.0,
)
_NOT_OPTIONS = ("service_env",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one `--<size>` option per field of `Sizes` (defaults: full, or `QUICK` with --quick)."""
    group = parser.add_argument_group("hostile sitemaps and memory (defaults: full / --quick)")
    full = Sizes()
    for item in dataclasses.fields(Sizes):
        if item.name in _NOT_OPTIONS:
            continue
        flag = "--" + item.name.replace("_", "-")
        default, quick = getattr(full, item.name), getattr(QUICK, item.name)
        if isinstance(default, bool):
            group.add_argument(flag, action="store_true", default=None, help="(default: off)")
        else:
            group.add_argument(
                flag, type=type(default), default=None, help=f"(default: {default} / {quick})"
            )
    group.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the measured service (repeatable)",
    )


def sizes_from(args: argparse.Namespace, *, quick: bool) -> Sizes:
    """The sizes of this run: the mode's defaults, overridden by the options given."""
    chosen = {
        item.name: getattr(args, item.name)
        for item in dataclasses.fields(Sizes)
        if item.name not in _NOT_OPTIONS and getattr(args, item.name) is not None
    }
    env = dict(entry.split("=", 1) for entry in args.service_env)
    return dataclasses.replace(QUICK if quick else Sizes(), **chosen, service_env=env)


# --- processes -------------------------------------------------------------------------------


@contextlib.contextmanager
def hostile_site(ctx: Context, sizes: Sizes) -> Iterator[str]:
    """Run the hostile server on 127.0.0.1; yield its origin."""
    port = free_port()
    args = [
        sys.executable, "-m", "benchmarks.hostile_server", str(port),
        "--bomb-bytes", str(int(sizes.bomb_mib * MIB)),
        "--bomb-children", str(sizes.bomb_children),
        "--trickle-seconds", str(sizes.trickle_seconds),
        "--trickle-tick", str(sizes.trickle_tick),
        "--big-urls", str(sizes.memory_urls),
        "--big-entry-bytes", str(sizes.memory_entry_bytes),
        *(["--big-gzip"] if sizes.memory_gzip else []),
    ]  # fmt: skip
    with background(args, env=ctx.env(), cwd=ctx.workdir, log=ctx.workdir / "hostile.log"):
        wait_for_port(port, timeout=180)  # the bodies are built before the port opens
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def measured_service(ctx: Context, name: str, sizes: Sizes) -> Iterator[Service]:
    """A fresh service process on its default settings (so the in-memory task engine), allowed
    to reach 127.0.0.1, plus `--service-env`; the shell's settings variables are not passed."""
    extra = {"OUTBOUND_ALLOWLIST": "127.0.0.1", **sizes.service_env}
    with contextlib.ExitStack() as stack:
        try:
            service = stack.enter_context(
                uvicorn_service(
                    ctx, name, "{package}.main:create_app", extra, defaults_only=True,
                    start_timeout=60,
                )
            )  # fmt: skip
        except (TimeoutError, RuntimeError):
            log(f"the service {name} did not start; its log:")
            _log_tail(ctx.workdir / f"{name}.log", lines=40)
            raise
        yield service


def _log_tail(path: Path, lines: int = 15) -> None:
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines()[-lines:]:
            log(f"  | {line[:300]}")


# --- what is sampled -------------------------------------------------------------------------


@dataclass
class Probes:
    """`/health` latencies of one window, in ms, counted from when each probe fell due."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    """Answers other than 200 (`HTTP 503`) and transport errors (`ReadError`), counted."""
    unanswered: int = 0

    def error(self, kind: str) -> None:
        """Count one failed probe."""
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def figures(self) -> Figures:
        """p50, p99 and max (nearest rank) and the counts."""
        ordered = sorted(self.latencies_ms)
        return {
            "p50_ms": _rank(ordered, 0.50),
            "p99_ms": _rank(ordered, 0.99),
            "max_ms": round(ordered[-1], 1) if ordered else None,
            "probes": len(ordered),
            "over_200_ms": sum(1 for value in ordered if value > HEALTH_P99_TARGET_MS),
            "errors": sum(self.errors.values()),
            "error_kinds": dict(sorted(self.errors.items())),
            "unanswered": self.unanswered,
        }


def _rank(ordered: Sequence[float], quantile: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, math.ceil(quantile * len(ordered)) - 1)], 1)


async def _until(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))


async def probe_health(base: str, interval_ms: float, stop: asyncio.Event) -> Probes:
    """Probe `/health` every `interval_ms` until `stop`; return every probe's latency.

    Each probe is sent when it falls due by the clock, whether or not earlier ones have been
    answered (up to `PROBE_CONNECTIONS` at once, then they queue), and its latency counts from
    when it fell due: a stall shows as long as a client arriving during it would wait (no
    coordinated omission). When the window closes, probes already due get `PROBE_CATCH_UP`
    seconds to be answered; the rest count with their wait so far (`unanswered`).
    """
    probes = Probes()
    interval = interval_ms / 1000
    limits = httpx.Limits(
        max_connections=PROBE_CONNECTIONS, max_keepalive_connections=PROBE_CONNECTIONS
    )
    # No client timeout: a probe waits as long as the service makes it, until the window closes.
    timeout = httpx.Timeout(24 * 3600.0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as client:

        async def one(due: float) -> None:
            try:
                response = await client.get("/health")
                if response.status_code != 200:
                    probes.error(f"HTTP {response.status_code}")
            except httpx.HTTPError as exc:
                probes.error(type(exc).__name__)
            probes.latencies_ms.append((time.perf_counter() - due) * 1e3)

        pending: dict[asyncio.Task[None], float] = {}
        due = time.perf_counter()
        while not stop.is_set():
            task = asyncio.create_task(one(due))
            pending[task] = due
            task.add_done_callback(lambda done: pending.pop(done, None))
            due += interval
            await _until(stop, due - time.perf_counter())
        if pending:
            await asyncio.wait(set(pending), timeout=PROBE_CATCH_UP)
        now = time.perf_counter()
        for task, fell_due in list(pending.items()):
            task.cancel()
            probes.latencies_ms.append((now - fell_due) * 1e3)
            probes.unanswered += 1
        await asyncio.gather(*pending, return_exceptions=True)
    return probes


@dataclass
class Memory:
    """RSS samples of the service process and of its descendants, in KiB."""

    main_kib: list[int] = field(default_factory=list)
    tree_kib: list[int] = field(default_factory=list)
    max_processes: int = 1

    def sample(self, pid: int) -> int:
        """Read the RSS now; return the tree's."""
        children = descendants(pid)
        main = rss_of(pid)
        tree = main + sum(rss_of(child) for child in children)
        self.main_kib.append(main)
        self.tree_kib.append(tree)
        self.max_processes = max(self.max_processes, 1 + len(children))
        return tree


async def sample_memory(pid: int, interval_ms: float, stop: asyncio.Event, into: Memory) -> None:
    """Sample the RSS of `pid` and its descendants every `interval_ms` until `stop`."""
    while not stop.is_set():
        into.sample(pid)
        await _until(stop, interval_ms / 1000)


# --- jobs over HTTP --------------------------------------------------------------------------


@dataclass
class Outcome:
    """How one job ended, as the service's API reports it."""

    status: str = "not submitted"
    error: str | None = None
    seconds: float | None = None
    """From the submission to the poll that saw the final status (or to giving up)."""
    run_seconds: float | None = None
    """`finished_at - started_at` of the job row."""
    urls_stored: int | None = None
    skipped: list[str] = field(default_factory=list)
    """Reasons of the child sitemaps the job skipped (an index's failed children)."""

    def figures(self) -> Figures:
        """As JSON."""
        return {
            "status": self.status,
            "finished": self.status in FINAL,
            "error": self.error,
            "seconds": None if self.seconds is None else round(self.seconds, 2),
            "run_seconds": None if self.run_seconds is None else round(self.run_seconds, 2),
            "urls_stored": self.urls_stored,
            "skipped": len(self.skipped),
            "skipped_reasons": sorted(set(self.skipped))[:3],
        }


async def submit(client: httpx.AsyncClient, url: str, outcome: Outcome) -> str | None:
    """POST the sitemap; return the job id, or note the refusal in `outcome`."""
    try:
        response = await client.post("/api/v1/sitemaps", json={"url": url})
    except httpx.HTTPError as exc:
        outcome.error = f"submission failed: {type(exc).__name__}: {exc}"
        return None
    if response.status_code != 202:
        outcome.error = f"submission answered {response.status_code}: {response.text[:300]}"
        return None
    outcome.status = "pending"
    job_id: str = response.json()["job_id"]
    return job_id


def _record(outcome: Outcome, job: Mapping[str, Any], submitted: float) -> None:
    outcome.status = str(job["status"])
    if outcome.status not in FINAL:
        return
    outcome.seconds = time.perf_counter() - submitted
    outcome.error = job.get("error")
    if job.get("started_at") and job.get("finished_at"):
        started, finished = (
            dt.datetime.fromisoformat(job[key]) for key in ("started_at", "finished_at")
        )
        outcome.run_seconds = (finished - started).total_seconds()
    result = job.get("result") or {}
    if "urls_stored" in result:
        outcome.urls_stored = int(result["urls_stored"])
    outcome.skipped = [str(item.get("reason")) for item in result.get("skipped") or []]


async def wait_for_jobs(
    client: httpx.AsyncClient,
    jobs: Mapping[str, Outcome],
    *,
    submitted: float,
    timeout: float,
    service: Service,
    poll: float,
) -> None:
    """Poll each unfinished job until all are final, the deadline passes or the service exits."""
    deadline = submitted + timeout
    while True:
        pending = [job_id for job_id, outcome in jobs.items() if outcome.status not in FINAL]
        if not pending:
            return
        code = service.process.poll()
        if code is not None or time.perf_counter() >= deadline:
            for job_id in pending:
                outcome = jobs[job_id]
                outcome.seconds = time.perf_counter() - submitted
                outcome.error = (
                    f"the service exited ({code}) while the job was {outcome.status}"
                    if code is not None
                    else f"still {outcome.status} after {timeout:.0f} s: the harness gave up"
                )
            return
        for job_id in pending:
            remaining = deadline - time.perf_counter()
            try:
                response = await client.get(
                    f"/api/v1/jobs/{job_id}", timeout=max(0.5, min(10.0, remaining))
                )
            except httpx.HTTPError:
                continue  # the service is busy or frozen: the deadline decides
            if response.status_code == 200:
                _record(jobs[job_id], response.json(), submitted)
        await asyncio.sleep(poll)


async def _wire_bytes(url: str) -> int:
    """Bytes the hostile server sends for `url`."""
    total = 0
    async with httpx.AsyncClient(timeout=60) as client, client.stream("GET", url) as response:
        async for chunk in response.aiter_raw():
            total += len(chunk)
    return total


# --- 7. hostile sitemaps ---------------------------------------------------------------------


async def _scenario(service: Service, sizes: Sizes, url: str | None) -> Figures:
    """Probe `/health` while one job processes `url` (or, without a URL, for the baseline)."""
    stop = asyncio.Event()
    memory = Memory()
    prober = asyncio.create_task(probe_health(service.base, sizes.probe_interval_ms, stop))
    sampler = asyncio.create_task(
        sample_memory(service.process.pid, sizes.rss_interval_ms, stop, memory)
    )
    outcome = Outcome()
    try:
        if url is None:
            await asyncio.sleep(sizes.baseline_seconds)
        else:
            async with httpx.AsyncClient(base_url=service.base, timeout=10.0) as client:
                submitted = time.perf_counter()
                job_id = await submit(client, url, outcome)
                if job_id is not None:
                    await wait_for_jobs(
                        client,
                        {job_id: outcome},
                        submitted=submitted,
                        timeout=sizes.hostile_timeout,
                        service=service,
                        poll=0.2,
                    )
    finally:
        stop.set()
        probes = await prober
        await sampler
    figures = probes.figures()
    figures["peak_rss_mib"] = round(max(memory.tree_kib, default=0) / 1024, 1)
    if url is not None:
        figures["job"] = outcome.figures()
    return figures


def bench_hostile(ctx: Context, sizes: Sizes, origin: str) -> Figures:
    """`/health` latency with no job, then while one job processes each hostile sitemap."""
    urls = {
        "baseline": None,
        "bomb": f"{origin}/bomb.xml.gz",
        "bomb_index": f"{origin}/bomb-index.xml",
        "trickle": f"{origin}/trickle.xml",
    }
    figures: Figures = {
        "probe_interval_ms": sizes.probe_interval_ms,
        "bomb_comment_mib": sizes.bomb_mib,
        "bomb_wire_bytes": asyncio.run(_wire_bytes(urls["bomb"] or "")),
        "bomb_children": sizes.bomb_children,
        "trickle_seconds": sizes.trickle_seconds,
        "trickle_tick": sizes.trickle_tick,
        "timeout_seconds": sizes.hostile_timeout,
        "service_env": dict(sizes.service_env),
    }
    for name, url in urls.items():
        asyncio.run(execute(ctx.url(), "TRUNCATE jobs CASCADE"))
        with measured_service(ctx, f"hostile-{name}", sizes) as service:
            result = asyncio.run(_scenario(service, sizes, url))
            job = result.get("job", {})
            log(
                f"hostile {name}: /health p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
                f"max {result['max_ms']} ms over {result['probes']} probes"
                + (f"; job {job['status']} after {job['seconds']} s" if job else "")
                + ("" if job.get("finished", True) else " (NOT FINISHED)")
                + (f": {job['error']}" if job.get("error") else "")
                + (f"; skipped {job['skipped_reasons']}" if job.get("skipped") else "")
            )
            if (job and job["status"] not in FINAL) or result["errors"]:
                _log_tail(service.log)
        figures[name] = result
    figures["worst_p99_ms"] = max(
        (figures[name]["p99_ms"] or 0.0 for name in HOSTILE_JOBS), default=None
    )
    figures["target_p99_ms"] = HEALTH_P99_TARGET_MS
    return figures


# --- 8. memory under load --------------------------------------------------------------------


async def _under_load(service: Service, sizes: Sizes, urls: Sequence[str]) -> Figures:
    pid = service.process.pid
    memory = Memory()
    await asyncio.sleep(sizes.settle_seconds)
    baseline = memory.sample(pid)
    stop = asyncio.Event()
    prober = asyncio.create_task(probe_health(service.base, sizes.probe_interval_ms, stop))
    sampler = asyncio.create_task(sample_memory(pid, sizes.rss_interval_ms, stop, memory))
    outcomes = [Outcome() for _ in urls]
    limits = httpx.Limits(max_connections=len(urls) + 2)
    try:
        async with httpx.AsyncClient(base_url=service.base, timeout=30.0, limits=limits) as client:
            submitted = time.perf_counter()
            pairs = list(zip(urls, outcomes, strict=True))
            ids = await asyncio.gather(*(submit(client, url, outcome) for url, outcome in pairs))
            jobs = {job_id: out for job_id, out in zip(ids, outcomes, strict=True) if job_id}
            await wait_for_jobs(
                client,
                jobs,
                submitted=submitted,
                timeout=sizes.memory_timeout,
                service=service,
                poll=1.0,
            )
            seconds = time.perf_counter() - submitted
    finally:
        stop.set()
        probes = await prober
        await sampler
    await asyncio.sleep(sizes.settle_seconds)
    after = memory.sample(pid) if service.process.poll() is None else None
    statuses: dict[str, int] = {}
    for outcome in outcomes:
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    errors = sorted({outcome.error for outcome in outcomes if outcome.error})
    peak = max(memory.tree_kib)
    return {
        "seconds": round(seconds, 1),
        "statuses": statuses,
        "finished": sum(1 for outcome in outcomes if outcome.status in FINAL),
        "urls_stored": sum(outcome.urls_stored or 0 for outcome in outcomes),
        "errors": errors[:5],
        "baseline_rss_mib": round(baseline / 1024, 1),
        "peak_rss_mib": round(peak / 1024, 1),
        "after_rss_mib": None if after is None else round(after / 1024, 1),
        "retained_mib": None if after is None else round((after - baseline) / 1024, 1),
        "peak_main_rss_mib": round(max(memory.main_kib) / 1024, 1),
        "max_processes": memory.max_processes,
        "rss_samples": len(memory.tree_kib),
        "health": probes.figures(),
    }


def bench_memory(ctx: Context, sizes: Sizes, origin: str) -> Figures:
    """RSS of the service while `memory_jobs` large sitemap jobs submitted at once run."""
    suffix = ".xml.gz" if sizes.memory_gzip else ".xml"
    urls = [f"{origin}/big/{i}{suffix}" for i in range(sizes.memory_jobs)]
    figures: Figures = {
        "jobs": sizes.memory_jobs,
        "urls_per_job": sizes.memory_urls,
        "entry_bytes": sizes.memory_entry_bytes,
        "sitemap_bytes": asyncio.run(_wire_bytes(f"{origin}/big/0.xml")),
        "served": "gzip" if sizes.memory_gzip else "plain",
        "wire_bytes": asyncio.run(_wire_bytes(urls[0])) if sizes.memory_gzip else None,
        "settle_seconds": sizes.settle_seconds,
        "timeout_seconds": sizes.memory_timeout,
        "service_env": dict(sizes.service_env),
        "target_peak_rss_mib": PEAK_RSS_TARGET_MIB,
    }
    asyncio.run(execute(ctx.url(), "TRUNCATE jobs CASCADE"))
    try:
        with measured_service(ctx, "memory", sizes) as service:
            figures.update(asyncio.run(_under_load(service, sizes, urls)))
            if figures["finished"] < sizes.memory_jobs or figures["health"]["errors"]:
                _log_tail(service.log)
    finally:
        asyncio.run(execute(ctx.url(), "TRUNCATE jobs CASCADE"))  # gives the disk space back
    log(
        f"memory: {sizes.memory_jobs} jobs, RSS baseline {figures['baseline_rss_mib']} MiB, "
        f"peak {figures['peak_rss_mib']} MiB, after {figures['after_rss_mib']} MiB; "
        f"{figures['statuses']} in {figures['seconds']} s"
    )
    return figures
