"""Run the analyzer over files: parse once, walk once, apply ``# noqa`` policy."""

import ast
import gc
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sessionlint.analyzer import Analyzer
from sessionlint.codes import RULES, SEVERITY
from sessionlint.config import Config
from sessionlint.context import FileContext, build_context
from sessionlint.events import Event, Status
from sessionlint.index import Index, Module, Symbol, index_module
from sessionlint.noqa import Noqa, apply_noqa, parse_noqa_comments
from sessionlint.paths import iter_python_files, relative_to
from sessionlint.versions import FastAPIVersion, detect, from_option, project_root

_NOQA_CANDIDATE = re.compile(rb"#[ \t]*noqa\b(?P<codes>[ \t]*:[^#\n]*\bSL[0-9])?", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RunResult:
    """Events of every analyzed file plus counts for the summary line."""

    events: list[Event]
    files: int
    lines: int
    sources: list[Symbol] = field(default_factory=list)
    """Inferred session sources, session factories and engines (the audit's second section)."""
    fastapi: FastAPIVersion | None = None
    """The FastAPI version the scope rule assumed."""

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
        severity=SEVERITY.get(code, "error"),
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


def _parse(data: bytes, ctx: FileContext) -> ast.Module | Event:
    try:
        return ast.parse(data, filename=ctx.path)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        line = getattr(exc, "lineno", None) or 1
        col = getattr(exc, "offset", None) or 1
        detail = getattr(exc, "msg", None) or str(exc)
        return _event(ctx, line, col, "SL000", "Unparseable file", f"cannot parse: {detail}")


def check_module(
    module: Module, index: Index, config: Config, fastapi: FastAPIVersion | None = None
) -> list[Event]:
    """Pass 2 on one indexed module: its events, noqa policy applied."""
    ctx, data = module.ctx, module.data
    analyzer = Analyzer(module, index, config, fastapi)
    try:
        analyzer.visit(module.tree)
    except RecursionError:
        return [_event(ctx, 1, 1, "SL000", "Unanalyzable file", "too deeply nested to analyze")]
    events = _dedupe(analyzer.events)
    if not _noqa_matters(data, {e.line for e in events if e.is_finding}):
        return events

    def make_sl008(noqa: Noqa, message: str) -> Event:
        return _event(ctx, noqa.line, noqa.col, "SL008", "Suppression without reason", message)

    return apply_noqa(events, parse_noqa_comments(data), make_sl008)


def analyze_source(
    source: bytes | str,
    ctx: FileContext,
    config: Config,
    fastapi: FastAPIVersion | None = None,
) -> list[Event]:
    """Analyze one module on its own (a one-module program) and return its events."""
    data = source.encode() if isinstance(source, str) else source
    tree = _parse(data, ctx)
    if isinstance(tree, Event):
        return [tree]
    index = Index(config)
    try:
        module = index_module(ctx, tree, data)
    except RecursionError:
        return [_event(ctx, 1, 1, "SL000", "Unanalyzable file", "too deeply nested to analyze")]
    index.add(module)
    index.infer()
    return check_module(module, index, config, fastapi)


def target_version(paths: Sequence[Path], config: Config) -> FastAPIVersion:
    """Return the FastAPI version the scope rule assumes: the option, else the target's pin."""
    if config.fastapi_version:
        return from_option(config.fastapi_version)
    return detect(paths[0]) if paths else FastAPIVersion(None, source="unknown")


def effective_root(paths: Sequence[Path], root: Path) -> Path:
    """Return root, or the target's own project directory when it lies below root.

    A project nested inside another (a sample app under ``tests/``) is checked as itself: its
    paths, module names and globs are relative to its own pyproject.toml/requirements.txt.
    """
    if not paths:
        return root
    marker = project_root(paths[0])
    if marker is None or marker == root.resolve():
        return root
    return marker if relative_to(marker, root) is not None else root


def run(paths: Sequence[Path], config: Config, root: Path) -> RunResult:
    """Index every Python file under paths, infer sources program-wide, then check each file.

    The cyclic garbage collector is paused meanwhile: every module's tree stays alive until
    the second pass, and the collector would otherwise rescan the growing heap again and again
    (a third of the run on 35,000 lines) for cycles that cannot be freed yet.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run(paths, config, root)
    finally:
        if collecting:
            gc.enable()


def _context_files(
    paths: Sequence[Path], root: Path, config: Config, files: list[Path]
) -> list[Path]:
    """When only files are given (a pre-commit hook), the rest of the project informs inference."""
    if not paths or not all(path.is_file() for path in paths):
        return []
    given = {os.path.abspath(path) for path in files}
    project = iter_python_files([root], root, config.excluded)
    return [path for path in project if os.path.abspath(path) not in given]


def _index_file(path: Path, root: Path, config: Config, index: Index) -> Module | Event:
    ctx = build_context(path, root, config)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return _event(ctx, 1, 1, "SL000", "Unreadable file", f"cannot read: {exc}")
    tree = _parse(data, ctx)
    if isinstance(tree, Event):
        return tree
    try:
        module = index_module(ctx, tree, data)
    except RecursionError:
        return _event(ctx, 1, 1, "SL000", "Unanalyzable file", "too deeply nested to analyze")
    index.add(module)
    return module


def _run(paths: Sequence[Path], config: Config, root: Path) -> RunResult:
    events: list[Event] = []
    root = effective_root(paths, root)
    files = iter_python_files(paths, root, config.excluded)
    index = Index(config)
    for path in _context_files(paths, root, config, files):
        _index_file(path, root, config, index)  # indexed for inference, not reported
    modules: list[Module] = []
    for path in files:
        indexed = _index_file(path, root, config, index)
        if isinstance(indexed, Event):
            events.append(indexed)
        else:
            modules.append(indexed)
    index.infer()
    fastapi = target_version(paths, config)
    for module in modules:
        events.extend(check_module(module, index, config, fastapi))
    return RunResult(
        events=events,
        files=len(files),
        lines=sum(module.data.count(b"\n") for module in modules),
        sources=list(index.sources()),
        fastapi=fastapi,
    )
