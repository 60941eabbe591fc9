"""Input the database cannot hold is a 422 on every endpoint, never a 500 from the driver."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from httpx import AsyncClient

JOB = uuid.uuid4()
LISTINGS = [
    "/api/v1/profiles",
    "/api/v1/jobs",
{%- if cookiecutter.include_sitemaps %}
    f"/api/v1/sitemaps/{JOB}/urls",
{%- endif %}
{%- if cookiecutter.include_places %}
    f"/api/v1/places/searches/{JOB}/places",
{%- endif %}
{%- if cookiecutter.include_pages %}
    f"/api/v1/pages/batches/{JOB}/pages",
{%- endif %}
]
NUL = "a\x00b"
BODIES: list[tuple[str, dict[str, Any]]] = [
    ("/api/v1/profiles", {"name": NUL, "email": "ada@example.com"}),
    ("/api/v1/profiles/imports", {"profiles": [{"name": NUL, "email": "ada@example.com"}]}),
{%- if cookiecutter.include_sitemaps %}
    ("/api/v1/sitemaps", {"url": f"https://example.com/{NUL}"}),
{%- endif %}
{%- if cookiecutter.include_places %}
    (
        "/api/v1/places/searches",
        {"query": NUL, "latitude": 48.2, "longitude": 16.4, "radius_m": 500},
    ),
{%- endif %}
{%- if cookiecutter.include_pages %}
    ("/api/v1/pages/batches", {"urls": [f"https://example.com/{NUL}"]}),
{%- endif %}
]


@pytest.mark.parametrize("path", LISTINGS)
@pytest.mark.parametrize("offset", [2**63, 10**30, -1])
async def test_offsets_beyond_bigint_are_422(client: AsyncClient, path: str, offset: int) -> None:
    response = await client.get(path, params={"offset": offset})
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(("path", "body"), BODIES)
async def test_nul_characters_in_bodies_are_422(
    client: AsyncClient, path: str, body: dict[str, Any]
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert "U+0000" in response.text


@pytest.mark.parametrize("kind", ["\x00", "pro\x00files.import", "x" * 51])
async def test_job_kinds_that_no_job_can_have_are_422(client: AsyncClient, kind: str) -> None:
    response = await client.get("/api/v1/jobs", params={"kind": kind})
    assert response.status_code == 422, response.text
