"""Services receive the caller's session: they add, select and flush, never commit or roll back."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.profiles.models import Profile


# --8<-- [start:service]
async def find_by_email(session: AsyncSession, *, email: str) -> Profile | None:
    """Return the profile with this email, or None (compared lower-cased, as the index does)."""
    return await session.scalar(select(Profile).where(func.lower(Profile.email) == email.lower()))


async def next_batch(session: AsyncSession, *, after: uuid.UUID | None, size: int) -> list[Profile]:
    """Return up to `size` profiles ordered by id, starting after the id `after`."""
    query = select(Profile).order_by(Profile.id).limit(size)
    if after is not None:
        query = query.where(Profile.id > after)
    return list(await session.scalars(query))


async def normalise_emails(session: AsyncSession, *, profiles: list[Profile]) -> int:
    """Trim and lower-case the emails of `profiles` and flush; return how many changed.

    A clash with another profile's email raises `IntegrityError` here, at the flush. The caller
    owns the transaction and decides what a failure undoes.
    """
    changed = 0
    for profile in profiles:
        normalised = profile.email.strip().lower()
        if profile.email != normalised:
            profile.email = normalised
            changed += 1
    await session.flush()
    return changed


# --8<-- [end:service]
