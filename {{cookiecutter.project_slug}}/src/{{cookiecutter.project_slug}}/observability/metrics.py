"""Prometheus metrics, named after the OpenTelemetry semantic conventions (docs/operations.md).

Dots become underscores and units a suffix: `http.server.request.duration` (seconds) is
`http_server_request_duration_seconds`, its attribute `http.route` the label `http_route`.
With `PROMETHEUS_MULTIPROC_DIR` set (several uvicorn workers), every process writes its figures
there and `/metrics` adds them up (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import hmac
import os
{%- if cookiecutter.include_sitemaps or cookiecutter.include_places or cookiecutter.include_pages %}
import time
{%- endif %}
from typing import Any
{% if cookiecutter.include_sitemaps or cookiecutter.include_places or cookiecutter.include_pages %}
import httpx
{%- endif %}
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from starlette.requests import Request
from starlette.responses import Response

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
"""Other methods are counted as `_OTHER` (semantic conventions), so clients cannot add labels."""
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
"""The buckets the semantic conventions advise for HTTP durations."""
JOB_DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400)

HTTP_SERVER_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests.",
    ["http_request_method", "http_route", "http_response_status_code"],
    buckets=DURATION_BUCKETS,
)
DB_CONNECTIONS = Gauge(
    "db_client_connection_count",
    "Connections of the pool by state: idle (in the pool) or used (checked out).",
    ["db_client_connection_pool_name", "db_client_connection_state"],
    multiprocess_mode="livesum",
)
DB_MAX = Gauge(
    "db_client_connection_max",
    "Connections the pool may open (pool size plus overflow).",
    ["db_client_connection_pool_name"],
    multiprocess_mode="livesum",
)
DB_PENDING = Gauge(
    "db_client_connection_pending_requests",
    "Requests waiting for a connection from the pool (or for a new one to open).",
    ["db_client_connection_pool_name"],
    multiprocess_mode="livesum",
)
DB_TIMEOUTS = Counter(
    "db_client_connection_timeouts",
    "Requests for a connection that timed out (DB_POOL_TIMEOUT) while the pool was full.",
    ["db_client_connection_pool_name"],
)
JOBS_FINISHED = Counter(
    "jobs_finished",
    "Jobs that reached a final status (succeeded, failed, cancelled).",
    ["job_kind", "job_status"],
)
JOB_DURATION = Histogram(
    "job_duration_seconds",
    "Duration of the attempt that ended a job, by final status.",
    ["job_kind", "job_status"],
    buckets=JOB_DURATION_BUCKETS,
)
JOB_ATTEMPTS = Histogram(
    "job_attempts",
    "Attempts a job took to reach its final status.",
    ["job_kind", "job_status"],
    buckets=(1, 2, 3, 5, 10),
)
{%- if cookiecutter.include_sitemaps or cookiecutter.include_places or cookiecutter.include_pages %}
HTTP_CLIENT_DURATION = Histogram(
    "http_client_request_duration_seconds",
    "Outbound requests until their response headers, by status code or error type.",
    ["http_request_method", "http_response_status_code", "error_type"],
    buckets=DURATION_BUCKETS,
)
{%- endif %}


def method_label(method: str) -> str:
    """The `http_request_method` label: the method, or `_OTHER` for unknown ones."""
    return method if method in KNOWN_METHODS else "_OTHER"


class _Series:
    """The series of one histogram by label values, each looked up once and kept.

    `labels` validates and locks on every call (about 2 µs); a kept series costs one `observe`.
    At most `SERIES_CACHED` are kept: the labels of served and outbound requests are few in
    practice (`method_label` bounds the one a client chooses), and past that bound a series is
    still counted, only looked up each time.
    """

    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        self._kept: dict[tuple[str, ...], Histogram] = {}

    def __call__(self, *labels: str) -> Histogram:
        series = self._kept.get(labels)
        if series is None:
            series = self._histogram.labels(*labels)
            if len(self._kept) < SERIES_CACHED:
                self._kept[labels] = series
        return series


SERIES_CACHED = 4096
_request_series = _Series(HTTP_SERVER_DURATION)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one served HTTP request."""
    _request_series(method_label(method), route, str(status)).observe(seconds)


