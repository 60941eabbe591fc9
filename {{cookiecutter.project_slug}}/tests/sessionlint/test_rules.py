"""Focused rule tests on in-memory snippets."""

import textwrap

import pytest

from sessionlint.config import Config
from sessionlint.context import FileContext
from sessionlint.events import Event, Status
from sessionlint.runner import analyze_source


def _ctx(**roles: bool) -> FileContext:
    path = "src/app/x.py"
    return FileContext(path=path, relpath=path, module="app.x", feature="X", **roles)


def _events(source: str, config: Config | None = None, **roles: bool) -> list[Event]:
    return analyze_source(textwrap.dedent(source), _ctx(**roles), config or Config())


def _codes(source: str, config: Config | None = None, **roles: bool) -> list[tuple[int, str]]:
    return sorted((e.line, e.code or "") for e in _events(source, config, **roles) if e.is_finding)


def test_import_alias_of_module_is_resolved() -> None:
    source = """
    import sqlalchemy.ext.asyncio as sa_async
    engine = sa_async.create_async_engine("sqlite://")
    """
    assert _codes(source) == [(3, "SL002")]


def test_from_import_alias_is_resolved() -> None:
    source = """
    from sqlalchemy.orm import sessionmaker as sm
    factory = sm()
    """
    assert _codes(source) == [(3, "SL002")]


def test_non_sqlalchemy_session_is_ignored() -> None:
    source = """
    import requests
    from httpx import Session
    a = requests.Session()
    b = Session()
    """
    assert _codes(source) == []


def test_db_module_creation_is_a_correct_connection_point() -> None:
    source = """
    from sqlalchemy.ext.asyncio import create_async_engine
    engine = create_async_engine("sqlite://")
    """
    events = _events(source, is_db=True)
    assert [(e.method, e.status) for e in events] == [("Engine creation", Status.CORRECT)]


def test_scope_must_be_function() -> None:
    source = """
    from fastapi import Depends
    @router.get("/")
    async def h(session: AsyncSession = Depends(get_session_dependency, scope="request")):
        ...
    """
    assert _codes(source) == [(4, "SL001")]


def test_configured_session_dependency_and_alias() -> None:
    config = Config(session_dependency="provide_session", session_aliases=("DB",))
    source = """
    @router.get("/a")
    async def a(session: DB): ...
    @router.get("/b")
    async def b(session: AsyncSession = Depends(provide_session, scope="function")): ...
    @router.get("/c")
    async def c(session: AsyncSession = Depends(get_session_dependency, scope="function")): ...
    """
    assert _codes(source, config) == [(7, "SL001")]


def test_string_and_optional_annotations_are_understood() -> None:
    source = """
    @router.get("/a")
    async def a(session: "AsyncSession"): ...
    @router.get("/b")
    async def b(session: AsyncSession | None = None): ...
    """
    assert _codes(source) == [(3, "SL001"), (5, "SL001")]


def test_task_session_via_exit_stack_is_sanctioned() -> None:
    source = """
    async def job(stack):
        session = await stack.enter_async_context(task_session())
    """
    assert _codes(source, is_task=True) == []


def test_service_flush_is_fine_but_commit_is_not() -> None:
    source = """
    async def save(session):
        await session.flush()
        await session.commit()
    async def other(path):
        feedback = open(path)
        feedback.close()
    """
    assert _codes(source, is_service=True) == [(4, "SL003")]


def test_transaction_control_on_a_received_session_is_sl003_in_any_module() -> None:
    # Ownership, not the module's name, decides: the caller handed this session in.
    source = """
    async def save(session):
        await session.commit()
    """
    assert _codes(source) == [(3, "SL003")]


def test_transaction_control_in_routers_and_db_is_not_sl003() -> None:
    source = """
    async def save(session):
        await session.commit()
    """
    assert _codes(source, is_router=True) == []
    assert _codes(source, is_db=True) == []


def test_settings_module_may_build_urls() -> None:
    source = """
    URL_TEMPLATE = "postgresql+asyncpg://{user}@{host}/db"
    def get_db_url():
        return URL.create("postgresql+asyncpg", host="h")
    """
    events = _events(source, is_settings=True)
    assert not [e for e in events if e.is_finding]
    assert {e.status for e in events} == {Status.CORRECT, Status.REVIEW}


def test_urls_allowed_by_path_glob() -> None:
    source = 'URL = "postgresql://localhost/test"\n'
    assert _codes(source, allow_urls=True) == []
    assert _codes(source) == [(1, "SL005")]


def test_driver_allowed_by_module_glob() -> None:
    assert _codes("import asyncpg\n", allow_driver=True) == []
    assert _codes("import asyncpg\n") == [(1, "SL004")]


def test_tenant_names_are_configurable() -> None:
    source = "q = select(A).filter(A.tenant_id == 2)\nr = select(A).filter_by(org_id=1)\n"
    assert _codes(source) == [(1, "SL007"), (2, "SL007")]
    assert _codes(source, Config(tenant_names=("org_id",))) == [(2, "SL007")]
    assert _codes(source, Config(tenant_names=())) == []


def test_session_id_is_not_a_session() -> None:
    source = """
    async def h(background_tasks, session_id: int):
        background_tasks.add_task(run, session_id)
    """
    assert _codes(source) == []


