"""Submitting a job: committed before it is enqueued; a refused enqueue is a 503, not a lost job."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from httpx import AsyncClient


async def test_enqueue_failure_is_503_and_marks_the_job_failed(
    app: FastAPI, client: AsyncClient
) -> None:
    async def refuse(job_id: uuid.UUID) -> None:
        raise ConnectionError("broker unreachable")

    app.state.enqueue = refuse
    body = {"profiles": [{"name": "Ada", "email": "ada@example.com"}]}
    response = await client.post("/api/v1/profiles/imports", json=body)
    assert response.status_code == 503
    assert "task engine is unavailable" in response.json()["detail"]
    jobs = (await client.get("/api/v1/jobs")).json()["items"]
    assert [job["status"] for job in jobs] == ["failed"]
    assert jobs[0]["error"] == "could not enqueue: broker unreachable"
