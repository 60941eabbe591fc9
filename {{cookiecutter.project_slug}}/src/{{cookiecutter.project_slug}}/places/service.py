"""Places storage. Functions use the caller's session; the caller owns the transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Row, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.places.client import PlaceResult
from {{ cookiecutter.project_slug }}.places.models import (
    Place,
    PlaceSearch,
    PlaceSearchResult,
)
from {{ cookiecutter.project_slug }}.places.schemas import PlaceSearchCreate


async def create_search(
    session: AsyncSession, *, job_id: uuid.UUID, data: PlaceSearchCreate
) -> None:
    """Record the search a job is about to run (again: re-running keeps one row)."""
    await session.execute(
        insert(PlaceSearch)
        .values(job_id=job_id, pages_fetched=0, **data.model_dump())
        .on_conflict_do_nothing(index_elements=[PlaceSearch.job_id])
    )


async def store_page(
    session: AsyncSession, *, job_id: uuid.UUID, results: Sequence[PlaceResult], first_rank: int
) -> int:
    """Upsert one page of results by Google place id and link them to the search."""
    unique = list({place.place_id: place for place in reversed(results)}.values())[::-1]
    if not unique:
        return 0
    rows = [
        {
            "google_place_id": place.place_id,
            "name": place.name,
            "address": place.address,
            "latitude": place.latitude,
            "longitude": place.longitude,
            "rating": place.rating,
            "user_rating_count": place.user_rating_count,
            "types": list(place.types),
            "website": place.website,
            "phone": place.phone,
        }
        for place in unique
    ]
    statement = insert(Place)
    upsert = statement.on_conflict_do_update(
        index_elements=[Place.google_place_id],
        set_={
            **{key: statement.excluded[key] for key in rows[0] if key != "google_place_id"},
            "updated_at": func.now(),
        },
    ).returning(Place.google_place_id, Place.id)
    ids = {row.google_place_id: row.id for row in await session.execute(upsert, rows)}
    links = [
        {"search_id": job_id, "place_id": ids[place.place_id], "rank": first_rank + offset}
        for offset, place in enumerate(results)
        if place.place_id in ids
    ]
    await session.execute(
        insert(PlaceSearchResult).on_conflict_do_nothing(
            index_elements=[PlaceSearchResult.search_id, PlaceSearchResult.place_id]
        ),
        links,
    )
    await session.execute(
        update(PlaceSearch)
        .where(PlaceSearch.job_id == job_id)
        .values(pages_fetched=PlaceSearch.pages_fetched + 1)
    )
    return len(links)


async def list_places(
    session: AsyncSession, *, job_id: uuid.UUID, limit: int, offset: int
) -> tuple[Sequence[Row[Place, int]], int]:
    """A search's places, best ranked first, with the total."""
    base = (
        select(Place, PlaceSearchResult.rank)
        .join(PlaceSearchResult, PlaceSearchResult.place_id == Place.id)
        .where(PlaceSearchResult.search_id == job_id)
    )
    total = await session.scalar(select(func.count()).where(PlaceSearchResult.search_id == job_id))
    rows = await session.execute(base.order_by(PlaceSearchResult.rank).limit(limit).offset(offset))
    return rows.all(), total or 0
