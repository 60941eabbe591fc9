"""Every ORM model, imported in one place so Alembic and the tests see the whole schema."""

from {{ cookiecutter.project_slug }}.db.base import Base
from {{ cookiecutter.project_slug }}.jobs.models import Job
{%- if cookiecutter.include_pages %}
from {{ cookiecutter.project_slug }}.pages.models import Page
{%- endif %}
{%- if cookiecutter.include_places %}
from {{ cookiecutter.project_slug }}.places.models import (
    Place,
    PlaceSearch,
    PlaceSearchResult,
)
{%- endif %}
from {{ cookiecutter.project_slug }}.profiles.models import Profile
{%- if cookiecutter.include_sitemaps %}
from {{ cookiecutter.project_slug }}.sitemaps.models import (
    SitemapFile,
    SitemapURL,
)
{%- endif %}

__all__ = [
    "Base",
    "Job",
{%- if cookiecutter.include_pages %}
    "Page",
{%- endif %}
{%- if cookiecutter.include_places %}
    "Place",
    "PlaceSearch",
    "PlaceSearchResult",
{%- endif %}
    "Profile",
{%- if cookiecutter.include_sitemaps %}
    "SitemapFile",
    "SitemapURL",
{%- endif %}
]
