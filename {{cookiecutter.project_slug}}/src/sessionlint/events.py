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
    severity: str = "error"
    """``error`` fails ``check``; ``warning`` fails it only with ``--strict``."""
    scope: str = ""
    """Qualified name of the enclosing function or method (``""`` at module level)."""

    @property
    def is_finding(self) -> bool:
        """Return True when this event is an unsuppressed rule violation."""
        return self.status is Status.FIX and self.code is not None

    @property
    def is_error(self) -> bool:
        """Return True when this finding fails ``check`` without ``--strict``."""
        return self.is_finding and self.severity == "error"

    def sort_key(self) -> tuple[str, int, int, str]:
        """Return the key findings are ordered by: path, line, column, code."""
        return (self.path, self.line, self.col, self.code or "")
