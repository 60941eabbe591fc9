"""Stage 2 of `make bench`: every figure, measured side by side, printed and written as JSON.

Runs in the generated projects' venv with the bake's `src/` on `PYTHONPATH` (stage 1,
`python -m benchmarks`, bakes and prepares both). Each figure is a ratio of variants measured in
the same run, interleaved round by round, so a busy shared machine slows both sides alike.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from benchmarks import content, hostile, lint
from benchmarks.common import (
    Context,
    background,
    execute,
    free_port,
    log,
    median,
    ratio,
    run_checked,
    uvicorn_server,
    wait_for_port,
)
from benchmarks.keys import COMPARE, TARGETS
from benchmarks.load import LoadResult, loader, run_load

Figures = dict[str, Any]

HTTP_VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "raw": ("benchmarks.baseline:raw_app", {}),
    "core": ("benchmarks.baseline:core_app", {}),
    "idiomatic": ("benchmarks.baseline:idiomatic_app", {}),
    "idiomatic_caches_off": ("benchmarks.baseline:idiomatic_caches_off_app", {}),
    "idiomatic_cached": ("benchmarks.baseline:idiomatic_cached_app", {}),
    "app": ("{package}.main:create_app", {}),
    "app_statement_cache": ("{package}.main:create_app", {"DB_STATEMENT_CACHE": "true"}),
}
PAGE_HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
LARGE_PARTS = 10  # the large sitemap job: an index of ten sitemaps (500,000 URLs in a full run)
PGBOUNCER_POOL = 10


def _settings_default(ctx: Context, name: str) -> Any:
    settings = importlib.import_module(f"{ctx.package}.settings")
    return settings.Settings.model_fields[name].default


# --- the database of this run -------------------------------------------------------------


@contextmanager
def bench_database(ctx: Context) -> Iterator[list[str]]:
    """Create the run's database, migrate it, seed profiles; drop it afterwards. Yields ids."""
    admin = ctx.url("postgres")
    asyncio.run(execute(admin, f'DROP DATABASE IF EXISTS "{ctx.database}" WITH (FORCE)'))
    asyncio.run(execute(admin, f'CREATE DATABASE "{ctx.database}"'))
    try:
        run_checked(
            [sys.executable, "-m", ctx.package, "migrate"],
            env=ctx.env(DATABASE_URL=ctx.url(), LOG_LEVEL="WARNING"),
            cwd=ctx.workdir,
        )
        yield asyncio.run(_seed(ctx))
    finally:
        asyncio.run(execute(admin, f'DROP DATABASE IF EXISTS "{ctx.database}" WITH (FORCE)'))


async def _seed(ctx: Context) -> list[str]:
    from benchmarks.common import connect

    connection = await connect(ctx.url())
    try:
        await connection.execute(
            "INSERT INTO profiles (name, email) SELECT 'Person ' || i, 'person' || i || "
            "'@example.com' FROM generate_series(1, 1000) AS i"
        )
        rows = await connection.fetch("SELECT id FROM profiles ORDER BY random() LIMIT 200")
    finally:
        await connection.close()
    return [str(row["id"]) for row in rows]


# --- servers ---------------------------------------------------------------------------------


def _load(ctx: Context, base: str, ids: Sequence[str], clients: int, seconds: float) -> LoadResult:
    return run_load(
        f"{base}/api/v1/profiles/", ids, connections=clients, seconds=seconds, workdir=ctx.workdir
    )


# --- 1. request throughput -------------------------------------------------------------------


async def _sessions_opened(ctx: Context) -> int:
    """Connections the run's database has accepted so far (`pg_stat_database.sessions`)."""
    from benchmarks.common import connect

    connection = await connect(ctx.url("postgres"))
    try:
        count = await connection.fetchval(
            "SELECT sessions FROM pg_stat_database WHERE datname = $1", ctx.database
        )
    finally:
        await connection.close()
    return int(count or 0)


