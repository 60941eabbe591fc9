"""Pass 1: index every module, then infer session sources, factories and engines program-wide.

The index records, per module, its imports (re-exports included), its module-level definitions
and, per function, what it returns or yields and which names it binds. Inference then runs to a
fixpoint across modules: a *session source* is a callable that returns or yields a SQLAlchemy
session (by annotation, by construction, or by wrapping another source); a *session factory* is a
module-level ``sessionmaker``/``async_sessionmaker``; an *engine* is built by ``create_engine``
and friends, or returned by a function that builds one.
"""

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field

from sessionlint import patterns as p
from sessionlint.config import Config
from sessionlint.context import FileContext

SOURCE, FACTORY, ENGINE = "session source", "session factory", "engine"
SESSION_TYPE, DEPENDS = "session type", "depends alias"
_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
_WRAPPERS = frozenset(
    {
        "Iterator",
        "AsyncIterator",
        "Iterable",
        "AsyncIterable",
        "Generator",
        "AsyncGenerator",
        "ContextManager",
        "AsyncContextManager",
        "AbstractContextManager",
        "AbstractAsyncContextManager",
        "Awaitable",
        "Optional",
        "Annotated",
        "Final",
    }
)
_ENGINE_CLASSES = frozenset({"AsyncEngine", "Engine"})
_LOOKALIKE_TOKENS = ("client", "http")


@dataclass(frozen=True, slots=True)
class Symbol:
    """An inferred source, factory, engine or alias, with where and why it was recognised."""

    qualname: str
    kind: str
    path: str
    relpath: str
    line: int
    why: str
    detail: ast.expr | None = None
    module: str = ""


@dataclass(slots=True)
class Function:
    """What pass 1 keeps of one function: enough to decide whether it is a source."""

    qualname: str
    module: "Module"
    node: _FunctionNode
    cls: str | None
    results: list[tuple[str, ast.expr]] = field(default_factory=list)
    binds: dict[str, list[tuple[str, ast.expr]]] = field(default_factory=dict)
    is_handler: bool = False


@dataclass(slots=True)
class Module:
    """One parsed module: its names and what they are bound to."""

    name: str
    package: str
    ctx: FileContext
    tree: ast.Module
    data: bytes
    imports: dict[str, str] = field(default_factory=dict)
    assigns: dict[str, tuple[ast.expr, int]] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)
    classes: set[str] = field(default_factory=set)


def _collect_function(
    module: Module, node: _FunctionNode, qualname: str, cls: str | None
) -> Function:
    """Walk a function's statements (not its expressions): results, bindings and imports."""
    func = Function(qualname=qualname, module=module, node=node, cls=cls)
    func.is_handler = any(p.is_route_decorator(d) for d in node.decorator_list)
    stack: list[ast.stmt] = list(node.body)
    results, binds = func.results, func.binds
    while stack:
        sub = stack.pop()
        kind = type(sub)
        if kind is ast.Expr:
            value = sub.value  # type: ignore[attr-defined]
            if isinstance(value, ast.Await):
                value = value.value
            if isinstance(value, ast.Yield) and value.value is not None:
                results.append(("yields", value.value))
            elif isinstance(value, ast.YieldFrom):
                results.append(("yields from", value.value))
        elif kind is ast.Return:
            if sub.value is not None:  # type: ignore[attr-defined]
                results.append(("returns", sub.value))  # type: ignore[attr-defined]
        elif kind is ast.Assign or kind is ast.AnnAssign:
            value = sub.value  # type: ignore[attr-defined]
            targets = sub.targets if kind is ast.Assign else [sub.target]  # type: ignore[attr-defined]
            if value is not None:
                for target in targets:
                    if isinstance(target, ast.Name):
                        binds.setdefault(target.id, []).append(("assign", value))
        elif kind is ast.With or kind is ast.AsyncWith:
            for item in sub.items:  # type: ignore[attr-defined]
                if isinstance(item.optional_vars, ast.Name):
                    binds.setdefault(item.optional_vars.id, []).append(("with", item.context_expr))
            stack.extend(sub.body)  # type: ignore[attr-defined]
        elif kind is ast.For or kind is ast.AsyncFor:
            target = sub.target  # type: ignore[attr-defined]
            if isinstance(target, ast.Name):
                binds.setdefault(target.id, []).append(("for", sub.iter))  # type: ignore[attr-defined]
            stack.extend(sub.body)  # type: ignore[attr-defined]
            stack.extend(sub.orelse)  # type: ignore[attr-defined]
        elif kind is ast.If or kind is ast.While:
            stack.extend(sub.body)  # type: ignore[attr-defined]
            stack.extend(sub.orelse)  # type: ignore[attr-defined]
        elif kind is ast.Try or kind.__name__ == "TryStar":
            stack.extend(sub.body)  # type: ignore[attr-defined]
            stack.extend(sub.orelse)  # type: ignore[attr-defined]
            stack.extend(sub.finalbody)  # type: ignore[attr-defined]
            for handler in sub.handlers:  # type: ignore[attr-defined]
                stack.extend(handler.body)
        elif kind is ast.Match:
            for case in sub.cases:  # type: ignore[attr-defined]
                stack.extend(case.body)
        elif kind is ast.Import or kind is ast.ImportFrom:
            _record_import(module, sub)  # type: ignore[arg-type]
    return func


