"""Names and small AST predicates shared by the analyzer."""

import ast
import re
from collections.abc import Iterable

ROUTE_METHODS = frozenset(
    {"get", "post", "put", "patch", "delete", "head", "options", "trace", "api_route", "websocket"}
)
ENGINE_CREATORS = frozenset(
    {"create_engine", "create_async_engine", "engine_from_config", "async_engine_from_config"}
)
FACTORY_CREATORS = frozenset(
    {"sessionmaker", "async_sessionmaker", "scoped_session", "async_scoped_session"}
)
SQLALCHEMY_ROOTS = ("sqlalchemy.", "sqlmodel.")
TXN_METHODS = frozenset({"commit", "rollback", "close", "begin"})
"""Transaction control; ``begin_nested`` (a savepoint inside the caller's transaction) is not."""
ENGINE_METHODS = frozenset({"begin", "connect"})
FILTER_METHODS = frozenset({"where", "filter", "filter_by"})
BACKGROUND_SPAWNERS = frozenset({"create_task", "ensure_future"})
DRIVERS = frozenset({"psycopg2", "psycopg", "asyncpg", "pg8000"})
_SCHEMES = (
    r"(?:postgres(?:ql)?|mysql|mariadb|sqlite|mssql|oracle|cockroachdb)(?:\+[A-Za-z0-9_]+)?://"
)
URL_RE = re.compile(r"\s*" + _SCHEMES)
_SCHEME_SEARCH = re.compile(r"(?<![\w+.-])" + _SCHEMES, re.IGNORECASE)
_FULL_DSN = re.compile(r"\s*" + _SCHEMES + r"(?P<netloc>[^/?#\s]+)", re.IGNORECASE)
_SESSIONISH_TOKENS = frozenset({"session", "sess", "db", "conn", "connection"})
_SESSION_PARAM_TOKENS = frozenset({"session", "sess", "db", "dbsession"})
_LOOKALIKE_TOKENS = frozenset(
    {"http", "client", "aiohttp", "requests", "browser", "boto", "ws", "web"}
)
STRING_TESTS = frozenset(
    {
        "startswith",
        "endswith",
        "removeprefix",
        "removesuffix",
        "replace",
        "split",
        "partition",
        "rpartition",
        "find",
        "index",
        "count",
        "strip",
        "lstrip",
        "rstrip",
    }
)
"""String methods whose arguments are prefixes, suffixes or patterns, not connection strings."""
LOG_METHODS = frozenset(
    {"debug", "info", "warning", "warn", "error", "exception", "critical", "log", "msg"}
)


def terminal(qualname: str | None) -> str | None:
    """Return the last dotted component of a qualified name."""
    return qualname.rpartition(".")[2] if qualname else None


def is_sessionish_name(name: str) -> bool:
    """Return True for names like session, db, db_session, conn, self._session."""
    tokens = [token for token in name.lower().split("_") if token]
    return any(token in _SESSIONISH_TOKENS or token.endswith("session") for token in tokens)


def is_session_param_name(name: str) -> bool:
    """Return True for an untyped name that says session: session, db, db_session, read_session."""
    tokens = [token for token in name.lower().split("_") if token]
    if any(token in _LOOKALIKE_TOKENS for token in tokens) or name.lower().endswith("_id"):
        return False
    return any(token in _SESSION_PARAM_TOKENS or token.endswith("session") for token in tokens)


def has_url_scheme(text: str) -> bool:
    """Return True when a string contains a database URL scheme (``postgresql+asyncpg://``)."""
    return "://" in text and _SCHEME_SEARCH.search(text) is not None


def is_full_dsn(text: str) -> bool:
    """Return True for a literal DSN with credentials or a host (``postgresql://u:p@h/db``)."""
    return "://" in text and _FULL_DSN.match(text) is not None


def is_engine_name(name: str) -> bool:
    """Return True for names like engine, async_engine, get_engine."""
    lowered = name.lower()
    return lowered == "engine" or lowered.endswith("_engine")


def is_route_decorator(node: ast.expr) -> bool:
    """Return True for ``@<anything>.get(...)`` style FastAPI route decorators."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ROUTE_METHODS
    )


def string_value(node: ast.expr | None) -> str | None:
    """Return the value of a string constant node."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def annotation_expr(node: ast.expr) -> ast.expr | None:
    """Return the annotation, or the expression a string annotation holds (None if unparsable)."""
    text = string_value(node)
    if text is None:
        return node
    try:
        return ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError):
        return None


def keyword_value(call: ast.Call, name: str) -> ast.expr | None:
    """Return the value passed to a keyword argument of a call."""
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def tenant_sql_regex(names: Iterable[str]) -> re.Pattern[str] | None:
    """Build the detector for raw SQL whose WHERE clause names a tenant column.

    The text must read as SQL: a statement (``SELECT ... FROM ... WHERE``) or a fragment that
    starts with ``WHERE``, so Python code (``select(A).where(...)``) and prose do not match.
    """
    alternatives = "|".join(re.escape(name) for name in names)
    if not alternatives:
        return None
    return re.compile(
        rf"(?:\b(?:select|update|delete|from)\s[^;]*?|^\s*)\bwhere\s[^;]*?\b(?:{alternatives})\b",
        re.IGNORECASE | re.DOTALL,
    )


def references_attribute(node: ast.AST, names: frozenset[str]) -> bool:
    """Return True when the subtree contains an attribute access or keyword in names."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and sub.attr in names:
            return True
        if isinstance(sub, ast.keyword) and sub.arg in names:
            return True
    return False
