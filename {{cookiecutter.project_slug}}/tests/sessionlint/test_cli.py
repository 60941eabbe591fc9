"""End-to-end CLI behaviour through ``python -m sessionlint``."""

import json
import re
from pathlib import Path

import pytest

from .helpers import FIXTURES, run_cli

_LINE_RE = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<code>SL\d{3}) (?P<severity>error|warning): "
    r".+ \(hint: .+\)$"
)


def test_good_tree_exits_zero() -> None:
    result = run_cli("check", cwd=FIXTURES / "good")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert "all clear" in result.stderr


def test_bad_tree_exits_one_with_sorted_findings() -> None:
    result = run_cli("check", cwd=FIXTURES / "bad")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines, result.stderr
    keys = []
    for line in lines:
        match = _LINE_RE.match(line)
        assert match, line
        keys.append((match["path"], int(match["line"]), int(match["col"]), match["code"]))
    assert keys == sorted(keys)
    assert "finding(s)" in result.stderr.splitlines()[-1]


def test_json_format_matches_text_findings() -> None:
    text = run_cli("check", "src", cwd=FIXTURES / "bad")
    data = json.loads(run_cli("check", "--format", "json", "src", cwd=FIXTURES / "bad").stdout)
    assert len(data) == len(text.stdout.splitlines())
    assert set(data[0]) == {
        "path",
        "line",
        "col",
        "code",
        "severity",
        "scope",
        "message",
        "hint",
        "fingerprint",
    }
    assert {item["severity"] for item in data} == {"error"}


def test_output_writes_the_report_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    result = run_cli("check", "--format", "json", "--output", str(target), cwd=FIXTURES / "bad")
    assert result.returncode == 1
    assert result.stdout == ""
    assert json.loads(target.read_text(encoding="utf-8"))
    clean = tmp_path / "clean.txt"
    assert run_cli("check", "--output", str(clean), cwd=FIXTURES / "good").returncode == 0
    assert clean.read_text(encoding="utf-8") == ""


PINNED_ROUTE = """\
from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session_dependency

router = APIRouter()


@router.get("/")
async def read(session: AsyncSession = Depends(get_session_dependency)) -> None:
    await session.flush()
"""


def test_warnings_fail_only_with_strict(tmp_path: Path) -> None:
    # FastAPI pinned below 0.118: the scope rule is the SL009 warning, not an error.
    (tmp_path / "requirements.txt").write_text("fastapi==0.115.6\n", encoding="utf-8")
    (tmp_path / "app").mkdir()
    (tmp_path / "app/routes.py").write_text(PINNED_ROUTE, encoding="utf-8")
    result = run_cli("check", "--no-config", "app", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = result.stdout.splitlines()
    match = _LINE_RE.match(line)
    assert match, line
    assert (match["code"], match["severity"]) == ("SL009", "warning")
    assert "1 warning" in result.stderr
    strict = run_cli("check", "--no-config", "--strict", "app", cwd=tmp_path)
    assert strict.returncode == 1


def test_select_and_ignore() -> None:
    selected = run_cli("check", "--select", "SL004", "--format", "json", cwd=FIXTURES / "bad")
    codes = {item["code"] for item in json.loads(selected.stdout)}
    assert codes == {"SL004"}
    ignored = run_cli("check", "--ignore", "SL0", cwd=FIXTURES / "bad")
    assert ignored.returncode == 0
    assert ignored.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ("check", "--select", "XX999"),
        ("check", "does-not-exist"),
        ("check", "--config", "missing.toml"),
        ("check", "--format", "yaml"),
        ("check", "--fix", "--diff"),
        ("check", "--baseline", "a.json", "--no-baseline"),
        ("baseline", "--bogus"),
        ("nonsense",),
    ],
)
def test_usage_errors_exit_two(args: tuple[str, ...]) -> None:
    assert run_cli(*args, cwd=FIXTURES / "good").returncode == 2


def test_invalid_config_exits_two(tmp_path: Path) -> None:
    root = tmp_path
    (root / "pyproject.toml").write_text("[tool.sessionlint]\nbogus = 1\n", encoding="utf-8")
    (root / "a.py").write_text("x = 1\n", encoding="utf-8")
    result = run_cli("check", cwd=root)
    assert result.returncode == 2
    assert "unknown key 'bogus'" in result.stderr


def test_cli_flags_override_config() -> None:
    result = run_cli(
        "check", "--select", "SL004", "--allow-driver-modules", "app.*", cwd=FIXTURES / "bad"
    )
    assert result.returncode == 0, result.stdout


def test_no_config_uses_defaults() -> None:
    # Without the fixture's db-modules override the defaults still recognise app.db.
    result = run_cli(
        "check", "--no-config", "--select", "SL002", "src/app/db", cwd=FIXTURES / "bad"
    )
    assert result.returncode == 0, result.stdout


def test_explicit_config_file() -> None:
    result = run_cli(
        "check", "--config", str(FIXTURES / "good" / "pyproject.toml"), cwd=FIXTURES / "good"
    )
    assert result.returncode == 0, result.stdout
