"""Concurrent HTTP load on the database endpoints, and samplers of pgbouncer and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.pooler.conftest import PgBouncer

REQUEST_TIMEOUT = 15.0
"""No request may take longer: a hang fails the test instead of stalling it."""


@dataclass(frozen=True)
class Outcome:
    """One request: what was expected, what came back, and when."""

    kind: str
    expected: int
    status: int | None  # None: the connection failed or timed out
    error: str | None
    started: float
    finished: float

    @property
    def ok(self) -> bool:
        """The expected status came back."""
        return self.status == self.expected

    @property
    def server_side_failure(self) -> bool:
        """A 5xx or a connection error: what a database outage may cause, and nothing else."""
        return self.status is None or self.status >= 500


@dataclass
class LoadReport:
    """Every outcome of a load run."""

    outcomes: list[Outcome] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def failures(self) -> list[Outcome]:
        """Requests that did not get their expected status."""
        return [outcome for outcome in self.outcomes if not outcome.ok]

    def summary(self) -> str:
        """Counts by kind and status, for failure messages and the report."""
        statuses = Counter(
            f"{o.kind}:{o.status if o.status is not None else o.error}" for o in self.outcomes
        )
        rate = len(self.outcomes) / self.elapsed if self.elapsed else 0.0
        return (
            f"{len(self.outcomes)} requests in {self.elapsed:.2f} s ({rate:.0f}/s), "
            f"{len(self.failures)} failed; {dict(sorted(statuses.items()))}"
        )


async def _request(
    client: httpx.AsyncClient,
    report: LoadReport,
    kind: str,
    expected: int,
    method: str,
    path: str,
    body: dict[str, str] | None = None,
) -> httpx.Response | None:
    started = time.monotonic()
    try:
        response = await client.request(method, path, json=body, timeout=REQUEST_TIMEOUT)
    except httpx.HTTPError as exc:
        report.outcomes.append(
            Outcome(kind, expected, None, type(exc).__name__, started, time.monotonic())
        )
        return None
    report.outcomes.append(
        Outcome(kind, expected, response.status_code, None, started, time.monotonic())
    )
    return response


async def scenario(client: httpx.AsyncClient, report: LoadReport, number: int, tag: str) -> None:
    """Create a profile and read it back, check /health/db; some duplicates (409) and 422s."""
    email = f"load-{tag}-{number}@example.com"
    body = {"name": f"Load {number}", "email": email}
    created = await _request(client, report, "create", 201, "POST", "/api/v1/profiles", body)
    if created is not None and created.status_code == 201:
        profile = f"/api/v1/profiles/{created.json()['id']}"
        await _request(client, report, "read", 200, "GET", profile)
        if number % 5 == 0:  # a unique violation: the transaction fails and must be rolled back
            await _request(client, report, "duplicate", 409, "POST", "/api/v1/profiles", body)
    await _request(client, report, "health", 200, "GET", "/health/db")
    if number % 7 == 0:  # rejected before any SQL
        bad = {"name": "", "email": "not-an-email"}
        await _request(client, report, "invalid", 422, "POST", "/api/v1/profiles", bad)


CONNECTIONS_PER_CLIENT = 10
"""httpx slows down sharply with hundreds of connections in one pool: spread them over clients."""


@asynccontextmanager
async def clients_for(base_url: str, concurrency: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """HTTP clients with `concurrency` connections in all, 10 per client."""
    count = max(1, -(-concurrency // CONNECTIONS_PER_CLIENT))
    limits = httpx.Limits(
        max_connections=CONNECTIONS_PER_CLIENT, max_keepalive_connections=CONNECTIONS_PER_CLIENT
    )
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT)
            )
            for _ in range(count)
        ]


async def run_load(base_url: str, *, scenarios: int, concurrency: int) -> LoadReport:
    """Run `scenarios` scenarios, `concurrency` at a time; all start as early as allowed."""
    report = LoadReport()
    tag = uuid.uuid4().hex[:8]
    gate = asyncio.Semaphore(concurrency)

    async def one(number: int) -> None:
        async with gate:
            await scenario(clients[number % len(clients)], report, number, tag)

    started = time.monotonic()
    async with clients_for(base_url, concurrency) as clients:
        await asyncio.gather(*(one(number) for number in range(scenarios)))
    report.elapsed = time.monotonic() - started
    return report


async def run_for(base_url: str, *, seconds: float, concurrency: int) -> LoadReport:
    """Run scenarios back to back on `concurrency` lanes for `seconds`."""
    report = LoadReport()
    tag = uuid.uuid4().hex[:8]
    deadline = time.monotonic() + seconds
    counter = iter(range(10**9))

    async def lane(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            await scenario(client, report, next(counter), tag)

    started = time.monotonic()
    async with clients_for(base_url, concurrency) as clients:
        await asyncio.gather(*(lane(clients[lane_ % len(clients)]) for lane_ in range(concurrency)))
    report.elapsed = time.monotonic() - started
    return report


@dataclass
class PoolSamples:
    """The largest values seen while sampling pgbouncer and pg_stat_activity."""

    samples: int = 0
    max_pool_servers: int = 0
    """pgbouncer `SHOW POOLS`: all `sv_*` connections of the database's pool."""
    max_server_rows: int = 0
    """pgbouncer `SHOW SERVERS`: server connections to the database."""
    max_backends: int = 0
    """`pg_stat_activity`: client backends connected to the database."""
    max_clients: int = 0
    """pgbouncer `SHOW POOLS`: `cl_active + cl_waiting` (the service's pool connections)."""
    max_stuck_idle_in_transaction: int = 0
    """Backends `idle in transaction` for more than a second."""


