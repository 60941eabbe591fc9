"""The realistic legacy sample: zero-configuration check and audit find exactly what is expected.

``fixtures/legacy_app`` is a legacy FastAPI codebase (routers, services, schedulers, scripts, two
engines) written before the one-way-to-the-database rules; ``expected.json`` lists by hand every
finding ``check --no-config --strict`` must report there and every session source, session factory
and engine ``audit`` must infer. The tests print recall and precision per category and require both
to be 100%.
"""

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from sessionlint.cli import main

from .helpers import FIXTURES

SAMPLE = FIXTURES / "legacy_app"
PROJECT = Path(__file__).resolve().parents[2]
MIN_LINES = 2000

Finding = tuple[str, str, int]
"""(code, path relative to the sample, line)."""
Source = tuple[str, str, int, str]
"""(qualified name, path relative to the sample, line of its definition, kind)."""


SCOPES = {
    ("app/api/deps.py", "SessionDep = Depends(get_session_dependency)"): "",
    (
        "app/services/job_service.py",
        "    await session.commit()\n    await session.refresh",
    ): "create_job",
    ("app/services/batch/batch_processor_service.py", "await db.rollback()"): (
        "BatchProcessor.mark_failed"
    ),
    ("app/routers/google_maps_api.py", "async with async_session_factory() as session"): (
        "get_search"
    ),
    ("app/services/report_service.py", "await self._session.rollback()"): "ReportService.build",
}
"""Where a finding is reported -> the enclosing function or method it carries as its scope."""


def _line(path: str, snippet: str) -> int:
    """Return the line of the one occurrence of snippet (its first non-blank character)."""
    text = (SAMPLE / path).read_text(encoding="utf-8")
    assert text.count(snippet) == 1, (path, snippet)
    start = text.index(snippet) + len(snippet) - len(snippet.lstrip())
    return text.count("\n", 0, start) + 1


def _expected() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLE / "expected.json").read_text(encoding="utf-8"))
    return data


def _categories() -> dict[str, str]:
    return {item["code"]: item["category"] for item in _expected()["findings"]}


def _sample_path(reported: str) -> str:
    """Map a reported path (relative to the cwd, or absolute, maybe with :line) into the sample."""
    reported = re.sub(r":\d+(:\d+)?$", "", reported)
    path = Path(reported)
    if not path.is_absolute():
        path = Path.cwd() / path
    try:
        return path.resolve().relative_to(SAMPLE.resolve()).as_posix()
    except ValueError:
        return reported


def _sample_name(name: str) -> str:
    """Drop the package prefix a run from the project root may put before the sample's modules."""
    prefix = "tests.sessionlint.fixtures.legacy_app."
    return name[len(prefix) :] if name.startswith(prefix) else name


INVOCATIONS = {
    "from-project-root": (PROJECT, (SAMPLE.relative_to(PROJECT).as_posix(),)),
    "inside-sample": (SAMPLE, ("app", "scripts")),
}
"""Where the CLI runs and on which paths: the sample as a folder of this project, and the
documented legacy invocation ``sessionlint check --no-config app scripts`` from its root."""


def _run(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    invocation: str,
    *args: str,
) -> tuple[int, Any]:
    """Run the CLI in-process with zero configuration; return (exit code, parsed JSON)."""
    cwd, paths = INVOCATIONS[invocation]
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    code = main([*args, "--no-config", "--format", "json", *paths])
    out = capsys.readouterr().out
    return code, json.loads(out)


