"""Route handlers: the request's session is the transaction; the dependency ends it.

Mounted by tests/test_docs.py on a test app. In a feature of your own, add the router to the API
in `main.py` like `profiles_router`.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status
from sqlalchemy.exc import IntegrityError

from {{ cookiecutter.project_slug }}.db import SessionDep
from {{ cookiecutter.project_slug }}.jobs import queue
from {{ cookiecutter.project_slug }}.jobs.schemas import JobAccepted
from {{ cookiecutter.project_slug }}.profiles import service as profiles
from {{ cookiecutter.project_slug }}.profiles.schemas import (
    ProfileCreate,
    ProfileRead,
)

from . import service, tasks

router = APIRouter(prefix="/examples/profiles", tags=["examples"])


# --8<-- [start:unit-of-work]
@router.post("/{profile_id}/replace", status_code=status.HTTP_201_CREATED)
async def replace_profile(
    profile_id: uuid.UUID, body: ProfileCreate, session: SessionDep
) -> ProfileRead:
    """Delete a profile and create its replacement: both are stored, or neither is.

    No commit here: the session dependency commits when the handler returns, before the
    response is sent. If anything below raises (404 for an unknown id, 409 for a taken email),
    the dependency rolls back, and the delete is undone with the rest.
    """
    await profiles.delete_profile(session, profile_id=profile_id)
    replacement = await profiles.create_profile(session, data=body)
    return ProfileRead.model_validate(replacement)


# --8<-- [end:unit-of-work]


# --8<-- [start:savepoint]
@router.put("/by-email")
async def ensure_profile(body: ProfileCreate, session: SessionDep) -> ProfileRead:
    """Create the profile, or return the one that already has this email.

    The insert runs in a savepoint (`begin_nested`). When it fails, only the savepoint is rolled
    back: the request's transaction stays usable, instead of answering every later statement with
    "current transaction is aborted, commands ignored until end of transaction block".
    """
    try:
        async with session.begin_nested():
            profile = await profiles.create_profile(session, data=body)
    except IntegrityError:
        existing = await service.find_by_email(session, email=body.email)
        if existing is None:  # not the duplicate we expected: let the error handler answer
            raise
        profile = existing
    return ProfileRead.model_validate(profile)


# --8<-- [end:savepoint]


# --8<-- [start:commit-then-enqueue]
@router.post("/normalise-emails", status_code=status.HTTP_202_ACCEPTED)
async def normalise_emails(session: SessionDep, enqueue: queue.EnqueueDep) -> JobAccepted:
    """Start the background job that trims and lower-cases every email.

    `queue.submit_job` creates the job row, **commits**, then enqueues the job's id: the worker can
    only read rows that are committed. This is the one place a router commits by hand.
    """
    params = {"batch_size": tasks.BATCH_SIZE}
    job = await queue.submit_job(session, enqueue, kind=tasks.KIND, params=params)
    return JobAccepted(job_id=job.id)


# --8<-- [end:commit-then-enqueue]
