"""The Google Maps places workload against a local fake of the Places API (New)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from pydantic import SecretStr

from {{ cookiecutter.project_slug }}.db import SessionFactory
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import api_client
from tests.localserver import LocalServer, Recorded, Reply

API = "/api/v1/places/searches"
SEARCH = "/v1/places:searchText"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "places"
BODY = {"query": "coffee", "latitude": 48.2, "longitude": 16.37, "radius_m": 1500}


def page(name: str, status: int = 200) -> Reply:
    """A fixture file as the Places API's JSON answer."""
    body = (FIXTURES / name).read_bytes()
    return Reply(status=status, body=body, headers={"Content-Type": "application/json"})


def paginated(request: Recorded) -> Reply:
    """Page 1, or page 2 when the request carries page 1's token."""
    sent = json.loads(request.body)
    return page("page-2.json") if sent.get("pageToken") == "token-page-2" else page("page-1.json")


@pytest.fixture
async def places_client(
    settings: Settings, site: LocalServer, sessions: SessionFactory
) -> AsyncIterator[AsyncClient]:
    """A client on an app whose Places API is the local fake."""
    configured = settings.model_copy(
        update={
            "google_places_api_key": SecretStr("test-key"),
            "google_places_base_url": site.url(""),
            "google_places_max_pages": 3,
        }
    )
    async with api_client(create_app(configured), configured) as client:
        yield client


async def search(client: AsyncClient, body: dict[str, Any] = BODY) -> dict[str, Any]:
    """Start a search (it runs inline in tests) and return the finished job."""
    response = await client.post(API, json=body)
    assert response.status_code == 202, response.text
    return (await client.get(f"/api/v1/jobs/{response.json()['job_id']}")).json()  # type: ignore[no-any-return]


async def test_search_follows_pages_and_stores_places(
    places_client: AsyncClient, site: LocalServer
) -> None:
    site.routes[SEARCH] = paginated
    job = await search(places_client)
    assert job["status"] == "succeeded", job
    assert job["result"]["pages_fetched"] == 2
    requests = site.hits(SEARCH)
    assert [json.loads(r.body).get("pageToken") for r in requests] == [None, "token-page-2"]
    headers = {name.lower(): value for name, value in requests[0].headers.items()}
    assert headers["x-goog-api-key"] == "test-key"
    assert "places.id" in headers["x-goog-fieldmask"]
    listed = (await places_client.get(f"{API}/{job['id']}/places")).json()
    assert listed["total"] == job["result"]["places_found"]
    assert listed["items"][0]["name"] == "Café Central"
    assert [item["rank"] for item in listed["items"]] == sorted(
        item["rank"] for item in listed["items"]
    )


async def test_places_are_upserted_by_google_id(
    places_client: AsyncClient, site: LocalServer
) -> None:
    site.routes[SEARCH] = paginated
    first = await search(places_client)
    second = await search(places_client)
    assert second["status"] == "succeeded"
    ids_first = {
        p["id"] for p in (await places_client.get(f"{API}/{first['id']}/places")).json()["items"]
    }
    ids_second = {
        p["id"] for p in (await places_client.get(f"{API}/{second['id']}/places")).json()["items"]
    }
    assert ids_first == ids_second  # the same rows, refreshed, not copies


async def test_rate_limit_is_retried(places_client: AsyncClient, site: LocalServer) -> None:
    site.sequence(SEARCH, [Reply(status=429, body=b"{}"), page("page-2.json")])
    job = await search(places_client)
    assert job["status"] == "succeeded", job
    assert len(site.hits(SEARCH)) == 2


async def test_forbidden_fails_with_googles_reason(
    places_client: AsyncClient, site: LocalServer
) -> None:
    site.reply(SEARCH, page("error-403.json", status=403))
    job = await search(places_client)
    assert job["status"] == "failed"
    assert "403" in job["error"] or "blocked" in job["error"], job["error"]


async def test_missing_key_is_503(client: AsyncClient) -> None:
    response = await client.post(API, json=BODY)
    assert response.status_code == 503
    assert "GOOGLE_PLACES_API_KEY" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {**BODY, "latitude": 91},
        {**BODY, "radius_m": 0},
        {**BODY, "query": ""},
        {"query": "coffee"},
    ],
)
async def test_bad_search_is_422(places_client: AsyncClient, body: dict[str, Any]) -> None:
    assert (await places_client.post(API, json=body)).status_code == 422
