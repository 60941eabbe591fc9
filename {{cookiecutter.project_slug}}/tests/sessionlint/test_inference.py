"""Whole-program inference: sources, factories, engines and aliases found with no configuration."""

from pathlib import Path

from sessionlint.config import Config
from sessionlint.runner import run

from .program import findings, program, sources, write

DB = {
    "app/__init__.py": "",
    "app/db/__init__.py": """
        from .session import get_background_session, get_session_dependency

        get_db = get_background_session
        """,
    "app/db/engine.py": """
        from sqlalchemy.ext.asyncio import create_async_engine

        def make_engine(url):
            return create_async_engine(url)

        engine = make_engine("postgresql+asyncpg:///app")
        reporting_engine = create_async_engine("postgresql+asyncpg:///reports")
        """,
    "app/db/session.py": """
        import functools
        from contextlib import asynccontextmanager

        from sqlalchemy.ext.asyncio import async_sessionmaker

        from app.db.engine import engine, reporting_engine

        SessionLocal = async_sessionmaker(engine)
        ReportingSession = async_sessionmaker(reporting_engine)

        async def get_session_dependency():
            async with SessionLocal() as session:
                yield session

        @asynccontextmanager
        async def get_background_session():
            session = SessionLocal()
            try:
                yield session
            finally:
                await session.close()

        def _session_for(factory):
            return factory()

        def get_reporting_session():
            return ReportingSession()

        open_reporting = functools.partial(get_reporting_session)
        """,
}


def test_sources_are_inferred_across_modules_with_their_reason(tmp_path: Path) -> None:
    result = program(tmp_path, DB)
    assert sources(result) == {
        "app.db.engine.make_engine": ("engine", "returns create_async_engine(...)"),
        "app.db.engine.engine": ("engine", "built by make_engine(...)"),
        "app.db.engine.reporting_engine": ("engine", "built by create_async_engine(...)"),
        "app.db.session.SessionLocal": ("session factory", "async_sessionmaker(...)"),
        "app.db.session.ReportingSession": ("session factory", "async_sessionmaker(...)"),
        "app.db.session.get_session_dependency": (
            "session source",
            "yields a session entered from SessionLocal()",
        ),
        "app.db.session.get_background_session": ("session source", "yields SessionLocal()"),
        "app.db.session.get_reporting_session": ("session source", "returns ReportingSession()"),
        "app.db.session.open_reporting": (
            "session source",
            "partial(get_reporting_session, ...)",
        ),
        "app.db.get_db": (
            "session source",
            "alias of app.db.session.get_background_session",
        ),
    }
    assert findings(result) == set()


def test_every_way_of_reaching_a_source_is_an_opening_outside_db(tmp_path: Path) -> None:
    files = {
        **DB,
        "app/schedulers/cleanup.py": """
            from app import db
            from app.db import get_background_session, get_db
            from app.db.session import open_reporting

            async def cleanup():
                async with get_background_session() as session:
                    await session.commit()
                async with db.get_background_session() as again:
                    await again.commit()
                async with get_db() as legacy:
                    await legacy.commit()
                report = open_reporting()
                await report.close()
            """,
    }
    result = program(tmp_path, files)
    rel = "app/schedulers/cleanup.py"
    # Each opening is SL002; the scheduler owns those sessions, so its commits are not SL003.
    assert findings(result) == {
        (rel, 6, "SL002"),
        (rel, 8, "SL002"),
        (rel, 10, "SL002"),
        (rel, 12, "SL002"),
    }


def test_type_aliases_and_any_typed_session_names_are_followed(tmp_path: Path) -> None:
    files = {
        "app/types.py": """
            from typing import Any
            from sqlalchemy.ext.asyncio import AsyncSession

            Session = Any
            DbSession = AsyncSession
            HttpSession = Any
            """,
        "app/routers/items.py": """
            from app.types import DbSession, HttpSession, Session

            @router.get("/a")
            async def a(session: Session): ...

            @router.get("/b")
            async def b(db: DbSession): ...

            @router.get("/c")
            async def c(http: HttpSession): ...
            """,
    }
    result = program(tmp_path, files)
    rel = "app/routers/items.py"
    assert findings(result) == {(rel, 4, "SL001"), (rel, 7, "SL001")}


def test_depends_aliases_defined_or_imported_count_as_the_request_dependency(
    tmp_path: Path,
) -> None:
    files = {
        **DB,
        "app/api/deps.py": """
            from typing import Annotated
            from fastapi import Depends
            from sqlalchemy.ext.asyncio import AsyncSession
            from app.db import get_session_dependency

            SessionDep = Depends(get_session_dependency)
            ScopedDep = Annotated[AsyncSession, Depends(get_session_dependency, scope="function")]
            """,
        "app/routers/items.py": """
            from sqlalchemy.ext.asyncio import AsyncSession
            from app.api.deps import ScopedDep, SessionDep

            @router.get("/a")
            async def a(session: AsyncSession = SessionDep): ...

            @router.get("/b")
            async def b(session: ScopedDep): ...
            """,
    }
    result = program(tmp_path, files)
    # The routes are injected; the alias without scope="function" is reported once, where
    # it is defined (FastAPI's requirement is unknown here: treated as >= 0.118).
    assert findings(result) == {("app/api/deps.py", 6, "SL001")}


def test_lookalike_names_defined_in_the_program_are_not_sources(tmp_path: Path) -> None:
    files = {
        "app/clients.py": """
            import aiohttp

            def get_session() -> aiohttp.ClientSession:
                return aiohttp.ClientSession()

            def SessionLocal():
                return object()
            """,
        "app/services/fetch.py": """
            from app.clients import SessionLocal, get_session

            async def fetch(url):
                async with get_session() as http:
                    await http.get(url)
                SessionLocal().close()
            """,
    }
    result = program(tmp_path, files)
    assert findings(result) == set()
    assert sources(result) == {}


