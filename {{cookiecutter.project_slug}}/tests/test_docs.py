"""The docs cannot rot: their examples run here, and what they show is what the tools print.

- `examples/` (included in docs/ with `--8<--` snippets) runs against the test database.
- The errors docs/database.md explains are reproduced, and the pattern avoids them.
- Every bad sample in docs/sessionlint.md fires its rule; every good one is clean.
- The audit table in docs/legacy.md is the real output of `python -m sessionlint audit`.
- `mkdocs build --strict` succeeds (snippet paths checked, links checked).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from examples.transactions import tasks
from examples.transactions.router import router as examples_router
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from {{ cookiecutter.project_slug }}.db import (
    SessionFactory,
    task_session,
)
from {{ cookiecutter.project_slug }}.errors import install_error_handlers
from {{ cookiecutter.project_slug }}.jobs import service as jobs
from {{ cookiecutter.project_slug }}.jobs.models import JobStatus
from {{ cookiecutter.project_slug }}.jobs.router import router as jobs_router
from {{ cookiecutter.project_slug }}.jobs.runner import (
    JobResources,
    run_job,
)
from {{ cookiecutter.project_slug }}.profiles.models import Profile
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.serving import ROOT, service_environment
from tests.sessionlint.helpers import FIXTURES, run_cli
from tests.sessionlint.test_audit import LEGACY_FLAGS

DOCS = ROOT / "docs"
LEGACY = FIXTURES / "legacy"
HANDLERS = {tasks.KIND: tasks.normalise_emails}


@pytest.fixture
async def docs_client(
    sessions: SessionFactory, resources: JobResources
) -> AsyncIterator[AsyncClient]:
    """A client on an app with the examples' router; jobs run inline, inside the test."""
    app = FastAPI()
    app.include_router(examples_router)
    app.include_router(jobs_router, prefix="/api/v1")
    install_error_handlers(app)

    async def enqueue(job_id: uuid.UUID) -> None:
        await run_job(job_id, HANDLERS, resources)

    app.state.enqueue = enqueue
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def count_profiles(session: AsyncSession, *emails: str) -> int:
    """How many profiles have one of these emails (all profiles when none is given)."""
    query = select(func.count()).select_from(Profile)
    if emails:
        query = query.where(Profile.email.in_(emails))
    return await session.scalar(query) or 0


# Routers: the request's session is one unit of work (docs/transactions.md).


async def test_a_handler_that_raises_stores_nothing(
    docs_client: AsyncClient, session: AsyncSession
) -> None:
    ada = Profile(name="Ada", email="ada@example.com")
    session.add_all([ada, Profile(name="Alan", email="alan@example.com")])
    await session.commit()

    taken = {"name": "Ada", "email": "alan@example.com"}
    response = await docs_client.post(f"/examples/profiles/{ada.id}/replace", json=taken)
    assert response.status_code == 409, response.text
    assert await count_profiles(session, "ada@example.com") == 1  # the delete was undone

    unknown = await docs_client.post(
        f"/examples/profiles/{uuid.uuid4()}/replace",
        json={"name": "Grace", "email": "grace@example.com"},
    )
    assert unknown.status_code == 404
    assert await count_profiles(session, "grace@example.com") == 0

    fresh = {"name": "Ada L.", "email": "lovelace@example.com"}
    replaced = await docs_client.post(f"/examples/profiles/{ada.id}/replace", json=fresh)
    assert replaced.status_code == 201, replaced.text
    assert await count_profiles(session, "ada@example.com", "lovelace@example.com") == 1


async def test_a_savepoint_keeps_the_request_transaction_usable(
    docs_client: AsyncClient, session: AsyncSession
) -> None:
    body = {"name": "Grace", "email": "grace@example.com"}
    first = await docs_client.put("/examples/profiles/by-email", json=body)
    again = await docs_client.put("/examples/profiles/by-email", json=body)
    assert first.status_code == again.status_code == 200, again.text
    assert first.json()["id"] == again.json()["id"]
    assert await count_profiles(session) == 1


async def test_a_job_sees_the_committed_row_and_commits_its_batches(
    docs_client: AsyncClient, session: AsyncSession
) -> None:
    session.add_all(
        [Profile(name="Ada", email="Ada@Example.com"), Profile(name="Bo", email="bo@example.com")]
    )
    await session.commit()

    response = await docs_client.post("/examples/profiles/normalise-emails")
    assert response.status_code == 202, response.text
    job = (await docs_client.get(f"/api/v1/jobs/{response.json()['job_id']}")).json()

    assert job["status"] == "succeeded", job
    assert job["result"] == {"profiles": 2, "changed": 1}
    assert await count_profiles(session, "ada@example.com", "bo@example.com") == 2


