"""The command line, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys

from tests.serving import PACKAGE, service_environment


def test_help_lists_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", PACKAGE, "--help"],
        env=service_environment(None),
        capture_output=True,
        text=True,
        check=True,
    )
    commands = ["serve", "start", "migrate", "downgrade"]
{%- if cookiecutter.include_sitemaps %}
    commands.append("debug-sitemap")
{%- endif %}
    for command in commands:
        assert command in result.stdout