def _record_import(module: Module, node: ast.Import | ast.ImportFrom) -> None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                module.imports[alias.asname] = alias.name
            else:
                root = alias.name.partition(".")[0]
                module.imports.setdefault(root, root)
        return
    if node.level:
        parts = module.package.split(".") if module.package else []
        if node.level > 1:
            parts = parts[: len(parts) - (node.level - 1)] if node.level - 1 <= len(parts) else []
        base = ".".join([*parts, node.module] if node.module else parts)
    else:
        base = node.module or ""
    for alias in node.names:
        if alias.name != "*":
            module.imports[alias.asname or alias.name] = (
                f"{base}.{alias.name}" if base else alias.name
            )


def index_module(ctx: FileContext, tree: ast.Module, data: bytes) -> Module:
    """Record a module's imports, module-level assignments, functions and methods."""
    is_package = ctx.relpath.endswith("__init__.py")
    package = ctx.module if is_package else ctx.module.rpartition(".")[0]
    module = Module(name=ctx.module, package=package, ctx=ctx, tree=tree, data=data)
    prefix = f"{ctx.module}." if ctx.module else ""
    body: list[tuple[ast.stmt, str | None]] = [(stmt, None) for stmt in tree.body]
    while body:
        stmt, cls = body.pop(0)
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            local = f"{cls}.{stmt.name}" if cls else stmt.name
            module.functions[local] = _collect_function(module, stmt, prefix + local, cls)
        elif isinstance(stmt, ast.ClassDef) and cls is None:
            module.classes.add(stmt.name)
            body.extend((sub, stmt.name) for sub in stmt.body)
        elif cls is not None:
            continue
        elif isinstance(stmt, ast.Import | ast.ImportFrom):
            _record_import(module, stmt)
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if isinstance(target, ast.Name):
                module.assigns[target.id] = (stmt.value, stmt.lineno)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            if isinstance(stmt.target, ast.Name):
                module.assigns[stmt.target.id] = (stmt.value, stmt.lineno)
        elif type(stmt).__name__ == "TypeAlias":
            name, alias_value = getattr(stmt, "name", None), getattr(stmt, "value", None)
            if isinstance(name, ast.Name) and isinstance(alias_value, ast.expr):
                module.assigns[name.id] = (alias_value, stmt.lineno)
        elif isinstance(stmt, ast.If | ast.Try):
            nested = [*stmt.body, *stmt.orelse]
            if isinstance(stmt, ast.Try):
                nested += [*stmt.finalbody, *(s for h in stmt.handlers for s in h.body)]
            body[:0] = [(sub, None) for sub in nested]
    return module