def bench_http(ctx: Context, ids: Sequence[str]) -> Figures:
    """All variants serve at once; rounds interleave them so each sees the same machine."""
    rounds, seconds, clients = (1, 1.0, 16) if ctx.quick else (5, 5.0, 64)
    runs: dict[str, list[LoadResult]] = {name: [] for name in HTTP_VARIANTS}
    opened: dict[str, list[int]] = {name: [] for name in HTTP_VARIANTS}
    with ExitStack() as stack:
        bases = {
            name: stack.enter_context(uvicorn_server(ctx, name, target, extra))
            for name, (target, extra) in HTTP_VARIANTS.items()
        }
        for base in bases.values():  # warm-up: pools filled, code paths hot
            _load(ctx, base, ids, clients, 1.0)
        order = list(HTTP_VARIANTS)
        for round_ in range(rounds):
            for name in order[round_ % len(order) :] + order[: round_ % len(order)]:
                before = asyncio.run(_sessions_opened(ctx))
                result = _load(ctx, bases[name], ids, clients, seconds)
                opened[name].append(asyncio.run(_sessions_opened(ctx)) - before)
                log(
                    f"http {name}: {result.rps:.0f} req/s, p99 {result.p99_ms:.1f} ms, "
                    f"{opened[name][-1]} connection(s) opened"
                )
                runs[name].append(result)
    figures: Figures = {
        "loader": loader(),
        "clients": clients,
        "seconds": seconds,
        "rounds": rounds,
    }
    raw_rps = median([r.rps for r in runs["raw"]])
    for name, results in runs.items():
        rps = median([r.rps for r in results])
        figures[name] = {
            "rps": round(rps, 1),
            "p50_ms": round(median([r.p50_ms for r in results]), 2),
            "p99_ms": round(median([r.p99_ms for r in results]), 2),
            "errors": sum(r.errors for r in results),
            "to_raw": ratio(rps, raw_rps),
            "rounds_rps": [round(r.rps, 1) for r in results],
            # Server connections the variant opened during a round (its pool churning).
            "connections_opened": round(median(opened[name])),
        }
    figures["app_to_raw"] = figures["app"]["to_raw"]
    for name in ("idiomatic", "idiomatic_caches_off", "idiomatic_cached"):
        figures[f"app_to_{name}"] = ratio(figures["app"]["rps"], figures[name]["rps"])
    return figures


# --- 4. connection economy -------------------------------------------------------------------


async def _sample_connections(ctx: Context, stop: asyncio.Event) -> list[int]:
    from benchmarks.common import connect

    connection = await connect(ctx.url("postgres"))
    samples: list[int] = []
    try:
        while not stop.is_set():
            count = await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = $1 AND backend_type = 'client backend'",
                ctx.database,
            )
            samples.append(int(count))
            await asyncio.sleep(0.02)
    finally:
        await connection.close()
    return samples


async def _load_and_sample(
    ctx: Context, base: str, ids: Sequence[str], clients: int, seconds: float
) -> tuple[LoadResult, list[int]]:
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_connections(ctx, stop))
    try:
        result = await asyncio.to_thread(_load, ctx, base, ids, clients, seconds)
    finally:
        stop.set()
    return result, await sampler


def _economy(ctx: Context, base: str, ids: Sequence[str], limit: int) -> Figures:
    clients, seconds = (50, 1.0) if ctx.quick else (500, 10.0)
    result, samples = asyncio.run(_load_and_sample(ctx, base, ids, clients, seconds))
    peak = max(samples, default=0)
    log(f"connections: {clients} clients, peak {peak} server connections (limit {limit})")
    return {
        "requests": result.requests,
        "rps": round(result.rps, 1),
        "p99_ms": round(result.p99_ms, 2),
        "errors": result.errors,
        "samples": len(samples),
        "peak_server_connections": peak,
        "limit": limit,
        "within_limit": peak <= limit and result.errors == 0,
    }


