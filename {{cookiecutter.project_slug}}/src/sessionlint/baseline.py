"""Fingerprints that survive line moves, and the committed baseline of accepted findings.

A fingerprint hashes what identifies a finding to a reader, not where it sits: the rule code,
the file (relative to the project root), the enclosing function (``Event.scope``) and the
finding's source line with whitespace collapsed and comments stripped. Identical findings in
one function on identical lines are told apart by their occurrence index, in line order.
Inserting or deleting lines elsewhere, re-indenting, re-wrapping a comment or adding a
``# noqa`` comment keeps every fingerprint; editing the line itself, renaming its function or
moving it to another file makes it a new finding.
"""

import hashlib
import io
import json
import re
import tokenize
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sessionlint.config import ConfigError
from sessionlint.events import Event

BASELINE_NAME = "sessionlint-baseline.json"
"""Default baseline file, looked up in the project root (next to pyproject.toml)."""

FORMAT_VERSION = 1
_SKIPPED_TOKENS = frozenset(
    {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENCODING,
        tokenize.ENDMARKER,
    }
)
_COMMENT_RE = re.compile(r"#.*$")


@dataclass(frozen=True, slots=True)
class Finding:
    """A finding with its fingerprint and its column counted in characters."""

    event: Event
    fingerprint: str
    column: int
    """1-based column in Unicode code points (``Event.col`` counts UTF-8 bytes)."""


def _collapse(text: str) -> str:
    return " ".join(text.split())


def normalized_lines(source: bytes) -> dict[int, str]:
    """Return each line's tokens joined by single spaces, comments and layout dropped.

    Tokens belong to the line they start on, so a multi-line string counts on its first line.
    Source that does not tokenize falls back to stripping ``#...`` and collapsing whitespace.
    """
    lines: dict[int, list[str]] = {}
    try:
        for token in tokenize.tokenize(io.BytesIO(source).readline):
            if token.type not in _SKIPPED_TOKENS:
                lines.setdefault(token.start[0], []).append(_collapse(token.string))
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError):
        text = source.decode("utf-8", errors="replace")
        return {
            number: _collapse(_COMMENT_RE.sub("", line))
            for number, line in enumerate(text.splitlines(), start=1)
        }
    return {number: " ".join(parts) for number, parts in lines.items()}


class _SourceCache:
    """Read each file once; keep its raw lines and normalised lines."""

    def __init__(self) -> None:
        self._raw: dict[str, list[bytes]] = {}
        self._normalized: dict[str, dict[int, str]] = {}

    def _load(self, path: str) -> None:
        if path in self._raw:
            return
        try:
            data = Path(path).read_bytes()
        except OSError:
            data = b""
        self._raw[path] = data.splitlines()
        self._normalized[path] = normalized_lines(data)

    def normalized(self, path: str, line: int) -> str:
        self._load(path)
        return self._normalized[path].get(line, "")

    def column(self, path: str, line: int, col: int) -> int:
        self._load(path)
        raw = self._raw[path]
        if not 1 <= line <= len(raw) or col <= 1:
            return max(col, 1)
        return len(raw[line - 1][: col - 1].decode("utf-8", errors="replace")) + 1


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:32]


def fingerprint(findings: Iterable[Event]) -> list[Finding]:
    """Return the findings in path/line order, each with its fingerprint.

    Args:
        findings: Unsuppressed findings of one run; their ``path`` must be readable from the
            current directory (it is the path the runner displays).

    Returns:
        One Finding per event, sorted by path, line, column and code.
    """
    cache = _SourceCache()
    seen: Counter[str] = Counter()
    result: list[Finding] = []
    for event in sorted(findings, key=Event.sort_key):
        key = _digest(
            event.code or "", event.relpath, event.scope, cache.normalized(event.path, event.line)
        )
        index = seen[key]
        seen[key] += 1
        result.append(
            Finding(
                event=event,
                fingerprint=_digest(key, str(index)),
                column=cache.column(event.path, event.line, event.col),
            )
        )
    return result