def describe(node: ast.expr) -> str:
    """Return a short rendering of an expression for reasons and messages (``f(...)``)."""
    if isinstance(node, ast.Call):
        return f"{describe(node.func)}(...)"
    if isinstance(node, ast.Await):
        return f"await {describe(node.value)}"
    try:
        text = ast.unparse(node)
    except Exception:  # pragma: no cover - unparse handles every expression
        return "expression"
    return text if len(text) <= 60 else text[:57] + "..."


class Index:
    """Every module of the run, the symbols inferred from them, and name resolution."""

    def __init__(self, config: Config) -> None:
        """Start an empty index that applies config's name overrides."""
        self.config = config
        self.modules: dict[str, Module] = {}
        self.symbols: dict[str, Symbol] = {}
        self.callers: dict[str, list[bool]] = {}
        self.detail_modules: dict[int, str] = {}
        self._opens: dict[int, str | None] = {}
        self._configured: dict[str, str | None] = {}
        self._final = False
        self._instances: dict[str, str | None] = {}
        self._suffix: dict[str, str | None] | None = None
        self._canonical: dict[str, str] = {}
        defaults = Config()
        self._configured_getters = frozenset(config.session_getters) - frozenset(
            defaults.session_getters
        )
        self._configured_factories = frozenset(config.session_factories) - frozenset(
            defaults.session_factories
        )
        self._fallback_getters = frozenset(config.session_getters)
        self._fallback_factories = frozenset(config.session_factories)

    # ------------------------------------------------------------------ modules
    def add(self, module: Module) -> None:
        """Add one indexed module (later files with the same module name win)."""
        self.modules[module.name] = module
        self._suffix = None

    def find_module(self, name: str) -> Module | None:
        """Return the module of that dotted name, or the one module whose name ends with it."""
        found = self.modules.get(name)
        if found is not None or not name:
            return found
        if self._suffix is None:
            suffix: dict[str, str | None] = {}
            for full in self.modules:
                parts = full.split(".")
                for start in range(1, len(parts)):
                    key = ".".join(parts[start:])
                    suffix[key] = None if key in suffix and suffix[key] != full else full
            self._suffix = suffix
        full_name = self._suffix.get(name)
        return self.modules.get(full_name) if full_name else None

    # --------------------------------------------------------------- resolution
    def canonical(self, dotted: str, depth: int = 0) -> str:
        """Follow imports and re-exports to the defining module of a dotted name."""
        cached = self._canonical.get(dotted)
        if cached is not None:
            return cached
        result = self._canonical_uncached(dotted, depth)
        self._canonical[dotted] = result
        return result

    def _canonical_uncached(self, dotted: str, depth: int) -> str:
        if depth > 20:
            return dotted
        parts = dotted.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            module = self.find_module(".".join(parts[:cut]))
            if module is None:
                continue
            first, rest = parts[cut], parts[cut + 1 :]
            tail = "." + ".".join(rest) if rest else ""
            if first in module.functions or first in module.assigns or first in module.classes:
                return f"{module.name}.{first}{tail}"
            target = module.imports.get(first)
            if target is not None and target != dotted:
                return self.canonical(target + tail, depth + 1)
            return f"{module.name}.{first}{tail}"
        return dotted

    def resolve_name(self, module: Module, name: str) -> str:
        """Resolve a name used at module level of module to a canonical qualified name."""
        if name in module.functions or name in module.assigns or name in module.classes:
            return f"{module.name}.{name}" if module.name else name
        target = module.imports.get(name)
        if target is not None:
            return self.canonical(target)
        return name

    def resolve(self, module: Module, node: ast.expr, cls: str | None = None) -> str | None:
        """Resolve a Name/Attribute expression to a canonical qualified name."""
        if isinstance(node, ast.Name):
            return self.resolve_name(module, node.id)
        if isinstance(node, ast.Attribute):
            base_node = node.value
            if (
                cls is not None
                and isinstance(base_node, ast.Name)
                and base_node.id in {"self", "cls"}
            ):
                local = f"{cls}.{node.attr}"
                if local in module.functions:
                    return f"{module.name}.{local}" if module.name else local
                return None
            base = self.resolve(module, base_node, cls)
            if base is None:
                return None
            instance_of = self._instance_class(base)
            if instance_of is not None:
                return f"{instance_of}.{node.attr}"
            return self.canonical(f"{base}.{node.attr}")
        return None

    def _instance_class(self, qualname: str) -> str | None:
        """Return the class of a module-level instance (``db = Database()``), if indexed."""
        cached = self._instances.get(qualname, "")
        if cached != "":
            return cached
        result: str | None = None
        found = self.assignment(qualname)
        if found is not None and isinstance(found[1], ast.Call):
            module, call = found[0], found[1]
            callee = self.resolve(module, call.func)
            if callee is not None:
                owner, _, name = callee.rpartition(".")
                owner_module = self.modules.get(owner)
                if owner_module is not None and name in owner_module.classes:
                    result = callee
        self._instances[qualname] = result
        return result

    def function(self, qualname: str) -> Function | None:
        """Return the indexed function of a canonical name (methods as Class.method)."""
        module_name, _, local = qualname.rpartition(".")
        while module_name:
            module = self.modules.get(module_name)
            if module is not None:
                return module.functions.get(local)
            module_name, _, head = module_name.rpartition(".")
            local = f"{head}.{local}"
        return None

    def assignment(self, qualname: str) -> tuple[Module, ast.expr, int] | None:
        """Return the module-level assignment of a canonical name."""
        module_name, _, local = qualname.rpartition(".")
        module = self.modules.get(module_name)
        if module is None or local not in module.assigns:
            return None
        value, line = module.assigns[local]
        return module, value, line

    def kind(self, qualname: str | None) -> str | None:
        """Return the inferred kind of a canonical name, if any."""
        if qualname is None:
            return None
        symbol = self.symbols.get(qualname)
        return symbol.kind if symbol is not None else None

    def is_defined(self, qualname: str) -> bool:
        """Return True when the name is defined in one of the indexed modules."""
        return self.function(qualname) is not None or self.assignment(qualname) is not None

    # --------------------------------------------------------------- predicates
    def is_session_class(self, qualname: str | None) -> bool:
        """Return True for SQLAlchemy/SQLModel Session and AsyncSession classes."""
        if not qualname:
            return False
        name = p.terminal(qualname)
        if name == "AsyncSession":
            return qualname == name or qualname.startswith(p.SQLALCHEMY_ROOTS)
        return name == "Session" and qualname.startswith(p.SQLALCHEMY_ROOTS)

    def session_type(self, module: Module, node: ast.expr | None, *, returns: bool = False) -> bool:
        """Return True when an annotation denotes a session (through aliases and wrappers)."""
        if node is None or (node := p.annotation_expr(node)) is None:
            return False
        if isinstance(node, ast.Name | ast.Attribute):
            qualname = self.resolve(module, node)
            return self.is_session_class(qualname) or self.kind(qualname) == SESSION_TYPE
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self.session_type(module, node.left, returns=returns) or self.session_type(
                module, node.right, returns=returns
            )
        if isinstance(node, ast.Subscript):
            base = p.terminal(self.resolve(module, node.value))
            inner = node.slice
            first = inner.elts[0] if isinstance(inner, ast.Tuple) and inner.elts else inner
            if base in {"Optional", "Annotated", "Final"}:
                return self.session_type(module, first, returns=returns)
            if returns and base in _WRAPPERS:
                return self.session_type(module, first, returns=True)
            if returns and base == "Coroutine" and isinstance(inner, ast.Tuple) and inner.elts:
                return self.session_type(module, inner.elts[-1], returns=True)
        return False

    def engine_type(self, module: Module, node: ast.expr | None) -> bool:
        """Return True when a return annotation denotes an engine (or yields one)."""
        if node is None:
            return False
        if isinstance(node, ast.Name | ast.Attribute):
            qualname = self.resolve(module, node) or ""
            name = p.terminal(qualname)
            return name in _ENGINE_CLASSES and (
                qualname == name or qualname.startswith(p.SQLALCHEMY_ROOTS)
            )
        if isinstance(node, ast.Subscript):
            base = p.terminal(self.resolve(module, node.value))
            inner = node.slice
            first = inner.elts[0] if isinstance(inner, ast.Tuple) and inner.elts else inner
            if base in _WRAPPERS:
                return self.engine_type(module, first)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self.engine_type(module, node.left) or self.engine_type(module, node.right)
        return False

    def configured(self, qualname: str | None) -> str | None:
        """Return the config key that names this callable a source/factory, if any."""
        if qualname is None:
            return None
        if qualname in self._configured:
            return self._configured[qualname]
        result = self._configured[qualname] = self._configured_uncached(qualname)
        return result

    def _configured_uncached(self, qualname: str) -> str | None:
        name = p.terminal(qualname)
        if name is None:
            return None
        defined = self.is_defined(qualname)
        if name in self._configured_getters or (not defined and name in self._fallback_getters):
            return "session-getters"
        if name in self._configured_factories or (not defined and name in self._fallback_factories):
            return "session-factories"
        if not defined and name == self.config.session_dependency:
            return "session-dependency"
        return None

    # ---------------------------------------------------------------- producers
    def opens(
        self, module: Module, node: ast.expr, func: Function | None = None, depth: int = 0
    ) -> str | None:
        """Return why an expression evaluates to (or enters) a session, else None."""
        if depth == 0 and self._final:
            key = id(node)
            if key in self._opens:
                return self._opens[key]
            result = self._opens[key] = self._opens_uncached(module, node, func, 0)
            return result
        return self._opens_uncached(module, node, func, depth)

    def _opens_uncached(
        self, module: Module, node: ast.expr, func: Function | None, depth: int
    ) -> str | None:
        if depth > 8:
            return None
        if isinstance(node, ast.Await):
            return self.opens(module, node.value, func, depth + 1)
        if isinstance(node, ast.Name) and func is not None and node.id in func.binds:
            for how, value in func.binds[node.id]:
                why = self.opens(module, value, func, depth + 1)
                if why is not None:
                    return why if how == "assign" else f"a session entered from {why}"
            return None
        if not isinstance(node, ast.Call):
            return None
        callee = node.func
        if isinstance(callee, ast.Call) and self.makes_factory(module, callee, func, depth + 1):
            return f"{describe(callee)}()"
        if isinstance(callee, ast.Name) and func is not None and callee.id in func.binds:
            if any(
                self.makes_factory(module, v, func, depth + 1) for _, v in func.binds[callee.id]
            ):
                return f"{callee.id}() (a local session factory)"
            return None
        if isinstance(callee, ast.Attribute) and callee.attr == "begin":
            receiver = self.resolve(module, callee.value, func.cls if func else None)
            if self.kind(receiver) == FACTORY:
                return f"{describe(callee)}()"
        qualname = self.resolve(module, callee, func.cls if func else None)
        if qualname is None:
            return None
        kind = self.kind(qualname)
        if kind == FACTORY and self.function(qualname) is not None:
            return None  # a function that returns a sessionmaker: calling it opens nothing
        if kind in {SOURCE, FACTORY} or self.is_session_class(qualname):
            return f"{p.terminal(qualname)}()"
        if self.configured(qualname) is not None:
            return f"{p.terminal(qualname)}()"
        return None

    def makes_factory(
        self, module: Module, node: ast.expr, func: Function | None = None, depth: int = 0
    ) -> bool:
        """Return True when an expression evaluates to a sessionmaker."""
        if depth > 8:
            return False
        if isinstance(node, ast.Call):
            qualname = self.resolve(module, node.func, func.cls if func else None)
            if p.terminal(qualname) in p.FACTORY_CREATORS:
                return True
            return self.kind(qualname) == FACTORY and self.function(qualname or "") is not None
        if isinstance(node, ast.Name) and func is not None and node.id in func.binds:
            return any(
                self.makes_factory(module, v, func, depth + 1) for _, v in func.binds[node.id]
            )
        if isinstance(node, ast.Name | ast.Attribute):
            return self.kind(self.resolve(module, node, func.cls if func else None)) == FACTORY
        return False

    def makes_engine(
        self, module: Module, node: ast.expr, func: Function | None = None, depth: int = 0
    ) -> str | None:
        """Return why an expression evaluates to an engine, else None."""
        if depth > 8:
            return None
        if isinstance(node, ast.Await):
            return self.makes_engine(module, node.value, func, depth + 1)
        if isinstance(node, ast.Name) and func is not None and node.id in func.binds:
            for _, value in func.binds[node.id]:
                why = self.makes_engine(module, value, func, depth + 1)
                if why is not None:
                    return why
            return None
        if isinstance(node, ast.Call):
            qualname = self.resolve(module, node.func, func.cls if func else None)
            if p.terminal(qualname) in p.ENGINE_CREATORS or (
                self.kind(qualname) == ENGINE and (self.function(qualname or "") is not None)
            ):
                return f"{p.terminal(qualname)}(...)"
            return None
        if isinstance(node, ast.Name | ast.Attribute):
            qualname = self.resolve(module, node, func.cls if func else None)
            if self.kind(qualname) == ENGINE and self.function(qualname or "") is None:
                return p.terminal(qualname)
        return None

    # ---------------------------------------------------------------- inference
    def _symbol(
        self,
        module: Module,
        qualname: str,
        kind: str,
        line: int,
        why: str,
        detail: ast.expr | None = None,
    ) -> None:
        if detail is not None and id(detail) not in self.detail_modules:
            self.detail_modules[id(detail)] = module.name
        self.symbols[qualname] = Symbol(
            qualname=qualname,
            kind=kind,
            path=module.ctx.path,
            relpath=module.ctx.relpath,
            line=line,
            why=why,
            detail=detail,
            module=module.name,
        )

    def _infer_assignment(self, module: Module, name: str, value: ast.expr, line: int) -> bool:
        qualname = f"{module.name}.{name}" if module.name else name
        if qualname in self.symbols:
            return False
        if isinstance(value, ast.Call):
            callee = self.resolve(module, value.func)
            callee_name = p.terminal(callee)
            if callee_name in p.FACTORY_CREATORS:
                self._symbol(module, qualname, FACTORY, line, f"{callee_name}(...)")
                return True
            if self.kind(callee) == FACTORY and self.function(callee or "") is not None:
                self._symbol(module, qualname, FACTORY, line, f"built by {callee_name}()")
                return True
            engine = self.makes_engine(module, value)
            if engine is not None:
                self._symbol(module, qualname, ENGINE, line, f"built by {engine}")
                return True
            if callee_name == "partial" and value.args:
                target = self.resolve(module, value.args[0])
                if self.kind(target) == SOURCE:
                    self._symbol(
                        module, qualname, SOURCE, line, f"partial({p.terminal(target)}, ...)"
                    )
                    return True
            if callee_name == "Depends":
                self._symbol(module, qualname, DEPENDS, line, "Depends alias", value)
                return True
            if (
                callee_name in {"TypeAliasType", "NewType"}
                and len(value.args) > 1
                and self.session_type(module, value.args[1])
            ):
                self._symbol(module, qualname, SESSION_TYPE, line, "type alias")
                return True
            return False
        if isinstance(value, ast.Name | ast.Attribute):
            target = self.resolve(module, value)
            kind = self.kind(target)
            if kind is not None:
                self._symbol(
                    module,
                    qualname,
                    kind,
                    line,
                    f"alias of {target}",
                    self.symbols[target or ""].detail,
                )
                return True
            if self.is_session_class(target):
                self._symbol(module, qualname, SESSION_TYPE, line, f"alias of {p.terminal(target)}")
                return True
            lowered = name.lower()
            if (
                p.terminal(target) == "Any"
                and "session" in lowered
                and not any(token in lowered for token in _LOOKALIKE_TOKENS)
            ):
                self._symbol(
                    module, qualname, SESSION_TYPE, line, "Any-typed alias named as a session"
                )
                return True
            return False
        if (
            isinstance(value, ast.Subscript)
            and p.terminal(self.resolve(module, value.value)) == "Annotated"
        ):
            inner = value.slice
            if (
                isinstance(inner, ast.Tuple)
                and inner.elts
                and self.session_type(module, inner.elts[0])
            ):
                for meta in inner.elts[1:]:
                    if (
                        isinstance(meta, ast.Call)
                        and p.terminal(self.resolve(module, meta.func)) == "Depends"
                    ):
                        self._symbol(
                            module, qualname, DEPENDS, line, "Annotated session with Depends", meta
                        )
                        return True
                self._symbol(module, qualname, SESSION_TYPE, line, "Annotated session alias")
                return True
        return False

    def _infer_function(self, func: Function) -> bool:
        if func.qualname in self.symbols:
            return False
        module, node = func.module, func.node
        line = node.lineno
        if self.session_type(module, node.returns, returns=True):
            annotation = ast.unparse(node.returns) if node.returns is not None else ""
            self._symbol(module, func.qualname, SOURCE, line, f"annotated -> {annotation}")
            return True
        if self.engine_type(module, node.returns):
            annotation = ast.unparse(node.returns) if node.returns is not None else ""
            self._symbol(module, func.qualname, ENGINE, line, f"annotated -> {annotation}")
            return True
        returns = node.returns
        if isinstance(returns, ast.Subscript):
            returns = returns.value
        if returns is not None and p.terminal(self.resolve(module, returns)) in p.FACTORY_CREATORS:
            annotation = ast.unparse(node.returns) if node.returns is not None else ""
            self._symbol(module, func.qualname, FACTORY, line, f"annotated -> {annotation}")
            return True
        for how, value in func.results:
            why = self.opens(module, value, func)
            if why is not None:
                self._symbol(module, func.qualname, SOURCE, line, f"{how} {why}")
                return True
            if how == "returns" and self.makes_factory(module, value, func):
                self._symbol(module, func.qualname, FACTORY, line, f"returns {describe(value)}")
                return True
            if how != "yields from":
                engine = self.makes_engine(module, value, func)
                if engine is not None:
                    self._symbol(module, func.qualname, ENGINE, line, f"{how} {engine}")
                    return True
        return False

    def infer(self) -> None:
        """Compute sources, factories, engines and aliases to a fixpoint across modules."""
        for _round in range(12):
            changed = False
            for module in self.modules.values():
                for name, (value, line) in module.assigns.items():
                    changed |= self._infer_assignment(module, name, value, line)
                for func in module.functions.values():
                    changed |= self._infer_function(func)
            if not changed:
                break
        for module in self.modules.values():
            for func in module.functions.values():
                if func.qualname in self.symbols:
                    continue
                key = (
                    self.configured(func.qualname)
                    if p.terminal(func.qualname)
                    in (self._configured_getters | self._configured_factories)
                    else None
                )
                if key is not None:
                    self._symbol(
                        module, func.qualname, SOURCE, func.node.lineno, f"configured: {key}"
                    )
        self._final = True

    def _callers_of(self, qualname: str) -> list[bool]:
        """Find the calls of one function (only in modules that mention its name)."""
        name = p.terminal(qualname) or qualname
        needle = name.encode()
        found: list[bool] = []
        for module in self.modules.values():
            if needle not in module.data:
                continue
            lines = module.data.splitlines()
            for func in module.functions.values():
                node = func.node
                end = getattr(node, "end_lineno", None) or len(lines)
                if not any(needle in line for line in lines[node.lineno - 1 : end]):
                    continue
                in_route = module.ctx.is_router or func.is_handler
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Call):
                        callee = sub.func
                        attr = callee.attr if isinstance(callee, ast.Attribute) else None
                        if (attr or getattr(callee, "id", None)) != name:
                            continue
                        if self.resolve(module, callee, func.cls) == qualname:
                            found.append(in_route)
        return found

    def route_only(self, qualname: str) -> bool:
        """Return True when every known caller of a function is a route handler or router."""
        callers = self.callers.get(qualname)
        if callers is None:
            callers = self.callers[qualname] = self._callers_of(qualname)
        return bool(callers) and all(callers)

    def sources(self) -> Iterator[Symbol]:
        """Yield the inferred sources, factories and engines in file order."""
        listed = (s for s in self.symbols.values() if s.kind in {SOURCE, FACTORY, ENGINE})
        yield from sorted(listed, key=lambda s: (s.relpath, s.line, s.qualname))
