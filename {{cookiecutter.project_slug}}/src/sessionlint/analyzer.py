"""The single-pass AST visitor that turns one module into connection-point events."""

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from sessionlint import patterns as p
from sessionlint.codes import RULES
from sessionlint.config import Config
from sessionlint.context import FileContext
from sessionlint.events import Event, Status

CENTRAL_NOTE = "central factory"
_METHODS: Final = {
    "engine": "Engine creation",
    "factory": "Sessionmaker creation",
    "session": "Direct session creation",
    "engine_conn": "Direct engine connection",
}
_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


_Visit = Callable[["Analyzer", Any], None]
_DISPATCH: dict[type[ast.AST], _Visit] = {}


class _Annotation(NamedTuple):
    kind: str  # "alias" | "annotated" | "session"
    name: str
    metadata: list[ast.expr]


@dataclass(slots=True)
class _Frame:
    is_handler: bool
    params: frozenset[str]
    session_params: set[str] = field(default_factory=set)


class Analyzer(ast.NodeVisitor):
    """Collect compliant connection points and rule violations from one module."""

    def __init__(self, ctx: FileContext, config: Config) -> None:
        """Prepare an analyzer for one file."""
        self.ctx = ctx
        self.config = config
        self.events: list[Event] = []
        self._aliases: dict[str, str] = {}
        self._frames: list[_Frame] = []
        self._sanctioned: set[int] = set()
        self._tenant_names = frozenset(config.tenant_names)
        self._tenant_sql = p.tenant_sql_regex(config.tenant_names)

    # ------------------------------------------------------------------ walking
    def visit(self, node: ast.AST) -> None:
        """Dispatch to visit_<Node> through a per-class cache (faster than NodeVisitor)."""
        cls = type(node)
        method = _DISPATCH.get(cls)
        if method is None:
            found: _Visit = getattr(Analyzer, f"visit_{cls.__name__}", Analyzer.generic_visit)
            method = _DISPATCH[cls] = found
        method(self, node)

    def generic_visit(self, node: ast.AST) -> None:
        """Visit child nodes, skipping leaf-only fields."""
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST) and item._fields:
                        self.visit(item)
            elif isinstance(value, ast.AST) and value._fields:
                self.visit(value)

    # ----------------------------------------------------------------- recording
    def _emit(
        self,
        node: ast.AST,
        method: str,
        status: Status,
        message: str,
        code: str | None = None,
        hint: str | None = None,
    ) -> None:
        if hint is None:
            hint = RULES[code].hint if code else ""
        self.events.append(
            Event(
                path=self.ctx.path,
                relpath=self.ctx.relpath,
                feature=self.ctx.feature,
                line=getattr(node, "lineno", 1),
                col=getattr(node, "col_offset", 0) + 1,
                method=method,
                status=status,
                code=code,
                message=message,
                hint=hint,
            )
        )

    def _fix(
        self, node: ast.AST, code: str, method: str, message: str, hint: str | None = None
    ) -> None:
        self._emit(node, method, Status.FIX, message, code, hint)

    def _ok(self, node: ast.AST, method: str, note: str) -> None:
        self._emit(node, method, Status.CORRECT, note)

    # -------------------------------------------------------------- name lookup
    def _qualname(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return self._aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self._qualname(node.value)
            return f"{base}.{node.attr}" if base else node.attr
        return None

    def _terminal(self, node: ast.expr) -> str | None:
        return p.terminal(self._qualname(node))

    def _is_session_class(self, node: ast.expr) -> bool:
        qualname = self._qualname(node)
        name = p.terminal(qualname)
        if name == "AsyncSession":
            return True
        return (
            name == "Session" and qualname is not None and qualname.startswith(p.SQLALCHEMY_ROOTS)
        )

    @property
    def _frame(self) -> _Frame | None:
        return self._frames[-1] if self._frames else None

    @property
    def _in_handler(self) -> bool:
        frame = self._frame
        return frame is not None and frame.is_handler

    # ------------------------------------------------------------------ imports
    def visit_Import(self, node: ast.Import) -> None:
        """Record import aliases and flag driver imports (SL004)."""
        for alias in node.names:
            if alias.asname:
                self._aliases[alias.asname] = alias.name
            else:
                root = alias.name.partition(".")[0]
                self._aliases[root] = root
            self._check_driver(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        """Record ``from x import y as z`` aliases and flag driver imports (SL004)."""
        module = "." * node.level + (node.module or "")
        for alias in node.names:
            if alias.name != "*":
                self._aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
        if node.level == 0 and node.module:
            self._check_driver(node, node.module)

    def _check_driver(self, node: ast.AST, module: str) -> None:
        if module.partition(".")[0] not in p.DRIVERS:
            return
        if self.ctx.allow_driver:
            self._ok(node, "Driver import", f"{module} allowed by allow-driver-modules")
            return
        self._fix(
            node, "SL004", "Direct driver import", f"direct use of database driver '{module}'"
        )

    # ---------------------------------------------------------------- functions
    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        """Check a sync function's session parameters and body."""
        self._visit_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        """Check an async function's session parameters and body."""
        self._visit_function(node)

    def _visit_function(self, node: _FunctionNode) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        is_handler = any(p.is_route_decorator(d) for d in node.decorator_list)
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
        pairs = list(zip(positional, [*defaults, *args.defaults], strict=True))
        pairs += list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
        names = frozenset(a.arg for a, _ in pairs) | frozenset(
            a.arg for a in (args.vararg, args.kwarg) if a is not None
        )
        frame = _Frame(is_handler=is_handler, params=names - {"self", "cls"})
        for arg, default in pairs:
            if default is not None:
                self.visit(default)
            if self._check_param(arg, default, is_handler):
                frame.session_params.add(arg.arg)
        if node.returns is not None:
            self.visit(node.returns)
        if self.ctx.is_db and node.name == self.config.session_dependency:
            self._ok(node, "Session dependency definition", "request-scoped session provider")
        elif self.ctx.is_db and node.name == self.config.task_session_helper:
            self._ok(
                node, "Task session helper definition", "sanctioned helper for background work"
            )
        self._frames.append(frame)
        for statement in node.body:
            self.visit(statement)
        self._frames.pop()

    def _classify(self, annotation: ast.expr | None) -> _Annotation | None:
        if annotation is None:
            return None
        text = p.string_value(annotation)
        if text is not None:
            try:
                annotation = ast.parse(text, mode="eval").body
            except (SyntaxError, ValueError):
                return None
        if isinstance(annotation, ast.Name | ast.Attribute):
            name = self._terminal(annotation) or ""
            if name in self.config.session_aliases:
                return _Annotation("alias", name, [])
            if self._is_session_class(annotation):
                return _Annotation("session", name, [])
            return None
        if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
            return self._classify(annotation.left) or self._classify(annotation.right)
        if isinstance(annotation, ast.Subscript):
            base = self._terminal(annotation.value)
            inner = annotation.slice
            if base == "Annotated" and isinstance(inner, ast.Tuple) and inner.elts:
                first = self._classify(inner.elts[0])
                if first is not None and first.kind == "session":
                    return _Annotation("annotated", first.name, list(inner.elts[1:]))
                return first
            if base == "Optional":
                return self._classify(inner)
        return None

    def _depends_call(self, node: ast.expr | None) -> ast.Call | None:
        if isinstance(node, ast.Call) and self._terminal(node.func) == "Depends":
            return node
        return None

    def _check_param(self, arg: ast.arg, default: ast.expr | None, is_handler: bool) -> bool:
        """Check one parameter; return True when it carries a session."""
        info = self._classify(arg.annotation)
        depends = self._depends_call(default)
        if info is not None and info.kind == "alias":
            if self.ctx.is_task:
                self._task_injection(arg, info.name)
            else:
                self._ok(arg, info.name, "request session")
            return True
        if info is not None and info.kind == "annotated":
            meta = [call for call in map(self._depends_call, info.metadata) if call is not None]
            depends = depends or (meta[0] if meta else None)
        if info is not None:
            if depends is not None:
                self._check_depends(arg, depends, session_typed=True)
            elif is_handler:
                self._fix(
                    arg,
                    "SL001",
                    "Unmanaged handler session",
                    f"route handler parameter '{arg.arg}' is a session not injected via "
                    f'Depends({self.config.session_dependency}, scope="function")',
                )
            elif not self.ctx.is_db:
                self._ok(arg, "session parameter", "receives the caller's session")
            return True
        if depends is not None:
            return self._check_depends(arg, depends, session_typed=False)
        return False

    def _dependency_target(self, call: ast.Call) -> str | None:
        target = call.args[0] if call.args else p.keyword_value(call, "dependency")
        return self._terminal(target) if target is not None else None

    def _check_depends(self, node: ast.AST, call: ast.Call, *, session_typed: bool) -> bool:
        """Validate a Depends(...) that injects a session; return True if it does."""
        target = self._dependency_target(call)
        wanted = self.config.session_dependency
        if target != wanted and not (session_typed or target in self.config.session_getters):
            return False
        if self.ctx.is_task:
            self._task_injection(node, f"Depends({target})")
            return True
        if target != wanted:
            self._fix(
                node,
                "SL001",
                f"Depends({target})",
                f"session injected via Depends({target}) instead of "
                f'Depends({wanted}, scope="function")',
            )
        elif p.string_value(p.keyword_value(call, "scope")) != "function":
            self._fix(
                node,
                "SL001",
                f"Depends({wanted})",
                f'Depends({wanted}) without scope="function": FastAPI would commit after the '
                "response is sent, so a failed commit still returns 200",
                hint=f"session: {self._alias_hint()}",
            )
        else:
            self._ok(node, f"Depends({wanted})", "request session")
        return True

    def _alias_hint(self) -> str:
        aliases = self.config.session_aliases
        return aliases[0] if aliases else "Annotated[AsyncSession, Depends(...)]"

    def _task_injection(self, node: ast.AST, what: str) -> None:
        self._fix(
            node,
            "SL006",
            "Request session in task",
            f"task module injects a request-scoped session ({what})",
        )

    # -------------------------------------------------------------- assignments
    def visit_Assign(self, node: ast.Assign) -> None:
        """Validate ``SessionDep = Annotated[AsyncSession, Depends(...)]`` aliases."""
        if len(node.targets) == 1:
            self._check_alias_definition(node.targets[0], node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        """Validate ``SessionDep: TypeAlias = Annotated[...]`` aliases."""
        if node.value is not None:
            self._check_alias_definition(node.target, node.value)
        self.generic_visit(node)

    def _check_alias_definition(self, target: ast.expr, value: ast.expr) -> None:
        if self._frame is not None or not isinstance(target, ast.Name):
            return
        if not isinstance(value, ast.Subscript):
            return
        info = self._classify(value)
        if info is None or info.kind != "annotated":
            return
        calls = [call for call in map(self._depends_call, info.metadata) if call is not None]
        if calls:
            self._check_depends(value, calls[0], session_typed=True)

    # -------------------------------------------------------------------- calls
    def visit_AsyncWith(self, node: ast.AsyncWith) -> None:
        """Mark ``async with task_session()`` as the sanctioned use of the helper."""
        for item in node.items:
            expr = item.context_expr
            if isinstance(expr, ast.Call) and self._terminal(expr.func) == self._helper:
                self._sanctioned.add(id(expr))
        self.generic_visit(node)

    @property
    def _helper(self) -> str:
        return self.config.task_session_helper

    def visit_Call(self, node: ast.Call) -> None:
        """Apply every call-based rule to one call expression."""
        func = node.func
        qualname = self._qualname(func)
        name = p.terminal(qualname)
        if name is not None:
            if name == "enter_async_context" and node.args:
                self._sanctioned.add(id(node.args[0]))
            self._check_dynamic_import(node, qualname or "", name)
            self._check_creation(node, func, qualname or "", name)
            self._check_url_builder(node, func, name)
        if isinstance(func, ast.Attribute):
            self._check_transaction(node, func)
            if func.attr in p.FILTER_METHODS:
                self._check_tenant_filter(node, func.attr)
            if func.attr == "add_task":
                self._check_background(node, [*node.args[1:], *(k.value for k in node.keywords)])
        if name in p.BACKGROUND_SPAWNERS and node.args and isinstance(node.args[0], ast.Call):
            inner = node.args[0]
            self._check_background(node, [*inner.args, *(k.value for k in inner.keywords)])
        self.generic_visit(node)

    def _check_dynamic_import(self, node: ast.Call, qualname: str, name: str) -> None:
        if name == "__import__" or qualname == "importlib.import_module":
            module = p.string_value(node.args[0]) if node.args else None
            if module is not None:
                self._check_driver(node, module)

    def _creation_kind(self, func: ast.expr, qualname: str, name: str) -> str | None:
        if isinstance(func, ast.Attribute) and func.attr in p.ENGINE_METHODS:
            receiver = func.value
            if isinstance(receiver, ast.Call):
                receiver = receiver.func
            receiver_name = self._terminal(receiver)
            return "engine_conn" if receiver_name and p.is_engine_name(receiver_name) else None
        if name in p.ENGINE_CREATORS:
            return "engine"
        if name in p.FACTORY_CREATORS:
            return "factory"
        if name == "AsyncSession" or (
            name == "Session" and qualname.startswith(p.SQLALCHEMY_ROOTS)
        ):
            return "session"
        if name in self.config.session_factories:
            return "session"
        if name == self.config.session_dependency or name in self.config.session_getters:
            return "session"
        if name == self._helper:
            return "helper"
        return None

    def _check_creation(self, node: ast.Call, func: ast.expr, qualname: str, name: str) -> None:
        kind = self._creation_kind(func, qualname, name)
        if kind is None:
            return
        if kind == "helper":
            self._check_helper_call(node)
            return
        method = _METHODS[kind]
        label = f"{name}()" if kind != "engine_conn" else f"{ast.unparse(func)}()"
        if self.ctx.is_db:
            self._ok(node, "Session creation" if kind == "session" else method, CENTRAL_NOTE)
        elif kind == "session" and self._in_handler:
            self._fix(
                node,
                "SL001",
                "Session created in handler",
                f"route handler opens its own session via {label}; handlers use the request "
                "session",
            )
        elif kind == "session" and self.ctx.is_task:
            self._fix(
                node,
                "SL006",
                "Session created in task",
                f"task opens a session via {label} instead of {self._helper}()",
            )
        elif self.ctx.allow_sessions:
            self._ok(node, method, "allowed by allow-sessions-in")
        else:
            self._fix(node, "SL002", method, f"{label} outside the db package")

    def _check_helper_call(self, node: ast.Call) -> None:
        helper = f"{self._helper}()"
        if self._in_handler:
            self._fix(
                node,
                "SL001",
                "Task session in handler",
                f"{helper} inside a route handler; handlers use the request session",
            )
        elif id(node) not in self._sanctioned:
            self._fix(
                node,
                "SL006",
                f"{helper} without async with",
                f"{helper} used without `async with`, so the session is never closed",
            )
        elif self.ctx.is_task:
            self._ok(node, helper, "sanctioned helper")
        elif not self.ctx.is_db:
            self._emit(node, helper, Status.REVIEW, "sanctioned helper used outside a task module")

    def _check_transaction(self, node: ast.Call, func: ast.Attribute) -> None:
        if func.attr not in p.TXN_METHODS:
            return
        receiver = func.value
        if isinstance(receiver, ast.Name):
            frame = self._frame
            in_params = frame is not None and receiver.id in frame.params
            name = receiver.id
        elif isinstance(receiver, ast.Attribute):
            in_params, name = False, receiver.attr
        else:
            return
        if p.is_engine_name(name) or not (in_params or p.is_sessionish_name(name)):
            return
        if self.ctx.is_service:
            self._fix(
                node,
                "SL003",
                "Transaction control in service",
                f"service calls {name}.{func.attr}(), but the transaction belongs to its caller",
            )
        elif self.ctx.is_router and func.attr == "commit":
            self._ok(node, "Transaction commit", "routers own the transaction boundary")

    def _check_url_builder(self, node: ast.Call, func: ast.expr, name: str) -> None:
        is_url_create = (
            name == "create"
            and isinstance(func, ast.Attribute)
            and self._terminal(func.value) == "URL"
        )
        if not (is_url_create or name == "make_url"):
            return
        label = "URL.create" if is_url_create else "make_url"
        if self.ctx.is_settings:
            self._ok(node, label, "central URL builder")
        elif self.ctx.allow_urls:
            self._ok(node, label, "allowed by allow-urls-in")
        else:
            self._fix(
                node, "SL005", "Connection URL built", f"{label}() outside the settings module"
            )

    def _check_tenant_filter(self, node: ast.Call, method: str) -> None:
        names = self._tenant_names
        if not names:
            return
        hit = any(keyword.arg in names for keyword in node.keywords) or any(
            p.references_attribute(arg, names)
            for arg in [*node.args, *(keyword.value for keyword in node.keywords)]
        )
        if hit:
            self._fix(node, "SL007", "Tenant filter", f".{method}(...) filters on a tenant column")

    def _is_session_ref(self, node: ast.expr) -> bool:
        frame = self._frame
        if isinstance(node, ast.Name):
            if frame is not None and node.id in frame.session_params:
                return True
            return p.is_sessionish_name(node.id) and not node.id.lower().endswith("_id")
        if isinstance(node, ast.Attribute):
            return p.is_sessionish_name(node.attr) and not node.attr.lower().endswith("_id")
        return False

    def _check_background(self, node: ast.Call, passed: list[ast.expr]) -> None:
        if any(self._is_session_ref(arg) for arg in passed):
            self._fix(
                node,
                "SL006",
                "Session passed to background task",
                "the request session is handed to background work that outlives the request",
            )

    # ------------------------------------------------------------------ strings
    def visit_Constant(self, node: ast.Constant) -> None:
        """Flag postgres URL literals (SL005) and raw tenant SQL (SL007)."""
        if isinstance(node.value, str):
            self._check_string(node, node.value)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        """Check an f-string once, as a whole, then its interpolated expressions."""
        text = "".join(
            str(value.value) if isinstance(value, ast.Constant) else "{}" for value in node.values
        )
        self._check_string(node, text)
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                self.visit(value)

    def _check_string(self, node: ast.expr, text: str) -> None:
        if "://" in text and p.URL_RE.match(text):
            if self.ctx.is_settings:
                self._emit(
                    node,
                    "Connection string literal",
                    Status.REVIEW,
                    "hand-written URL in settings; prefer URL.create in get_db_url()",
                )
            elif self.ctx.allow_urls:
                self._ok(node, "Connection string literal", "allowed by allow-urls-in")
            else:
                self._fix(
                    node,
                    "SL005",
                    "Hand-built connection string",
                    "postgres connection string built outside the settings module",
                )
        if (
            self._tenant_sql is not None
            and any(name in text for name in self._tenant_names)
            and self._tenant_sql.search(text)
        ):
            self._fix(node, "SL007", "Tenant filter", "raw SQL filters on a tenant column")
