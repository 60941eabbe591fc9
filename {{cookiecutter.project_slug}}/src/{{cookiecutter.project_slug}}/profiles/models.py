"""Profile ORM model."""

from __future__ import annotations

import uuid

from sqlalchemy import String, func
from sqlalchemy.orm import Mapped, mapped_column

from {{ cookiecutter.project_slug }}.db.base import (
    Base,
    TimestampMixin,
)


class Profile(TimestampMixin, Base):
    """A person known to the service.

    `id` and the timestamps come from the database; INSERT ... RETURNING fills them on flush.
    """

    __tablename__ = "profiles"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
