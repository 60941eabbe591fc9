"""The only way to the database.

Route handlers take `session: SessionDep`; services receive that session; background work opens
`async with task_session() as session`. Nothing outside this package creates an engine or a session
(`db.engine.build_engine` is for Alembic's env.py and the tests only; import-linter enforces it).
"""

from {{ cookiecutter.project_slug }}.db.base import Base
from {{ cookiecutter.project_slug }}.db.session import (
    SessionDep,
    SessionFactory,
    database_lifespan,
    get_session_dependency,
    task_session,
)

__all__ = [
    "Base",
    "SessionDep",
    "SessionFactory",
    "database_lifespan",
    "get_session_dependency",
    "task_session",
]
