"""The jobs API."""

from __future__ import annotations

import uuid

import pytest
from httpx import AsyncClient

from {{ cookiecutter.project_slug }}.db import task_session
from {{ cookiecutter.project_slug }}.jobs import service
from {{ cookiecutter.project_slug }}.jobs.models import JobStatus

API = "/api/v1/jobs"


async def make_job(kind: str, status: JobStatus = JobStatus.PENDING) -> uuid.UUID:
    """Store a job in the given state, through the same claims and ends a runner makes."""
    async with task_session() as session:
        job = await service.create_job(session, kind=kind, params={"n": 1})
        if status is JobStatus.PENDING:
            return job.id
        await service.claim_job(
            session, job_id=job.id, owner="test", lease_seconds=60, max_attempts=3
        )
        attempt = service.Attempt(job.id, "test", 1)
        if status is JobStatus.FAILED:
            await service.finish_attempt(session, attempt=attempt, status=status, error="it broke")
        if status is JobStatus.SUCCEEDED:
            await service.finish_attempt(
                session, attempt=attempt, status=status, result={"ok": True}
            )
        return job.id


@pytest.mark.usefixtures("sessions")
async def test_get_job_shape(client: AsyncClient) -> None:
    job_id = await make_job("profiles.import", JobStatus.FAILED)
    body = (await client.get(f"{API}/{job_id}")).json()
    assert body["id"] == str(job_id)
    assert (body["kind"], body["status"], body["error"], body["result"]) == (
        "profiles.import",
        "failed",
        "it broke",
        None,
    )
    assert body["progress"] == {"done": 0, "total": None}


async def test_unknown_job_is_404(client: AsyncClient) -> None:
    assert (await client.get(f"{API}/{uuid.uuid4()}")).status_code == 404


async def test_list_filters_and_paginates(client: AsyncClient) -> None:
    await make_job("profiles.import", JobStatus.SUCCEEDED)
    await make_job("profiles.import", JobStatus.FAILED)
    await make_job("other", JobStatus.PENDING)
    everything = (await client.get(API)).json()
    assert everything["total"] == 3
    imports = (await client.get(API, params={"kind": "profiles.import"})).json()
    assert imports["total"] == 2
    failed = (await client.get(API, params={"kind": "profiles.import", "status": "failed"})).json()
    assert [item["status"] for item in failed["items"]] == ["failed"]
    page = (await client.get(API, params={"limit": 1, "offset": 1})).json()
    assert (len(page["items"]), page["total"]) == (1, 3)


@pytest.mark.parametrize("params", [{"status": "lost"}, {"limit": 0}, {"offset": -1}])
async def test_bad_filters_are_422(client: AsyncClient, params: dict[str, str | int]) -> None:
    assert (await client.get(API, params=params)).status_code == 422


@pytest.mark.usefixtures("sessions")
async def test_cancel_a_pending_job_at_once(client: AsyncClient) -> None:
    job_id = await make_job("profiles.import")
    response = await client.post(f"{API}/{job_id}/cancel")
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["error"]) == (
        "cancelled",
        "cancelled at the client's request",
    )


@pytest.mark.usefixtures("sessions")
async def test_cancel_a_running_job_at_its_next_batch(client: AsyncClient) -> None:
    job_id = await make_job("profiles.import", JobStatus.RUNNING)
    response = await client.post(f"{API}/{job_id}/cancel")
    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["cancel_requested"], body["attempts"]) == ("running", True, 1)


@pytest.mark.usefixtures("sessions")
@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED])
async def test_cancel_a_finished_job_is_409(client: AsyncClient, status: JobStatus) -> None:
    job_id = await make_job("profiles.import", status)
    response = await client.post(f"{API}/{job_id}/cancel")
    assert response.status_code == 409
    assert "already finished" in response.json()["detail"]


@pytest.mark.usefixtures("sessions")
async def test_cancel_an_unknown_job_is_404(client: AsyncClient) -> None:
    response = await client.post(f"{API}/{uuid.uuid4()}/cancel")
    assert response.status_code == 404
