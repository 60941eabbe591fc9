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
        "transaction control in a service",
        "routers own the transaction boundary; services call `await session.flush()`",
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
)

RULES: dict[str, Rule] = {rule.code: rule for rule in _RULE_LIST}
"""All rules keyed by code."""

UNSUPPRESSIBLE = frozenset({"SL000", "SL008"})
"""Codes that a ``# noqa`` comment can never silence."""
