"""Baselines: fingerprints that survive line moves, and a ratchet that only shrinks."""

import json
from pathlib import Path

import pytest

from sessionlint.baseline import BASELINE_NAME, Entry, compare, fingerprint, normalized_lines
from sessionlint.events import Event, Status

from .helpers import run_cli


def _event(path: Path, line: int, code: str = "SL002", scope: str = "build") -> Event:
    return Event(
        path=str(path),
        relpath=path.name,
        feature="Reports",
        line=line,
        col=5,
        method="method",
        status=Status.FIX,
        code=code,
        message="message",
        scope=scope,
    )


def _fingerprints(tmp_path: Path, source: str, *events: tuple[int, str, str]) -> list[str]:
    path = tmp_path / "service.py"
    path.write_text(source, encoding="utf-8")
    found = fingerprint(_event(path, line, code, scope) for line, code, scope in events)
    return [finding.fingerprint for finding in found]


def test_normalised_lines_drop_comments_and_layout_but_keep_strings() -> None:
    lines = normalized_lines(b"x  =\tf( 1 )  # noqa: SL002 reason\ny = '#not a comment'\n")
    assert lines[1] == "x = f ( 1 )"
    assert lines[2] == "y = '#not a comment'"
    assert normalized_lines(b"x=f(1)\n")[1] == lines[1]


def test_normalised_lines_survive_source_that_does_not_tokenize() -> None:
    assert normalized_lines(b"def f(:\n    x  =  '''open  # c\n")[2] == "x = '''open"


BEFORE = """\
def build():
    engine = create_async_engine(url)
"""
MOVED = """\
import os


def build():
    # a new comment above
    engine  =  create_async_engine(url)  # noqa added later without codes
"""


def test_fingerprint_survives_line_moves_comments_and_whitespace(tmp_path: Path) -> None:
    before = _fingerprints(tmp_path, BEFORE, (2, "SL002", "build"))
    after = _fingerprints(tmp_path, MOVED, (6, "SL002", "build"))
    assert before == after


@pytest.mark.parametrize(
    ("source", "line", "code", "scope"),
    [
        (BEFORE.replace("url)", "other_url)"), 2, "SL002", "build"),  # the line changed
        (BEFORE, 2, "SL005", "build"),  # another rule
        (BEFORE, 2, "SL002", "Builder.build"),  # another function
    ],
)
def test_fingerprint_changes_with_code_line_or_function(
    tmp_path: Path, source: str, line: int, code: str, scope: str
) -> None:
    original = _fingerprints(tmp_path, BEFORE, (2, "SL002", "build"))
    assert _fingerprints(tmp_path, source, (line, code, scope)) != original


def test_fingerprint_changes_with_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(BEFORE, encoding="utf-8")
    (tmp_path / "b.py").write_text(BEFORE, encoding="utf-8")
    a, b = fingerprint([_event(tmp_path / "a.py", 2), _event(tmp_path / "b.py", 2)])
    assert a.fingerprint != b.fingerprint


TWICE = """\
def build():
    engine = create_async_engine(url)
    engine = create_async_engine(url)
"""


def test_duplicates_get_an_occurrence_index(tmp_path: Path) -> None:
    first, second = _fingerprints(tmp_path, TWICE, (2, "SL002", "build"), (3, "SL002", "build"))
    assert first != second
    # Removing one of the two leaves the first fingerprint: one known, one fixed.
    (remaining,) = _fingerprints(tmp_path, BEFORE, (2, "SL002", "build"))
    assert remaining == first


def test_compare_splits_new_known_fixed_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "service.py"
    path.write_text(TWICE, encoding="utf-8")
    old = fingerprint([_event(path, 2), _event(path, 3)])
    baseline = {f.fingerprint: Entry.of(f) for f in old}
    outside = Entry("f" * 32, "SL004", "elsewhere/x.py", "", 1, "m")
    baseline[outside.fingerprint] = outside
    path.write_text(BEFORE + "\ndef other():\n    create_async_engine(url)\n", encoding="utf-8")
    now = fingerprint([_event(path, 2), _event(path, 5, scope="other")])
    result = compare(now, baseline, lambda entry: entry.path == "service.py")
    assert [f.event.line for f in result.known] == [2]
    assert [f.event.line for f in result.new] == [5]
    assert [e.line for e in result.fixed] == [3]
    assert result.untouched == [outside]


# End to end, through the CLI, on a small project.

LEGACY = {
    "pyproject.toml": '[project]\nname = "legacy"\n',
    "app/__init__.py": "",
    "app/scripts/seed.py": 'import asyncpg\n\nDSN = "postgresql://user:secret@db.internal/app"\n',
    "app/scripts/report.py": "import psycopg2\n",
}


def _project(root: Path) -> Path:
    for name, text in LEGACY.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _codes(stdout: str) -> list[str]:
    return [item["code"] for item in json.loads(stdout)]


