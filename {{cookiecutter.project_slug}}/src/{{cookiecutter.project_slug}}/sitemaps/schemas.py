"""Sitemap request and response bodies."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from {{ cookiecutter.project_slug }}.types import HttpURL


class SitemapCreate(BaseModel):
    """Body of `POST /sitemaps`: the sitemap (or sitemap index) to process."""

    model_config = ConfigDict(extra="forbid")

    url: HttpURL


class SitemapURLRead(BaseModel):
    """A stored page URL."""

    model_config = ConfigDict(from_attributes=True)

    url: str
    sitemap_url: str
    lastmod: dt.datetime | None
    changefreq: str | None
    priority: float | None


class SitemapURLPage(BaseModel):
    """One page of stored URLs."""

    items: list[SitemapURLRead]
    total: int = Field(ge=0)
    limit: int
    offset: int
