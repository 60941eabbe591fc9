"""``check --fix`` / ``--diff``: mechanical rewrites for the scope rule (SL001).

Two rewrites, both applied only where ``check`` reports an SL001 finding, and only when the
result provably still parses:

* A route handler parameter ``x: AsyncSession = Depends(get_session_dependency)`` becomes
  ``x: SessionDep``, importing ``SessionDep`` from the module ``get_session_dependency`` was
  imported from, once that module is found to define (or re-export) ``SessionDep`` as
  ``Annotated[<the same session type>, ...]``. The import goes next to the existing one.
* Any other ``Depends(get_session_dependency)`` without a scope (an ``Annotated`` alias, a
  dependency function's parameter, a handler whose parameter order or module rules the alias
  out) gets ``scope="function"`` appended to its arguments.

Edits are computed from ``ast`` positions on the original bytes, so formatting and comments
elsewhere in the file are untouched. SL009 (FastAPI older than 0.118) is left alone,
and so is every ``scope=`` insertion when the target pins FastAPI below 0.121.1, where
``Depends`` has no ``scope`` argument yet: those fixes belong to the upgrade.
"""

import ast
import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sessionlint.config import Config
from sessionlint.events import Event

FIXABLE_CODES = frozenset({"SL001"})
"""Codes whose findings ``--fix`` may address."""

SCOPE_KEYWORD_SINCE = (0, 121, 1)
"""First FastAPI release whose ``Depends`` takes ``scope="function"``."""

ALIAS = "SessionDep"
_ROUTE_METHODS = frozenset(
    {"get", "post", "put", "patch", "delete", "head", "options", "trace", "api_route", "websocket"}
)
_MAX_HOPS = 5
_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True, slots=True)
class FileFix:
    """The rewritten text of one file and how many findings it addresses."""

    path: Path
    relpath: str
    before: str
    after: str
    fixes: int

    def diff(self) -> str:
        """Return the unified diff of the change (``a/`` and ``b/`` root-relative paths)."""
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"a/{self.relpath}",
                tofile=f"b/{self.relpath}",
            )
        )

    def write(self) -> None:
        """Write the fixed text back to the file."""
        self.path.write_bytes(self.after.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class _Edit:
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class _Import:
    node: ast.ImportFrom
    name: str  # the imported (original) name


def _terminal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_route(function: _FunctionNode) -> bool:
    return any(
        isinstance(d, ast.Call)
        and isinstance(d.func, ast.Attribute)
        and d.func.attr in _ROUTE_METHODS
        for d in function.decorator_list
    )


def _module_file(module: str, level: int, importer: Path, roots: Sequence[Path]) -> Path | None:
    """Find the file of an imported module under the project's source roots."""
    parts = [part for part in module.split(".") if part]
    if level > len(importer.parents):
        return None
    bases = [importer.parents[level - 1].resolve()] if level else list(roots)
    for base in bases:
        target = base.joinpath(*parts)
        for candidate in (target.with_suffix(".py"), target / "__init__.py"):
            if parts and candidate.is_file():
                return candidate
        if not parts and (base / "__init__.py").is_file():
            return base / "__init__.py"
    return None


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None


def _alias_definition(
    module_file: Path, name: str, roots: Sequence[Path], hops: int = 0
) -> ast.expr | None:
    """Return the value a module binds ``name`` to at top level, following re-exports."""
    tree = _parse(module_file)
    if tree is None or hops > _MAX_HOPS:
        return None
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in statement.targets
        ):
            return statement.value
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and statement.target.id == name
            and statement.value is not None
        ):
            return statement.value
        if isinstance(statement, ast.ImportFrom):
            for alias in statement.names:
                if (alias.asname or alias.name) == name:
                    source = _module_file(
                        statement.module or "", statement.level, module_file, roots
                    )
                    if source is None:
                        return None
                    return _alias_definition(source, alias.name, roots, hops + 1)
    return None


def _alias_session_type(value: ast.expr | None) -> str | None:
    """Return the session type an ``Annotated[T, Depends(...)]`` alias stands for."""
    if (
        isinstance(value, ast.Subscript)
        and _terminal(value.value) == "Annotated"
        and isinstance(value.slice, ast.Tuple)
        and len(value.slice.elts) > 1
    ):
        return _terminal(value.slice.elts[0])
    return None


