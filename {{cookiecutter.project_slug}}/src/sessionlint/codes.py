"""Rule codes, titles and the compliant form each finding points to."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: its code, a short title and the default hint."""

    code: str
    title: str
    hint: str


_RULE_LIST = (
    Rule("SL000", "file cannot be parsed", "fix the syntax error so the file can be checked"),
    Rule(
        "SL001",
        "route handler obtains its session outside the request dependency",
        "session: SessionDep",
    ),
    Rule(
        "SL002",
        "engine or session created outside the db package",
        "import from the db package: SessionDep in routes, a session parameter in services, "
        "`async with task_session() as session:` in tasks",
    ),
    Rule(
        "SL003",
        "transaction control on a session received from a caller",
        "the opener owns the transaction (routers: the request session); "
        "code that receives a session calls `await session.flush()`",
    ),
    Rule(
        "SL004",
        "direct database driver use",
        "reach the database only through SQLAlchemy via the db package",
    ),
    Rule(
        "SL005",
        "connection string built outside the settings module",
        "build the URL only in settings.get_db_url() with sqlalchemy.URL.create(...)",
    ),
    Rule(
        "SL006",
        "background work opens or borrows a session other than through task_session()",
        "pass IDs and open `async with task_session() as session:` inside the task",
    ),
    Rule(
        "SL007",
        "tenant filtering in a database operation",
        "drop the tenant predicate; tenant isolation is not expressed in queries",
    ),
    Rule(
        "SL008",
        "suppression without a reason",
        "# noqa: SLnnn <reason why this line is an exception>",
    ),
    Rule(
        "SL009",
        "session dependency without function scope (target pins FastAPI below 0.118)",
        "correct until FastAPI 0.118; on upgrade use `session: SessionDep` or "
        'Depends(get_session_dependency, scope="function") (FastAPI >=0.121)',
    ),
)

RULES: dict[str, Rule] = {rule.code: rule for rule in _RULE_LIST}
"""All rules keyed by code."""

SEVERITY: dict[str, str] = {"SL009": "warning"}
"""Codes whose findings are warnings (fail ``check`` only with ``--strict``); others are errors."""

UNSUPPRESSIBLE = frozenset({"SL000", "SL008"})
"""Codes that a ``# noqa`` comment can never silence."""
