"""The job rate limit: submissions per API key, `JOB_RATE_LIMIT` (`30/minute`), 429 beyond.

The guard hangs on `jobs.queue.EnqueueDep`, which every job-submitting route takes: a new job
route is limited, and needs a key, without a line of its own.
{% if cookiecutter.task_engine == "redis" %}
Counted with the `limits` package in a moving window: in this process's memory by default, in
Redis when the jobs go through Redis (`TASK_BROKER=redis`), so that every web process shares
one count.
{%- else %}
Counted with the `limits` package in a moving window, in this process's memory: each web
process counts on its own (`limits` also has Redis and other shared storages).
{%- endif %}
"""

from __future__ import annotations

import logging
import math
import time
from typing import Annotated, {% if cookiecutter.task_engine == "redis" %}Any, {% endif %}cast

from fastapi import Depends, Request, status
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage{% if cookiecutter.task_engine == "redis" %}, RedisStorage{% endif %}
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
{%- if cookiecutter.task_engine == "redis" %}
from redis.asyncio import ConnectionPool
{%- endif %}

from {{ cookiecutter.project_slug }}.edge.keys import CallerDep
from {{ cookiecutter.project_slug }}.errors import DomainError, ServiceUnavailableError
from {{ cookiecutter.project_slug }}.settings import Settings

logger = logging.getLogger(__name__)
NAMESPACE = "{{ cookiecutter.project_slug }}:jobs"
"""The counters' name in the storage, next to the caller's key id."""


class RateLimitedError(DomainError):
    """Too many job submissions with this key; `Retry-After` says when the next one fits."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS


class JobRateLimiter:
    """Counts job submissions per caller in a moving window."""

    def __init__(
        self,
        rate: RateLimitItem,
        storage: MemoryStorage{% if cookiecutter.task_engine == "redis" %} | RedisStorage{% endif %},
{%- if cookiecutter.task_engine == "redis" %}
        pool: ConnectionPool | None = None,
{%- endif %}
    ) -> None:
        self.rate = rate
        self.storage = storage
        self._window = MovingWindowRateLimiter(storage)
{%- if cookiecutter.task_engine == "redis" %}
        self._pool = pool
{%- endif %}

    async def check(self, caller: str) -> None:
        """Count one submission by `caller`; raise 429 with `Retry-After` beyond the rate."""
        try:
            if await self._window.hit(self.rate, NAMESPACE, caller):
                return
            window = await self._window.get_window_stats(self.rate, NAMESPACE, caller)
        except StorageError as exc:
            logger.warning("the rate limiter's storage failed: %s", exc)
            raise ServiceUnavailableError(
                "the rate limiter is unavailable; try again later"
            ) from exc
        wait = max(1, math.ceil(window.reset_time - time.time()))
        raise RateLimitedError(
            f"job submissions per API key are limited to {self.rate}; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )

    async def aclose(self) -> None:
        """Release the storage's connections."""
{%- if cookiecutter.task_engine == "redis" %}
        if self._pool is not None:
            await self._pool.aclose()
{%- endif %}


def build_job_limiter(settings: Settings) -> JobRateLimiter | None:
    """The limiter `JOB_RATE_LIMIT` asks for, or None when it is empty."""
    if not settings.job_rate_limit:
        return None
    rate = parse(settings.job_rate_limit)
{%- if cookiecutter.task_engine == "redis" %}
    if settings.task_broker == "redis":
        url = settings.redis_url.get_secret_value()
        pool = ConnectionPool.from_url(url)  # ours, so that `aclose` can release it
        shared: dict[str, Any] = {"connection_pool": pool}
        storage = RedisStorage(
            f"async+{url}", implementation="redispy", wrap_exceptions=True, **shared
        )
        return JobRateLimiter(rate, storage, pool)
{%- endif %}
    return JobRateLimiter(rate, MemoryStorage(wrap_exceptions=True))


async def guard_job_submission(request: Request, caller: CallerDep) -> None:
    """Dependency of `EnqueueDep`: a valid key (whatever the method), then the rate limit."""
    limiter = cast(JobRateLimiter | None, getattr(request.app.state, "job_limiter", None))
    if limiter is not None:
        await limiter.check(caller)


JobSubmissionGuard = Annotated[None, Depends(guard_job_submission)]
"""Take it in a dependency that starts outbound work; `jobs.queue.EnqueueDep` does."""