def test_syntax_error_is_sl000() -> None:
    assert _codes("def f(:\n    pass\n") == [(1, "SL000")]


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("# noqa: SL002 needed for the migration runner", []),
        ("# noqa:SL002 -- reason after dashes", []),
        ("# NOQA: SL002 upper-case works too", []),
        ("# noqa: SL002", [(1, "SL002"), (1, "SL008")]),
        ("# noqa: SL002 # only another comment", [(1, "SL002"), (1, "SL008")]),
        ("# noqa", [(1, "SL002"), (1, "SL008")]),
        ("# noqa: SL005 wrong code", [(1, "SL002")]),
        ("# noqa: E501", [(1, "SL002")]),
    ],
)
def test_noqa_policy(comment: str, expected: list[tuple[int, str]]) -> None:
    source = f"engine = create_async_engine(url)  {comment}\n"
    assert _codes(source) == expected


def test_suppressed_finding_becomes_review() -> None:
    source = "engine = create_async_engine(url)  # noqa: SL002 legacy script\n"
    (event,) = _events(source)
    assert event.status is Status.REVIEW
    assert event.code == "SL002"
    assert "legacy script" in event.message


def test_reasoned_noqa_is_kept_in_own_tests() -> None:
    source = 'DSN = "postgresql://localhost/x"\n'  # noqa: SL005 the rule's own test input
    assert _codes(source) == [(1, "SL005")]


def test_noqa_in_a_string_is_not_a_comment() -> None:
    source = 'engine = create_async_engine("# noqa: SL002 not a comment")\n'
    assert _codes(source) == [(1, "SL002")]


def test_string_values_are_not_parsed_as_annotations() -> None:
    source = 'x = "\\ud800"\ny = "AsyncSession"\nz = "def ("\n'
    assert _codes(source) == []


def test_deeply_nested_source_does_not_crash() -> None:
    source = "x = " + "(" * 300 + "1" + ")" * 300 + "\n"
    assert _codes(source) in ([], [(1, "SL000")])


def test_dsn_rule_fires_on_constructed_urls_and_full_literals() -> None:
    source = """
    a = f"postgresql+asyncpg://{user}:{password}@{host}/app"
    b = "postgresql://" + user + "@" + host
    c = "postgresql+psycopg2://%s@%s/db" % (user, host)
    d = "mysql+aiomysql://{}/db".format(host)
    e = "postgres://app:secret@db.internal/app"
    f = URL.create("postgresql+asyncpg", host=host)
    """
    assert _codes(source) == [(n, "SL005") for n in range(2, 8)]


def test_dsn_rule_ignores_prefix_tests_comparisons_and_log_lines() -> None:
    source = """
    import logging
    logger = logging.getLogger(__name__)

    def check(url: str, host: str) -> bool:
        if url.startswith("postgresql+asyncpg://") or url.endswith("postgres://x/y"):
            logger.info(f"connecting to postgresql://***@{host}/app")
        logger.warning("bad url %s", "postgresql://user:***@" + host)
        print("postgresql://***@" + host)
        fixed = url.replace("postgres://", "postgresql+asyncpg://")
        scheme = "postgresql+asyncpg://"
        local = "sqlite:///./local.db"
        return url == "postgresql://localhost/app" or "postgresql://" in fixed
    """
    assert _codes(source) == []


def test_tenant_filters_spread_from_lists_tuples_and_dicts() -> None:
    source = """
    async def search(session, tenant_id, org_id, name):
        filters = [Site.active.is_(True)]
        if name:
            filters.append(Site.name == name)
        filters.append(Site.tenant_id == tenant_id)
        await session.execute(select(Site).where(*filters))
        conditions = (Site.org_id == org_id, Site.deleted.is_(False))
        await session.execute(select(Site).where(and_(*conditions)))
        criteria = {"name": name}
        criteria["tenant_id"] = tenant_id
        await session.execute(select(Site).filter_by(**criteria))
        scope = dict(account_id=1)
        await session.execute(select(Site).filter_by(**scope))
        plain = [Site.name == name]
        await session.execute(select(Site).where(*plain))
    """
    assert _codes(source) == [(7, "SL007"), (9, "SL007"), (12, "SL007"), (14, "SL007")]


def test_raw_sql_tenant_filter_is_reported_at_the_text_call() -> None:
    # TENANT and ORG stand for the columns, so that this test's own source stays clean.
    source = """
    async def rows(session, t):
        await session.execute(
            text(
                "SELECT * FROM sites "
                "WHERE TENANT = :t"
            ),
            {"t": t},
        )
        query = "SELECT id FROM pages WHERE id > 0 AND ORG = :o"
        await session.execute(text(query), {"o": t})
        await session.execute(text("SELECT id FROM pages WHERE id = :o"))
        clause = "WHERE TENANT = :t"
        await session.execute(text(f"SELECT id FROM pages {clause}"))
    """
    source = source.replace("TENANT", "tenant_id").replace("ORG", "org_id")
    # A WHERE fragment interpolated into the statement is reported where it is written.
    assert _codes(source) == [(4, "SL007"), (11, "SL007"), (13, "SL007")]


def test_python_code_and_docstrings_are_not_raw_sql() -> None:
    source = '''
    def pages(session, tenant_id):
        """Return the pages where the tenant_id matches; select them first."""
        snippet = "q = select(Page).where(Page.id > 0)  # tenant_id"
        return snippet
    '''
    assert _codes(source) == []
