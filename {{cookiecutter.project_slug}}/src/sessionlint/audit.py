"""The audit report: every database connection point with a status."""

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable

from sessionlint.analyzer import CENTRAL_NOTE
from sessionlint.events import Event, Status

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


def render_markdown(rows: list[Event]) -> str:
    """Render the audit as a markdown table followed by the summary line."""
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
    return "\n".join(lines)


def render_json(rows: list[Event]) -> str:
    """Render the audit as a JSON list of row objects."""
    payload = [
        {
            "module": row.feature,
            "file": row.relpath,
            "line": row.line,
            "method": row.method,
            "status": row.status.value,
            "code": row.code,
            "notes": _notes(row),
        }
        for row in rows
    ]
    return json.dumps(payload, indent=2, ensure_ascii=False)
