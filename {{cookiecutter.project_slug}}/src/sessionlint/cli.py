"""Command line interface: ``sessionlint check`` and ``sessionlint audit``."""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from sessionlint import __version__
from sessionlint.audit import audit_rows, render_json, render_markdown
from sessionlint.codes import RULES
from sessionlint.config import (
    Config,
    ConfigError,
    apply_overrides,
    config_keys,
    find_pyproject,
    load_pyproject,
)
from sessionlint.events import Event, Status
from sessionlint.paths import relative_to
from sessionlint.runner import run

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, default=[Path()], metavar="PATH")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", type=Path, metavar="FILE", help="pyproject.toml to read")
    source.add_argument(
        "--no-config", action="store_true", help="ignore pyproject.toml; use defaults and flags"
    )
    overrides = parser.add_argument_group("config overrides (comma-separated lists)")
    for key, field in config_keys().items():
        overrides.add_argument(f"--{key}", dest=f"override_{field}", metavar="VALUE")


def build_parser() -> argparse.ArgumentParser:
    """Build the argparse parser for both subcommands."""
    parser = argparse.ArgumentParser(
        prog="sessionlint",
        description="Keep every database session on the one sanctioned path.",
    )
    parser.add_argument("--version", action="version", version=f"sessionlint {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="report rule violations")
    _add_common(check)
    check.add_argument("--select", metavar="CODES", help="only these codes (or prefixes)")
    check.add_argument("--ignore", metavar="CODES", help="skip these codes (or prefixes)")
    check.add_argument("--format", choices=("text", "json"), default="text")
    audit = sub.add_parser("audit", help="list every database connection point")
    _add_common(audit)
    audit.add_argument("--format", choices=("markdown", "json"), default="markdown")
    audit.add_argument(
        "--fail-on",
        choices=("fix", "review"),
        help="exit 1 when a row has this status (review also fails on fix)",
    )
    return parser


def resolve_config(args: argparse.Namespace) -> tuple[Config, Path]:
    """Return the effective config and the root (config dir, else cwd) for module names."""
    first: Path = args.paths[0]
    cwd = Path.cwd()
    root = cwd if relative_to(first, cwd) is not None else first.parent
    if first.is_dir() and root != cwd:
        root = first
    config = Config()
    if args.config is not None:
        if not args.config.is_file():
            raise ConfigError(f"{args.config}: config file not found")
        config, root = load_pyproject(args.config), args.config.parent
    elif not args.no_config:
        found = find_pyproject(first)
        if found is not None:
            config, root = load_pyproject(found), found.parent
    overrides = {
        field: value
        for field in config_keys().values()
        if (value := getattr(args, f"override_{field}")) is not None
    }
    return apply_overrides(config, overrides), root


def _codes(raw: str | None, option: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    codes = tuple(part.strip().upper() for part in raw.split(",") if part.strip())
    for code in codes:
        if not any(known.startswith(code) for known in RULES):
            raise ConfigError(f"{option}: unknown rule code '{code}'")
    return codes


def _selected(event: Event, select: tuple[str, ...], ignore: tuple[str, ...]) -> bool:
    code = event.code or ""
    if select and not code.startswith(select):
        return False
    return not (ignore and code.startswith(ignore))


def _format_text(event: Event) -> str:
    return (
        f"{event.path}:{event.line}:{event.col}: {event.code} {event.message} (hint: {event.hint})"
    )


def _format_json(findings: list[Event]) -> str:
    payload = [
        {
            "path": e.path,
            "line": e.line,
            "col": e.col,
            "code": e.code,
            "message": e.message,
            "hint": e.hint,
        }
        for e in findings
    ]
    return json.dumps(payload, indent=2)


def _run_check(args: argparse.Namespace, config: Config, root: Path) -> int:
    select = _codes(args.select, "--select")
    ignore = _codes(args.ignore, "--ignore")
    result = run(args.paths, config, root)
    findings = [e for e in result.findings if _selected(e, select, ignore)]
    if args.format == "json":
        print(_format_json(findings))
    else:
        for event in findings:
            print(_format_text(event))
    files = len({e.path for e in findings})
    if findings:
        print(
            f"sessionlint: {len(findings)} finding(s) in {files} file(s) "
            f"({result.files} files checked)",
            file=sys.stderr,
        )
        return EXIT_FINDINGS
    print(f"sessionlint: all clear ({result.files} files checked)", file=sys.stderr)
    return EXIT_OK


def _run_audit(args: argparse.Namespace, config: Config, root: Path) -> int:
    rows = audit_rows(run(args.paths, config, root).events)
    print(render_json(rows) if args.format == "json" else render_markdown(rows))
    failing = {"fix": {Status.FIX}, "review": {Status.FIX, Status.REVIEW}}.get(args.fail_on, set())
    return EXIT_FINDINGS if any(row.status in failing for row in rows) else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        missing = [str(path) for path in args.paths if not path.exists()]
        if missing:
            raise ConfigError(f"path not found: {', '.join(missing)}")
        config, root = resolve_config(args)
        if args.command == "check":
            return _run_check(args, config, root)
        return _run_audit(args, config, root)
    except ConfigError as exc:
        print(f"sessionlint: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
