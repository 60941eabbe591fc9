"""Pass 2: walk one module with the program-wide index and turn it into connection-point events."""

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from sessionlint import patterns as p
from sessionlint.codes import RULES, SEVERITY
from sessionlint.config import Config
from sessionlint.events import Event, Status
from sessionlint.index import DEPENDS, ENGINE, FACTORY, SOURCE, Function, Index, Module, describe
from sessionlint.versions import FastAPIVersion

CENTRAL_NOTE = "central factory"
_METHODS: Final = {
    "engine": "Engine creation",
    "factory": "Sessionmaker creation",
    "session": "Direct session creation",
    "engine_conn": "Direct engine connection",
}
_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef

# Binding kinds of a local name or a ``self.<attr>``.
REQUEST = "request"  # injected by FastAPI into a route handler (the handler owns it)
RECEIVED = "received"  # a session handed in by the caller
OWNED = "owned"  # a session this function opened itself
OTHER = "other"  # known not to be a session
ENGINE_VALUE = "engine"
_SESSIONS = frozenset({REQUEST, RECEIVED, OWNED})

_Visit = Callable[["Analyzer", Any], None]
_DISPATCH: dict[type[ast.AST], _Visit] = {}


@dataclass(slots=True)
class _Frame:
    name: str
    is_handler: bool
    func: Function | None
    qualname: str
    bindings: dict[str, str] = field(default_factory=dict)
    tainted: set[str] | None = None


@dataclass(slots=True)
class _Class:
    name: str
    attrs: dict[str, str] = field(default_factory=dict)