def test_check_with_a_baseline_fails_only_on_new_findings(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert run_cli("check", cwd=root).returncode == 1
    written = run_cli("baseline", cwd=root)
    assert written.returncode == 0, written.stderr
    data = json.loads((root / BASELINE_NAME).read_text(encoding="utf-8"))
    assert sorted(entry["code"] for entry in data["findings"]) == ["SL004", "SL004", "SL005"]

    clean = run_cli("check", cwd=root)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout == ""
    assert "3 baselined" in clean.stderr

    # Lines move: still accepted.
    seed = root / "app/scripts/seed.py"
    seed.write_text('"""Seed data."""\n\n\n' + seed.read_text(encoding="utf-8"), encoding="utf-8")
    assert run_cli("check", cwd=root).returncode == 0

    # A new finding fails, and only it is reported.
    (root / "app/scripts/export.py").write_text("import pg8000\n", encoding="utf-8")
    new = run_cli("check", "--format", "json", cwd=root)
    assert new.returncode == 1
    assert [(i["path"], i["code"]) for i in json.loads(new.stdout)] == [
        ("app/scripts/export.py", "SL004")
    ]
    # --no-baseline reports everything.
    everything = run_cli("check", "--no-baseline", "--format", "json", cwd=root)
    assert len(_codes(everything.stdout)) == 4


def test_fixed_findings_are_reported_and_the_baseline_only_shrinks(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert run_cli("baseline", cwd=root).returncode == 0
    (root / "app/scripts/report.py").write_text("import json\n", encoding="utf-8")

    check = run_cli("check", cwd=root)
    assert check.returncode == 0
    assert "1 fixed: remove them with `sessionlint baseline`" in check.stderr
    assert "app/scripts/report.py" in check.stderr

    (root / "app/scripts/export.py").write_text("import pg8000\n", encoding="utf-8")
    refused = run_cli("baseline", cwd=root)
    assert refused.returncode == 1
    assert "app/scripts/export.py" in refused.stdout
    assert "--force" in refused.stderr
    data = json.loads((root / BASELINE_NAME).read_text(encoding="utf-8"))
    assert len(data["findings"]) == 3, "a refused baseline leaves the file as it was"

    (root / "app/scripts/export.py").unlink()
    shrunk = run_cli("baseline", cwd=root)
    assert shrunk.returncode == 0, shrunk.stdout + shrunk.stderr
    assert "1 fixed removed" in shrunk.stderr
    data = json.loads((root / BASELINE_NAME).read_text(encoding="utf-8"))
    assert sorted(entry["path"] for entry in data["findings"]) == [
        "app/scripts/seed.py",
        "app/scripts/seed.py",
    ]
    assert "fixed" not in run_cli("check", cwd=root).stderr


def test_force_accepts_new_findings(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert run_cli("baseline", cwd=root).returncode == 0
    (root / "app/scripts/export.py").write_text("import pg8000\n", encoding="utf-8")
    forced = run_cli("baseline", "--force", cwd=root)
    assert forced.returncode == 0
    assert "1 added" in forced.stderr
    assert run_cli("check", cwd=root).returncode == 0


def test_checking_some_paths_leaves_the_other_entries_alone(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert run_cli("baseline", cwd=root).returncode == 0
    # The pre-commit hook checks only the files it was given: the others are not "fixed".
    partial = run_cli("check", "app/scripts/report.py", cwd=root)
    assert partial.returncode == 0
    assert "fixed" not in partial.stderr
    assert "1 baselined" in partial.stderr
    selected = run_cli("check", "--select", "SL005", cwd=root)
    assert "fixed" not in selected.stderr
    # Rewriting the baseline for one directory keeps the entries of the others.
    (root / "app/other").mkdir()
    (root / "app/other/x.py").write_text("x = 1\n", encoding="utf-8")
    assert run_cli("baseline", "app/other", cwd=root).returncode == 0
    data = json.loads((root / BASELINE_NAME).read_text(encoding="utf-8"))
    assert len(data["findings"]) == 3


def test_explicit_baseline_file_and_errors(tmp_path: Path) -> None:
    root = _project(tmp_path)
    written = run_cli("baseline", "--output", "ci/accepted.json", cwd=root)
    assert written.returncode == 2, "the directory does not exist"
    (root / "ci").mkdir()
    assert run_cli("baseline", "--output", "ci/accepted.json", cwd=root).returncode == 0
    assert not (root / BASELINE_NAME).exists()
    assert run_cli("check", cwd=root).returncode == 1, "not the default file name"
    assert run_cli("check", "--baseline", "ci/accepted.json", cwd=root).returncode == 0
    assert run_cli("check", "--baseline", "missing.json", cwd=root).returncode == 2
    (root / BASELINE_NAME).write_text("{not json", encoding="utf-8")
    broken = run_cli("check", cwd=root)
    assert broken.returncode == 2
    assert "invalid baseline" in broken.stderr
