"""The service behind a real pgbouncer in transaction mode: correct, bounded, and recovering.

Two `start` worker processes serve several hundred concurrent requests through pgbouncer with
the default settings (prepared-statement caches off): no errors. The same load with asyncpg's
caches on (`DB_STATEMENT_CACHE=true`) fails, so the pass proves the setting, not luck.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.project_slug }}.db.engine import build_engine

from tests.conftest import settings_for
from tests.pooler.conftest import PgBouncer
from tests.pooler.load import (
    LoadReport,
    PoolSamples,
    activity,
    pool_servers,
    run_for,
    run_load,
    sample_until,
)
from tests.serving import Service, running_service

pytestmark = pytest.mark.pooler

WORKERS = 2
"""`WEB_CONCURRENCY`: uvicorn worker processes, each with its own connection pool."""
APP_POOL = {"DB_POOL_SIZE": "5", "DB_MAX_OVERFLOW": "5", "DB_POOL_TIMEOUT": "10"}
"""Per worker: up to 10 client connections to pgbouncer, which multiplexes them on 4 servers."""
SCENARIOS = 250
"""Each scenario is 3 to 5 requests: create, read back, /health/db, duplicates, 422s."""
CONCURRENCY = 250
"""Scenarios in flight at once (all of them: 250 concurrent requests at the start)."""
PREPARED_STATEMENT_ERRORS = ("already exists", "does not exist")


def workers_of(service: Service) -> list[int]:
    """Process ids of the uvicorn supervisor's children (its workers)."""
    pid = service.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in children.read_text().split()] if children.exists() else []


@pytest.fixture(scope="module")
def service(
    pgbouncer: PgBouncer, pooler_database: URL, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """`python -m <package> start` with 2 workers, its DATABASE_URL pointing at pgbouncer."""
    url = pgbouncer.url(pooler_database.database or "")
    settings = {"WEB_CONCURRENCY": str(WORKERS), **APP_POOL}
    with running_service(tmp_path_factory.mktemp("service"), url, settings) as running:
        yield running


@pytest.fixture(scope="module")
async def observer(database_server: URL) -> AsyncIterator[AsyncEngine]:
    """A direct connection to the test server for pg_stat_activity (not through pgbouncer)."""
    engine = build_engine(settings_for(database_server, db_pool_size=1, db_max_overflow=0))
    yield engine
    await engine.dispose()


async def load_with_samples(
    service: Service, pgbouncer: PgBouncer, observer: AsyncEngine, database: str
) -> tuple[LoadReport, PoolSamples]:
    """Run the load while sampling pgbouncer's pools and PostgreSQL's backends."""
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_until(stop, pgbouncer, observer, database))
    try:
        report = await run_load(service.base_url, scenarios=SCENARIOS, concurrency=CONCURRENCY)
    finally:
        stop.set()
    return report, await sampler


def test_pgbouncer_runs_in_transaction_mode_without_prepared_statements(
    pgbouncer: PgBouncer,
) -> None:
    config = {row["key"]: row["value"] for row in pgbouncer.admin("SHOW CONFIG")}
    assert config["pool_mode"] == "transaction"
    assert config["default_pool_size"] == str(pgbouncer.pool_size)
    if pgbouncer.supports_prepared_statements:
        assert config["max_prepared_statements"] == "0"
    else:  # 1.18 and older: no statement tracking at all, named statements break
        assert "max_prepared_statements" not in config
    version = pgbouncer.admin("SHOW VERSION")[0]["version"]
    assert version.startswith("PgBouncer " + ".".join(map(str, pgbouncer.version[:2])))


async def test_load_through_pgbouncer_has_no_errors_and_stays_within_the_pools(
    service: Service,
    pgbouncer: PgBouncer,
    observer: AsyncEngine,
    pooler_database: URL,
) -> None:
    database = pooler_database.database or ""
    assert len(workers_of(service)) >= WORKERS

    report, seen = await load_with_samples(service, pgbouncer, observer, database)

    print(f"\nfix on (caches off): {report.summary()}\n  samples: {seen}")
    assert report.failures == [], report.summary()
    assert len(report.outcomes) >= 3 * SCENARIOS
    assert seen.samples >= 3
    # PostgreSQL never sees more than pgbouncer's pool, whatever the service's pools hold.
    assert 1 <= seen.max_pool_servers <= pgbouncer.pool_size
    assert seen.max_server_rows <= pgbouncer.pool_size
    assert 1 <= seen.max_backends <= pgbouncer.pool_size
    assert seen.max_clients <= WORKERS * (int(APP_POOL["DB_POOL_SIZE"]) * 2)
    assert seen.max_stuck_idle_in_transaction == 0
    # After the load, failed requests (409s, 422s) left no transaction open.
    await asyncio.sleep(0.2)
    backends, stuck = await activity(observer, database)
    idle_in_transaction = await idle_in_transaction_count(observer, database)
    assert (stuck, idle_in_transaction) == (0, 0)
    assert backends <= pgbouncer.pool_size
    pools = [row for row in pgbouncer.admin("SHOW POOLS") if row["database"] == database]
    assert [(row["cl_waiting"], row["sv_active"]) for row in pools] == [("0", "0")]
    assert "prepared statement" not in service.output()


