"""Request-scoped dependencies that are not the database session."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from {{ cookiecutter.project_slug }}.settings import Settings


def get_app_settings(request: Request) -> Settings:
    """The settings the running app was created with."""
    return cast(Settings, request.app.state.settings)


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
