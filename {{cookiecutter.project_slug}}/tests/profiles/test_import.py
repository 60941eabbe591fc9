"""The profile import job: the reference background task, all or nothing."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.profiles.models import Profile

API = "/api/v1/profiles"


def people(*emails: str) -> dict[str, Any]:
    """An import body with one profile per email."""
    return {"profiles": [{"name": email.split("@")[0], "email": email} for email in emails]}


async def run_import(client: AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """Start an import (it runs inline in tests) and return the finished job."""
    response = await client.post(f"{API}/imports", json=body)
    assert response.status_code == 202, response.text
    job = (await client.get(f"/api/v1/jobs/{response.json()['job_id']}")).json()
    assert job["kind"] == "profiles.import"
    return job  # type: ignore[no-any-return]


async def test_an_import_creates_every_profile(client: AsyncClient) -> None:
    job = await run_import(client, people("ada@example.com", "alan@example.com"))
    assert job["status"] == "succeeded", job
    assert job["result"] == {"imported": 2}
    assert job["progress"] == {"done": 2, "total": 2}
    listed = (await client.get(API)).json()
    assert sorted(item["email"] for item in listed["items"]) == [
        "ada@example.com",
        "alan@example.com",
    ]


async def test_a_duplicate_fails_the_job_and_imports_nothing(
    client: AsyncClient, session: AsyncSession
) -> None:
    existing = await client.post(API, json={"name": "Grace", "email": "grace@example.com"})
    assert existing.status_code == 201

    job = await run_import(client, people("edsger@example.com", "grace@example.com"))

    assert job["status"] == "failed"
    assert job["error"] == "nothing imported: a profile with this email already exists"
    assert job["result"] is None
    count = await session.scalar(select(func.count()).select_from(Profile))
    assert count == 1  # edsger was rolled back with the rest of the import


async def test_an_email_stored_in_another_case_fails_the_job(client: AsyncClient) -> None:
    existing = await client.post(API, json={"name": "Grace", "email": "grace@example.com"})
    assert existing.status_code == 201

    job = await run_import(client, people("edsger@example.com", "Grace@Example.com"))

    assert (job["status"], job["error"]) == (
        "failed",
        "nothing imported: a profile with this email already exists",
    )
    assert (await client.get(API)).json()["total"] == 1


async def test_invalid_imports_are_422_and_create_no_job(client: AsyncClient) -> None:
    empty = await client.post(f"{API}/imports", json={"profiles": []})
    bad_email = await client.post(f"{API}/imports", json=people("not-an-email"))
    nul = await client.post(
        f"{API}/imports", json={"profiles": [{"name": "a\u0000b", "email": "a@example.com"}]}
    )
    assert [r.status_code for r in (empty, bad_email, nul)] == [422, 422, 422]
    assert (await client.get("/api/v1/jobs")).json()["total"] == 0


async def test_an_import_that_repeats_an_email_is_409_and_creates_no_job(
    client: AsyncClient,
) -> None:
    response = await client.post(f"{API}/imports", json=people("a@example.com", "A@example.com"))
    assert response.status_code == 409
    assert response.json() == {"detail": "each email may appear once; repeated: a@example.com"}
    assert (await client.get("/api/v1/jobs")).json()["total"] == 0
