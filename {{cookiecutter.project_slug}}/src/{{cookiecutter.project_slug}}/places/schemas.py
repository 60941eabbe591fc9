"""Places request and response bodies."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from {{ cookiecutter.project_slug }}.places.models import Place
from {{ cookiecutter.project_slug }}.types import StorableText

Query = Annotated[str, StorableText(max_length=500, strip=True)]
"""A text search: at most 500 characters, stored stripped, never blank."""


class PlaceSearchCreate(BaseModel):
    """Body of `POST /places/searches`: a text query biased to a circle."""

    model_config = ConfigDict(extra="forbid")

    query: Query
    # Strict numbers: JSON numbers only, as documented; not `true` or "12.5" coerced.
    latitude: float = Field(ge=-90, le=90, strict=True)
    longitude: float = Field(ge=-180, le=180, strict=True)
    radius_m: float = Field(gt=0, le=50_000, strict=True)  # the Places API's maximum bias radius


class PlaceRead(BaseModel):
    """A stored place, as one search ranked it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    google_place_id: str
    name: str
    address: str | None
    latitude: float | None
    longitude: float | None
    rating: float | None
    user_rating_count: int | None
    types: list[str]
    website: str | None
    phone: str | None
    rank: int

    @classmethod
    def from_place(cls, place: Place, *, rank: int) -> PlaceRead:
        """Build the response from the ORM row and the search's rank."""
        fields = {name: getattr(place, name) for name in cls.model_fields if name != "rank"}
        return cls(**fields, rank=rank)


class PlacePage(BaseModel):
    """One page of a search's places, best ranked first."""

    items: list[PlaceRead]
    total: int = Field(ge=0)
    limit: int
    offset: int
