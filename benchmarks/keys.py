"""The figure keys `make bench` writes and the targets it checks (stdlib only, for the tests)."""

from __future__ import annotations

# Every figure key the harness must produce (tests/test_bench.py checks them, never a speed).
EXPECTED_KEYS: dict[str, tuple[str, ...]] = {
    "http": ("raw", "core", "app", "app_statement_cache", "app_no_pre_ping", "app_to_raw"),
    "sitemap": (
        "urls",
        "job_seconds",
        "job_urls_per_s",
        "copy_seconds",
        "copy_rows_per_s",
        "job_to_copy",
        "peak_rss_mib",
        "large_urls",
        "large_job_urls_per_s",
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
    "template": ("bake_seconds", "test_suite_seconds", "test_suite_outcome"),
}
HTTP_VARIANT_KEYS = ("rps", "p50_ms", "p99_ms", "errors", "to_raw")
"""What each variant of the request-throughput figure reports."""
TARGETS = {"http.app_to_raw": 0.5, "sitemap.job_to_copy": 0.3}
"""Ratio targets: measured value >= target."""
