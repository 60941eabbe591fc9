"""A one-off script: open the database the way the app does, then work in `task_session()`.

    python -m examples.transactions.script "Ada Lovelace" ada@example.com

`database_lifespan(settings)` builds the one engine from the settings (the same `DATABASE_URL`,
pooler-safe options and pool limits as the service) and disposes of it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Sequence

from {{ cookiecutter.project_slug }}.db import (
    database_lifespan,
    task_session,
)
from {{ cookiecutter.project_slug }}.profiles import service as profiles
from {{ cookiecutter.project_slug }}.profiles.schemas import ProfileCreate
from {{ cookiecutter.project_slug }}.settings import (
    Settings,
    get_settings,
)


# --8<-- [start:script]
async def add_profile(settings: Settings, *, name: str, email: str) -> uuid.UUID:
    """Create one profile and commit it; return its id."""
    data = ProfileCreate(name=name, email=email)
    async with database_lifespan(settings), task_session() as session:
        profile = await profiles.create_profile(session, data=data)
    return profile.id  # committed: the block ended without an error


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run the coroutine, print the new id."""
    parser = argparse.ArgumentParser(description="Add one profile.")
    parser.add_argument("name")
    parser.add_argument("email")
    args = parser.parse_args(argv)
    print(asyncio.run(add_profile(get_settings(), name=args.name, email=args.email)))
    return 0


# --8<-- [end:script]

if __name__ == "__main__":
    raise SystemExit(main())