async def test_a_failing_batch_is_rolled_back_and_earlier_batches_stay(
    sessions: SessionFactory, resources: JobResources, session: AsyncSession
) -> None:
    # Rows written before the API refused such emails: a stray space makes them distinct.
    emails = ["Ada@Example.com", "Bo@Example.com", "carol@example.com", " Carol@Example.com"]
    session.add_all(
        Profile(id=uuid.UUID(int=number), name=email.split("@")[0], email=email)
        for number, email in enumerate(emails, start=1)
    )
    await session.commit()
    async with task_session() as job_session:
        job = await jobs.create_job(job_session, kind=tasks.KIND, params={"batch_size": 2})

    await run_job(job.id, HANDLERS, resources)

    async with sessions() as check:
        stored = await check.scalars(select(Profile.email).order_by(Profile.id))
        finished = await jobs.get_job(check, job_id=job.id)
    # The first batch committed; the second clashed on "carol@example.com" and was rolled back.
    assert list(stored) == ["ada@example.com", "bo@example.com", *emails[2:]]
    assert finished.status is JobStatus.FAILED
    assert finished.error == "stopped after 2 profiles: two emails are the same once normalised"
    assert finished.progress_done == 2


async def test_the_script_commits_through_the_one_engine(
    settings: Settings, engine: AsyncEngine, committed: None
) -> None:
    assert settings.database_url is not None
    env = service_environment(make_url(settings.database_url.get_secret_value()))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "examples.transactions.script",
        "Ada Lovelace",
        "ada@example.com",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    profile_id = uuid.UUID(stdout.decode().strip())
    async with engine.connect() as connection:  # another connection: the row is committed
        query = text("SELECT email FROM profiles WHERE id = :id")
        stored = await connection.scalar(query, {"id": profile_id})
    assert stored == "ada@example.com"


# The errors the rules exist for (docs/database.md), reproduced on the real database.


# --8<-- [start:already-begun]
async def test_begin_on_a_session_in_a_transaction_fails(session: AsyncSession) -> None:
    await session.execute(select(1))  # SQLAlchemy 2 begins the transaction here (autobegin)
    with pytest.raises(InvalidRequestError, match="A transaction is already begun"):
        async with session.begin():
            pass


# --8<-- [end:already-begun]


# --8<-- [start:aborted]
async def test_a_failed_statement_aborts_the_transaction(session: AsyncSession) -> None:
    await session.execute(insert(Profile).values(name="Ada", email="ada@example.com"))
    with pytest.raises(IntegrityError, match="uq_profiles_email"):
        await session.execute(insert(Profile).values(name="Ada", email="ada@example.com"))
    # Carrying on in the same transaction fails until the transaction is rolled back.
    with pytest.raises(DBAPIError, match="current transaction is aborted"):
        await session.execute(select(1))


# --8<-- [end:aborted]


# docs/sessionlint.md: each rule's bad sample fires it; each good sample is clean.


SAMPLE = re.compile(
    r'^```(?:python|text) title="(?P<kind>bad|good): (?P<path>[^"]+)"\n(?P<code>.*?)^```$',
    re.MULTILINE | re.DOTALL,
)


def rule_samples() -> list[tuple[str, str, str, str]]:
    """(rule, bad|good, path, code) for every titled sample under a `### SLnnn` heading."""
    text_ = (DOCS / "sessionlint.md").read_text(encoding="utf-8")
    sections = re.split(r"^### (SL\d{3}) ", text_, flags=re.MULTILINE)
    samples = []
    for rule, body in zip(sections[1::2], sections[2::2], strict=True):
        for match in SAMPLE.finditer(body):
            samples.append((rule, match["kind"], match["path"], match["code"]))
    return samples


def test_every_rule_has_a_bad_and_a_good_sample() -> None:
    shown = {(rule, kind) for rule, kind, _, _ in rule_samples()}
    rules = {f"SL{number:03d}" for number in range(9)}
    assert shown == {(rule, kind) for rule in rules for kind in ("bad", "good")}


@pytest.mark.parametrize(
    ("rule", "kind", "path", "code"),
    rule_samples(),
    ids=[f"{rule}-{kind}" for rule, kind, _, _ in rule_samples()],
)
def test_rule_sample(rule: str, kind: str, path: str, code: str, tmp_path: Path) -> None:
    sample = tmp_path / path
    sample.parent.mkdir(parents=True, exist_ok=True)
    sample.write_text(code, encoding="utf-8")
    result = run_cli("check", "--no-config", "--format", "json", cwd=tmp_path)
    found = {finding["code"] for finding in json.loads(result.stdout)}
    if kind == "bad":
        assert rule in found, f"{path} should fire {rule}; found {sorted(found)}"
    else:
        assert not found, f"{path} should be clean; found {sorted(found)}"


# docs/legacy.md: the audit table shown is the real output.


def test_the_legacy_audit_shown_is_the_real_output() -> None:
    result = run_cli("audit", *LEGACY_FLAGS, cwd=LEGACY)
    assert result.returncode == 0, result.stderr
    page = (DOCS / "legacy.md").read_text(encoding="utf-8")
    shown = page.split("<!-- audit:start -->\n", 1)[1].split("<!-- audit:end -->", 1)[0]
    assert shown.strip() == result.stdout.strip()


# The site: mkdocs --strict fails on a missing snippet file, a broken link or a bad nav entry.


def test_the_docs_build_in_strict_mode(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "index.html").is_file()
