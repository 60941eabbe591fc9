"""A background job: it gets IDs and parameters, and opens one session per batch."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError

from {{ cookiecutter.project_slug }}.db import task_session
from {{ cookiecutter.project_slug }}.jobs.runner import (
    JobContext,
    JobError,
)

from . import service

KIND = "examples.normalise_emails"
BATCH_SIZE = 500


# --8<-- [start:job]
async def normalise_emails(context: JobContext) -> dict[str, Any]:
    """Trim and lower-case every profile's email, one transaction per batch.

    Each `async with task_session()` block commits when it ends normally and rolls back when it
    raises, and always returns its connection. A failure therefore keeps the batches already
    committed, undoes the batch in flight, and leaves no connection "idle in transaction".
    """
    size = int(context.params.get("batch_size", BATCH_SIZE))
    after: uuid.UUID | None = None
    done = changed = 0
    while True:
        try:
            async with task_session() as session:
                batch = await service.next_batch(session, after=after, size=size)
                changed += await service.normalise_emails(session, profiles=batch)
                done += len(batch)
                await context.progress(session, done=done)
        except IntegrityError as exc:
            message = f"stopped after {done} profiles: two emails are the same once normalised"
            raise JobError(message) from exc
        if len(batch) < size:
            return {"profiles": done, "changed": changed}
        after = batch[-1].id


# --8<-- [end:job]
