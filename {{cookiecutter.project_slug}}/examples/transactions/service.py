"""Services receive the caller's session: they add, select and flush, never commit or roll back."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.profiles.models import Profile


# --8<-- [start:service]
async def find_by_email(session: AsyncSession, *, email: str) -> Profile | None:
    """Return the profile with this email, or None."""
    return await session.scalar(select(Profile).where(Profile.email == email))


async def next_batch(session: AsyncSession, *, after: uuid.UUID | None, size: int) -> list[Profile]:
    """Return up to `size` profiles ordered by id, starting after the id `after`."""
    query = select(Profile).order_by(Profile.id).limit(size)
    if after is not None:
        query = query.where(Profile.id > after)
    return list(await session.scalars(query))


async def lowercase_emails(session: AsyncSession, *, profiles: list[Profile]) -> int:
    """Lower-case the emails of `profiles` and flush; return how many changed.

    A clash with another profile's email raises `IntegrityError` here, at the flush. The caller
    owns the transaction and decides what a failure undoes.
    """
    changed = 0
    for profile in profiles:
        if profile.email != profile.email.lower():
            profile.email = profile.email.lower()
            changed += 1
    await session.flush()
    return changed


# --8<-- [end:service]
