"""The report formats: SARIF 2.1.0 against the OASIS schema, GitLab Code Quality, JSON, text."""

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError

from sessionlint.baseline import Finding, fingerprint
from sessionlint.codes import RULES
from sessionlint.events import Event, Status
from sessionlint.formats import (
    SARIF_FINGERPRINT_KEY,
    render_gitlab,
    render_json,
    render_sarif,
    render_text,
    rule_level,
)

from .helpers import FIXTURES, run_cli

DATA = Path(__file__).parent / "data"
# The OASIS schema (see data/README.md); SARIF 2.1.0's schema is written in draft 4.
SCHEMA = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
VALIDATOR = Draft4Validator(SCHEMA, format_checker=Draft4Validator.FORMAT_CHECKER)

SOURCE = """\
import asyncpg


def report() -> None:
    label = "é"; engine = create_async_engine("postgresql://u:p@h/db")
"""


def _event(path: Path, line: int, col: int, code: str, **extra: Any) -> Event:
    return Event(
        path=str(path),
        relpath=path.name,
        feature="Reports",
        line=line,
        col=col,
        method="method",
        status=Status.FIX,
        code=code,
        message=f"{code} message",
        hint=RULES[code].hint,
        **extra,
    )


@pytest.fixture
def findings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Finding]:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "reports.py"
    path.write_text(SOURCE, encoding="utf-8")
    # Column 29 in bytes is column 28 in characters: "é" takes two bytes in UTF-8.
    return fingerprint(
        [
            _event(path, 1, 1, "SL004"),
            _event(path, 5, 29, "SL002", scope="report"),
            _event(path, 5, 46, "SL009", scope="report", severity="warning"),
        ]
    )


def test_sarif_validates_against_the_official_schema(findings: list[Finding]) -> None:
    log = json.loads(render_sarif(findings))
    VALIDATOR.validate(log)
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == list(RULES)
    for rule in rules:
        assert rule["help"]["text"]
        assert RULES[rule["id"]].hint in rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] == rule_level(RULES[rule["id"]])
    results = run["results"]
    assert [r["ruleId"] for r in results] == ["SL004", "SL002", "SL009"]
    assert [r["level"] for r in results] == ["error", "error", "warning"]
    for result, finding in zip(results, findings, strict=True):
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == "reports.py"
        assert location["region"]["startLine"] == finding.event.line
        assert result["partialFingerprints"][SARIF_FINGERPRINT_KEY] == finding.fingerprint
    assert results[1]["locations"][0]["physicalLocation"]["region"]["startColumn"] == 28


def test_sarif_without_findings_is_valid() -> None:
    log = json.loads(render_sarif([]))
    VALIDATOR.validate(log)
    assert log["runs"][0]["results"] == []


@pytest.mark.parametrize(
    ("where", "bad_value"),
    [("level", "fatal"), ("ruleIndex", -5), ("message", "not an object")],
)
def test_the_schema_check_rejects_a_broken_log(
    findings: list[Finding], where: str, bad_value: object
) -> None:
    # The validation above means something: the same schema rejects a corrupted result.
    log = json.loads(render_sarif(findings))
    log["runs"][0]["results"][0][where] = bad_value
    with pytest.raises(ValidationError):
        VALIDATOR.validate(log)


def test_sarif_of_a_real_check_run_is_valid() -> None:
    result = run_cli("check", "--format", "sarif", cwd=FIXTURES / "bad")
    assert result.returncode == 1, result.stderr
    log = json.loads(result.stdout)
    VALIDATOR.validate(log)
    text = run_cli("check", "--format", "json", cwd=FIXTURES / "bad")
    assert len(log["runs"][0]["results"]) == len(json.loads(text.stdout))
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in log["runs"][0]["results"]
    }
    assert all(not uri.startswith("/") and "\\" not in uri for uri in uris)


# GitLab Code Quality: the fields GitLab documents as required for the merge request widget,
# "description", "check_name", "fingerprint" (unique), "severity" (info, minor, major,
# critical, blocker), "location.path" (relative) and "location.lines.begin".
GITLAB_SEVERITIES = {"info", "minor", "major", "critical", "blocker"}


def test_gitlab_code_quality_has_the_required_fields(findings: list[Finding]) -> None:
    issues = json.loads(render_gitlab(findings))
    assert isinstance(issues, list)
    assert len(issues) == 3
    for issue, finding in zip(issues, findings, strict=True):
        assert isinstance(issue["description"], str)
        assert issue["description"]
        assert issue["check_name"] == finding.event.code
        assert issue["fingerprint"] == finding.fingerprint
        assert issue["severity"] in GITLAB_SEVERITIES
        assert issue["location"]["path"] == "reports.py"
        assert issue["location"]["lines"]["begin"] == finding.event.line
        assert isinstance(issue["location"]["lines"]["begin"], int)
    assert [issue["severity"] for issue in issues] == ["major", "major", "minor"]
    assert len({issue["fingerprint"] for issue in issues}) == len(issues)


def test_gitlab_report_of_a_real_check_run() -> None:
    result = run_cli("check", "--format", "gitlab", cwd=FIXTURES / "bad")
    issues = json.loads(result.stdout)
    assert issues
    assert len({issue["fingerprint"] for issue in issues}) == len(issues)
    assert all(issue["severity"] in GITLAB_SEVERITIES for issue in issues)
    assert all(not issue["location"]["path"].startswith("/") for issue in issues)


def test_json_carries_severity_scope_and_fingerprint(findings: list[Finding]) -> None:
    items = json.loads(render_json(findings))
    assert [item["severity"] for item in items] == ["error", "error", "warning"]
    assert [item["scope"] for item in items] == ["", "report", "report"]
    assert [item["fingerprint"] for item in items] == [f.fingerprint for f in findings]


def test_text_names_the_severity(findings: list[Finding]) -> None:
    lines = render_text(findings).splitlines()
    assert lines[0].endswith(f"(hint: {RULES['SL004'].hint})")
    assert " SL004 error: SL004 message " in lines[0]
    assert " SL009 warning: SL009 message " in lines[2]
