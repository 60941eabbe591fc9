"""Places found by Google Maps searches, and the searches that found them."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from {{ cookiecutter.project_slug }}.db.base import Base, TimestampMixin


class Place(TimestampMixin, Base):
    """A place, stored once per Google place id and refreshed by every search that finds it."""

    __tablename__ = "places"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    google_place_id: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    rating: Mapped[float | None] = mapped_column(Float)
    user_rating_count: Mapped[int | None] = mapped_column(Integer)
    types: Mapped[list[Any]] = mapped_column(JSONB)
    website: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(64))


class PlaceSearch(TimestampMixin, Base):
    """One text search; its id is the id of the job that ran it."""

    __tablename__ = "place_searches"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    query: Mapped[str] = mapped_column(Text)
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[float] = mapped_column(Float)
    pages_fetched: Mapped[int] = mapped_column(Integer, default=0)


class PlaceSearchResult(Base):
    """A place as a search returned it, with its rank in the results."""

    __tablename__ = "place_search_results"

    search_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("place_searches.job_id", ondelete="CASCADE"), primary_key=True
    )
    place_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("places.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer)
