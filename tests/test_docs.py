"""Both documentation sites build with `mkdocs build --strict`.

Strict mode fails on a broken link or anchor, a page missing from the nav, and (with the
snippets extension's `check_paths`) a `--8<--` include whose file or section is gone. The
template's pages include sections of the generated project's docs, so this also catches a
generated page that lost a section the template's pages rely on.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks.bakery import ROOT
from tests.conftest import Bake, run
from tests.test_bake import ANSWER_SETS

# The generated docs with every optional part, and with none of them.
DOCS_ANSWERS = {name: ANSWER_SETS[name] for name in ("defaults", "no-workloads")}


def test_the_template_docs_build(tmp_path: Path) -> None:
    site = tmp_path / "site"
    run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT)
    assert (site / "architecture" / "index.html").is_file()
    architecture = (site / "architecture" / "index.html").read_text(encoding="utf-8")
    assert 'class="mermaid"' in architecture  # the picture included from the generated docs


@pytest.mark.parametrize("answers", DOCS_ANSWERS.values(), ids=DOCS_ANSWERS.keys())
def test_the_generated_docs_build(
    bake: Bake, in_project: Callable[..., Any], answers: dict[str, Any], tmp_path: Path
) -> None:
    project = bake(**answers)
    site = tmp_path / "site"
    in_project(project, "mkdocs", "build", "--strict", "--site-dir", str(site))
    assert (site / "index.html").is_file()
    workloads = (site / "workloads" / "index.html").read_text(encoding="utf-8")
    assert ("Sitemaps" in workloads) is (answers.get("include_sitemaps", True))
    deployment = (site / "deployment" / "index.html").read_text(encoding="utf-8")
    assert ("Render, step by step" in deployment) is (answers.get("deploy_target") != "none")
    for page in (project / "docs").glob("*.md"):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"\{\{|\{%|\{#", text), f"{page.name}: Jinja left unrendered"
