"""Liveness and database readiness probes."""