def observe_job(kind: str, status: str, seconds: float, attempts: int) -> None:
    """Count one job that reached its final status."""
    JOBS_FINISHED.labels(kind, status).inc()
    JOB_DURATION.labels(kind, status).observe(seconds)
    JOB_ATTEMPTS.labels(kind, status).observe(attempts)


def observe_pool(engine: AsyncEngine) -> None:
    """Keep the pool figures of `engine` current: connections by state, pending, timeouts.

    The pool's own `_do_get` (and, in multiprocess mode, `_do_return_conn`) is wrapped on this
    instance: SQLAlchemy has no event before a checkout waits, nor one for a timeout. In one
    process the connection counts are read from the pool when scraped, at no cost per checkout;
    in multiprocess mode each checkout and return writes them. Other pools are left alone.
    """
    pool = engine.sync_engine.pool
    if not isinstance(pool, QueuePool) or pool.__dict__.get("_observed"):
        return
    url = engine.url
    name = f"{url.host}:{url.port}/{url.database}"
    idle = DB_CONNECTIONS.labels(name, "idle")
    used = DB_CONNECTIONS.labels(name, "used")
    pending = DB_PENDING.labels(name)
    timeouts = DB_TIMEOUTS.labels(name)
    DB_MAX.labels(name).set(pool.size() + pool._max_overflow)
    do_get, do_return = pool._do_get, pool._do_return_conn
    shared = multiprocess_dir() is not None

    def refresh() -> None:
        idle.set(pool.checkedin())
        used.set(pool.checkedout())

    def observed_get() -> Any:
        pending.inc()
        try:
            record = do_get()
        except PoolTimeoutError:
            timeouts.inc()
            raise
        finally:
            pending.dec()
        if shared:
            refresh()
        return record

    def observed_return(record: Any) -> None:
        do_return(record)
        refresh()

    pool._do_get = observed_get  # type: ignore[method-assign]
    if shared:
        pool._do_return_conn = observed_return  # type: ignore[method-assign]
        refresh()
    else:
        idle.set_function(pool.checkedin)
        used.set_function(pool.checkedout)
    pool.__dict__["_observed"] = True
{%- if cookiecutter.include_sitemaps or cookiecutter.include_places or cookiecutter.include_pages %}


_client_series = _Series(HTTP_CLIENT_DURATION)


class MeteredTransport(httpx.AsyncBaseTransport):
    """Times each outbound request (each redirect hop) until its response headers arrive."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send through the inner transport; record the status code or the error's type."""
        started = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
        except Exception as exc:
            elapsed = time.perf_counter() - started
            _client_series(method_label(request.method), "", type(exc).__name__).observe(elapsed)
            raise
        elapsed = time.perf_counter() - started
        _client_series(method_label(request.method), str(response.status_code), "").observe(elapsed)
        return response

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self._inner.aclose()
{%- endif %}


def multiprocess_dir() -> str | None:
    """The shared directory of multiprocess mode, if set."""
    return os.environ.get(MULTIPROCESS_DIR_VARIABLE) or None


def exposition() -> bytes:
    """The metrics in Prometheus' text format: this process's, or all processes' (multiprocess)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def process_exiting() -> None:
    """In multiprocess mode, drop this process's live gauges (pool figures) at shutdown."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


async def metrics_endpoint(request: Request) -> Response:
    """`GET /metrics`; with `METRICS=token`, only for `Authorization: Bearer <METRICS_TOKEN>`."""
    settings = request.app.state.settings
    if settings.metrics_mode == "token":
        expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return Response(
                "a valid METRICS_TOKEN is required\n",
                status_code=401,
                media_type="text/plain",
                headers={"WWW-Authenticate": "Bearer"},
            )
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