ACTIVITY = text(
    "SELECT count(*) AS backends, count(*) FILTER (WHERE state = 'idle in transaction' "
    "AND now() - state_change > interval '1 second') AS stuck "
    "FROM pg_stat_activity WHERE datname = :database AND backend_type = 'client backend'"
)


async def activity(engine: AsyncEngine, database: str) -> tuple[int, int]:
    """(backends, backends idle in transaction for over a second) of `database`."""
    async with engine.connect() as connection:
        row = (await connection.execute(ACTIVITY, {"database": database})).one()
    return int(row.backends), int(row.stuck)


def pool_servers(rows: list[dict[str, str]], database: str) -> tuple[int, int]:
    """(server connections, client connections) of `database`'s pools in `SHOW POOLS`."""
    servers = clients = 0
    for row in rows:
        if row["database"] != database:
            continue
        servers += sum(int(value) for key, value in row.items() if key.startswith("sv_"))
        clients += int(row["cl_active"]) + int(row["cl_waiting"])
    return servers, clients


async def sample_until(
    stop: asyncio.Event,
    pgbouncer: PgBouncer,
    engine: AsyncEngine,
    database: str,
    interval: float = 0.1,
) -> PoolSamples:
    """Sample pgbouncer and PostgreSQL every `interval` seconds until `stop` is set."""
    seen = PoolSamples()
    while not stop.is_set():
        pools, servers, (backends, stuck) = await asyncio.gather(
            pgbouncer.admin_async("SHOW POOLS"),
            pgbouncer.admin_async("SHOW SERVERS"),
            activity(engine, database),
        )
        pool_total, clients = pool_servers(pools, database)
        server_rows = sum(1 for row in servers if row["database"] == database)
        seen.samples += 1
        seen.max_pool_servers = max(seen.max_pool_servers, pool_total)
        seen.max_server_rows = max(seen.max_server_rows, server_rows)
        seen.max_backends = max(seen.max_backends, backends)
        seen.max_clients = max(seen.max_clients, clients)
        seen.max_stuck_idle_in_transaction = max(seen.max_stuck_idle_in_transaction, stuck)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    return seen
