"""Alembic migrations: env.py and the revisions in versions/."""
