"""Profile request and response bodies."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from {{ cookiecutter.project_slug }}.types import (
    Email,
    StorableText,
)

MAX_IMPORT = 1000
"""Profiles one import may hold: one transaction, so keep it small enough to hold locks briefly."""

Name = Annotated[str, StorableText(max_length=200, strip=True)]
"""A profile's name: at most 200 characters (the column's), stored stripped, never blank."""


class ProfileCreate(BaseModel):
    """Body of `POST /profiles`."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    email: Email


class ProfileUpdate(BaseModel):
    """Body of `PATCH /profiles/{id}`: any subset of the fields, at least one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    # Optional but not nullable: the schema shows no `null`, which the validator below refuses.
    name: Name | SkipJsonSchema[None] = None
    email: Email | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        if any(getattr(self, field) is None for field in self.model_fields_set):
            raise ValueError("fields cannot be set to null")
        return self


class ProfileImport(BaseModel):
    """Body of `POST /profiles/imports`: profiles created together, all or none.

    An email given twice (in any letter case) is a conflict (409), as one already stored is: a
    JSON Schema cannot state that rule, so it is the service's, not a validation error.
    """

    model_config = ConfigDict(extra="forbid")

    profiles: list[ProfileCreate] = Field(min_length=1, max_length=MAX_IMPORT)


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