@contextmanager
def pgbouncer(ctx: Context) -> Iterator[int]:
    """pgbouncer in transaction mode in front of the run's database (as user postgres if root)."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        raise FileNotFoundError("pgbouncer is not installed (apt-get install -y pgbouncer)")
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="bench-pgbouncer-"))
    (directory / "users.txt").write_text('"postgres" ""\n')
    (directory / "pgbouncer.ini").write_text(
        f"[databases]\n{ctx.database} = host=127.0.0.1 port=5432 dbname={ctx.database}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {directory}/users.txt\n"
        f"pool_mode = transaction\ndefault_pool_size = {PGBOUNCER_POOL}\n"
        "max_client_conn = 2000\nreserve_pool_size = 0\n"
        f"logfile = {directory}/pgbouncer.log\npidfile = {directory}/pgbouncer.pid\n"
    )
    args = [binary, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
        for item in directory.iterdir():
            shutil.chown(item, "postgres")
        args = ["runuser", "-u", "postgres", "--", *args]
    try:
        with background(args, env=dict(os.environ), cwd=directory, log=ctx.workdir / "pgb.out"):
            wait_for_port(port, timeout=10)
            yield port
    finally:
        pid_file = directory / "pgbouncer.pid"
        if pid_file.exists():  # runuser may not pass SIGTERM on: stop our pgbouncer by its pid
            subprocess.run(["kill", pid_file.read_text().strip()], check=False)
        shutil.rmtree(directory, ignore_errors=True)


def bench_connections(ctx: Context, ids: Sequence[str]) -> Figures:
    """Many clients against the app: server connections stay within the pool, no errors."""
    limit = int(_settings_default(ctx, "db_pool_size")) + int(
        _settings_default(ctx, "db_max_overflow")
    )
    figures: Figures = {"clients": 50 if ctx.quick else 500}
    with uvicorn_server(ctx, "economy", HTTP_VARIANTS["app"][0], {}) as base:
        figures["direct"] = _economy(ctx, base, ids, limit)
    try:
        with (
            pgbouncer(ctx) as port,
            uvicorn_server(
                ctx,
                "economy-pgbouncer",
                HTTP_VARIANTS["app"][0],
                {},
                database_url=ctx.url(port=port),
            ) as base,
        ):
            figures["pgbouncer"] = _economy(ctx, base, ids, PGBOUNCER_POOL)
    except (OSError, RuntimeError, TimeoutError) as exc:
        figures["pgbouncer"] = {"skipped": f"{type(exc).__name__}: {exc}"}
    return figures


# --- 2. sitemap ingest -----------------------------------------------------------------------


@contextmanager
def static_site(ctx: Context, directory: Path) -> Iterator[int]:
    """Serve `directory` on the loopback page hosts; yield the port."""
    port = free_port()
    args = [sys.executable, "-m", "benchmarks.static_server", str(directory), str(port)]
    args += PAGE_HOSTS
    with background(args, env=ctx.env(), cwd=ctx.workdir, log=ctx.workdir / "static.log"):
        for host in PAGE_HOSTS:
            wait_for_port(port, host)
        yield port


def _job(ctx: Context, *args: str) -> dict[str, Any]:
    out = run_checked(
        [sys.executable, "-m", "benchmarks.jobs", *args], env=ctx.env(), cwd=ctx.workdir
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _sitemap_job(ctx: Context, url: str, expected: int) -> dict[str, Any]:
    asyncio.run(execute(ctx.url(), "TRUNCATE jobs CASCADE"))
    result = _job(ctx, "sitemap", ctx.package, ctx.url(), url)
    if result["status"] != "succeeded" or result["urls_stored"] != expected:
        raise RuntimeError(f"sitemap job stored {result['urls_stored']} of {expected}: {result}")
    return result


async def _copy(ctx: Context, rows: list[tuple[Any, ...]]) -> float:
    from benchmarks.common import connect

    connection = await connect(ctx.url())
    try:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS bench_copy_urls (LIKE sitemap_urls INCLUDING ALL)"
        )
        await connection.execute("TRUNCATE bench_copy_urls")
        started = time.perf_counter()
        await connection.copy_records_to_table(
            "bench_copy_urls",
            records=rows,
            columns=["sitemap_id", "url", "lastmod", "changefreq", "priority"],
        )
        return time.perf_counter() - started
    finally:
        await connection.close()


def bench_sitemap(ctx: Context, site: Path, port: int) -> Figures:
    """The real sitemap job vs COPY of the same rows (and the job's store path alone); the rate
    and peak RSS at 1x and `LARGE_PARTS` x the URLs."""
    urls, rounds = (500, 1) if ctx.quick else (50_000, 5)
    origin = f"http://127.0.0.1:{port}"
    entries = content.write_sitemaps(site, origin=origin, urls=urls, parts=LARGE_PARTS)
    rows = [(1, loc, lastmod, "weekly", 0.5) for loc, lastmod in entries]
    jobs: list[dict[str, Any]] = []
    copies: list[float] = []
    stores: list[float] = []
    for _ in range(rounds):
        jobs.append(_sitemap_job(ctx, f"{origin}/sitemap-single.xml", urls))
        copies.append(asyncio.run(_copy(ctx, rows)))
        asyncio.run(execute(ctx.url(), "TRUNCATE jobs CASCADE"))
        stores.append(_job(ctx, "store", ctx.package, ctx.url(), str(urls))["seconds"])
        log(f"sitemap {urls}: job {jobs[-1]['seconds']:.2f} s, COPY {copies[-1]:.2f} s")
    large_urls = urls * LARGE_PARTS
    large = _sitemap_job(ctx, f"{origin}/sitemap-index.xml", large_urls)
    log(f"sitemap {large_urls} via index: job {large['seconds']:.2f} s")
    job_seconds = median([job["seconds"] for job in jobs])
    copy_seconds = median(copies)
    peak = median([job["peak_rss_kib"] for job in jobs]) / 1024
    growth = median([job["peak_rss_kib"] - job["baseline_rss_kib"] for job in jobs]) / 1024
    large_growth = (large["peak_rss_kib"] - large["baseline_rss_kib"]) / 1024
    return {
        "urls": urls,
        "rounds": rounds,
        "job_seconds": round(job_seconds, 3),
        "job_urls_per_s": round(urls / job_seconds, 1),
        "copy_seconds": round(copy_seconds, 3),
        "copy_rows_per_s": round(urls / copy_seconds, 1),
        "job_to_copy": ratio(copy_seconds, job_seconds),
        "store_seconds": round(median(stores), 3),
        "store_to_copy": ratio(copy_seconds, median(stores)),
        "peak_rss_mib": round(peak, 1),
        "rss_growth_mib": round(growth, 1),
        "large_urls": large_urls,
        "large_job_urls_per_s": round(large_urls / large["seconds"], 1),
        "large_to_single_rate": ratio(large_urls / large["seconds"], urls / job_seconds),
        "large_peak_rss_mib": round(large["peak_rss_kib"] / 1024, 1),
        "large_rss_growth_mib": round(large_growth, 1),
        "rss_growth_ratio": ratio(large_growth, growth),
    }


# --- 3. batch scraper ------------------------------------------------------------------------


def bench_pages(ctx: Context, site: Path, port: int) -> Figures:
    """A page-scraper batch vs a plain client fetching the same pages at the same concurrency."""
    count, rounds = (8, 1) if ctx.quick else (100, 25)
    names = content.write_pages(site, count=count)
    urls = [
        f"http://{PAGE_HOSTS[i % len(PAGE_HOSTS)]}:{port}/{name}" for i, name in enumerate(names)
    ]
    urls_file = ctx.workdir / "page-urls.json"
    urls_file.write_text(json.dumps(urls))
    result = _job(ctx, "pages", ctx.package, ctx.url(), str(urls_file), str(rounds))
    job_rate = median(result["job_pages_per_s"])
    plain_rate = median(result["plain_pages_per_s"])
    # Each job batch runs right before a plain one: the ratio is the median of those pairs, so
    # a slower moment of the shared machine (the plain rate moved 2x between runs) cancels out.
    paired = median(
        [
            job / plain
            for job, plain in zip(
                result["job_pages_per_s"], result["plain_pages_per_s"], strict=True
            )
        ]
    )
    log(f"pages: job {job_rate:.0f} pages/s, plain client {plain_rate:.0f} pages/s")
    sizes = [(site / name).stat().st_size for name in names]
    return {
        "pages": count,
        "hosts": len(PAGE_HOSTS),
        "mean_page_kib": round(sum(sizes) / len(sizes) / 1024, 1),
        "concurrency": result["concurrency"],
        "per_host": result["per_host"],
        "rounds": rounds,
        "job_pages_per_s": round(job_rate, 1),
        "plain_pages_per_s": round(plain_rate, 1),
        "job_to_plain": round(paired, 3),
    }


# --- 5. sessionlint --------------------------------------------------------------------------


def _timed(args: Sequence[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(list(args), env=env, cwd=cwd, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: findings, which site-packages certainly have
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]!r}")
    return seconds


def bench_sessionlint(ctx: Context) -> Figures:
    """`python -m sessionlint check` vs `ruff check` (no cache) on the same library sources."""
    modules = ["fastapi"] if ctx.quick else ["sqlalchemy", "fastapi", "pydantic"]
    roots = [Path(importlib.import_module(name).__file__ or "").parent for name in modules]
    files = [path for root in roots for path in root.rglob("*.py")]
    lines = sum(len(path.read_bytes().splitlines()) for path in files)
    paths = [str(root) for root in roots]
    ruff = str(Path(sys.executable).parent / "ruff")
    ruff_args = [ruff, "check", "--no-cache", "--isolated", "--exit-zero", "--quiet",
                 "--select", "F,B,ASYNC,TID", *paths]  # fmt: skip
    lint_args = [sys.executable, "-m", "sessionlint", "check", "--no-config", *paths]
    rounds = 1 if ctx.quick else 3
    times: dict[str, list[float]] = {"sessionlint": [], "ruff": [], "ruff_1": []}
    for _ in range(rounds):
        times["sessionlint"].append(_timed(lint_args, ctx.env(), ctx.workdir))
        times["ruff"].append(_timed(ruff_args, ctx.env(), ctx.workdir))
        times["ruff_1"].append(_timed(ruff_args, ctx.env(RAYON_NUM_THREADS="1"), ctx.workdir))
    rate = {name: lines / median(values) for name, values in times.items()}
    log(f"sessionlint: {rate['sessionlint']:.0f} lines/s, ruff {rate['ruff']:.0f} lines/s")
    return {
        "modules": modules,
        "files": len(files),
        "lines": lines,
        "ruff_rules": "F,B,ASYNC,TID",
        "sessionlint_seconds": round(median(times["sessionlint"]), 3),
        "sessionlint_lines_per_s": round(rate["sessionlint"], 1),
        "ruff_seconds": round(median(times["ruff"]), 3),
        "ruff_lines_per_s": round(rate["ruff"], 1),
        "ruff_1_thread_lines_per_s": round(rate["ruff_1"], 1),
        "sessionlint_to_ruff": ratio(rate["sessionlint"], rate["ruff"]),
        "sessionlint_to_ruff_1_thread": ratio(rate["sessionlint"], rate["ruff_1"]),
    }


# --- 6. template -----------------------------------------------------------------------------


def bench_template(ctx: Context, bake_seconds: float) -> Figures:
    """Bake time (measured by stage 1) and the generated project's whole test suite."""
    target = ["tests/test_settings.py"] if ctx.quick else []
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *target]
    env = ctx.env(TEST_DATABASE_URL=ctx.url("postgres"))
    env["PYTHONPATH"] = str(ctx.project / "src")
    started = time.perf_counter()
    done = subprocess.run(
        args, env=env, cwd=ctx.project, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    log(f"template: generated test suite {seconds:.1f} s ({summary})")
    return {
        "bake_seconds": round(bake_seconds, 3),
        "test_suite_seconds": round(seconds, 1),
        "test_suite_outcome": "passed" if done.returncode == 0 else f"failed: {summary}",
        "test_suite_summary": re.sub(r"=+", "", summary).strip(),
        "test_suite_scope": "tests/test_settings.py (quick)" if ctx.quick else "all tests",
    }


# --- report ----------------------------------------------------------------------------------


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.3f}{unit}" if abs(value) < 10 else f"{value:,.0f}{unit}"
    return f"{value}{unit}"


