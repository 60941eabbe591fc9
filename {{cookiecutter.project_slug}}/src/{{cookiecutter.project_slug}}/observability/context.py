"""What every log line of a request or a job carries: request ID, job ID and kind.

Plain context variables, set by `RequestMiddleware` and `jobs.observe_job` and read by the log
processor `add_context`; each asyncio task has its own copy, so concurrent requests and jobs
never see each other's IDs.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar
from dataclasses import dataclass

REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID_LENGTH = 128
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=@-]{1,128}")  # 128: MAX_REQUEST_ID_LENGTH
"""A client's `X-Request-ID` is kept when it matches; anything else (spaces, quotes, control
characters, too long) is replaced by a generated ID so that it cannot forge log lines."""


@dataclass(frozen=True, slots=True)
class JobScope:
    """The job whose code is running, and the request that submitted it (if known)."""

    job_id: str
    job_kind: str
    request_id: str | None = None


request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
job_var: ContextVar[JobScope | None] = ContextVar("job", default=None)


def new_request_id() -> str:
    """A fresh request ID: 32 hexadecimal characters."""
    return secrets.token_hex(16)


def valid_request_id(value: str | None) -> str | None:
    """`value` if it is an acceptable request ID, else None."""
    if value and VALID_REQUEST_ID.fullmatch(value):
        return value
    return None


def current_request_id() -> str | None:
    """The ID of the request (or of the request that submitted the job) being served."""
    job = job_var.get()
    if job is not None and job.request_id:
        return job.request_id
    return request_id_var.get()
