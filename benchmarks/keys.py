"""The figure keys `make bench` writes and the targets it checks (stdlib only, for the tests)."""

from __future__ import annotations

import operator

# Every figure key the harness must produce (tests/test_bench.py checks them, never a speed).
EXPECTED_KEYS: dict[str, tuple[str, ...]] = {
    "http": (
        "raw",
        "core",
        "idiomatic",
        "idiomatic_caches_off",
        "idiomatic_cached",
        "app",
        "app_statement_cache",
        "app_to_raw",
        "app_to_idiomatic",
        "app_to_idiomatic_caches_off",
        "app_to_idiomatic_cached",
    ),
    "sitemap": (
        "urls",
        "job_seconds",
        "job_urls_per_s",
        "copy_seconds",
        "copy_rows_per_s",
        "job_to_copy",
        "store_to_copy",
        "peak_rss_mib",
        "large_urls",
        "large_job_urls_per_s",
        "large_to_single_rate",
        "large_peak_rss_mib",
        "rss_growth_ratio",
    ),
    "pages": ("pages", "concurrency", "job_pages_per_s", "plain_pages_per_s", "job_to_plain"),
    "connections": ("clients", "direct", "pgbouncer"),
    "sessionlint": (
        "files",
        "lines",
        "sessionlint_lines_per_s",
        "ruff_lines_per_s",
        "ruff_1_thread_lines_per_s",
        "sessionlint_to_ruff",
        "sessionlint_to_ruff_1_thread",
    ),
    "hostile": (
        "probe_interval_ms",
        "bomb_wire_bytes",
        "baseline",
        "bomb",
        "bomb_index",
        "trickle",
        "worst_p99_ms",
        "target_p99_ms",
    ),
    "memory": (
        "jobs",
        "urls_per_job",
        "sitemap_bytes",
        "served",
        "baseline_rss_mib",
        "peak_rss_mib",
        "after_rss_mib",
        "retained_mib",
        "target_peak_rss_mib",
        "seconds",
        "statuses",
        "finished",
        "health",
    ),
    "lint": (
        "files",
        "lines",
        "check_seconds",
        "check_lines_per_s",
        "audit_seconds",
        "audit_lines_per_s",
        "ruff_lines_per_s",
        "check_to_ruff",
        "findings",
        "expected_findings",
    ),
    "template": ("bake_seconds", "test_suite_seconds", "test_suite_outcome"),
}
HTTP_VARIANT_KEYS = ("rps", "p50_ms", "p99_ms", "errors", "to_raw")
"""What each variant of the request-throughput figure reports."""
LATENCY_KEYS = ("p50_ms", "p99_ms", "max_ms", "probes", "errors", "unanswered")
"""What each `/health` latency window reports (hostile scenarios, memory's `health`)."""
HOSTILE_JOBS = ("bomb", "bomb_index", "trickle")
"""Hostile scenarios that run one job; each reports `job` (status, error, seconds)."""
FINAL_STATUSES = ("succeeded", "failed", "cancelled")
"""Job statuses that end a job."""
COMPARE = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
}
TARGETS: dict[str, tuple[str, float]] = {
    "http.app_to_idiomatic": (">=", 1.1),
    "http.app_to_idiomatic_cached": (">=", 1.0),
    "http.app_to_raw": (">=", 0.5),
    "sitemap.job_to_copy": (">=", 0.3),
    "pages.job_to_plain": (">=", 0.8),
    "hostile.worst_p99_ms": ("<=", 200.0),
    "memory.peak_rss_mib": ("<", 400.0),
    "lint.check_lines_per_s": (">=", 30_000.0),  # issue 12: 30,000 lines under 1 s, one core
    "lint.audit_lines_per_s": (">=", 30_000.0),
}
"""Targets: `figure op target` (printed as met or MISSED, never asserted by a test)."""