def _score(label: str, expected: set[Any], actual: set[Any], category: dict[Any, str]) -> list[str]:
    """Print recall and precision per category; return one line per mismatch."""
    print(
        f"\n{label}: {'category':<14} {'expected':>8} {'found':>6} {'recall':>7} {'precision':>9}"
    )
    for name in sorted({category[item] for item in expected | actual}):
        want = {item for item in expected if category[item] == name}
        got = {item for item in actual if category[item] == name}
        hits = len(want & got)
        recall = hits / len(want) if want else 1.0
        precision = hits / len(got) if got else 1.0
        print(f"{label}: {name:<14} {len(want):>8} {len(got):>6} {recall:>7.1%} {precision:>9.1%}")
    total_hits = len(expected & actual)
    print(
        f"{label}: {'all':<14} {len(expected):>8} {len(actual):>6} "
        f"{total_hits / len(expected) if expected else 1.0:>7.1%} "
        f"{total_hits / len(actual) if actual else 1.0:>9.1%}"
    )
    return [f"missed: {item}" for item in sorted(expected - actual)] + [
        f"unexpected: {item}" for item in sorted(actual - expected)
    ]


def _findings(payload: Any) -> list[dict[str, Any]]:
    items = payload["findings"] if isinstance(payload, dict) else payload
    assert isinstance(items, list)
    return items


def _python_files() -> Iterable[Path]:
    return sorted(SAMPLE.rglob("*.py"))


def test_sample_is_a_realistic_size() -> None:
    lines = sum(len(path.read_text(encoding="utf-8").splitlines()) for path in _python_files())
    assert lines >= MIN_LINES
    areas = {path.relative_to(SAMPLE).parts[:2] for path in _python_files()}
    for area in [("app", "routers"), ("app", "services"), ("app", "schedulers"), ("app", "db")]:
        assert area in areas
    assert any(path.parent.name == "scripts" for path in _python_files())


def test_expectations_point_at_real_lines() -> None:
    data = _expected()
    categories: dict[str, str] = {}
    for item in [*data["findings"], *data["sources"]]:
        lines = (SAMPLE / item["path"]).read_text(encoding="utf-8").splitlines()
        assert 1 <= item["line"] <= len(lines), item
        assert lines[item["line"] - 1].strip(), item
    for item in data["findings"]:
        assert categories.setdefault(item["code"], item["category"]) == item["category"], item
    kinds = {item["kind"] for item in data["sources"]}
    assert kinds == {"session source", "session factory", "engine"}


@pytest.mark.parametrize("invocation", INVOCATIONS)
def test_check_finds_exactly_the_expected_findings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, invocation: str
) -> None:
    exit_code, payload = _run(capsys, monkeypatch, invocation, "check", "--strict")
    categories = _categories()
    expected = {(f["code"], f["path"], f["line"]) for f in _expected()["findings"]}
    actual: set[Finding] = {
        (f["code"], _sample_path(f["path"]), int(f["line"])) for f in _findings(payload)
    }
    category = {item: categories.get(item[0], item[0]) for item in expected | actual}
    mismatches = _score("check", expected, actual, category)
    assert mismatches == [], "\n".join(mismatches)
    assert exit_code == 1


def test_findings_carry_severity_and_scope(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, payload = _run(capsys, monkeypatch, "from-project-root", "check", "--strict")
    findings = _findings(payload)
    assert findings
    for finding in findings:
        assert finding["severity"] == ("warning" if finding["code"] == "SL009" else "error")
    scopes = {(_sample_path(f["path"]), f["line"]): f["scope"] for f in findings}
    for (path, snippet), scope in SCOPES.items():
        assert scopes[(path, _line(path, snippet))] == scope, (path, snippet)


@pytest.mark.parametrize("invocation", INVOCATIONS)
def test_audit_infers_exactly_the_expected_sources(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, invocation: str
) -> None:
    _, payload = _run(capsys, monkeypatch, invocation, "audit")
    assert isinstance(payload, dict), "audit --format json is {'rows': [...], 'sources': [...]}"
    expected = {(s["name"], s["path"], s["line"], s["kind"]) for s in _expected()["sources"]}
    actual: set[Source] = {
        (_sample_name(s["name"]), _sample_path(s["path"]), int(s["line"]), s["kind"])
        for s in payload["sources"]
    }
    category = {item: item[3] for item in expected | actual}
    mismatches = _score("sources", expected, actual, category)
    assert mismatches == [], "\n".join(mismatches)
    assert payload["rows"], "the audit lists the connection points too"
