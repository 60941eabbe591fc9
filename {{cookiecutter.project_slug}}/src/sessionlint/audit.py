"""The audit report: every database connection point with a status."""

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable, Sequence

from sessionlint.analyzer import CENTRAL_NOTE
from sessionlint.events import Event, Status
from sessionlint.index import Symbol

STATUS_LABELS = {
    Status.CORRECT: "✅ Correct",
    Status.REVIEW: "⚠️ Review",
    Status.FIX: "❌ Fix Required",
}
_SINGLETONS = {
    "Engine creation": "more than one engine in the db package; keep exactly one",
    "Sessionmaker creation": "more than one sessionmaker in the db package; keep exactly one",
}


def audit_rows(events: Iterable[Event]) -> list[Event]:
    """Sort events for the audit; several central engines/sessionmakers all become review."""
    rows = sorted(events, key=lambda e: (e.relpath, e.line, e.col, e.code or ""))

    def central(row: Event) -> bool:
        return (
            row.method in _SINGLETONS
            and row.status is Status.CORRECT
            and row.message == CENTRAL_NOTE
        )

    counts = Counter(row.method for row in rows if central(row))
    result: list[Event] = []
    for row in rows:
        if central(row) and counts[row.method] > 1:
            note = f"{_SINGLETONS[row.method]} (found {counts[row.method]})"
            row = dataclasses.replace(row, status=Status.REVIEW, message=note)
        result.append(row)
    return result


def _notes(row: Event) -> str:
    return f"{row.code}: {row.message}" if row.code else row.message


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_line(rows: list[Event]) -> str:
    """Return the per-status count line that closes the audit."""
    counts = Counter(row.status for row in rows)
    parts = ", ".join(f"{counts[status]} {label}" for status, label in STATUS_LABELS.items())
    return f"Summary: {parts} ({len(rows)} connection points)"


def render_markdown(rows: list[Event], sources: Sequence[Symbol] = ()) -> str:
    """Render the audit: the connection-point table, its summary, then the inferred sources."""
    lines = [
        "| Module | File | Line | Connection Method | Status | Notes |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = (
            row.feature,
            row.relpath,
            str(row.line),
            row.method,
            STATUS_LABELS[row.status],
            _notes(row),
        )
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    lines += ["", summary_line(rows)]
    if sources:
        lines += [
            "",
            "## Session sources and engines",
            "",
            "| Name | Defined at | Kind | Why |",
            "|---|---|---|---|",
        ]
        for source in sources:
            columns = (source.qualname, f"{source.relpath}:{source.line}", source.kind, source.why)
            lines.append("| " + " | ".join(_cell(column) for column in columns) + " |")
    return "\n".join(lines)


def source_payload(source: Symbol) -> dict[str, object]:
    """Return the JSON object of one inferred source, factory or engine."""
    return {
        "name": source.qualname,
        "path": source.relpath,
        "line": source.line,
        "kind": source.kind,
        "why": source.why,
    }


def render_json(rows: list[Event], sources: Sequence[Symbol] = ()) -> str:
    """Render the audit as ``{"rows": [...], "sources": [...]}``."""
    payload = {
        "rows": [
            {
                "module": row.feature,
                "file": row.relpath,
                "line": row.line,
                "method": row.method,
                "status": row.status.value,
                "code": row.code,
                "severity": row.severity if row.code else None,
                "scope": row.scope,
                "notes": _notes(row),
            }
            for row in rows
        ],
        "sources": [source_payload(source) for source in sources],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)
