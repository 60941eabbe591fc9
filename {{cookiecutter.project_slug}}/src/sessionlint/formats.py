"""Renderers for ``check`` findings: text, JSON, SARIF 2.1.0 and GitLab Code Quality."""

import json
from collections.abc import Sequence

from sessionlint import __version__
from sessionlint.baseline import Finding
from sessionlint.codes import RULES, Rule

FORMATS = ("text", "json", "sarif", "gitlab")
"""The values ``check --format`` accepts."""

SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
SARIF_FINGERPRINT_KEY = "sessionlint/v1"
"""The ``partialFingerprints`` key; its value is the baseline fingerprint."""

_DEFAULT_WARNINGS = frozenset({"SL009"})
_GITLAB_SEVERITY = {"error": "major", "warning": "minor"}


def rule_level(rule: Rule) -> str:
    """Return the default severity of a rule: ``error`` or ``warning``."""
    level = getattr(rule, "severity", None)
    if isinstance(level, str) and level in {"error", "warning"}:
        return level
    return "warning" if rule.code in _DEFAULT_WARNINGS else "error"


def render_text(findings: Sequence[Finding]) -> str:
    """One ``path:line:col: CODE severity: message (hint: ...)`` line per finding."""
    lines = []
    for finding in findings:
        e = finding.event
        lines.append(
            f"{e.path}:{e.line}:{e.col}: {e.code} {e.severity}: {e.message} (hint: {e.hint})"
        )
    return "\n".join(lines)


def render_json(findings: Sequence[Finding]) -> str:
    """A JSON list of finding objects, with severity, scope and fingerprint."""
    payload = [
        {
            "path": f.event.path,
            "line": f.event.line,
            "col": f.event.col,
            "code": f.event.code,
            "severity": f.event.severity,
            "scope": f.event.scope,
            "message": f.event.message,
            "hint": f.event.hint,
            "fingerprint": f.fingerprint,
        }
        for f in findings
    ]
    return json.dumps(payload, indent=2, ensure_ascii=False)


def _sarif_rule(rule: Rule) -> dict[str, object]:
    help_text = f"{rule.title}. Compliant form: {rule.hint}"
    return {
        "id": rule.code,
        "name": "".join(word.capitalize() for word in rule.title.split() if word.isalnum()),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": f"{rule.code}: {rule.title}"},
        "help": {
            "text": f"{help_text} (see docs/sessionlint.md, {rule.code}).",
            "markdown": (
                f"**{rule.code}: {rule.title}.**\n\nCompliant form: `{rule.hint}`\n\n"
                f"See `docs/sessionlint.md`, section {rule.code}."
            ),
        },
        "defaultConfiguration": {"level": rule_level(rule)},
        "properties": {"tags": ["database", "sessionlint"]},
    }


def render_sarif(findings: Sequence[Finding]) -> str:
    """A SARIF 2.1.0 log with one run: every rule in ``tool.driver``, one result per finding.

    Locations are relative to the project root (``uriBaseId`` ``%SRCROOT%``), columns count
    Unicode code points, and ``partialFingerprints`` carries the baseline fingerprint so code
    scanning tracks a finding across line moves the way ``sessionlint baseline`` does.
    """
    codes = list(RULES)
    results = []
    for finding in findings:
        e = finding.event
        code = e.code or ""
        result: dict[str, object] = {
            "ruleId": code,
            "level": "warning" if e.severity == "warning" else "error",
            "message": {"text": f"{e.message} (hint: {e.hint})" if e.hint else e.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": e.relpath, "uriBaseId": "%SRCROOT%"},
                        "region": {"startLine": e.line, "startColumn": finding.column},
                    }
                }
            ],
            "partialFingerprints": {SARIF_FINGERPRINT_KEY: finding.fingerprint},
            "properties": {"scope": e.scope},
        }
        if code in RULES:
            result["ruleIndex"] = codes.index(code)
        results.append(result)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "sessionlint",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [_sarif_rule(RULES[code]) for code in codes],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2, ensure_ascii=False)


def render_gitlab(findings: Sequence[Finding]) -> str:
    """A GitLab Code Quality report: a JSON list of issues (errors major, warnings minor)."""
    payload = [
        {
            "description": f"{f.event.code}: {f.event.message}",
            "check_name": f.event.code,
            "fingerprint": f.fingerprint,
            "severity": _GITLAB_SEVERITY.get(f.event.severity, "major"),
            "location": {"path": f.event.relpath, "lines": {"begin": f.event.line}},
        }
        for f in findings
    ]
    return json.dumps(payload, indent=2, ensure_ascii=False)


RENDERERS = {
    "text": render_text,
    "json": render_json,
    "sarif": render_sarif,
    "gitlab": render_gitlab,
}
"""Renderer for each ``--format`` value."""
