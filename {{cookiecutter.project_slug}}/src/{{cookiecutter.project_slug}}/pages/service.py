"""Page storage. Functions use the caller's session; the caller owns the transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.pages.models import Page


async def store_pages(
    session: AsyncSession, *, job_id: uuid.UUID, pages: Sequence[dict[str, Any]]
) -> None:
    """Store page outcomes once per (batch, URL); a re-run replaces what the last run stored."""
    if not pages:
        return
    statement = insert(Page)
    columns = [key for key in pages[0] if key != "url"]
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Page.job_id, Page.url],
            set_={**{key: statement.excluded[key] for key in columns}, "updated_at": func.now()},
        ),
        [{**page, "job_id": job_id} for page in pages],
    )


async def list_pages(
    session: AsyncSession, *, job_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[Page], int]:
    """A batch's pages in the order they were stored, with the total."""
    total = await session.scalar(select(func.count()).where(Page.job_id == job_id))
    rows = await session.scalars(
        select(Page).where(Page.job_id == job_id).order_by(Page.id).limit(limit).offset(offset)
    )
    return list(rows), total or 0
