"""`make bench` cannot rot: its harness runs end to end at tiny sizes and writes every figure.

Only the presence of each figure is checked, never a speed or a memory size: timings belong to
`make bench` on a known machine (docs/performance.md), not to a test.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from benchmarks import hostile_server, lint
from benchmarks.bakery import ROOT
from benchmarks.keys import (
    EXPECTED_KEYS,
    FINAL_STATUSES,
    HOSTILE_JOBS,
    HTTP_VARIANT_KEYS,
    LATENCY_KEYS,
    TARGETS,
)
from tests.conftest import run

SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def _parse(xml: bytes) -> ET.Element:
    """Parse XML this test generated itself (no entities: nothing untrusted)."""
    return ET.fromstring(xml)  # noqa: S314


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
    figures = report["figures"]
    for section, keys in EXPECTED_KEYS.items():
        missing = set(keys) - set(figures[section])
        assert not missing, f"{section} lacks {sorted(missing)}"
    for variant in ("raw", "core", "idiomatic", "idiomatic_caches_off", "idiomatic_cached", "app",
                    "app_statement_cache"):  # fmt: skip
        assert set(HTTP_VARIANT_KEYS) <= set(figures["http"][variant]), variant
        assert figures["http"][variant]["errors"] == 0, (variant, figures["http"][variant])
    assert set(report["targets"]) == set(TARGETS)
    assert "target http.app_to_raw" in result.stdout
    assert "target http.app_to_idiomatic_cached" in result.stdout
    # Hostile sitemaps: every window was probed and every job reached its end.
    for name in ("baseline", *HOSTILE_JOBS):
        scenario = figures["hostile"][name]
        assert set(LATENCY_KEYS) <= set(scenario), name
        assert scenario["probes"] > 0, name
    for name in HOSTILE_JOBS:
        assert figures["hostile"][name]["job"]["status"] in FINAL_STATUSES, figures["hostile"]
    assert "/health, gzip bomb" in result.stdout
    # Memory under load: RSS was sampled and every job reached its end.
    memory = figures["memory"]
    assert memory["finished"] == memory["jobs"] > 0, memory
    assert set(memory["statuses"]) <= set(FINAL_STATUSES), memory
    assert memory["baseline_rss_mib"] > 0, memory
    assert memory["after_rss_mib"] > 0, memory
    assert set(LATENCY_KEYS) <= set(memory["health"])
    assert "target memory.peak_rss_mib" in result.stdout


# Preamble of the scripts below: a quiet HTTP/1.1 server on a free port of 127.0.0.1, served
# from threads of the script's own process.
SERVE_IN_A_THREAD = """
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

