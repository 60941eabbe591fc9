"""Who begins, commits and rolls back: a router, a service, a background job and a script.

Shown in docs/transactions.md; run by tests/test_docs.py.
"""
