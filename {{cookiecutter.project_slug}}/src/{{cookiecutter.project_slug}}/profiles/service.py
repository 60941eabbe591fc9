"""Profile operations. They receive the caller's session and never commit, roll back or close it."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.errors import (
    ConflictError,
    NotFoundError,
    register_conflict,
)
from {{ cookiecutter.project_slug }}.profiles.models import (
    EMAIL_UNIQUE_INDEX,
    Profile,
)
from {{ cookiecutter.project_slug }}.profiles.schemas import (
    ProfileCreate,
    ProfileUpdate,
)

register_conflict(EMAIL_UNIQUE_INDEX, "a profile with this email already exists")


async def create_profile(session: AsyncSession, *, data: ProfileCreate) -> Profile:
    """Add a profile; flush so the id and timestamps are known (a duplicate email raises here)."""
    profile = Profile(name=data.name, email=data.email)
    session.add(profile)
    await session.flush()
    return profile


def ensure_unique_emails(profiles: Sequence[ProfileCreate]) -> None:
    """Raise `ConflictError` if two profiles share an email, compared as the database does."""
    counts = Counter(profile.email.lower() for profile in profiles)
    repeated = sorted(email for email, count in counts.items() if count > 1)
    if repeated:
        raise ConflictError(f"each email may appear once; repeated: {', '.join(repeated)}")


async def import_profiles(session: AsyncSession, *, data: list[ProfileCreate]) -> int:
    """Add every profile in one flush (a duplicate email raises here) and return how many."""
    session.add_all(Profile(name=item.name, email=item.email) for item in data)
    await session.flush()
    return len(data)


async def get_profile(session: AsyncSession, *, profile_id: uuid.UUID) -> Profile:
    """Return the profile or raise `NotFoundError`."""
    profile = await session.get(Profile, profile_id)
    if profile is None:
        raise NotFoundError(f"profile {profile_id} not found")
    return profile


async def list_profiles(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[list[Profile], int]:
    """Return one page of profiles, newest first, and the total count."""
    total = await session.scalar(select(func.count()).select_from(Profile))
    rows = await session.scalars(
        select(Profile).order_by(Profile.created_at.desc(), Profile.id).limit(limit).offset(offset)
    )
    return list(rows), total or 0


async def update_profile(
    session: AsyncSession, *, profile_id: uuid.UUID, data: ProfileUpdate
) -> Profile:
    """Apply the given fields and flush (a duplicate email raises here)."""
    profile = await get_profile(session, profile_id=profile_id)
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(profile, field, value)
    await session.flush()
    await session.refresh(profile, ["updated_at"])
    return profile


async def delete_profile(session: AsyncSession, *, profile_id: uuid.UUID) -> None:
    """Delete the profile or raise `NotFoundError`."""
    profile = await get_profile(session, profile_id=profile_id)
    await session.delete(profile)
    await session.flush()