Row = tuple[str, str, str, str]


def _http_rows(figures: Figures) -> list[Row]:
    rows: list[Row] = []
    http = figures["http"]
    for name in HTTP_VARIANTS:
        item = http[name]
        rows.append((
            f"GET profile: {name}",
            f"{_fmt(item['rps'])} req/s  p50 {item['p50_ms']} ms  p99 {item['p99_ms']} ms"
            f"  err {item['errors']}  opened {item['connections_opened']}",
            f"{_fmt(item['to_raw'])} of raw",
            ">= 0.5 (far goal)" if name == "app" else "",
        ))  # fmt: skip
    for name, goal in (
        ("idiomatic", ">= 1.1"),
        ("idiomatic_caches_off", ""),
        ("idiomatic_cached", ">= 1.0"),
    ):
        rows.append((
            f"GET profile: app / {name}",
            f"{_fmt(http['app']['rps'])} / {_fmt(http[name]['rps'])} req/s",
            f"{_fmt(http[f'app_to_{name}'])} of {name}", goal,
        ))  # fmt: skip
    return rows


def _sitemap_rows(figures: Figures) -> list[Row]:
    rows: list[Row] = []
    sm = figures["sitemap"]
    rows.append((
        f"sitemap job, {sm['urls']} URLs",
        f"{_fmt(sm['job_urls_per_s'])} URLs/s ({sm['job_seconds']} s)",
        f"{_fmt(sm['job_to_copy'])} of COPY", ">= 0.3",
    ))  # fmt: skip
    rows.append((f"COPY, {sm['urls']} rows", f"{_fmt(sm['copy_rows_per_s'])} rows/s", "", ""))
    rows.append((
        f"sitemap store only, {sm['urls']} URLs", f"{sm['store_seconds']} s (no fetch, no parse)",
        f"{_fmt(sm['store_to_copy'])} of COPY", "the job's ceiling",
    ))  # fmt: skip
    rows.append((
        f"sitemap job, {sm['large_urls']} URLs (index)",
        f"{_fmt(sm['large_job_urls_per_s'])} URLs/s",
        f"{_fmt(sm['large_to_single_rate'])} of the {sm['urls']} rate", "linear: ~1",
    ))  # fmt: skip
    rows.append((
        "sitemap job peak RSS",
        f"{sm['peak_rss_mib']} MiB ({sm['urls']}) / {sm['large_peak_rss_mib']} MiB "
        f"({sm['large_urls']})",
        f"growth x{_fmt(sm['rss_growth_ratio'])} for x{LARGE_PARTS} URLs", "bounded",
    ))  # fmt: skip
    return rows


