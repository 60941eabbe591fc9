"""The single record type produced by the analyzer: a database connection point."""

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """Audit status of a connection point."""

    CORRECT = "correct"
    REVIEW = "review"
    FIX = "fix"


@dataclass(frozen=True, slots=True)
class Event:
    """A connection point: compliant (code is None) or a finding (code set)."""

    path: str
    relpath: str
    feature: str
    line: int
    col: int
    method: str
    status: Status
    code: str | None
    message: str
    hint: str = ""

    @property
    def is_finding(self) -> bool:
        """Return True when this event is an unsuppressed rule violation."""
        return self.status is Status.FIX and self.code is not None

    def sort_key(self) -> tuple[str, int, int, str]:
        """Return the key findings are ordered by: path, line, column, code."""
        return (self.path, self.line, self.col, self.code or "")
