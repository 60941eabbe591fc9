"""Runnable examples included in docs/ (`--8<--` snippets).

Every file here is real code: `tests/test_docs.py` runs it against the test database, and ruff,
mypy --strict and sessionlint check it like the rest of the project, so the docs cannot rot.
"""