def _pages_rows(figures: Figures) -> list[Row]:
    pg = figures["pages"]
    return [(
        f"page batch, {pg['pages']} pages",
        f"{_fmt(pg['job_pages_per_s'])} pages/s (plain client {_fmt(pg['plain_pages_per_s'])})",
        f"{_fmt(pg['job_to_plain'])} of plain", ">= 0.8 (median of paired batches)",
    )]  # fmt: skip


def _connections_rows(figures: Figures) -> list[Row]:
    rows: list[Row] = []
    for key in ("direct", "pgbouncer"):
        item = figures["connections"][key]
        if "skipped" in item:
            rows.append((f"{figures['connections']['clients']} clients, {key}", item["skipped"],
                         "", ""))  # fmt: skip
            continue
        rows.append((
            f"{figures['connections']['clients']} clients, {key}",
            f"peak {item['peak_server_connections']} server conns, {item['errors']} errors, "
            f"{_fmt(item['rps'])} req/s",
            f"limit {item['limit']}", "ok" if item["within_limit"] else "EXCEEDED",
        ))  # fmt: skip
    return rows


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} ms"


def _latency(item: Figures) -> str:
    unanswered = f", {item['unanswered']} unanswered" if item["unanswered"] else ""
    kinds = ", ".join(f"{count} {kind}" for kind, count in item["error_kinds"].items())
    errors = f", errors: {kinds}" if item["errors"] else ""
    return (
        f"/health p50 {_ms(item['p50_ms'])}  p99 {_ms(item['p99_ms'])}  "
        f"max {_ms(item['max_ms'])} ({item['probes']} probes{unanswered}{errors})"
    )


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} MiB"