class Analyzer(ast.NodeVisitor):
    """Collect compliant connection points and rule violations from one module."""

    def __init__(
        self,
        module: Module,
        index: Index,
        config: Config,
        fastapi: FastAPIVersion | None = None,
    ) -> None:
        """Prepare an analyzer for one indexed module."""
        self.module = module
        self.index = index
        self.ctx = module.ctx
        self.config = config
        self.fastapi = fastapi or FastAPIVersion(None, source="unknown")
        self.events: list[Event] = []
        self._frames: list[_Frame] = []
        self._classes: list[_Class] = []
        self._scope: list[str] = []
        self._sanctioned: set[int] = set()
        self._consumed: set[int] = set()
        self._url_exempt = 0
        self._line_cache: list[bytes] | None = None
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

    def _visit_exempt(self, nodes: list[ast.expr]) -> None:
        self._url_exempt += 1
        for node in nodes:
            self.visit(node)
        self._url_exempt -= 1

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
                severity=SEVERITY.get(code or "", "error"),
                scope=".".join(self._scope),
            )
        )

    def _fix(
        self, node: ast.AST, code: str, method: str, message: str, hint: str | None = None
    ) -> None:
        self._emit(node, method, Status.FIX, message, code, hint)

    def _ok(self, node: ast.AST, method: str, note: str) -> None:
        self._emit(node, method, Status.CORRECT, note)

    # -------------------------------------------------------------- name lookup
    @property
    def _cls(self) -> str | None:
        return self._classes[-1].name if self._classes and self._frames else None

    def _resolve(self, node: ast.expr) -> str | None:
        return self.index.resolve(self.module, node, self._cls)

    def _terminal(self, node: ast.expr) -> str | None:
        return p.terminal(self._resolve(node))

    @property
    def _frame(self) -> _Frame | None:
        return self._frames[-1] if self._frames else None

    @property
    def _in_handler(self) -> bool:
        frame = self._frame
        return frame is not None and frame.is_handler

    def _binding(self, node: ast.expr) -> str | None:
        """Return the kind bound to a local name (closures included) or a ``self`` attribute."""
        if isinstance(node, ast.Name):
            for frame in reversed(self._frames):
                kind = frame.bindings.get(node.id)
                if kind is not None:
                    return kind
            return None
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in {"self", "cls"}
            and self._classes
        ):
            return self._classes[-1].attrs.get(node.attr)
        if isinstance(node, ast.Await):
            return self._binding(node.value)
        return None

    # ------------------------------------------------------------------ imports
    def visit_Import(self, node: ast.Import) -> None:
        """Flag driver imports (SL004)."""
        for alias in node.names:
            self._check_driver(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        """Flag ``from <driver> import ...`` (SL004)."""
        if node.level == 0 and node.module:
            self._check_driver(node, node.module)

    def _check_driver(self, node: ast.AST, module: str) -> None:
        if module.partition(".")[0] not in p.DRIVERS:
            return
        if self.ctx.is_db:
            self._ok(node, "Driver import", f"{module} used inside the db package")
            return
        if self.ctx.allow_driver:
            self._ok(node, "Driver import", f"{module} allowed by allow-driver-modules")
            return
        self._fix(
            node, "SL004", "Direct driver import", f"direct use of database driver '{module}'"
        )

    # ------------------------------------------------------------------ classes
    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        """Learn which ``self.<attr>`` hold a received or an owned session, then visit."""
        for decorator in node.decorator_list:
            self.visit(decorator)
        for base in node.bases:
            self.visit(base)
        info = _Class(node.name)
        for stmt in node.body:
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and self.index.session_type(self.module, stmt.annotation)
            ):
                info.attrs[stmt.target.id] = RECEIVED
        self._classes.append(info)
        self._scope.append(node.name)
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                self._learn_attributes(stmt, info)
        for stmt in node.body:
            self.visit(stmt)
        self._scope.pop()
        self._classes.pop()

    def _learn_attributes(self, node: _FunctionNode, info: _Class) -> None:
        params = {arg.arg: self._param_kind(arg, default) for arg, default in _params(node)}
        local = f"{info.name}.{node.name}"
        func = self.module.functions.get(local) if len(self._classes) == 1 else None
        stack: list[ast.stmt] = list(node.body)
        while stack:
            sub = stack.pop()
            for field_name in ("body", "orelse", "finalbody"):
                stack.extend(getattr(sub, field_name, ()))
            if isinstance(sub, ast.Try):
                for handler in sub.handlers:
                    stack.extend(handler.body)
            if not isinstance(sub, ast.Assign):
                continue
            for target in sub.targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ):
                    kind = self._value_kind(sub.value, params, func)
                    if kind is not None and info.attrs.get(target.attr) not in {RECEIVED}:
                        info.attrs[target.attr] = kind

    # ---------------------------------------------------------------- functions
    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        """Check a sync function's session parameters and body."""
        self._visit_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        """Check an async function's session parameters and body."""
        self._visit_function(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        """Visit a lambda's defaults and body in the enclosing frame."""
        self.generic_visit(node)

    def _visit_function(self, node: _FunctionNode) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        is_handler = any(p.is_route_decorator(d) for d in node.decorator_list)
        func: Function | None = None
        if not self._frames:
            local = f"{self._classes[-1].name}.{node.name}" if self._classes else node.name
            if len(self._classes) <= 1:
                func = self.module.functions.get(local)
        self._scope.append(node.name)
        qualname = func.qualname if func is not None else ""
        frame = _Frame(name=node.name, is_handler=is_handler, func=func, qualname=qualname)
        for arg, default in _params(node):
            if default is not None:
                self.visit(default)
            if arg.annotation is not None:
                self.visit(arg.annotation)
            kind = self._check_param(arg, default, is_handler)
            if kind is not None:
                frame.bindings[arg.arg] = kind
        if node.returns is not None:
            self.visit(node.returns)
        if self.ctx.is_db and node.name == self.config.session_dependency:
            self._ok(node, "Session dependency definition", "request-scoped session provider")
        elif self.ctx.is_db and node.name == self.config.task_session_helper:
            self._ok(
                node, "Task session helper definition", "sanctioned helper for background work"
            )
        self._frames.append(frame)
        if func is not None and self._tenant_names and self._mentions_tenant(node):
            self._claim_sql_variables(func)
        for statement in node.body:
            self.visit(statement)
        self._frames.pop()
        self._scope.pop()

    def _claim_sql_variables(self, func: Function) -> None:
        """Report SQL in a local passed to ``text(name)`` at the call, not at the string."""
        for sub in ast.walk(func.node):
            if (
                isinstance(sub, ast.Call)
                and sub.args
                and isinstance(sub.args[0], ast.Name)
                and self._terminal(sub.func) == "text"
            ):
                for _, value in func.binds.get(sub.args[0].id, ()):
                    text = self._sql_of(value)
                    if text is not None and self._is_tenant_sql(text):
                        for inner in ast.walk(value):
                            self._consumed.add(id(inner))

    # --------------------------------------------------------------- parameters
    def _depends_call(self, node: ast.expr | None) -> tuple[ast.Call, str] | None:
        """Return the Depends(...) call of a default or annotation, and the alias name if any."""
        if node is None:
            return None
        if isinstance(node, ast.Call) and self._terminal(node.func) == "Depends":
            return node, ""
        if isinstance(node, ast.Name | ast.Attribute):
            qualname = self._resolve(node)
            symbol = self.index.symbols.get(qualname or "")
            if (
                symbol is not None
                and symbol.kind == DEPENDS
                and isinstance(symbol.detail, ast.Call)
            ):
                return symbol.detail, p.terminal(qualname) or ""
        if isinstance(node, ast.Subscript) and self._terminal(node.value) == "Annotated":
            inner = node.slice
            if isinstance(inner, ast.Tuple):
                for meta in inner.elts[1:]:
                    found = self._depends_call(meta)
                    if found is not None:
                        return found
        if isinstance(node, ast.Subscript) and self._terminal(node.value) == "Optional":
            return self._depends_call(node.slice)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self._depends_call(node.left) or self._depends_call(node.right)
        return None

    def _dependency_target(self, call: ast.Call) -> str | None:
        target = call.args[0] if call.args else p.keyword_value(call, "dependency")
        if target is None:
            return None
        return self.index.resolve(self.symbol_module(call), target)

    def symbol_module(self, call: ast.Call) -> Module:
        """Return the module a Depends call was written in (aliases may be imported)."""
        name = self.index.detail_modules.get(id(call))
        module = self.index.modules.get(name) if name is not None else None
        return module if module is not None else self.module

    def _is_request_dependency(self, target: str | None) -> bool:
        return p.terminal(target) == self.config.session_dependency

    def _is_session_dependency(self, target: str | None) -> bool:
        if target is None:
            return False
        return (
            self._is_request_dependency(target)
            or self.index.kind(target) == SOURCE
            or self.index.configured(target) is not None
        )

    def _annotation_kind(self, annotation: ast.expr | None) -> str | None:
        """Return RECEIVED for session annotations, OTHER for other classes, None for unknown."""
        if annotation is None:
            return None
        if self.index.session_type(self.module, annotation):
            return RECEIVED
        annotation = p.annotation_expr(annotation)
        if annotation is None:
            return None
        name = (
            self._terminal(annotation) if isinstance(annotation, ast.Name | ast.Attribute) else None
        )
        if name in {"Any", None}:
            return None
        if name in self.config.session_aliases:
            return RECEIVED
        return OTHER

    def _param_kind(self, arg: ast.arg, default: ast.expr | None) -> str | None:
        """Return a parameter's binding kind, without reporting anything."""
        depends = self._depends_call(default) or self._depends_call(arg.annotation)
        if depends is not None and self._is_session_dependency(self._dependency_target(depends[0])):
            return REQUEST
        kind = self._annotation_kind(arg.annotation)
        if kind is not None:
            return kind
        if p.is_session_param_name(arg.arg):
            return RECEIVED
        return None

    def _check_param(self, arg: ast.arg, default: ast.expr | None, is_handler: bool) -> str | None:
        """Check one parameter and return its binding kind."""
        annotation = arg.annotation
        typed = self.index.session_type(self.module, annotation)
        depends = self._depends_call(default) or self._depends_call(annotation)
        alias_name = (
            self._terminal(annotation) if isinstance(annotation, ast.Name | ast.Attribute) else None
        )
        if depends is None and alias_name in self.config.session_aliases:
            if self.ctx.is_task:
                self._task_injection(arg, alias_name or "")
            else:
                self._ok(arg, alias_name or "", "request session")
            return REQUEST
        if depends is not None:
            call, alias = depends
            target = self._dependency_target(call)
            if not (typed or self._is_session_dependency(target)):
                return self._param_kind(arg, None) if annotation is not None else None
            self._check_depends(arg, call, target, alias)
            return REQUEST
        if typed:
            if is_handler:
                self._fix(
                    arg,
                    "SL001",
                    "Unmanaged handler session",
                    f"route handler parameter '{arg.arg}' is a session not injected via "
                    f'Depends({self.config.session_dependency}, scope="function")',
                )
                return REQUEST
            if not self.ctx.is_db:
                self._ok(arg, "session parameter", "receives the caller's session")
            return RECEIVED
        return self._param_kind(arg, None)

    def _check_depends(self, node: ast.AST, call: ast.Call, target: str | None, alias: str) -> None:
        """Validate a Depends(...) that injects a session into a parameter."""
        wanted = self.config.session_dependency
        label = p.terminal(target) or "?"
        if self.ctx.is_task:
            self._task_injection(node, alias or f"Depends({label})")
            return
        if alias:
            self._ok(node, alias, "request session")
        elif not self._is_request_dependency(target):
            self._fix(
                node,
                "SL001",
                f"Depends({label})",
                f"session injected via {alias or f'Depends({label})'} instead of "
                f'Depends({wanted}, scope="function")',
            )
        elif p.string_value(p.keyword_value(call, "scope")) != "function":
            self._scope_finding(node)
        else:
            self._ok(node, f"Depends({wanted})", "request session")

    def _scope_finding(self, node: ast.AST) -> None:
        wanted = self.config.session_dependency
        method = f"Depends({wanted})"
        hint = f"session: {self._alias_hint()}"
        if self.fastapi.before_scope_change:
            self._fix(
                node,
                "SL009",
                method,
                f'Depends({wanted}) without scope="function": today (FastAPI <0.118, '
                f"{self.fastapi.describe()}) the dependency's exit runs before the response; "
                "upgrading to FastAPI >=0.118 makes it commit after the response is sent. On "
                f'upgrade use Depends({wanted}, scope="function") (FastAPI >=0.121) or the '
                f"{self._alias_hint()} alias",
                hint=hint,
            )
        else:
            self._fix(
                node,
                "SL001",
                method,
                f'Depends({wanted}) without scope="function": FastAPI >=0.118 commits after the '
                "response is sent, so a failed commit still returns 200",
                hint=hint,
            )

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
    def _value_kind(
        self,
        value: ast.expr,
        params: dict[str, str | None] | None = None,
        func: Function | None = None,
    ) -> str | None:
        if isinstance(value, ast.Await):
            return self._value_kind(value.value, params, func)
        if isinstance(value, ast.Name):
            if params is not None:
                return params.get(value.id)
            return self._binding(value)
        if isinstance(value, ast.Attribute):
            return self._binding(value)
        if isinstance(value, ast.Call):
            if self.index.opens(
                self.module, value, func or (self._frame.func if self._frame else None)
            ):
                return OWNED
            if self.index.makes_engine(self.module, value, func) is not None:
                return ENGINE_VALUE
            callee = value.func
            name = callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", "")
            # A class other than a session (KafkaConsumer(), requests.Session()) is not one;
            # what an unknown function returns is unknown.
            return OTHER if name[:1].isupper() else None
        if isinstance(value, ast.Constant | ast.JoinedStr | ast.List | ast.Dict | ast.Tuple):
            return OTHER
        return None

    def visit_Assign(self, node: ast.Assign) -> None:
        """Track what local names hold; validate module-level Depends aliases."""
        self.generic_visit(node)
        frame = self._frame
        if frame is None:
            if len(node.targets) == 1 and not self._classes:
                self._check_alias_definition(node.targets[0], node.value)
            return
        kind = self._value_kind(node.value)
        for target in node.targets:
            if isinstance(target, ast.Name):
                if kind is None:
                    frame.bindings.pop(target.id, None)
                else:
                    frame.bindings[target.id] = kind

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        """Track annotated locals; validate ``SessionDep: TypeAlias = Annotated[...]``."""
        self.generic_visit(node)
        frame = self._frame
        if node.value is None:
            return
        if frame is None:
            if not self._classes:
                self._check_alias_definition(node.target, node.value)
            return
        if isinstance(node.target, ast.Name):
            kind = self._annotation_kind(node.annotation) or self._value_kind(node.value)
            if kind is not None:
                frame.bindings[node.target.id] = kind

    def _check_alias_definition(self, target: ast.expr, value: ast.expr) -> None:
        if not isinstance(target, ast.Name):
            return
        if not isinstance(value, ast.Call | ast.Subscript):
            return
        found = self._depends_call(value)
        if found is None or found[1]:
            return
        call = found[0]
        dependency = self._dependency_target(call)
        if not self._is_request_dependency(dependency):
            if self._is_session_dependency(dependency):
                self._check_depends(value, call, dependency, "")
            return
        if p.string_value(p.keyword_value(call, "scope")) != "function":
            self._scope_finding(value)

    def _bind_with(self, items: list[ast.withitem]) -> None:
        frame = self._frame
        if frame is None:
            return
        for item in items:
            if isinstance(item.optional_vars, ast.Name):
                expr = item.context_expr
                opened = isinstance(expr, ast.Call) and self.index.opens(
                    self.module, expr, frame.func
                )
                frame.bindings[item.optional_vars.id] = OWNED if opened else OTHER

    def visit_With(self, node: ast.With) -> None:
        """Bind ``with <source>() as session`` as an owned session."""
        for item in node.items:
            self.visit(item)
        self._bind_with(node.items)
        for statement in node.body:
            self.visit(statement)

    def visit_AsyncWith(self, node: ast.AsyncWith) -> None:
        """Mark ``async with task_session()`` as sanctioned; bind owned sessions."""
        for item in node.items:
            expr = item.context_expr
            if isinstance(expr, ast.Call) and self._terminal(expr.func) == self._helper:
                self._sanctioned.add(id(expr))
            self.visit(item)
        self._bind_with(node.items)
        for statement in node.body:
            self.visit(statement)

    def _visit_for(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        frame = self._frame
        if frame is not None and isinstance(node.target, ast.Name):
            opened = isinstance(node.iter, ast.Call) and self.index.opens(
                self.module, node.iter, frame.func
            )
            frame.bindings[node.target.id] = OWNED if opened else OTHER
        else:
            self.visit(node.target)
        for statement in [*node.body, *node.orelse]:
            self.visit(statement)

    def visit_For(self, node: ast.For) -> None:
        """Bind ``for`` targets."""
        self._visit_for(node)

    def visit_AsyncFor(self, node: ast.AsyncFor) -> None:
        """Bind ``async for session in get_session()`` as an owned session."""
        self._visit_for(node)

    # -------------------------------------------------------------------- calls
    @property
    def _helper(self) -> str:
        return self.config.task_session_helper

    def visit_Call(self, node: ast.Call) -> None:
        """Apply every call-based rule to one call expression."""
        func = node.func
        qualname = self._resolve(func)
        name = (
            p.terminal(qualname)
            if qualname
            else (func.attr if isinstance(func, ast.Attribute) else None)
        )
        if name is not None:
            if name == "enter_async_context" and node.args:
                self._sanctioned.add(id(node.args[0]))
            self._check_dynamic_import(node, qualname or "", name)
            self._check_creation(node, func, qualname or "", name)
            self._check_url_builder(node, func, name)
        elif isinstance(func, ast.Call):  # get_sessionmaker()(), async_sessionmaker(...)()
            self._check_creation(node, func, "", f"{describe(func)}")
        if isinstance(func, ast.Attribute):
            self._check_transaction(node, func)
            if func.attr in p.FILTER_METHODS:
                self._check_tenant_filter(node, func.attr)
            if func.attr == "add_task" or func.attr == "submit":
                self._check_background(node, [*node.args[1:], *(k.value for k in node.keywords)])
            elif func.attr == "run_in_executor":
                self._check_background(node, [*node.args[2:]])
        if name in p.BACKGROUND_SPAWNERS and node.args and isinstance(node.args[0], ast.Call):
            inner = node.args[0]
            self._check_background(node, [*inner.args, *(k.value for k in inner.keywords)])
        if name in {"Thread", "Process", "Timer"}:
            passed: list[ast.expr] = []
            for keyword in node.keywords:
                value = keyword.value
                if keyword.arg == "args" and isinstance(value, ast.Tuple | ast.List):
                    passed += value.elts
                elif keyword.arg == "kwargs" and isinstance(value, ast.Dict):
                    passed += [v for v in value.values if v is not None]
            self._check_background(node, passed)
        if name == "text" and node.args:
            self._check_sql_text(node)
        if self._is_exempt_call(func, name):
            self.visit(func)
            self._visit_exempt([*node.args, *(k.value for k in node.keywords)])
            return
        self.generic_visit(node)

    def _is_exempt_call(self, func: ast.expr, name: str | None) -> bool:
        """Calls whose string arguments are never connection strings (prefix tests, logs)."""
        if isinstance(func, ast.Attribute):
            if func.attr in p.STRING_TESTS:
                return True
            if func.attr in p.LOG_METHODS:
                receiver = (p.terminal(self._resolve(func.value)) or "").lower()
                if not receiver and isinstance(func.value, ast.Attribute):
                    receiver = func.value.attr.lower()
                if not receiver and isinstance(func.value, ast.Name):
                    receiver = func.value.id.lower()
                return "log" in receiver or receiver in {"warnings", "console"}
        return name in {"print", "warn"} and isinstance(func, ast.Name)

    def _check_dynamic_import(self, node: ast.Call, qualname: str, name: str) -> None:
        if name == "__import__" or qualname == "importlib.import_module":
            module = p.string_value(node.args[0]) if node.args else None
            if module is not None:
                self._check_driver(node, module)

    def _is_engine(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Call):
            if self.index.makes_engine(
                self.module, node, self._frame.func if self._frame else None
            ):
                return True
            node = node.func
        binding = self._binding(node)
        if binding is not None:
            return binding == ENGINE_VALUE
        qualname = self._resolve(node)
        if self.index.kind(qualname) == ENGINE:
            return True
        if isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            return p.is_engine_name(name)
        return False

    def _creation_kind(
        self, node: ast.Call, func: ast.expr, qualname: str, name: str
    ) -> str | None:
        if (
            isinstance(func, ast.Attribute)
            and func.attr in p.ENGINE_METHODS
            and self._is_engine(func.value)
        ):
            return "engine_conn"
        if name in p.ENGINE_CREATORS:
            return "engine"
        if name in p.FACTORY_CREATORS:
            return "factory"
        if name == self._helper and (
            not self.index.is_defined(qualname) or self._defined_in_db(qualname)
        ):
            return "helper"
        frame = self._frame
        if self.index.opens(self.module, node, frame.func if frame else None):
            return "session"
        return None

    def _defined_in_db(self, qualname: str) -> bool:
        symbol = self.index.symbols.get(qualname)
        if symbol is None:
            return False
        module = self.index.modules.get(symbol.module)
        return module is not None and module.ctx.is_db

    def _check_creation(self, node: ast.Call, func: ast.expr, qualname: str, name: str) -> None:
        kind = self._creation_kind(node, func, qualname, name)
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
        if func.attr not in p.TXN_METHODS or self.ctx.is_db or self.ctx.allow_sessions:
            return
        kind = self._binding(func.value)
        if kind not in _SESSIONS:
            return
        name = ast.unparse(func.value)
        if self.ctx.is_router and func.attr == "commit":
            self._ok(node, "Transaction commit", "routers own the transaction boundary")
            return
        frame = self._frame
        if kind != RECEIVED or frame is None or frame.is_handler or self.ctx.is_router:
            return
        if not self.ctx.is_service and frame.qualname and self.index.route_only(frame.qualname):
            self._ok(node, "Transaction control", "called only from route handlers")
            return
        self._fix(
            node,
            "SL003",
            "Transaction control on a received session",
            f"{name}.{func.attr}() on a session received from the caller; the transaction "
            "belongs to its caller",
        )

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

    # ------------------------------------------------------------ tenant filters
    def _tainted(self) -> set[str]:
        """Names in the current function built from tenant predicates (lists, tuples, dicts)."""
        frame = self._frame
        if frame is None:
            return set()
        if frame.tainted is not None:
            return frame.tainted
        names = self._tenant_names
        tainted: set[str] = set()
        updates: list[tuple[str, ast.AST]] = []
        body = frame.func.node if frame.func is not None else None
        if body is None or not self._mentions_tenant(body):
            frame.tainted = tainted
            return tainted
        for sub in ast.walk(body):
            if (
                isinstance(sub, ast.Assign | ast.AugAssign | ast.AnnAssign)
                and sub.value is not None
            ):
                targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        updates.append((target.id, sub.value))
                    elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                        key = p.string_value(target.slice)
                        if key in names:
                            tainted.add(target.value.id)
                        updates.append((target.value.id, sub.value))
            elif (
                isinstance(sub, ast.Call)
                and isinstance(sub.func, ast.Attribute)
                and sub.func.attr in {"append", "extend", "insert", "update", "add", "setdefault"}
                and isinstance(sub.func.value, ast.Name)
            ):
                for arg in [*sub.args, *(k.value for k in sub.keywords)]:
                    updates.append((sub.func.value.id, arg))
                if any(k.arg in names for k in sub.keywords):
                    tainted.add(sub.func.value.id)
                if (
                    sub.func.attr == "setdefault"
                    and p.string_value(sub.args[0] if sub.args else None) in names
                ):
                    tainted.add(sub.func.value.id)
        for _round in range(3):
            before = len(tainted)
            for name, value in updates:
                if name not in tainted and self._references_tenant(value, tainted):
                    tainted.add(name)
            if len(tainted) == before:
                break
        frame.tainted = tainted
        return tainted

    def _mentions_tenant(self, node: ast.AST) -> bool:
        lines = self._lines
        end = getattr(node, "end_lineno", None) or len(lines)
        text = b"\n".join(lines[getattr(node, "lineno", 1) - 1 : end])
        return any(name.encode() in text for name in self._tenant_names)

    @property
    def _lines(self) -> list[bytes]:
        if self._line_cache is None:
            self._line_cache = self.module.data.splitlines()
        return self._line_cache

    def _references_tenant(self, node: ast.AST, tainted: set[str]) -> bool:
        names = self._tenant_names
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute) and sub.attr in names:
                return True
            if isinstance(sub, ast.keyword) and sub.arg in names:
                return True
            if isinstance(sub, ast.Dict) and any(p.string_value(k) in names for k in sub.keys if k):
                return True
            if isinstance(sub, ast.Name) and sub.id in tainted:
                return True
        return False

    def _check_tenant_filter(self, node: ast.Call, method: str) -> None:
        names = self._tenant_names
        if not names:
            return
        arguments: list[ast.AST] = [*node.args, *node.keywords]
        hit = any(keyword.arg in names for keyword in node.keywords) or any(
            p.references_attribute(arg, names) for arg in arguments
        )
        if not hit and any(isinstance(sub, ast.Name) for arg in arguments for sub in ast.walk(arg)):
            tainted = self._tainted()
            hit = bool(tainted) and any(self._references_tenant(arg, tainted) for arg in arguments)
        if hit:
            self._fix(node, "SL007", "Tenant filter", f".{method}(...) filters on a tenant column")

    def _sql_of(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(
                str(v.value) if isinstance(v, ast.Constant) else "{}" for v in node.values
            )
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
            left = self._sql_of(node.left)
            right = self._sql_of(node.right) if isinstance(node.op, ast.Add) else ""
            return None if left is None and right is None else f"{left or ''} {right or ''}"
        if isinstance(node, ast.Name):
            frame = self._frame
            binds = frame.func.binds.get(node.id) if frame and frame.func else None
            if binds:
                for _, value in binds:
                    text = self._sql_of(value)
                    if text is not None:
                        self._consumed.add(id(value))
                        return text
            assigned = self.module.assigns.get(node.id)
            if assigned is not None and isinstance(assigned[0], ast.Constant):
                return None  # a module constant is reported where it is written
        return None

    def _is_tenant_sql(self, text: str) -> bool:
        return (
            self._tenant_sql is not None
            and any(name in text for name in self._tenant_names)
            and self._tenant_sql.search(text) is not None
        )

    def _check_sql_text(self, node: ast.Call) -> None:
        arg = node.args[0]
        text = self._sql_of(arg)
        if text is not None and self._is_tenant_sql(text):
            for sub in ast.walk(arg):
                self._consumed.add(id(sub))
            self._fix(node, "SL007", "Tenant filter", "raw SQL filters on a tenant column")

    # -------------------------------------------------------------- background
    def _is_session_ref(self, node: ast.expr) -> bool:
        kind = self._binding(node)
        if kind is not None:
            return kind in _SESSIONS
        if isinstance(node, ast.Name):
            return p.is_session_param_name(node.id)
        if isinstance(node, ast.Attribute):
            return p.is_session_param_name(node.attr)
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
    def visit_Expr(self, node: ast.Expr) -> None:
        """Skip docstrings and other bare string statements: prose, not SQL or URLs."""
        value = node.value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return
        self.visit(value)

    def visit_Compare(self, node: ast.Compare) -> None:
        """Strings compared or tested with ``in`` are never connection strings."""
        self._visit_exempt([node.left, *node.comparators])

    def visit_Constant(self, node: ast.Constant) -> None:
        """Flag full literal DSNs (SL005) and raw tenant SQL (SL007)."""
        if isinstance(node.value, str) and id(node) not in self._consumed:
            value = node.value
            if "://" in value and not self._url_exempt and p.is_full_dsn(value):
                self._url_finding(node, literal=True)
            if self._is_tenant_sql(value):
                self._fix(node, "SL007", "Tenant filter", "raw SQL filters on a tenant column")

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        """Check an f-string once, as a whole, then its interpolated expressions."""
        parts = [str(v.value) for v in node.values if isinstance(v, ast.Constant)]
        if id(node) not in self._consumed:
            if not self._url_exempt and any(p.has_url_scheme(part) for part in parts):
                self._url_finding(node, literal=False)
            text = "".join(
                str(v.value) if isinstance(v, ast.Constant) else "{}" for v in node.values
            )
            if self._is_tenant_sql(text):
                self._fix(node, "SL007", "Tenant filter", "raw SQL filters on a tenant column")
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                self.visit(value)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        """Flag ``"postgresql://" + host`` and ``"postgresql://%s" % host`` (SL005)."""
        if not self._url_exempt and isinstance(node.op, ast.Add | ast.Mod):
            constants = (
                _string_parts(node) if isinstance(node.op, ast.Add) else _string_parts(node.left)
            )
            if any(p.has_url_scheme(text) for _, text in constants):
                self._url_finding(node, literal=False)
                for sub, _ in constants:
                    self._consumed.add(id(sub))
                for inner in ast.walk(node):
                    if isinstance(inner, ast.JoinedStr):
                        self._consumed.add(id(inner))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        """Flag ``"postgresql://{}".format(...)`` (SL005)."""
        if (
            node.attr == "format"
            and not self._url_exempt
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            and p.has_url_scheme(node.value.value)
        ):
            self._url_finding(node.value, literal=False)
            self._consumed.add(id(node.value))
        self.generic_visit(node)

    def _url_finding(self, node: ast.expr, *, literal: bool) -> None:
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
                "database connection string "
                + ("with credentials or host written " if literal else "built ")
                + "outside the settings module",
            )


def _params(node: _FunctionNode) -> list[tuple[ast.arg, ast.expr | None]]:
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    pairs = list(zip(positional, [*defaults, *args.defaults], strict=True))
    pairs += list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
    return [(arg, default) for arg, default in pairs if arg.arg not in {"self", "cls"}]


def _string_parts(node: ast.expr) -> list[tuple[ast.expr, str]]:
    """Return the string constants of a ``+`` chain (f-string literal parts included)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _string_parts(node.left) + _string_parts(node.right)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [(node, node.value)]
    if isinstance(node, ast.JoinedStr):
        return [(v, str(v.value)) for v in node.values if isinstance(v, ast.Constant)]
    return []


__all__ = ["CENTRAL_NOTE", "FACTORY", "Analyzer"]
