"""Profile emails unique case-insensitively: a unique index on lower(email).

Emails keep the case they were given; `Case@example.com` and `case@example.com` are the same
email. Rows that already differ only in case stop the upgrade, which changes nothing: which
profile to keep is a decision for people, not for a migration. The error lists the profile ids
to merge or correct; then run the upgrade again.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHOWN = 5
"""Groups of duplicates named in the error; the query in the message lists them all."""

DUPLICATES = """
    SELECT array_agg(id::text ORDER BY created_at, id) AS ids
    FROM profiles
    GROUP BY lower(email)
    HAVING count(*) > 1
    ORDER BY min(created_at)
"""


def upgrade() -> None:
    """Replace the case-sensitive unique constraint with a unique index on `lower(email)`."""
    groups = [row.ids for row in op.get_bind().execute(sa.text(DUPLICATES))]
    if groups:
        shown = "; ".join(", ".join(ids) for ids in groups[:SHOWN])
        more = f" and {len(groups) - SHOWN} more" if len(groups) > SHOWN else ""
        raise RuntimeError(
            f"{len(groups)} email(s) belong to several profiles that differ only in letter case "
            f"(profile ids: {shown}{more}). Merge or change those profiles, then upgrade again. "
            f"List them all with: {' '.join(DUPLICATES.split())}"
        )
    op.create_index(
        op.f("uq_profiles_email_lower"), "profiles", [sa.text("lower(email)")], unique=True
    )
    op.drop_constraint(op.f("uq_profiles_email"), "profiles", type_="unique")


def downgrade() -> None:
    """Back to the case-sensitive unique constraint (case-insensitive uniqueness implies it)."""
    op.create_unique_constraint(op.f("uq_profiles_email"), "profiles", ["email"])
    op.drop_index(op.f("uq_profiles_email_lower"), table_name="profiles")
