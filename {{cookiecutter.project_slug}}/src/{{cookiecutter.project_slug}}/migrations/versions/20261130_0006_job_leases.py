"""Job leases, attempts, checkpoints and cancellation.

Revision ID: 0006
Revises: {{ '0005' if cookiecutter.include_pages else ('0004' if cookiecutter.include_places else ('0003' if cookiecutter.include_sitemaps else '0002')) }}
Create Date: 2026-11-30 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = {{ '"0005"' if cookiecutter.include_pages else ('"0004"' if cookiecutter.include_places else ('"0003"' if cookiecutter.include_sitemaps else '"0002"')) }}
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("pending", "running", "succeeded", "failed")


def _status_check(statuses: Sequence[str]) -> None:
    """Replace the CHECK constraint of `jobs.status` with one allowing `statuses`."""
    op.drop_constraint(op.f("ck_jobs_status"), "jobs", type_="check")
    allowed = ", ".join(f"'{status}'" for status in statuses)
    op.create_check_constraint(op.f("ck_jobs_status"), "jobs", f"status IN ({allowed})")


def upgrade() -> None:
    """Add the lease, attempt, checkpoint and cancellation columns; allow `cancelled`."""
    op.add_column(
        "jobs", sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.add_column("jobs", sa.Column("lease_owner", sa.String(length=200), nullable=True))
    op.add_column("jobs", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "jobs", sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "jobs", sa.Column("checkpoint", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.create_index(op.f("ix_jobs_lease_expires_at"), "jobs", ["lease_expires_at"], unique=False)
    _status_check((*STATUSES, "cancelled"))


def downgrade() -> None:
    """Drop the columns; cancelled jobs become failed ones."""
    op.execute("UPDATE jobs SET status = 'failed' WHERE status = 'cancelled'")
    _status_check(STATUSES)
    op.drop_index(op.f("ix_jobs_lease_expires_at"), table_name="jobs")
    for column in ("checkpoint", "cancel_requested_at", "lease_expires_at", "lease_owner"):
        op.drop_column("jobs", column)
    op.drop_column("jobs", "attempts")
