"""Create the sitemap tables.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 00:00:01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the sitemap workload's tables (sitemap_files, sitemap_urls)."""
    op.create_table(
        "sitemap_files",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("last_job_id", sa.Uuid(), nullable=False),
        sa.Column("url_count", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["last_job_id"],
            ["jobs.id"],
            name=op.f("fk_sitemap_files_last_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sitemap_files")),
        sa.UniqueConstraint("url", name=op.f("uq_sitemap_files_url")),
    )
    op.create_index(
        op.f("ix_sitemap_files_last_job_id"), "sitemap_files", ["last_job_id"], unique=False
    )
    op.create_table(
        "sitemap_urls",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("sitemap_id", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("lastmod", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changefreq", sa.String(length=16), nullable=True),
        sa.Column("priority", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["sitemap_id"],
            ["sitemap_files.id"],
            name=op.f("fk_sitemap_urls_sitemap_id_sitemap_files"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sitemap_urls")),
        sa.UniqueConstraint("sitemap_id", "url", name=op.f("uq_sitemap_urls_sitemap_id_url")),
    )


def downgrade() -> None:
    """Drop the sitemap workload's tables (sitemap_files, sitemap_urls)."""
    op.drop_table("sitemap_urls")
    op.drop_index(op.f("ix_sitemap_files_last_job_id"), table_name="sitemap_files")
    op.drop_table("sitemap_files")