def _job_cell(job: Figures) -> str:
    seconds = "n/a" if job["seconds"] is None else f"{job['seconds']:,.1f} s"
    if job.get("error"):
        detail = f": {job['error'][:50]}"
    elif job.get("skipped"):
        detail = f", {job['skipped']} skipped: {job['skipped_reasons'][0][:40]}"
    else:
        detail = ""
    status = job["status"] if job["finished"] else f"NOT FINISHED ({job['status']})"
    return f"job {status} after {seconds}{detail}"


def _hostile_rows(figures: Figures) -> list[Row]:
    hs = figures["hostile"]
    target = f"p99 <= {hs['target_p99_ms']:.0f} ms"
    names = {
        "baseline": "no job",
        "bomb": f"gzip bomb ({hs['bomb_wire_bytes']:,} B -> {hs['bomb_comment_mib']:g} MiB "
        "comment)",
        "bomb_index": f"index of {hs['bomb_children']} bombs",
        "trickle": f"trickle ({hs['trickle_seconds']:g} s, a few bytes every "
        f"{hs['trickle_tick']:g} s)",
    }
    rows: list[Row] = []
    for key, label in names.items():
        item = hs[key]
        cell = _job_cell(item["job"]) if "job" in item else ""
        rows.append(
            (f"/health, {label}", _latency(item), cell, "" if key == "baseline" else target)
        )
    return rows


