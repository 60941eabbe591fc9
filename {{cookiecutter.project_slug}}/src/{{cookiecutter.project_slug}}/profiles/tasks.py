"""The profile import job: a background task that follows the one way to the database.

It gets the job's id and parameters, opens its own session with `task_session()`, and lets the
service do the work. An import is all or nothing: one transaction, so a duplicate email fails the
job with a readable error and leaves no profile of that import behind.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from {{ cookiecutter.project_slug }}.db import task_session
from {{ cookiecutter.project_slug }}.errors import conflict_detail
from {{ cookiecutter.project_slug }}.jobs.runner import (
    JobContext,
    JobError,
)
from {{ cookiecutter.project_slug }}.profiles import service
from {{ cookiecutter.project_slug }}.profiles.schemas import ProfileImport

KIND = "profiles.import"


async def import_profiles(context: JobContext) -> dict[str, Any]:
    """Create the job's profiles in one transaction; report progress in the same one."""
    if "imported" in context.checkpoint:  # an earlier attempt committed it, then was interrupted
        return {"imported": int(context.checkpoint["imported"])}
    data = ProfileImport.model_validate(context.params)
    try:
        async with task_session() as session:
            imported = await service.import_profiles(session, data=data.profiles)
            await context.progress(
                session,
                done=imported,
                total=len(data.profiles),
                checkpoint={"imported": imported},
            )
    except IntegrityError as exc:
        detail = conflict_detail(exc)
        if detail is None:
            raise
        raise JobError(f"nothing imported: {detail}") from exc
    return {"imported": imported}
