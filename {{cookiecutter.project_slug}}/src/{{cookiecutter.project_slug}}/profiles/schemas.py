"""Profile request and response bodies."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, model_validator

MAX_IMPORT = 1000
"""Profiles one import may hold: one transaction, so keep it small enough to hold locks briefly."""

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ProfileCreate(BaseModel):
    """Body of `POST /profiles`."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    email: EmailStr


class ProfileUpdate(BaseModel):
    """Body of `PATCH /profiles/{id}`: any subset of the fields, at least one."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    email: EmailStr | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        if any(getattr(self, field) is None for field in self.model_fields_set):
            raise ValueError("fields cannot be set to null")
        return self


class ProfileImport(BaseModel):
    """Body of `POST /profiles/imports`: profiles created together, all or none."""

    model_config = ConfigDict(extra="forbid")

    profiles: list[ProfileCreate] = Field(min_length=1, max_length=MAX_IMPORT)

    @model_validator(mode="after")
    def _unique_emails(self) -> Self:
        emails = [profile.email.lower() for profile in self.profiles]
        repeated = sorted({email for email in emails if emails.count(email) > 1})
        if repeated:
            raise ValueError(f"each email may appear once; repeated: {', '.join(repeated)}")
        return self


class ProfileRead(BaseModel):
    """A stored profile."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    email: str
    created_at: dt.datetime
    updated_at: dt.datetime


class ProfilePage(BaseModel):
    """One page of profiles, newest first."""

    items: list[ProfileRead]
    total: int = Field(ge=0)
    limit: int
    offset: int
