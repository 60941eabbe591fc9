"""Ownership: SL003 fires on sessions received from a caller, not on owned ones or non-sessions."""

from pathlib import Path

from .program import finding, findings, program

DB = {
    "app/db/__init__.py": """
        from contextlib import asynccontextmanager
        from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

        SessionLocal = async_sessionmaker()

        @asynccontextmanager
        async def get_background_session():
            async with SessionLocal() as session:
                yield session
        """,
}


def test_received_sessions_through_params_attributes_and_locals(tmp_path: Path) -> None:
    files = {
        **DB,
        "app/services/reports.py": """
            from sqlalchemy.ext.asyncio import AsyncSession

            async def save(session: AsyncSession) -> None:
                await session.commit()

            async def untyped(db) -> None:
                await db.rollback()

            class ReportService:
                def __init__(self, session: AsyncSession) -> None:
                    self.session = session

                async def build(self) -> None:
                    await self.session.commit()
                    current = self.session
                    await current.close()
                    async with self.session.begin():
                        pass
                    await self.session.begin_nested()
            """,
    }
    result = program(tmp_path, files)
    rel = "app/services/reports.py"
    assert findings(result) == {
        (rel, 4, "SL003"),
        (rel, 7, "SL003"),
        (rel, 14, "SL003"),
        (rel, 16, "SL003"),
        (rel, 17, "SL003"),
    }
    assert finding(result, rel, 14).scope == "ReportService.build"
    assert finding(result, rel, 4).scope == "save"
    assert "received from the caller" in finding(result, rel, 16).message


def test_sessions_a_function_opened_itself_are_its_own(tmp_path: Path) -> None:
    files = {
        **DB,
        "app/schedulers/loop.py": """
            from app.db import SessionLocal, get_background_session

            class Scheduler:
                def __init__(self) -> None:
                    self.session = SessionLocal()

                async def tick(self) -> None:
                    await self.session.commit()

            async def run_once() -> None:
                async with get_background_session() as session:
                    await session.commit()
                    await session.rollback()
                    await session.close()
            """,
    }
    result = program(tmp_path, files)
    rel = "app/schedulers/loop.py"
    assert findings(result) == {(rel, 5, "SL002"), (rel, 11, "SL002")}


def test_commit_on_objects_that_are_not_sessions(tmp_path: Path) -> None:
    files = {
        "app/services/publish.py": """
            import aiohttp
            import httpx
            import requests
            from aiokafka import AIOKafkaConsumer
            from git import Repo

            class GitRepo:
                def commit(self, message: str) -> None: ...

            async def publish(repo: GitRepo, session: aiohttp.ClientSession, db_repo: Repo) -> None:
                repo.commit("release")
                await session.close()
                db_repo.close()
                consumer = AIOKafkaConsumer("topic")
                await consumer.commit()
                http = requests.Session()
                http.close()
                async with httpx.AsyncClient() as client:
                    await client.aclose()
            """,
    }
    assert findings(program(tmp_path, files)) == set()


def test_route_handlers_and_router_helpers_own_the_request_transaction(tmp_path: Path) -> None:
    files = {
        "app/db/__init__.py": """
            async def get_session_dependency():
                yield object()
            """,
        "app/jobs/queue.py": """
            from sqlalchemy.ext.asyncio import AsyncSession

            async def submit(session: AsyncSession) -> None:
                await session.commit()

            async def shared(session: AsyncSession) -> None:
                await session.commit()
            """,
        "app/items/router.py": """
            from typing import Annotated
            from fastapi import Depends
            from sqlalchemy.ext.asyncio import AsyncSession
            from app.db import get_session_dependency
            from app.jobs import queue

            SessionDep = Annotated[AsyncSession, Depends(get_session_dependency, scope="function")]

            @router.post("/items")
            async def create(session: SessionDep) -> None:
                await session.commit()
                await queue.submit(session)
                await queue.shared(session)
            """,
        "app/jobs/worker.py": """
            from app.jobs.queue import shared

            async def run(session) -> None:
                await shared(session)
            """,
    }
    result = program(tmp_path, files)
    # submit() is called only by route handlers: it acts for the handler that owns the
    # transaction. shared() is also called by a worker: its commit is on a received session.
    # worker.run() receives an untyped `session` but does not control the transaction.
    assert findings(result) == {("app/jobs/queue.py", 7, "SL003")}


def test_background_hand_off_of_any_session(tmp_path: Path) -> None:
    files = {
        **DB,
        "app/items/router.py": """
            import asyncio
            import threading
            from app.db import get_background_session

            async def refresh(session_id: int, session) -> None: ...

            async def fan_out(loop, executor, session_id: int) -> None:
                async with get_background_session() as owned:
                    asyncio.create_task(refresh(session_id, owned))
                    loop.run_in_executor(executor, print, owned)
                    threading.Thread(target=print, args=(owned,))
                    asyncio.create_task(refresh(session_id, None))
            """,
    }
    result = program(tmp_path, files)
    rel = "app/items/router.py"
    assert findings(result) == {
        (rel, 8, "SL002"),
        (rel, 9, "SL006"),
        (rel, 10, "SL006"),
        (rel, 11, "SL006"),
    }


def test_untraceable_values_fall_back_to_their_name(tmp_path: Path) -> None:
    files = {
        "app/items/router.py": """
            from fastapi import BackgroundTasks

            async def later(session) -> None: ...

            @router.post("/items")
            async def create(request, tasks: BackgroundTasks) -> None:
                session = request.state.session
                tasks.add_task(later, session)
                db = lookup_db(request)
                tasks.add_task(later, db)
                consumer = KafkaConsumer("topic")
                tasks.add_task(later, consumer)
            """,
    }
    rel = "app/items/router.py"
    assert findings(program(tmp_path, files)) == {(rel, 8, "SL006"), (rel, 10, "SL006")}
