"""Sitemap files and the page URLs they list."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from {{ cookiecutter.project_slug }}.db.base import Base, TimestampMixin

MAX_URL_LENGTH = 2048  # the sitemaps protocol's limit; also keeps the unique index within bounds


class SitemapFile(TimestampMixin, Base):
    """One sitemap document (urlset or index), stored once per URL."""

    __tablename__ = "sitemap_files"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    url: Mapped[str] = mapped_column(String(MAX_URL_LENGTH), unique=True)
    last_job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), index=True
    )
    url_count: Mapped[int] = mapped_column(Integer, default=0)


class SitemapURL(Base):
    """A page URL listed by a sitemap file; once per (file, URL), whatever re-runs the job."""

    __tablename__ = "sitemap_urls"
    __table_args__ = (UniqueConstraint("sitemap_id", "url"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    sitemap_id: Mapped[int] = mapped_column(BigInteger)
    """References `sitemap_files.id` (ON DELETE CASCADE), kept by statement-level triggers, not
    a foreign key: that checked every row on its own (migration 0009 says what differs)."""
    url: Mapped[str] = mapped_column(String(MAX_URL_LENGTH))
    lastmod: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    changefreq: Mapped[str | None] = mapped_column(String(16))
    priority: Mapped[float | None] = mapped_column(Float)
