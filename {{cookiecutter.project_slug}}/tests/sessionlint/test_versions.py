"""Version awareness: the scope rule reads the target's FastAPI requirement (SL001 or SL009)."""

import json
from pathlib import Path

import pytest

from sessionlint.cli import main
from sessionlint.config import Config
from sessionlint.versions import FastAPIVersion, detect, from_specifier

from .program import finding, findings, program, write

ROUTE = {
    "app/db/__init__.py": """
        async def get_session_dependency():
            yield object()
        """,
    "app/routers/items.py": """
        from fastapi import Depends
        from sqlalchemy.ext.asyncio import AsyncSession
        from app.db import get_session_dependency

        @router.get("/items")
        async def items(session: AsyncSession = Depends(get_session_dependency)) -> None: ...
        """,
}
REL = "app/routers/items.py"


@pytest.mark.parametrize(
    ("spec", "before"),
    [
        ("==0.115.6", True),
        ("<0.116", True),
        ("~=0.115.0", True),
        (">=0.100,<0.118", True),
        ("<=0.117.1", True),
        ("==0.117.*", True),
        ("<=0.118", False),
        ("==0.118.0", False),
        (">=0.110", False),
        ("", False),
        ("~=0.115", False),
    ],
)
def test_specifiers(spec: str, before: bool) -> None:
    version = from_specifier(spec, "test")
    assert version is not None
    assert version.before_scope_change is before


@pytest.mark.parametrize(
    ("name", "text", "before"),
    [
        (
            "requirements.txt",
            "uvicorn==0.30\nfastapi[standard]==0.115.6 ; python_version>'3'\n",
            True,
        ),
        ("requirements-prod.txt", "fastapi-users==13.0\nfastapi>=0.110\n", False),
        ("requirements.txt", "fastapi-users==0.100\n", None),
        ("pyproject.toml", '[project]\ndependencies = ["fastapi<0.116"]\n', True),
        (
            "pyproject.toml",
            '[tool.poetry.dependencies]\npython = "^3.11"\nfastapi = "^0.115.2"\n',
            True,
        ),
        ("pyproject.toml", '[dependency-groups]\nweb = ["fastapi>=0.120"]\n', False),
        ("uv.lock", '[[package]]\nname = "fastapi"\nversion = "0.116.1"\n', True),
        ("poetry.lock", '[[package]]\nname = "fastapi"\nversion = "0.121.0"\n', False),
        ("Pipfile.lock", json.dumps({"default": {"fastapi": {"version": "==0.112.0"}}}), True),
    ],
)
def test_requirement_files(tmp_path: Path, name: str, text: str, before: bool | None) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / name).write_text(text, encoding="utf-8")
    version = detect(tmp_path)
    if before is None:
        assert version.upper is None
        assert version.source == "unknown"
    else:
        assert version.before_scope_change is before
        assert version.source.endswith(name)


def test_found_upward_and_lock_beats_a_lower_bound(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text(
        '[project]\ndependencies = ["fastapi>=0.100"]\n', encoding="utf-8"
    )
    (tmp_path / "uv.lock").write_text(
        '[[package]]\nname = "fastapi"\nversion = "0.115.6"\n', encoding="utf-8"
    )
    (tmp_path / "src" / "app").mkdir(parents=True)
    assert detect(tmp_path / "src" / "app").before_scope_change
    (tmp_path / "uv.lock").unlink()
    assert not detect(tmp_path / "src" / "app").before_scope_change


def test_pinned_below_0_118_is_a_warning(tmp_path: Path) -> None:
    files = {**ROUTE, "requirements.txt": "fastapi==0.115.6\n"}
    result = program(tmp_path, files)
    assert findings(result) == {(REL, 6, "SL009")}
    event = finding(result, REL, 6)
    assert event.severity == "warning"
    assert not event.is_error
    assert event.scope == "items"
    assert "upgrading to FastAPI >=0.118" in event.message


def test_unpinned_or_unknown_is_an_error(tmp_path: Path) -> None:
    result = program(tmp_path, {**ROUTE, "requirements.txt": "fastapi>=0.110\n"})
    event = finding(result, REL, 6)
    assert (event.code, event.severity) == ("SL001", "error")


def test_option_overrides_the_detected_version(tmp_path: Path) -> None:
    files = {**ROUTE, "requirements.txt": "fastapi==0.115.6\n"}
    result = program(tmp_path, files, Config(fastapi_version="0.120"))
    assert findings(result) == {(REL, 6, "SL001")}
    assert result.fastapi == FastAPIVersion((0, 120), False, "--fastapi-version")


def test_cli_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {**ROUTE, "requirements.txt": "fastapi==0.115.6\n"})
    main(["check", "--no-config", "--format", "json", str(tmp_path)])
    pinned = json.loads(capsys.readouterr().out)
    main(["check", "--no-config", "--format", "json", "--fastapi-version", "0.118", str(tmp_path)])
    upgraded = json.loads(capsys.readouterr().out)
    assert [(f["code"], f["severity"]) for f in pinned] == [("SL009", "warning")]
    assert [(f["code"], f["severity"]) for f in upgraded] == [("SL001", "error")]
    assert main(["check", "--fastapi-version", "soon", str(tmp_path)]) == 2
