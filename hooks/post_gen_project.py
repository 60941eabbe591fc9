"""Remove what the answers left out, so no file of a removed feature remains in the project.

Every path is relative to the generated project. Code that stays but mentions an optional
feature is switched by Jinja conditionals in the files themselves; this hook only deletes.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

# The answers as the project recorded them (the same file `cookiecutter --replay-file` reads).
ANSWERS = json.loads(Path(".cookiecutter.json").read_text())["cookiecutter"]
PACKAGE = ANSWERS["project_slug"]
SRC = f"src/{PACKAGE}"
MIGRATIONS = f"{SRC}/migrations/versions"


def workload(name: str, revision: str) -> list[str]:
    """The files of one workload: its package, tests, test fixtures and migration."""
    return [
        f"{SRC}/{name}",
        f"tests/{name}",
        f"tests/fixtures/{name}",
        f"{MIGRATIONS}/20261123_{revision}_create_{name}.py",
    ]


def removed(answers: dict[str, object]) -> list[str]:
    """Every path the answers leave out."""
    paths: list[str] = []
    if not answers["include_sitemaps"]:
        paths += workload("sitemaps", "0003")
        paths += [f"{MIGRATIONS}/20261130_0009_sitemap_urls_statement_fk.py"]
    if not answers["include_places"]:
        paths += workload("places", "0004")
    if not answers["include_pages"]:
        # robots.txt handling is the page scraper's; the outbound client itself stays.
        paths += [*workload("pages", "0005"), f"{SRC}/outbound/robots.py"]
        paths += ["tests/outbound/test_robots.py"]
    if answers["task_engine"] == "none":
        paths += ["tests/test_worker.py"]
    if answers["ci_provider"] != "github":
        paths += [".github"]
    if answers["ci_provider"] != "gitlab":
        paths += [".gitlab-ci.yml", "renovate.json"]  # Renovate: the GitLab side's Dependabot
    if answers["deploy_target"] != "render":
        paths += ["render.yaml", "tests/test_render.py"]
    return paths


def main() -> int:
    """Delete the left-out paths; a path that is already gone is a template bug."""
    root = Path.cwd()
    missing = []
    for relative in removed(ANSWERS):
        path = root / relative
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            missing.append(relative)
    for relative in missing:
        print(f"ERROR: post-generation hook: {relative} is not in the template", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
