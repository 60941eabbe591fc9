"""Jobs remember where they were submitted: the request ID and the W3C trace context.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable `origin` column (jobs submitted before it have none)."""
    op.add_column(
        "jobs", sa.Column("origin", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )


def downgrade() -> None:
    """Drop the column."""
    op.drop_column("jobs", "origin")
