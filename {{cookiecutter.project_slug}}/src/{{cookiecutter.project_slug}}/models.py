"""Every ORM model, imported in one place so Alembic and the tests see the whole schema."""

from {{ cookiecutter.project_slug }}.db.base import Base
from {{ cookiecutter.project_slug }}.jobs.models import Job
from {{ cookiecutter.project_slug }}.pages.models import Page
from {{ cookiecutter.project_slug }}.places.models import (
    Place,
    PlaceSearch,
    PlaceSearchResult,
)
from {{ cookiecutter.project_slug }}.profiles.models import Profile
from {{ cookiecutter.project_slug }}.sitemaps.models import (
    SitemapFile,
    SitemapURL,
)

__all__ = [
    "Base",
    "Job",
    "Page",
    "Place",
    "PlaceSearch",
    "PlaceSearchResult",
    "Profile",
    "SitemapFile",
    "SitemapURL",
]
