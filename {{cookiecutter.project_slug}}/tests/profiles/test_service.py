"""Services work on the caller's session and leave the transaction to the caller."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.errors import NotFoundError
from {{ cookiecutter.project_slug }}.profiles import service
from {{ cookiecutter.project_slug }}.profiles.schemas import (
    ProfileCreate,
    ProfileUpdate,
)


async def test_create_flushes_but_does_not_commit(session: AsyncSession) -> None:
    profile = await service.create_profile(
        session, data=ProfileCreate(name="Ada", email="ada@example.com")
    )
    assert profile.id is not None
    assert profile.created_at is not None
    assert session.in_transaction()  # still the caller's to commit or roll back


async def test_get_missing_raises_not_found(session: AsyncSession) -> None:
    with pytest.raises(NotFoundError):
        await service.get_profile(session, profile_id=uuid.uuid4())


async def test_duplicate_email_raises_integrity_error(session: AsyncSession) -> None:
    data = ProfileCreate(name="Ada", email="ada@example.com")
    await service.create_profile(session, data=data)
    with pytest.raises(IntegrityError):
        await service.create_profile(session, data=data)


async def test_update_touches_updated_at(session: AsyncSession) -> None:
    profile = await service.create_profile(
        session, data=ProfileCreate(name="Ada", email="ada@example.com")
    )
    updated = await service.update_profile(
        session, profile_id=profile.id, data=ProfileUpdate(name="Ada L.")
    )
    assert updated.name == "Ada L."
    assert updated.updated_at >= updated.created_at


async def test_list_counts_everything(session: AsyncSession) -> None:
    for i in range(3):
        await service.create_profile(
            session, data=ProfileCreate(name=f"P{i}", email=f"p{i}@example.com")
        )
    items, total = await service.list_profiles(session, limit=2, offset=0)
    assert (len(items), total) == (2, 3)
