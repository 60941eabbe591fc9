"""Run the analyzer over files: parse once, walk once, apply ``# noqa`` policy."""

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sessionlint.analyzer import Analyzer
from sessionlint.codes import RULES
from sessionlint.config import Config
from sessionlint.context import FileContext, build_context
from sessionlint.events import Event, Status
from sessionlint.noqa import Noqa, apply_noqa, parse_noqa_comments
from sessionlint.paths import iter_python_files

_NOQA_CANDIDATE = re.compile(rb"#[ \t]*noqa\b(?P<codes>[ \t]*:[^#\n]*\bSL[0-9])?", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RunResult:
    """Events of every analyzed file plus counts for the summary line."""

    events: list[Event]
    files: int
    lines: int

    @property
    def findings(self) -> list[Event]:
        """Return the unsuppressed findings sorted by path, line, column and code."""
        return sorted((e for e in self.events if e.is_finding), key=Event.sort_key)


def _event(ctx: FileContext, line: int, col: int, code: str, method: str, message: str) -> Event:
    return Event(
        path=ctx.path,
        relpath=ctx.relpath,
        feature=ctx.feature,
        line=line,
        col=col,
        method=method,
        status=Status.FIX,
        code=code,
        message=message,
        hint=RULES[code].hint,
    )


def _dedupe(events: list[Event]) -> list[Event]:
    seen: set[tuple[int, str | None, str]] = set()
    unique: list[Event] = []
    for event in events:
        key = (event.line, event.code, event.method)
        if event.code is not None and key in seen:
            continue
        seen.add(key)
        unique.append(event)
    return unique


def _noqa_matters(data: bytes, finding_lines: set[int]) -> bool:
    """Cheap pre-check so the slow tokenizer only runs when a noqa comment can matter."""
    line, position = 1, 0
    for match in _NOQA_CANDIDATE.finditer(data):
        if match.group("codes"):
            return True
        line += data.count(b"\n", position, match.start())
        position = match.start()
        if line in finding_lines:
            return True
    return False


def analyze_source(source: bytes | str, ctx: FileContext, config: Config) -> list[Event]:
    """Analyze one module's source text and return its events, noqa policy applied."""
    data = source.encode() if isinstance(source, str) else source
    try:
        tree = ast.parse(data, filename=ctx.path)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        line = getattr(exc, "lineno", None) or 1
        col = getattr(exc, "offset", None) or 1
        detail = getattr(exc, "msg", None) or str(exc)
        return [_event(ctx, line, col, "SL000", "Unparseable file", f"cannot parse: {detail}")]
    analyzer = Analyzer(ctx, config)
    try:
        analyzer.visit(tree)
    except RecursionError:
        return [_event(ctx, 1, 1, "SL000", "Unanalyzable file", "too deeply nested to analyze")]
    events = _dedupe(analyzer.events)
    if not _noqa_matters(data, {e.line for e in events if e.is_finding}):
        return events

    def make_sl008(noqa: Noqa, message: str) -> Event:
        return _event(ctx, noqa.line, noqa.col, "SL008", "Suppression without reason", message)

    return apply_noqa(events, parse_noqa_comments(data), make_sl008)


def run(paths: Sequence[Path], config: Config, root: Path) -> RunResult:
    """Analyze every Python file under paths (root anchors module names and globs)."""
    events: list[Event] = []
    files = iter_python_files(paths, root, config.excluded)
    lines = 0
    for path in files:
        ctx = build_context(path, root, config)
        try:
            data = path.read_bytes()
        except OSError as exc:
            events.append(_event(ctx, 1, 1, "SL000", "Unreadable file", f"cannot read: {exc}"))
            continue
        lines += data.count(b"\n")
        events.extend(analyze_source(data, ctx, config))
    return RunResult(events=events, files=len(files), lines=lines)
