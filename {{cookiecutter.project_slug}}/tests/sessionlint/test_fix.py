"""``check --fix`` and ``--diff``: the scope rule's mechanical rewrites on a copy of a project."""

import ast
import importlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from sessionlint.fix import scope_keyword_available

from .helpers import FIXTURES, run_cli

PYPROJECT = """\
[project]
name = "fixme"
dependencies = ["fastapi>=0.121"]

[tool.sessionlint]
db-modules = ["fixme.db", "fixme.db.*"]
"""
DB = '''\
"""The db package: the request dependency and its alias."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

factory = async_sessionmaker()


async def get_session_dependency() -> AsyncIterator[AsyncSession]:
    async with factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session_dependency, scope="function")]
'''
ROUTES = '''\
"""Routes written before SessionDep existed."""

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession

from fixme.db import get_session_dependency

router = APIRouter()
LocalDep = Annotated[AsyncSession, Depends(get_session_dependency)]


@router.get("/a")
async def plain(session: AsyncSession = Depends(get_session_dependency)) -> None:
    await session.flush()


@router.get("/b")
async def after_a_default(
    q: str = "",
    session: AsyncSession = Depends(
        get_session_dependency,
    ),
) -> None:
    await session.flush()


@router.get("/c")
async def via_alias(session: LocalDep) -> None:
    await session.flush()


async def build_service(session: AsyncSession = Depends(get_session_dependency)) -> object:
    return session


@router.get("/d")
async def reasoned(
    session: AsyncSession = Depends(get_session_dependency),  # noqa: SL001 migrating in PR 42
) -> None:
    await session.flush()
'''
UNTOUCHED = '''\
"""A route already compliant: --fix leaves the file byte for byte."""

from fastapi import APIRouter

from fixme.db import SessionDep

router = APIRouter()


@router.get("/ok")
async def ok(session: SessionDep) -> None:
    await session.flush()
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    files = {
        "pyproject.toml": PYPROJECT,
        "src/fixme/__init__.py": "",
        "src/fixme/db/__init__.py": DB,
        "src/fixme/routes.py": ROUTES,
        "src/fixme/ok.py": UNTOUCHED,
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


@pytest.fixture
def fresh_imports(project: Path) -> Iterator[None]:
    sys.path.insert(0, str(project / "src"))
    yield
    sys.path.remove(str(project / "src"))
    for name in [m for m in sys.modules if m == "fixme" or m.startswith("fixme.")]:
        del sys.modules[name]


def _sl001_lines(project: Path) -> list[str]:
    result = run_cli("check", "--select", "SL001", "--no-baseline", cwd=project)
    return result.stdout.splitlines()


def test_diff_shows_the_fixes_and_writes_nothing(project: Path) -> None:
    before = (project / "src/fixme/routes.py").read_text(encoding="utf-8")
    result = run_cli("check", "--diff", cwd=project)
    assert result.returncode == 1, result.stderr
    assert (project / "src/fixme/routes.py").read_text(encoding="utf-8") == before
    diff = result.stdout
    assert diff.startswith("--- a/src/fixme/routes.py\n+++ b/src/fixme/routes.py\n")
    assert "-from fixme.db import get_session_dependency\n" in diff
    assert "+from fixme.db import get_session_dependency, SessionDep\n" in diff
    assert "+async def plain(session: SessionDep) -> None:\n" in diff
    scoped = 'Depends(get_session_dependency, scope="function")'
    assert f"+LocalDep = Annotated[AsyncSession, {scoped}]\n" in diff
    assert f"+async def build_service(session: AsyncSession = {scoped}) -> object:\n" in diff
    assert '+        get_session_dependency, scope="function",\n' in diff
    assert "ok.py" not in diff
    assert "4 fixes in 1 file would be applied" in result.stderr


def test_fix_rewrites_so_check_is_clean_and_the_file_parses(project: Path) -> None:
    assert len(_sl001_lines(project)) == 4
    result = run_cli("check", "--fix", "--select", "SL001", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "applied 4 fixes in 1 file" in result.stderr
    assert _sl001_lines(project) == []
    text = (project / "src/fixme/routes.py").read_text(encoding="utf-8")
    ast.parse(text)
    assert "# noqa: SL001 migrating in PR 42" in text
    assert text.count("Depends(get_session_dependency),  # noqa") == 1, "suppressed: untouched"
    assert (project / "src/fixme/ok.py").read_text(encoding="utf-8") == UNTOUCHED
    again = run_cli("check", "--diff", cwd=project)
    assert again.returncode == 0
    assert again.stdout == ""


@pytest.mark.usefixtures("fresh_imports")
def test_fixed_routes_get_the_function_scoped_request_session(project: Path) -> None:
    assert run_cli("check", "--fix", cwd=project).returncode in {0, 1}
    db = importlib.import_module("fixme.db")
    routes = importlib.import_module("fixme.routes")
    by_path = {r.path: r for r in routes.router.routes if isinstance(r, APIRoute)}
    for path in ("/a", "/b", "/c"):
        (dependency,) = by_path[path].dependant.dependencies
        assert dependency.call is db.get_session_dependency, path
        assert dependency.scope == "function", path
    # The one with a reasoned noqa still runs the old way, as its author chose.
    (kept,) = by_path["/d"].dependant.dependencies
    assert kept.scope != "function"


def test_the_alias_is_imported_only_where_it_exists(project: Path) -> None:
    db = project / "src/fixme/db/__init__.py"
    db.write_text(DB.replace("SessionDep = ", "RequestSession = "), encoding="utf-8")
    result = run_cli("check", "--diff", cwd=project)
    assert "SessionDep" not in result.stdout
    scoped = 'Depends(get_session_dependency, scope="function")'
    assert f"+async def plain(session: AsyncSession = {scoped}) -> None:\n" in result.stdout


def write_route(
    project: Path, imports: str, *, dependency: str = "get_session_dependency", tail: str = ""
) -> Path:
    """Write `src/fixme/routes.py`: `imports`, then one route taking a bare `Depends(dependency)`
    session, then `tail`; return its path."""
    routes = project / "src/fixme/routes.py"
    routes.write_text(
        '"""Routes."""\n\n'
        "from fastapi import APIRouter, Depends\n"
        "from sqlalchemy.ext.asyncio import AsyncSession\n\n"
        f"{imports}\n"
        "router = APIRouter()\n\n\n"
        '@router.post("/x")\n'
        f"async def create(session: AsyncSession = Depends({dependency})) -> None:\n"
        "    await session.flush()\n" + tail,
        encoding="utf-8",
    )
    return routes


def test_an_aliased_import_and_an_unused_dependency_name(project: Path) -> None:
    routes = write_route(
        project, "from fixme.db import get_session_dependency as get_db\n", dependency="get_db"
    )
    assert run_cli("check", "--fix", cwd=project).returncode == 0
    text = routes.read_text(encoding="utf-8")
    assert "from fixme.db import SessionDep\n" in text
    assert "async def create(session: SessionDep) -> None:" in text
    assert "get_db" not in text


def test_a_pre_0_118_pin_is_not_rewritten(project: Path) -> None:
    # Below FastAPI 0.118 the finding is SL009, and scope= would not even exist yet: no fix.
    pyproject = project / "pyproject.toml"
    pyproject.write_text(PYPROJECT.replace("fastapi>=0.121", "fastapi==0.115.6"), encoding="utf-8")
    result = run_cli("check", "--diff", cwd=project)
    assert result.returncode == 0
    assert result.stdout == ""
    assert "nothing to fix" in result.stderr


def test_scope_is_not_added_where_fastapi_lacks_it(project: Path) -> None:
    # 0.118 to 0.121.0: the scope rule is an error, but Depends has no scope= argument yet.
    pyproject = project / "pyproject.toml"
    pyproject.write_text(PYPROJECT.replace("fastapi>=0.121", "fastapi<0.121"), encoding="utf-8")
    result = run_cli("check", "--diff", cwd=project)
    assert result.returncode == 1
    assert "scope=" not in "".join(
        line for line in result.stdout.splitlines(keepends=True) if line.startswith("+")
    )
    assert "+async def plain(session: SessionDep) -> None:\n" in result.stdout
    assert "1 fix in 1 file would be applied" in result.stderr


@pytest.mark.parametrize(
    ("upper", "exclusive", "available"),
    [
        (None, False, True),
        ((0, 121, 1), False, True),
        ((0, 121), False, False),
        ((0, 121, 1), True, False),
        ((0, 122), True, True),
        ((0, 115, 6), False, False),
    ],
)
def test_scope_keyword_available(
    upper: tuple[int, ...] | None, exclusive: bool, available: bool
) -> None:
    assert scope_keyword_available(upper, exclusive=exclusive) is available


@pytest.mark.parametrize(
    ("imports", "added"),
    [
        (
            "from fixme.db import (\n    get_session_dependency,\n    factory,\n)\n",
            "from fixme.db import (\n    get_session_dependency,\n    factory,\n)\n"
            "from fixme.db import SessionDep\n",
        ),
        (
            "from .db import factory, get_session_dependency  # the old way\n",
            "from .db import factory, get_session_dependency, SessionDep  # the old way\n",
        ),
    ],
)
def test_multi_line_and_relative_imports(project: Path, imports: str, added: str) -> None:
    routes = write_route(
        project,
        imports,
        tail="\n\nasync def helper() -> object:\n    return get_session_dependency, factory\n",
    )
    assert run_cli("check", "--fix", cwd=project).returncode == 0
    text = routes.read_text(encoding="utf-8")
    assert added in text
    assert "async def create(session: SessionDep) -> None:" in text
    ast.parse(text)


@pytest.mark.parametrize(
    ("tree", "args"),
    [
        ("bad", ()),
        ("legacy_app", ("--no-config", "--fastapi-version", "0.125", "app", "scripts")),
    ],
)
def test_fix_on_a_copy_of_the_sample_trees(
    tmp_path: Path, tree: str, args: tuple[str, ...]
) -> None:
    copy = tmp_path / tree
    shutil.copytree(FIXTURES / tree, copy)
    before = {p: p.read_text(encoding="utf-8") for p in copy.rglob("*.py")}
    scope_rule = 'without scope="function"'
    found = run_cli("check", "--select", "SL001", *args, cwd=copy).stdout
    assert scope_rule in found
    fixed = run_cli("check", "--fix", *args, cwd=copy)
    assert "applied" in fixed.stderr, fixed.stderr
    changed = [p for p, text in before.items() if p.read_text(encoding="utf-8") != text]
    assert changed
    for path in changed:
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert scope_rule not in run_cli("check", "--select", "SL001", *args, cwd=copy).stdout
    assert run_cli("check", "--diff", *args, cwd=copy).stdout == ""
