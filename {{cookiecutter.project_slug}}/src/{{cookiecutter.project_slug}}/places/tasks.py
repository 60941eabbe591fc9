"""The places job: page through a Places text search, upserting each page in its own transaction."""

from __future__ import annotations

from typing import Any

from {{ cookiecutter.project_slug }}.db import task_session
from {{ cookiecutter.project_slug }}.jobs.runner import (
    JobContext,
    JobError,
)
from {{ cookiecutter.project_slug }}.outbound.errors import OutboundError
from {{ cookiecutter.project_slug }}.places import service
from {{ cookiecutter.project_slug }}.places.client import (
    PlacesError,
    search_text,
)
from {{ cookiecutter.project_slug }}.places.schemas import PlaceSearchCreate

KIND = "places"


async def search_places(context: JobContext) -> dict[str, Any]:
    """Search, follow `nextPageToken` up to the configured pages, store every place once."""
    settings = context.resources.settings
    data = PlaceSearchCreate.model_validate(context.params)
    if settings.google_places_api_key is None:
        raise JobError("Google Places is not configured: set GOOGLE_PLACES_API_KEY")
    async with task_session() as session:
        await service.create_search(session, job_id=context.job_id, data=data)
    pages = stored = 0
    try:
        async for results in search_text(
            context.resources.http,
            base_url=settings.google_places_base_url,
            api_key=settings.google_places_api_key.get_secret_value(),
            query=data.query,
            latitude=data.latitude,
            longitude=data.longitude,
            radius_m=data.radius_m,
            max_pages=settings.google_places_max_pages,
        ):
            async with task_session() as session:
                stored += await service.store_page(
                    session, job_id=context.job_id, results=results, first_rank=stored + 1
                )
                pages += 1
                await context.progress(session, done=pages, total=settings.google_places_max_pages)
    except (PlacesError, OutboundError) as exc:
        raise JobError(f"Places API: {exc}") from exc
    return {"pages_fetched": pages, "places_found": stored}
