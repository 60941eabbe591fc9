"""Job ORM model."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import DateTime, Enum, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from {{ cookiecutter.project_slug }}.db.base import Base, TimestampMixin
from {{ cookiecutter.project_slug }}.observability.jobs import job_origin


class JobStatus(enum.StrEnum):
    """Where a job is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Whether the job has reached its end (nothing will run it again)."""
        return self in FINISHED


FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
"""Statuses a job never leaves."""


class Job(TimestampMixin, Base):
    """One unit of background work, created by a request and run by the task engine.

    A job held by a process (running, or pending in that process's memory) carries a lease:
    `lease_owner` and `lease_expires_at`, renewed by the owner's heartbeat. A lease that expires
    means its owner died; recovery hands the job to another attempt (`attempts` counts them).
    """

    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    kind: Mapped[str] = mapped_column(String(50), index=True)
    status: Mapped[JobStatus] = mapped_column(
        Enum(
            JobStatus,
            name="status",
            native_enum=False,
            create_constraint=True,
            length=20,
            values_callable=lambda members: [member.value for member in members],
        ),
        default=JobStatus.PENDING,
        index=True,
    )
    params: Mapped[dict[str, Any]] = mapped_column(JSONB)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    """What the handler's last committed batch saved, for a retry to resume from."""
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    """How many times a process started the job (a crash leaves the count; a hand-back does not)."""
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    """The process holding the job (`host:pid:nonce`); None while it waits in a durable broker."""
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True), index=True
    )
    """When the owner's lease runs out unless its heartbeat renews it."""
    cancel_requested_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    """Set by `POST /jobs/{id}/cancel`; the handler stops at its next batch."""
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    origin: Mapped[dict[str, str] | None] = mapped_column(JSONB, default=job_origin)
    """Where it was submitted, captured at insert: `request_id` and the W3C trace context."""