def test_unresolvable_default_names_still_count(tmp_path: Path) -> None:
    # get_db_session is imported from a package outside the checked paths.
    files = {
        "app/services/legacy.py": """
            from vendor.db import get_db_session

            async def work():
                async with get_db_session() as session:
                    await session.flush()
            """,
    }
    assert findings(program(tmp_path, files)) == {("app/services/legacy.py", 4, "SL002")}


def test_configured_names_add_sources(tmp_path: Path) -> None:
    files = {
        "app/lib.py": """
            def open_conn():
                return make_something()
            """,
        "app/services/use.py": """
            from app.lib import open_conn

            def use():
                with open_conn() as s:
                    s.flush()
            """,
    }
    assert findings(program(tmp_path, files)) == set()
    config = Config(session_getters=("open_conn",))
    result = program(tmp_path, files, config)
    assert findings(result) == {("app/services/use.py", 4, "SL002")}
    assert sources(result) == {
        "app.lib.open_conn": ("session source", "configured: session-getters")
    }


def test_engines_by_origin_are_connections_outside_db(tmp_path: Path) -> None:
    files = {
        **DB,
        "scripts/report.py": """
            from app.db.engine import make_engine, reporting_engine

            async def main():
                warehouse = make_engine("x")
                async with warehouse.connect() as conn:
                    await conn.execute("SELECT 1")
                async with reporting_engine.begin() as conn:
                    await conn.execute("SELECT 1")
            """,
    }
    result = program(tmp_path, files)
    assert findings(result) == {
        ("scripts/report.py", 5, "SL002"),
        ("scripts/report.py", 7, "SL002"),
    }


def test_methods_of_module_level_instances_are_sources(tmp_path: Path) -> None:
    files = {
        "app/db/manager.py": """
            from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

            class SessionManager:
                def __init__(self) -> None:
                    self._factory = async_sessionmaker()

                def session(self) -> AsyncSession:
                    return self._factory()

            session_manager = SessionManager()
            """,
        "app/services/stats.py": """
            from app.db.manager import session_manager

            async def refresh() -> None:
                async with session_manager.session() as session:
                    await session.commit()
            """,
    }
    result = program(tmp_path, files)
    assert sources(result)["app.db.manager.SessionManager.session"] == (
        "session source",
        "annotated -> AsyncSession",
    )
    assert findings(result) == {("app/services/stats.py", 4, "SL002")}


def test_files_given_alone_are_checked_with_the_whole_project_indexed(tmp_path: Path) -> None:
    # A pre-commit hook passes only the changed files; sources defined in unchanged modules
    # must still be known.
    files = {
        **DB,
        "pyproject.toml": '[project]\nname = "app"\n',
        "app/services/sync.py": """
            from app.db import get_background_session

            async def sync():
                async with get_background_session() as session:
                    await session.flush()
            """,
    }
    write(tmp_path, files)
    changed = tmp_path / "app" / "services" / "sync.py"
    result = run([changed], Config(), tmp_path)
    assert findings(result) == {("app/services/sync.py", 4, "SL002")}
    assert result.files == 1
    assert {e.relpath for e in result.events} == {"app/services/sync.py"}


def test_an_alias_of_another_source_is_reported_where_it_is_defined(tmp_path: Path) -> None:
    files = {
        **DB,
        "app/db/deps.py": """
            from typing import Annotated
            from fastapi import Depends
            from sqlalchemy.ext.asyncio import AsyncSession
            from app.db import get_db

            LegacyDb = Annotated[AsyncSession, Depends(get_db)]
            """,
        "app/routers/items.py": """
            from app.db.deps import LegacyDb

            @router.get("/a")
            async def a(session: LegacyDb): ...

            @router.get("/b")
            async def b(session: LegacyDb): ...
            """,
    }
    result = program(tmp_path, files)
    # One place to fix (and to suppress with a reason): the alias, even inside the db package.
    assert findings(result) == {("app/db/deps.py", 6, "SL001")}


def test_functions_that_return_a_sessionmaker(tmp_path: Path) -> None:
    files = {
        "app/db/core.py": """
            from functools import lru_cache
            from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

            @lru_cache
            def get_engine():
                return create_async_engine("postgresql+asyncpg:///app")

            @lru_cache
            def get_sessionmaker() -> async_sessionmaker:
                return async_sessionmaker(get_engine())

            def build_factory():
                return async_sessionmaker(get_engine())

            Factory = build_factory()
            """,
        "app/services/jobs.py": """
            from app.db.core import Factory, get_sessionmaker

            async def run():
                maker = get_sessionmaker()
                async with maker() as session:
                    await session.commit()
                async with get_sessionmaker()() as other:
                    await other.commit()
                async with Factory() as third:
                    await third.commit()
            """,
    }
    result = program(tmp_path, files)
    kinds = {name: kind for name, (kind, _) in sources(result).items()}
    assert kinds == {
        "app.db.core.get_engine": "engine",
        "app.db.core.get_sessionmaker": "session factory",
        "app.db.core.build_factory": "session factory",
        "app.db.core.Factory": "session factory",
    }
    rel = "app/services/jobs.py"
    # Getting the sessionmaker opens nothing; calling it opens a session.
    assert findings(result) == {(rel, 5, "SL002"), (rel, 7, "SL002"), (rel, 9, "SL002")}