@dataclass(frozen=True, slots=True)
class Entry:
    """One accepted finding in the baseline file (line and message are for readers only)."""

    fingerprint: str
    code: str
    path: str
    scope: str
    line: int
    message: str

    @classmethod
    def of(cls, finding: Finding) -> "Entry":
        """Build the entry that records a finding."""
        event = finding.event
        return cls(
            fingerprint=finding.fingerprint,
            code=event.code or "",
            path=event.relpath,
            scope=event.scope,
            line=event.line,
            message=event.message,
        )


def load_baseline(path: Path) -> dict[str, Entry]:
    """Read a baseline file and return its entries keyed by fingerprint.

    Raises:
        ConfigError: The file cannot be read or is not a sessionlint baseline.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read baseline: {exc.strerror}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid baseline JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        raise ConfigError(f"{path}: not a sessionlint baseline (version {FORMAT_VERSION})")
    items = data.get("findings")
    if not isinstance(items, list):
        raise ConfigError(f"{path}: 'findings' must be a list")
    entries: dict[str, Entry] = {}
    for item in items:
        try:
            entry = Entry(
                fingerprint=str(item["fingerprint"]),
                code=str(item["code"]),
                path=str(item["path"]),
                scope=str(item.get("scope", "")),
                line=int(item.get("line", 0)),
                message=str(item.get("message", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{path}: invalid baseline entry {item!r}") from exc
        entries[entry.fingerprint] = entry
    return entries


def render_baseline(entries: Iterable[Entry]) -> str:
    """Serialise entries sorted by path, line and code, so the file diffs well in review."""
    ordered = sorted(entries, key=lambda e: (e.path, e.line, e.code, e.fingerprint))
    payload = {
        "version": FORMAT_VERSION,
        "comment": "sessionlint findings accepted for now; regenerate with `sessionlint baseline`",
        "findings": [
            {
                "fingerprint": e.fingerprint,
                "code": e.code,
                "path": e.path,
                "scope": e.scope,
                "line": e.line,
                "message": e.message,
            }
            for e in ordered
        ],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def write_baseline(path: Path, entries: Iterable[Entry]) -> None:
    """Write the baseline file."""
    path.write_text(render_baseline(entries), encoding="utf-8")


def path_filter(prefixes: Sequence[str]) -> Callable[[str], bool]:
    """Return a predicate telling whether a root-relative path lies under one of prefixes."""
    cleaned = [prefix.strip("/") for prefix in prefixes]
    if any(prefix in {"", "."} for prefix in cleaned):
        return lambda _path: True
    return lambda path: any(path == p or path.startswith(f"{p}/") for p in cleaned)


@dataclass(slots=True)
class Comparison:
    """Today's findings split against a baseline."""

    new: list[Finding] = field(default_factory=list)
    """Findings not in the baseline: they fail ``check``."""
    known: list[Finding] = field(default_factory=list)
    """Findings the baseline accepts."""
    fixed: list[Entry] = field(default_factory=list)
    """Baseline entries (in the checked paths and codes) that no longer occur."""
    untouched: list[Entry] = field(default_factory=list)
    """Baseline entries outside the checked paths or codes: kept as they are."""


def compare(
    findings: Sequence[Finding],
    baseline: dict[str, Entry],
    in_scope: Callable[[Entry], bool],
) -> Comparison:
    """Split findings into new and known, and baseline entries into fixed and untouched.

    Args:
        findings: Today's fingerprinted findings.
        baseline: The accepted entries keyed by fingerprint.
        in_scope: Whether an entry belongs to what this run checked (its path and code); an
            entry outside it is never reported as fixed.
    """
    result = Comparison()
    current = {finding.fingerprint for finding in findings}
    for finding in findings:
        (result.known if finding.fingerprint in baseline else result.new).append(finding)
    for entry in baseline.values():
        if entry.fingerprint in current:
            continue
        (result.fixed if in_scope(entry) else result.untouched).append(entry)
    return result
