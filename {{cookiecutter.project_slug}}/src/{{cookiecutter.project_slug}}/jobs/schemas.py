"""Job response bodies."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from {{ cookiecutter.project_slug }}.jobs.models import Job, JobStatus


class JobAccepted(BaseModel):
    """Answer of every endpoint that starts a job (202)."""

    job_id: uuid.UUID


class JobProgress(BaseModel):
    """How far a job is; `total` is unknown until the job has counted its work."""

    done: int
    total: int | None


class JobRead(BaseModel):
    """A job's state."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    status: JobStatus
    progress: JobProgress
    error: str | None
    result: dict[str, Any] | None
    attempts: int
    """Times a process started the job; above 1 when a crashed attempt was retried."""
    cancel_requested: bool
    """A client asked to cancel; the handler stops at its next batch."""
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @classmethod
    def from_job(cls, job: Job) -> JobRead:
        """Build the response from the ORM row."""
        return cls(
            id=job.id,
            kind=job.kind,
            status=job.status,
            progress=JobProgress(done=job.progress_done, total=job.progress_total),
            error=job.error,
            result=job.result,
            attempts=job.attempts,
            cancel_requested=job.cancel_requested_at is not None,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


class JobPage(BaseModel):
    """One page of jobs, newest first."""

    items: list[JobRead]
    total: int = Field(ge=0)
    limit: int
    offset: int
