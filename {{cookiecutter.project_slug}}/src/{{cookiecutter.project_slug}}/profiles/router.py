"""Profile endpoints: thin handlers; the request's session is the transaction."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from {{ cookiecutter.project_slug }}.db import SessionDep
from {{ cookiecutter.project_slug }}.jobs.queue import (
    EnqueueDep,
    submit_job,
)
from {{ cookiecutter.project_slug }}.jobs.schemas import JobAccepted
from {{ cookiecutter.project_slug }}.profiles import service
from {{ cookiecutter.project_slug }}.profiles.schemas import (
    ProfileCreate,
    ProfileImport,
    ProfilePage,
    ProfileRead,
    ProfileUpdate,
)
from {{ cookiecutter.project_slug }}.profiles.tasks import KIND as IMPORT_KIND
from {{ cookiecutter.project_slug }}.types import Offset

router = APIRouter(prefix="/profiles", tags=["profiles"])

NOT_FOUND: dict[int | str, dict[str, str]] = {404: {"description": "No profile with this id"}}
EMAIL_TAKEN: dict[int | str, dict[str, str]] = {
    409: {"description": "Another profile has this email (compared case-insensitively)"}
}
# `{profile_id:uuid}` routes only ids, so other methods on `/profiles/imports` answer 405 rather
# than reaching these routes with "imports" as an invalid id.
PROFILE = "/{profile_id:uuid}"


@router.post("", status_code=status.HTTP_201_CREATED, responses=EMAIL_TAKEN)
async def create_profile(body: ProfileCreate, session: SessionDep) -> ProfileRead:
    """Create a profile (409 if the email is taken)."""
    profile = await service.create_profile(session, data=body)
    return ProfileRead.model_validate(profile)


@router.post(
    "/imports",
    status_code=status.HTTP_202_ACCEPTED,
    responses={409: {"description": "The import gives one email twice (in any letter case)"}},
)
async def import_profiles(
    body: ProfileImport, session: SessionDep, enqueue: EnqueueDep
) -> JobAccepted:
    """Create many profiles in the background, all or none (the job's reference)."""
    service.ensure_unique_emails(body.profiles)
    params = body.model_dump(mode="json")
    job = await submit_job(session, enqueue, kind=IMPORT_KIND, params=params)
    return JobAccepted(job_id=job.id)


@router.get("")
async def list_profiles(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Offset = 0,
) -> ProfilePage:
    """List profiles, newest first."""
    items, total = await service.list_profiles(session, limit=limit, offset=offset)
    return ProfilePage(
        items=[ProfileRead.model_validate(item) for item in items],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(PROFILE, responses=NOT_FOUND)
async def get_profile(profile_id: uuid.UUID, session: SessionDep) -> ProfileRead:
    """Return one profile (404 if absent)."""
    return ProfileRead.model_validate(await service.get_profile(session, profile_id=profile_id))


@router.patch(PROFILE, responses=NOT_FOUND | EMAIL_TAKEN)
async def update_profile(
    profile_id: uuid.UUID, body: ProfileUpdate, session: SessionDep
) -> ProfileRead:
    """Change a profile's name or email (404 if absent, 409 if the email is taken)."""
    profile = await service.update_profile(session, profile_id=profile_id, data=body)
    return ProfileRead.model_validate(profile)


@router.delete(PROFILE, status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_profile(profile_id: uuid.UUID, session: SessionDep) -> None:
    """Delete a profile (404 if absent)."""
    await service.delete_profile(session, profile_id=profile_id)
