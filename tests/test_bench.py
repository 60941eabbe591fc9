"""`make bench` cannot rot: its harness runs end to end at tiny sizes and writes every figure.

Only the presence of each figure is checked, never a speed: timings belong to `make bench`
on a known machine (docs/performance.md), not to a test.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.bakery import ROOT
from benchmarks.keys import EXPECTED_KEYS, HTTP_VARIANT_KEYS, TARGETS
from tests.conftest import run


def test_quick_bench_writes_every_figure(
    tmp_path: Path, machine_database_url: str, tools_python: Path
) -> None:
    output = tmp_path / "bench-results.json"
    result = run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(output),
         "--database-url", machine_database_url],
        cwd=ROOT,
    )  # fmt: skip
    report = json.loads(output.read_text())
    for section, keys in EXPECTED_KEYS.items():
        missing = set(keys) - set(report["figures"][section])
        assert not missing, f"{section} lacks {sorted(missing)}"
    for variant in ("raw", "core", "app", "app_statement_cache", "app_no_pre_ping"):
        assert set(HTTP_VARIANT_KEYS) <= set(report["figures"]["http"][variant]), variant
    assert set(report["targets"]) == set(TARGETS)
    assert "target http.app_to_raw" in result.stdout