async def idle_in_transaction_count(engine: AsyncEngine, database: str) -> int:
    """Backends of `database` in state `idle in transaction` right now."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = :database AND state LIKE 'idle in transaction%'"
    )
    async with engine.connect() as connection:
        return int((await connection.scalar(query, {"database": database})) or 0)


async def test_control_with_asyncpg_statement_caches_fails(
    pgbouncer: PgBouncer,
    pooler_database: URL,
    tmp_path: Path,
) -> None:
    """The same load with `DB_STATEMENT_CACHE=true` (asyncpg's defaults) must break."""
    url = pgbouncer.url(pooler_database.database or "")
    settings = {"WEB_CONCURRENCY": str(WORKERS), "DB_STATEMENT_CACHE": "true", **APP_POOL}
    with running_service(tmp_path, url, settings) as control:
        report = await run_load(control.base_url, scenarios=SCENARIOS, concurrency=CONCURRENCY)
        log = control.output()

    print(f"\ncontrol (caches on): {report.summary()}")
    print(
        "  log: "
        + ", ".join(f"{message}: {log.count(message)}" for message in PREPARED_STATEMENT_ERRORS)
    )
    assert report.failures, "named prepared statements survived transaction pooling: luck"
    assert all(failure.server_side_failure for failure in report.failures), report.summary()
    assert 'prepared statement "__asyncpg_stmt_' in log
    assert any(message in log for message in PREPARED_STATEMENT_ERRORS)


async def wait_until_healthy(base_url: str, seconds: float = 20.0) -> None:
    """Poll `/health/db` until it answers 200 (the service reaches the database again)."""
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=2.0) as client,
        asyncio.timeout(seconds),
    ):
        while True:
            try:
                if (await client.get("/health/db")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)


async def test_recovers_from_a_pgbouncer_restart_and_terminated_backends(
    service: Service,
    pgbouncer: PgBouncer,
    observer: AsyncEngine,
    pooler_database: URL,
) -> None:
    """In-flight requests fail fast (5xx or connection error); later ones succeed, same process."""
    database = pooler_database.database or ""
    workers = workers_of(service)
    events: dict[str, float] = {}

    async def disrupt() -> None:
        await asyncio.sleep(1.0)
        events["restart"] = time.monotonic()
        await asyncio.to_thread(pgbouncer.restart)
        events["restarted"] = time.monotonic()
        # Disrupt again only once the service answers through the restarted pooler, so the
        # restart's window always holds requests after its recovery, however loaded the machine.
        await wait_until_healthy(service.base_url)
        # Requests begun during the outage may still fail until their pool or connect timeout.
        await asyncio.sleep(float(APP_POOL["DB_POOL_TIMEOUT"]) + 2.0)
        events["terminate"] = time.monotonic()
        async with observer.connect() as connection:
            killed = await connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :database AND pid <> pg_backend_pid()"
                ),
                {"database": database},
            )
        events["terminated_backends"] = float(killed or 0)

    report, _ = await asyncio.gather(
        # No more clients than the service's pooled connections: a failure after the recovery is
        # then a recovery failure, not a request that queued past its pool timeout.
        run_for(service.base_url, seconds=22.0, concurrency=WORKERS * 10),
        disrupt(),
    )

    print(f"\nrecovery: {report.summary()}")
    unexpected = [o for o in report.failures if not o.server_side_failure]
    assert unexpected == [], report.summary()  # only 5xx or connection errors, never a wrong 4xx
    slowest = max(o.finished - o.started for o in report.outcomes)
    # Nothing hung: bounded by the pool timeout (10 s) with room for a loaded machine; the
    # recovery time itself is printed, not asserted (figures belong in benchmarks).
    assert slowest < 25.0
    print(
        f"  pgbouncer down for {events['restarted'] - events['restart']:.2f} s; "
        f"slowest request {slowest:.2f} s; backends terminated: "
        f"{events['terminated_backends']:.0f}"
    )
    windows = (
        ("restart", events["restart"], events["restarted"], events["terminate"]),
        ("terminate", events["terminate"], events["terminate"], float("inf")),
    )
    for label, start, back, end in windows:
        # A request still in flight when the next disruption begins belongs to neither window:
        # its failure would be the next disruption's, not a failed recovery from this one.
        window = [o for o in report.outcomes if start <= o.started and o.finished < end]
        failed = [o for o in window if not o.ok]
        last_failure = max((o.finished for o in failed), default=back)
        print(
            f"  {label}: {len(window)} requests after it, {len(failed)} failed; "
            f"all succeed again {max(0.0, last_failure - back):.2f} s after the database is back"
        )
        later = [o for o in window if o.started > last_failure]
        assert later, f"no request after recovering from the {label}"
        assert all(o.ok for o in later)
    # The same processes served throughout: recovery needed no restart of the service.
    assert service.process.poll() is None
    assert workers_of(service) == workers
    backends, _ = await activity(observer, database)
    assert backends <= pgbouncer.pool_size
    assert pool_servers(pgbouncer.admin("SHOW POOLS"), database)[0] <= pgbouncer.pool_size
