"""Profile ORM model."""

from __future__ import annotations

import uuid

from sqlalchemy import Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from {{ cookiecutter.project_slug }}.db.base import (
    Base,
    TimestampMixin,
)

EMAIL_UNIQUE_INDEX = "uq_profiles_email_lower"
"""Unique index on `lower(email)`: one profile per email, whatever its case."""


class Profile(TimestampMixin, Base):
    """A person known to the service.

    `id` and the timestamps come from the database; INSERT ... RETURNING fills them on flush.
    The email is stored as given and unique case-insensitively (`Case@x.org` is `case@x.org`).
    """

    __tablename__ = "profiles"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))


Index(EMAIL_UNIQUE_INDEX, func.lower(Profile.email), unique=True)