def serve(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
"""

PROBE_A_STALL = (
    SERVE_IN_A_THREAD
    + """
import asyncio, json, threading, time
from benchmarks.hostile import probe_health

LOOP = threading.Lock()  # held by every answer: one stalled answer stalls them all

class Stalls(Quiet):
    served = 0

    def do_GET(self):
        with LOOP:
            Stalls.served += 1
            if Stalls.served == 10:
                time.sleep(1.0)  # one stall, as a blocked event loop gives
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

server = serve(Stalls)

async def main():
    stop = asyncio.Event()
    task = asyncio.create_task(probe_health(f"http://127.0.0.1:{server.server_port}", 20, stop))
    while Stalls.served < 10:
        await asyncio.sleep(0.05)
    await asyncio.sleep(2.0)
    stop.set()
    probes = await task
    print(json.dumps({"latencies": probes.latencies_ms, **probes.figures()}))

asyncio.run(main())
"""
)


def test_probe_counts_every_probe_that_fell_due_during_a_stall(tools_python: Path) -> None:
    """A stall of 1 s is seen by each probe due during it, not only by the one in flight."""
    result = run([str(tools_python), "-c", PROBE_A_STALL], cwd=ROOT, env={"PYTHONPATH": str(ROOT)})
    figures = json.loads(result.stdout)
    assert figures["errors"] == 0
    assert figures["max_ms"] >= 1000
    # Probes fall due every 20 ms: those due in the first half of the stall waited >= 0.5 s.
    assert sum(1 for value in figures["latencies"] if value >= 500) >= 25, figures


LOAD_A_MIXED_SERVER = (
    SERVE_IN_A_THREAD
    + """
import collections, dataclasses, json, sys, tempfile
from pathlib import Path
from benchmarks.load import run_python_load

seen = collections.Counter()
lock = threading.Lock()

class Mixed(Quiet):
    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        with lock:
            seen[name] += 1
        if name == "drop":  # read the request, close without an answer
            self.close_connection = True
            return
        self.send_response(404 if name == "missing" else 200)
        if name == "close":
            self.send_header("Connection", "close")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

server = serve(Mixed)
prefix = f"http://127.0.0.1:{server.server_port}/api/v1/profiles/"
with tempfile.TemporaryDirectory() as workdir:
    load = run_python_load(prefix, sys.argv[1:], connections=4, seconds=1, workdir=Path(workdir))
print(json.dumps({"load": dataclasses.asdict(load), "seen": seen}))
"""
)


def test_python_loader_counts_each_failure_and_reconnects(tools_python: Path) -> None:
    """The loader used where wrk is absent: one error per 404 or dropped request, none lost."""
    result = run(
        [str(tools_python), "-c", LOAD_A_MIXED_SERVER, "ok", "missing", "close", "drop"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )
    figures = json.loads(result.stdout)
    load, seen = figures["load"], figures["seen"]
    assert load["tool"] == "python-httptools"
    # Every request the server saw was answered, refused or dropped, and counted once.
    assert load["requests"] == sum(seen.values()), figures
    assert load["errors"] == seen["missing"] + seen["drop"], figures
    # Connections closed by the server (answered or not) were reopened: every id came round often.
    assert min(seen[name] for name in ("ok", "missing", "close", "drop")) > 10, figures
    assert 0 < load["p50_ms"] <= load["p99_ms"], figures


def test_gzip_bomb_inflates_to_one_comment() -> None:
    body = hostile_server.bomb(1024 * 1024, "http://127.0.0.1:1")
    xml = gzip.decompress(body)
    (comment,) = re.findall(rb"<!--(.*?)-->", xml, re.DOTALL)
    assert len(comment) == 1024 * 1024
    assert len(body) * 100 < len(xml)
    locs = [loc.text for loc in _parse(xml).iter(f"{SITEMAP_NS}loc")]
    assert locs == ["http://127.0.0.1:1/after-the-comment"]


def test_bomb_index_lists_its_children_at_distinct_urls() -> None:
    root = _parse(hostile_server.bomb_index(3, "http://127.0.0.1:1"))
    locs = [loc.text for loc in root.iter(f"{SITEMAP_NS}loc")]
    assert root.tag == f"{SITEMAP_NS}sitemapindex"
    assert locs == [f"http://127.0.0.1:1/bomb-child-{i}.xml.gz" for i in range(3)]


def test_trickle_document_is_a_valid_padded_sitemap() -> None:
    body = hostile_server.trickle_document("http://127.0.0.1:1", length=600)
    locs = [loc.text for loc in _parse(body).iter(f"{SITEMAP_NS}loc")]
    assert len(body) == 600
    assert locs == ["http://127.0.0.1:1/trickled"]


def test_big_sitemap_has_the_requested_entries_and_entry_size() -> None:
    body = hostile_server.big_sitemap(200, 950)
    entries = [line for line in body.splitlines(keepends=True) if line.startswith(b"<url>")]
    locs = [loc.text for loc in _parse(body).iter(f"{SITEMAP_NS}loc")]
    assert len(entries) == 200
    assert {len(entry) for entry in entries} == {950}
    assert len(set(locs)) == 200


LEGACY_SAMPLE = ROOT / "{{cookiecutter.project_slug}}" / lint.SAMPLE
_OWN_IMPORT = re.compile(r"^\s*(?:from|import)\s+(?:app|scripts)\b", re.MULTILINE)


def test_lint_corpus_copies_the_sample_under_renamed_packages(tmp_path: Path) -> None:
    _, per_copy = lint.python_lines(LEGACY_SAMPLE)
    built = lint.build_corpus(LEGACY_SAMPLE, tmp_path, per_copy + 1)
    assert built["copies"] == 2
    assert built["lines"] == 2 * per_copy
    assert "fastapi==0.115.6" in (tmp_path / "pyproject.toml").read_text()  # the pin travels
    for path in tmp_path.rglob("*.py"):
        assert not _OWN_IMPORT.search(path.read_text()), path  # each copy imports only itself
    backfill = (tmp_path / "scripts_01" / "backfill_places.py").read_text()
    assert "from app_01.db import get_db" in backfill


MEASURE_A_CORPUS = """
import json, os, sys
from pathlib import Path
from benchmarks.lint import measure_corpus
ruff = str(Path(sys.executable).parent / "ruff")
print(json.dumps(measure_corpus(Path(sys.argv[1]), python=sys.executable, ruff=ruff,
                                env=dict(os.environ), rounds=1)))
"""


def test_lint_figure_measures_a_tiny_corpus(tmp_path: Path, tools_python: Path) -> None:
    """The lint figure's commands run on one copy of the sample and report every key."""
    corpus = tmp_path / "corpus"
    built = lint.build_corpus(LEGACY_SAMPLE, corpus, 1)
    src = ROOT / "{{cookiecutter.project_slug}}" / "src"
    result = run(
        [str(tools_python), "-c", MEASURE_A_CORPUS, str(corpus)],
        cwd=ROOT,
        env={"PYTHONPATH": f"{src}{os.pathsep}{ROOT}"},
    )
    figures = json.loads(result.stdout)
    assert set(EXPECTED_KEYS["lint"]) - {"expected_findings"} <= set(figures)
    assert figures["lines"] == built["lines"]
    assert figures["findings"] > 0
    assert figures["sources"] > 0
    assert figures["check_seconds"] > 0
    assert figures["ruff_seconds"] > 0
