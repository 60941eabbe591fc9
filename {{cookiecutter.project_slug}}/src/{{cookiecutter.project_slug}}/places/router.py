"""Google Maps places endpoints: start a search (202), read the places it found."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from {{ cookiecutter.project_slug }}.db import SessionDep
from {{ cookiecutter.project_slug }}.deps import SettingsDep
from {{ cookiecutter.project_slug }}.errors import DomainError
from {{ cookiecutter.project_slug }}.jobs import service as jobs
from {{ cookiecutter.project_slug }}.jobs.queue import (
    EnqueueDep,
    submit_job,
)
from {{ cookiecutter.project_slug }}.jobs.schemas import JobAccepted
from {{ cookiecutter.project_slug }}.places import service
from {{ cookiecutter.project_slug }}.places.schemas import (
    PlacePage,
    PlaceRead,
    PlaceSearchCreate,
)
from {{ cookiecutter.project_slug }}.places.tasks import KIND
from {{ cookiecutter.project_slug }}.types import Offset

router = APIRouter(prefix="/places", tags=["places"])
NO_JOB: dict[int | str, dict[str, str]] = {404: {"description": "No job with this id"}}


class PlacesNotConfiguredError(DomainError):
    """No Places API key is configured."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE


@router.post(
    "/searches",
    status_code=status.HTTP_202_ACCEPTED,
    responses={503: {"description": "No Places API key is configured, or the database is busy"}},
)
async def search_places(
    body: PlaceSearchCreate, session: SessionDep, enqueue: EnqueueDep, settings: SettingsDep
) -> JobAccepted:
    """Run a Places text search in the background (503 without GOOGLE_PLACES_API_KEY)."""
    if settings.google_places_api_key is None:
        raise PlacesNotConfiguredError("Google Places is not configured: set GOOGLE_PLACES_API_KEY")
    job = await submit_job(session, enqueue, kind=KIND, params=body.model_dump())
    return JobAccepted(job_id=job.id)


@router.get("/searches/{job_id}/places", responses=NO_JOB)
async def list_places(
    job_id: uuid.UUID,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> PlacePage:
    """The places a search found, best ranked first (404 if the job does not exist)."""
    await jobs.get_job(session, job_id=job_id)
    rows, total = await service.list_places(session, job_id=job_id, limit=limit, offset=offset)
    items = [PlaceRead.from_place(place, rank=rank) for place, rank in rows]
    return PlacePage(items=items, total=total, limit=limit, offset=offset)
