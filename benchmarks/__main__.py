"""`make bench`, stage 1: bake a default service, prepare its venv, then run the benchmarks.

Runs in the template's own venv (cookiecutter): it times bakes, builds or reuses the cached
venv of the generated projects' dependencies (the one the template tests use), and hands over to
`benchmarks.run` inside that venv with the bake's `src/` on `PYTHONPATH`.

    python -m benchmarks [--quick] [--output bench-results.json] [--database-url URL] [...]

Other options go to stage 2 (`python -m benchmarks.run --help` lists them), for example
`--only hostile,memory` or `--memory-jobs 5 --memory-urls 10000`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bakery import CACHE, ROOT, bake_into, tools_venv

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def timed_bakes(rounds: int) -> float:
    """Median seconds of baking the default answers into a fresh directory."""
    times = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="bench-bake-") as out:
            started = time.perf_counter()
            bake_into(Path(out))
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    """Bake, prepare, run stage 2; its exit status is ours."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness")
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results.json")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TEMPLATE_TEST_DATABASE_URL", DEFAULT_SERVER),
        help="a PostgreSQL server where a throwaway database may be created",
    )
    args, stage_2 = parser.parse_known_args()
    bake_seconds = timed_bakes(1 if args.quick else 5)
    out_dir = Path(tempfile.mkdtemp(prefix="bench-", dir=CACHE if CACHE.exists() else None))
    try:
        project = bake_into(out_dir)
        python = tools_venv(project)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(project / "src"), str(ROOT)]),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        command = [
            str(python), "-m", "benchmarks.run", "--project", str(project),
            "--server-url", args.database_url, "--bake-seconds", f"{bake_seconds:.4f}",
            "--output", str(args.output.resolve()),
        ]  # fmt: skip
        if args.quick:
            command.append("--quick")
        command += stage_2
        return subprocess.run(command, env=env, cwd=ROOT, check=False).returncode
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
