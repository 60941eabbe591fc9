"""What a job carries: its IDs on every log line, its span, and its metrics once it ends.

`job_origin()` is the default of the job row's `origin` column: the submitting request's ID and
trace context, captured when the row is inserted. `observe_job` wraps each attempt (the runner's
`run_job`); `job_ended` is called by the runner when it records a final status.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from {{ cookiecutter.project_slug }}.observability import metrics, tracing
from {{ cookiecutter.project_slug }}.observability.context import (
    JobScope,
    current_request_id,
    job_var,
    valid_request_id,
)

FAILED_STATUSES = frozenset({"failed"})


@dataclass(frozen=True, slots=True)
class _Attempt:
    kind: str
    number: int
    started: float


_attempt: ContextVar[_Attempt | None] = ContextVar("job_attempt", default=None)


def job_origin() -> dict[str, str] | None:
    """Where a job is being submitted from: request ID and W3C trace context (None: nowhere)."""
    origin = tracing.carrier()
    request_id = current_request_id()
    if request_id is not None:
        origin["request_id"] = request_id
    return origin or None


@contextmanager
def observe_job(
    job_id: uuid.UUID, kind: str, *, attempt: int, origin: Mapping[str, Any]
) -> Iterator[None]:
    """Run one attempt of a job with its IDs on every log line and inside its span."""
    request_id = origin.get("request_id")
    scope = JobScope(
        str(job_id), kind, valid_request_id(request_id if isinstance(request_id, str) else None)
    )
    scope_token = job_var.set(scope)
    attempt_token = _attempt.set(_Attempt(kind, attempt, time.perf_counter()))
    try:
        with tracing.job_span(job_id, kind, origin):
            yield
    finally:
        _attempt.reset(attempt_token)
        job_var.reset(scope_token)


def job_ended(status: str) -> None:
    """Count the job that just reached `status` (inside `observe_job`; elsewhere a no-op)."""
    attempt = _attempt.get()
    if attempt is None:
        return
    elapsed = time.perf_counter() - attempt.started
    metrics.observe_job(attempt.kind, status, elapsed, attempt.number)
    tracing.mark_job_status(status, failed=status in FAILED_STATUSES)