def _memory_rows(figures: Figures) -> list[Row]:
    mem = figures["memory"]
    size = f"{mem['sitemap_bytes'] / 1e6:.1f} MB {mem['served']}"
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(mem["statuses"].items()))
    return [
        (
            f"{mem['jobs']} sitemap jobs x {mem['urls_per_job']} URLs ({size})",
            f"RSS baseline {_mib(mem['baseline_rss_mib'])}, peak {_mib(mem['peak_rss_mib'])}, "
            f"after {_mib(mem['after_rss_mib'])}",
            f"{statuses} in {mem['seconds']:,.1f} s",
            f"peak < {mem['target_peak_rss_mib']:.0f} MiB, after near baseline",
        ),
        (f"/health, {mem['jobs']} large jobs", _latency(mem["health"]), "", ""),
    ]


def _sessionlint_rows(figures: Figures) -> list[Row]:
    sl = figures["sessionlint"]
    return [(
        f"sessionlint, {sl['lines']} lines",
        f"{_fmt(sl['sessionlint_lines_per_s'])} lines/s (ruff {_fmt(sl['ruff_lines_per_s'])}, "
        f"1 thread {_fmt(sl['ruff_1_thread_lines_per_s'])})",
        f"{_fmt(sl['sessionlint_to_ruff'])} of ruff", "",
    )]  # fmt: skip


def _template_rows(figures: Figures) -> list[Row]:
    tp = figures["template"]
    return [
        ("bake", f"{tp['bake_seconds']} s", "", ""),
        (
            "generated test suite", f"{tp['test_suite_seconds']} s ({tp['test_suite_summary']})",
            "", tp["test_suite_outcome"],
        ),
    ]  # fmt: skip


