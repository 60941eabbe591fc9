"""`debug-sitemap`: the sitemap flow in the foreground, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys

from {{ cookiecutter.project_slug }}.settings import Settings

from tests.localserver import LocalServer
from tests.serving import PACKAGE, service_environment


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m <package> ARGS` against the run's database."""
    env = service_environment(
        settings.get_db_url(), LOG_LEVEL="INFO", OUTBOUND_ALLOWLIST=settings.outbound_allowlist
    )
    return subprocess.run(
        [sys.executable, "-m", PACKAGE, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_debug_sitemap_prints_each_step(
    settings: Settings, site: LocalServer, committed: None
) -> None:
    result = cli(settings, "debug-sitemap", site.url("/files/sitemaps/index.xml"))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines if line[:1].isdigit()] == [
        "1.",
        "2.",
        "3.",
        "4.",
        "5.",
        "6.",
    ]
    assert "4. status    succeeded" in result.stdout
    assert "stored" in result.stderr  # each batch, logged as it is stored
    password = settings.get_db_url().password
    assert not password or password not in result.stdout


def test_debug_sitemap_reports_a_failure(
    settings: Settings, site: LocalServer, committed: None
) -> None:
    result = cli(settings, "debug-sitemap", site.url("/files/sitemaps/malformed.xml"))
    assert result.returncode == 1
    assert "4. status    failed" in result.stdout
    assert "error" in result.stdout


def test_debug_sitemap_refuses_blocked_urls(settings: Settings) -> None:
    result = cli(settings, "debug-sitemap", "http://169.254.169.254/")
    assert result.returncode == 2
    assert "refused" in result.stdout
