"""The fixture trees: every marked finding fires, nothing else does."""

from pathlib import Path

import pytest

from sessionlint.cli import build_parser, resolve_config
from sessionlint.codes import RULES
from sessionlint.config import load_pyproject
from sessionlint.events import Status
from sessionlint.runner import run

from .helpers import FIXTURES, expected_markers


def _findings(root: Path) -> set[tuple[str, int, str]]:
    config = load_pyproject(root / "pyproject.toml")
    result = run([root], config, root)
    return {(e.relpath, e.line, e.code or "") for e in result.findings}


def test_bad_tree_findings_equal_markers() -> None:
    root = FIXTURES / "bad"
    expected = expected_markers(root)
    actual = _findings(root)
    assert sorted(actual - expected) == [], "unexpected findings (false positives)"
    assert sorted(expected - actual) == [], "marked findings that did not fire"


def test_every_rule_is_exercised_by_a_marker() -> None:
    codes = {code for _, _, code in expected_markers(FIXTURES / "bad")}
    # SL009 depends on the target's FastAPI pin, one per project: test_versions.py covers it.
    assert codes == set(RULES) - {"SL009"}


@pytest.mark.parametrize("tree", ["good"])
def test_compliant_tree_is_clean(tree: str) -> None:
    root = FIXTURES / tree
    assert _findings(root) == set()
    assert expected_markers(root) == set()


def test_good_tree_reports_suppression_as_review() -> None:
    root = FIXTURES / "good"
    result = run([root], load_pyproject(root / "pyproject.toml"), root)
    reviewed = [e for e in result.events if e.status is Status.REVIEW]
    assert [(e.relpath, e.code) for e in reviewed] == [("scripts/seed.py", "SL002")]
    assert "one-off seed script" in reviewed[0].message


def test_marker_collection_sees_multi_code_markers() -> None:
    markers = expected_markers(FIXTURES / "bad")
    rel = "src/app/legacy/suppressions.py"
    assert {(rel, 7, "SL002"), (rel, 7, "SL008")} <= markers


def test_config_is_discovered_upward_from_the_first_path() -> None:
    args = build_parser().parse_args(["check", str(FIXTURES / "bad" / "src" / "app")])
    config, root = resolve_config(args)
    assert root == FIXTURES / "bad"
    assert config.session_aliases == ("SessionDep", "DbSession")