ROWS = {
    "http": _http_rows,
    "sitemap": _sitemap_rows,
    "pages": _pages_rows,
    "connections": _connections_rows,
    "hostile": _hostile_rows,
    "memory": _memory_rows,
    "sessionlint": _sessionlint_rows,
    "lint": lint.rows,
    "template": _template_rows,
}
SECTIONS = tuple(ROWS)
"""Every figure, in the order of the table (`--only` picks some)."""


def table(figures: Figures) -> str:
    """The figures as a plain-text table."""
    rows = [row for name, rows_of in ROWS.items() if name in figures for row in rows_of(figures)]
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def targets(figures: Figures) -> dict[str, dict[str, Any]]:
    """Each target of the figures measured with its value and whether it was met."""
    out: dict[str, dict[str, Any]] = {}
    for key, (op, threshold) in TARGETS.items():
        section, name = key.split(".")
        if section not in figures:
            continue
        value = figures[section][name]
        met = value is not None and COMPARE[op](value, threshold)
        out[key] = {"value": value, "op": op, "target": threshold, "met": met}
    return out


def _sections(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = set(names) - set(SECTIONS)
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose among {', '.join(SECTIONS)}")
    return names


def measure(ctx: Context, args: argparse.Namespace) -> Figures:
    """Run the figures chosen with `--only` (all by default), in the order of the table."""
    wanted = set(args.only)
    sizes = hostile.sizes_from(args, quick=ctx.quick)
    figures: Figures = {}
    with bench_database(ctx) as ids:
        site = ctx.workdir / "site"
        site.mkdir()
        if wanted & {"http", "connections", "sitemap", "pages"}:
            with static_site(ctx, site) as port:
                steps: list[tuple[str, Callable[[], Figures]]] = [
                    ("http", lambda: bench_http(ctx, ids)),
                    ("connections", lambda: bench_connections(ctx, ids)),
                    ("sitemap", lambda: bench_sitemap(ctx, site, port)),
                    ("pages", lambda: bench_pages(ctx, site, port)),
                ]
                for name, step in steps:
                    if name in wanted:
                        log(f"figure: {name}")
                        figures[name] = step()
        if wanted & {"hostile", "memory"}:
            with hostile.hostile_site(ctx, sizes) as origin:
                if "hostile" in wanted:
                    log("figure: hostile")
                    figures["hostile"] = hostile.bench_hostile(ctx, sizes, origin)
                if "memory" in wanted:
                    log("figure: memory")
                    figures["memory"] = hostile.bench_memory(ctx, sizes, origin)
    if "sessionlint" in wanted:
        figures["sessionlint"] = bench_sessionlint(ctx)
    if "lint" in wanted:
        log("figure: lint")
        figures["lint"] = lint.bench_lint(ctx.project, ctx.env(), quick=ctx.quick)
    if "template" in wanted:
        figures["template"] = bench_template(ctx, args.bake_seconds)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; print the table; write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--package", default="my_service")
    parser.add_argument("--server-url", required=True)
    parser.add_argument("--bake-seconds", type=float, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--only", type=_sections, default=SECTIONS, help=f"comma-separated: {','.join(SECTIONS)}"
    )
    hostile.add_arguments(parser)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    ctx = Context(
        project=args.project.resolve(),
        package=args.package,
        server_url=args.server_url,
        database=f"bench_{os.getpid()}_{random.randrange(16**6):06x}",  # noqa: S311
        quick=args.quick,
        workdir=workdir,
    )
    started = time.perf_counter()
    try:
        figures = measure(ctx, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report = {
        "meta": {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "quick": ctx.quick,
            "sections": list(figures),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "python": platform.python_version(),
            "loader": loader(),
            "total_seconds": round(time.perf_counter() - started, 1),
        },
        "figures": figures,
        "targets": targets(figures),
    }
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(table(figures))
    for key, item in report["targets"].items():
        print(f"target {key}: {item['value']} ({item['op']} {item['target']}): "
              f"{'met' if item['met'] else 'MISSED'}")  # fmt: skip
    print(f"written {args.output} in {report['meta']['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