class _FilePlanner:
    """Plan the edits of one file."""

    def __init__(
        self, path: Path, data: bytes, tree: ast.Module, config: Config, roots: Sequence[Path]
    ) -> None:
        self.path = path
        self.data = data
        self.tree = tree
        self.config = config
        self.roots = roots
        self.dependency = config.session_dependency
        self.starts = [0]
        for line in data.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))
        self.imports: dict[str, _Import] = {}
        self.bound: set[str] = set()
        for statement in tree.body:
            if isinstance(statement, ast.ImportFrom):
                for alias in statement.names:
                    local = alias.asname or alias.name
                    self.imports[local] = _Import(statement, alias.name)
                    self.bound.add(local)
            elif isinstance(statement, ast.Import):
                self.bound.update((a.asname or a.name).partition(".")[0] for a in statement.names)
            elif isinstance(statement, ast.Assign | ast.AnnAssign):
                targets = (
                    statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                )
                self.bound.update(t.id for t in targets if isinstance(t, ast.Name))
            elif isinstance(statement, _FunctionNode | ast.ClassDef):
                self.bound.add(statement.name)
        self.parents: dict[int, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[id(child)] = node

    def offset(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col

    # ------------------------------------------------------------------ targets
    def _is_dependency(self, node: ast.expr | None) -> bool:
        if isinstance(node, ast.Name):
            imported = self.imports.get(node.id)
            return (imported.name if imported else node.id) == self.dependency
        return isinstance(node, ast.Attribute) and node.attr == self.dependency

    def unscoped_depends(self) -> list[ast.Call]:
        calls = []
        for node in ast.walk(self.tree):
            if not (isinstance(node, ast.Call) and _terminal(node.func) == "Depends"):
                continue
            if any(k.arg == "scope" for k in node.keywords):
                continue
            target = node.args[0] if node.args else None
            for keyword in node.keywords:
                if keyword.arg == "dependency":
                    target = keyword.value
            if self._is_dependency(target):
                calls.append(node)
        return calls

    def _param_of(self, call: ast.Call) -> tuple[_FunctionNode, ast.arg, bool] | None:
        """Return (function, parameter, is_default) when the call sits in a parameter."""
        node: ast.AST = call
        while id(node) in self.parents:
            parent = self.parents[id(node)]
            if isinstance(parent, ast.arguments):
                function = self.parents.get(id(parent))
                if not isinstance(function, _FunctionNode):
                    return None
                args = parent
                positional = [*args.posonlyargs, *args.args]
                for arg, default in zip(
                    positional[len(positional) - len(args.defaults) :], args.defaults, strict=True
                ):
                    if default is node:
                        return function, arg, default is call
                for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
                    if kw_default is node:
                        return function, arg, kw_default is call
                return None
            if isinstance(parent, ast.arg):
                function = self.parents.get(id(self.parents.get(id(parent), parent)))
                if isinstance(function, _FunctionNode):
                    return function, parent, False
                return None
            if isinstance(parent, ast.stmt):
                return None
            node = parent
        return None

    def _span(self, call: ast.Call) -> tuple[int, int]:
        param = self._param_of(call)
        if param is not None:
            return min(param[1].lineno, call.lineno), call.end_lineno or call.lineno
        node: ast.AST = call
        while id(node) in self.parents and not isinstance(node, ast.stmt):
            node = self.parents[id(node)]
        first = getattr(node, "lineno", call.lineno)
        return min(first, call.lineno), call.end_lineno or call.lineno

    # -------------------------------------------------------------------- edits
    def _scope_edit(self, call: ast.Call) -> _Edit:
        last: ast.AST = call.keywords[-1] if call.keywords else call.args[-1]
        if call.args and call.keywords and _after(call.args[-1], call.keywords[-1]):
            last = call.args[-1]
        end_line = getattr(last, "end_lineno", None) or call.lineno
        end_col = getattr(last, "end_col_offset", None) or 0
        at = self.offset(end_line, end_col)
        return _Edit(at, at, ', scope="function"')

    def _alias_ok(self, function: _FunctionNode, arg: ast.arg) -> bool:
        """True when dropping the parameter's default keeps the signature valid."""
        args = function.args
        if any(arg is a for a in args.kwonlyargs):
            return True
        positional = [*args.posonlyargs, *args.args]
        index = next(i for i, a in enumerate(positional) if a is arg)
        first_default = len(positional) - len(args.defaults)
        return index == first_default

    def _alias_source(self, call: ast.Call, annotation: ast.expr) -> tuple[str, _Import | None]:
        """Return the alias name to use and the import to extend ("" when unusable)."""
        wanted = _terminal(annotation)
        if ALIAS in self.imports and self.imports[ALIAS].name == ALIAS:
            source = self._import_file(self.imports[ALIAS].node)
            value = _alias_definition(source, ALIAS, self.roots) if source else None
            return (ALIAS, None) if _alias_session_type(value) == wanted else ("", None)
        if ALIAS in self.bound:
            return "", None
        target = call.args[0] if call.args else None
        if not isinstance(target, ast.Name) or target.id not in self.imports:
            return "", None
        imported = self.imports[target.id]
        source = self._import_file(imported.node)
        if source is None:
            return "", None
        value = _alias_definition(source, ALIAS, self.roots)
        return (ALIAS, imported) if _alias_session_type(value) == wanted else ("", None)

    def _import_file(self, node: ast.ImportFrom) -> Path | None:
        return _module_file(node.module or "", node.level, self.path, self.roots)

    def plan(self, lines: set[int], *, scope_keyword: bool) -> tuple[list[_Edit], int]:
        edits: list[_Edit] = []
        add_import: _Import | None = None
        removed: dict[str, int] = {}
        count = 0
        for call in self.unscoped_depends():
            first, last = self._span(call)
            if not any(first <= line <= last for line in lines):
                continue
            param = self._param_of(call)
            if param is not None and param[2] and _is_route(param[0]):
                function, arg, _ = param
                annotation = arg.annotation
                if isinstance(annotation, ast.Name | ast.Attribute) and self._alias_ok(
                    function, arg
                ):
                    name, imported = self._alias_source(call, annotation)
                    if name:
                        start = self.offset(arg.lineno, arg.col_offset)
                        end = self.offset(call.end_lineno or call.lineno, call.end_col_offset or 0)
                        edits.append(_Edit(start, end, f"{arg.arg}: {name}"))
                        target = call.args[0]
                        if isinstance(target, ast.Name):
                            removed[target.id] = removed.get(target.id, 0) + 1
                        add_import = add_import or imported
                        count += 1
                        continue
            if scope_keyword:
                edits.append(self._scope_edit(call))
                count += 1
        if add_import is not None:
            edits.append(self._import_edit(add_import, removed))
        return edits, count

    def _import_edit(self, imported: _Import, removed: dict[str, int]) -> _Edit:
        node = imported.node
        local = next(a.asname or a.name for a in node.names if a.name == imported.name)
        uses = sum(
            1
            for n in ast.walk(self.tree)
            if isinstance(n, ast.Name) and n.id == local and isinstance(n.ctx, ast.Load)
        )
        unused = uses - removed.get(local, 0) <= 0
        if node.lineno == node.end_lineno:
            names = [
                ast.alias(ALIAS) if unused and (a.asname or a.name) == local else a
                for a in node.names
            ]
            if not unused:
                names.append(ast.alias(ALIAS))
            text = ast.unparse(ast.ImportFrom(module=node.module, names=names, level=node.level))
            start = self.offset(node.lineno, node.col_offset)
            end = self.offset(node.end_lineno or node.lineno, node.end_col_offset or 0)
            return _Edit(start, end, text)
        at = self.starts[node.end_lineno or node.lineno] if node.end_lineno else 0
        indent = " " * node.col_offset
        statement = ast.unparse(
            ast.ImportFrom(module=node.module, names=[ast.alias(ALIAS)], level=node.level)
        )
        return _Edit(at, at, f"{indent}{statement}\n")


def _after(a: ast.AST, b: ast.AST) -> bool:
    """Return True when node a ends after node b (``Depends(dependency=x)`` vs ``*args``)."""
    return (getattr(a, "end_lineno", 0), getattr(a, "end_col_offset", 0)) > (
        getattr(b, "end_lineno", 0),
        getattr(b, "end_col_offset", 0),
    )


def scope_keyword_available(upper: tuple[int, ...] | None, *, exclusive: bool = False) -> bool:
    """Tell whether the newest FastAPI a requirement allows takes ``Depends(..., scope=)``.

    Args:
        upper: The newest allowed release, None when unbounded or unknown (then: the latest).
        exclusive: True when ``upper`` itself is excluded (``<0.121``).
    """
    if upper is None:
        return True
    return upper > SCOPE_KEYWORD_SINCE if exclusive else upper >= SCOPE_KEYWORD_SINCE


def _apply(data: bytes, edits: Iterable[_Edit]) -> bytes:
    result = data
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        result = result[: edit.start] + edit.text.encode("utf-8") + result[edit.end :]
    return result


def plan_fixes(
    findings: Sequence[Event], config: Config, root: Path, *, scope_keyword: bool = True
) -> list[FileFix]:
    """Return the rewrites that address the fixable findings, one per changed file.

    Args:
        findings: Unsuppressed findings of a ``check`` run; only SL001 ones are considered.
        config: The effective configuration (``session-dependency``, ``source-roots``).
        root: The project root that ``relpath`` and absolute imports are resolved against.
        scope_keyword: Whether the target's FastAPI accepts ``Depends(..., scope=)``; without
            it only the ``SessionDep`` rewrite is made.
    """
    roots = [(root / source_root).resolve() for source_root in config.source_roots]
    by_file: dict[str, tuple[str, set[int]]] = {}
    for event in findings:
        if event.code in FIXABLE_CODES and event.is_finding:
            relpath, lines = by_file.setdefault(event.path, (event.relpath, set()))
            lines.add(event.line)
    fixes: list[FileFix] = []
    for display, (relpath, lines) in sorted(by_file.items()):
        path = Path(display)
        try:
            data = path.read_bytes()
            tree = ast.parse(data, filename=display)
        except (OSError, SyntaxError, ValueError):
            continue
        planner = _FilePlanner(path.resolve(), data, tree, config, roots)
        edits, count = planner.plan(lines, scope_keyword=scope_keyword)
        if not edits:
            continue
        after = _apply(data, edits)
        try:
            ast.parse(after, filename=display)
            before_text, after_text = data.decode("utf-8"), after.decode("utf-8")
        except (SyntaxError, ValueError):
            continue  # never write a file that no longer parses (or is not UTF-8)
        fixes.append(
            FileFix(path=path, relpath=relpath, before=before_text, after=after_text, fixes=count)
        )
    return fixes
