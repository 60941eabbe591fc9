"""Page-scraper request and response bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from {{ cookiecutter.project_slug }}.types import HttpURL

MAX_URLS_PER_BATCH = 100
"""URLs one batch may hold; `PAGES_MAX_PER_BATCH` can lower it."""


class PageBatchCreate(BaseModel):
    """Body of `POST /pages/batches`: the URLs to fetch (duplicates are fetched once)."""

    model_config = ConfigDict(extra="forbid")

    urls: list[HttpURL] = Field(min_length=1, max_length=MAX_URLS_PER_BATCH)


class PageRead(BaseModel):
    """What was learnt about one URL; `error` says why a URL has no metadata."""

    model_config = ConfigDict(from_attributes=True)

    url: str
    final_url: str | None
    status_code: int | None
    content_type: str | None
    title: str | None
    description: str | None
    canonical_url: str | None
    error: str | None


class PagePage(BaseModel):
    """One page of a batch's results, in submission order."""

    items: list[PageRead]
    total: int = Field(ge=0)
    limit: int
    offset: int
