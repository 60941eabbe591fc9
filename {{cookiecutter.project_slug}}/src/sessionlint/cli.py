"""Command line interface: ``sessionlint check``, ``audit`` and ``baseline``."""

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sessionlint import __version__
from sessionlint.audit import audit_rows, render_json, render_markdown
from sessionlint.baseline import (
    BASELINE_NAME,
    Entry,
    compare,
    fingerprint,
    load_baseline,
    path_filter,
    write_baseline,
)
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
from sessionlint.fix import plan_fixes, scope_keyword_available
from sessionlint.formats import FORMATS, RENDERERS, render_text
from sessionlint.paths import display_path, relative_to
from sessionlint.runner import RunResult, effective_root, run

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
    check.add_argument("--format", choices=FORMATS, default="text")
    check.add_argument("--output", type=Path, metavar="FILE", help="write the report to FILE")
    check.add_argument(
        "--strict", action="store_true", help="fail on warnings too, not only on errors"
    )
    baseline = check.add_mutually_exclusive_group()
    baseline.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help=f"accept the findings recorded in FILE (default: {BASELINE_NAME} in the root)",
    )
    baseline.add_argument(
        "--no-baseline", action="store_true", help="report every finding, ignore any baseline"
    )
    fixing = check.add_mutually_exclusive_group()
    fixing.add_argument(
        "--fix", action="store_true", help="rewrite the mechanically fixable findings (SL001)"
    )
    fixing.add_argument(
        "--diff", action="store_true", help="print the --fix changes as a diff; write nothing"
    )
    base = sub.add_parser(
        "baseline", help="record today's findings so that check fails only on new ones"
    )
    _add_common(base)
    base.add_argument(
        "--output", type=Path, metavar="FILE", help=f"baseline file (default: {BASELINE_NAME})"
    )
    base.add_argument(
        "--force", action="store_true", help="also accept findings the existing file lacks"
    )
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


def _selected_code(code: str, select: tuple[str, ...], ignore: tuple[str, ...]) -> bool:
    if select and not code.startswith(select):
        return False
    return not (ignore and code.startswith(ignore))


def _selected(event: Event, select: tuple[str, ...], ignore: tuple[str, ...]) -> bool:
    return _selected_code(event.code or "", select, ignore)


def _analyze(args: argparse.Namespace, config: Config, root: Path) -> RunResult:
    return run(args.paths, config, root)


def _emit(text: str, output: Path | None) -> None:
    """Print a report, or write it to the --output file."""
    if output is None:
        if text:
            print(text)
        return
    try:
        output.write_text(text + "\n" if text else "", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{output}: cannot write: {exc.strerror}") from exc


def _in_paths(args: argparse.Namespace, root: Path) -> Callable[[str], bool]:
    """Tell whether a root-relative path lies under the paths given on the command line."""
    prefixes = []
    for path in args.paths:
        rel = relative_to(path, root)
        prefixes.append(rel if rel is not None else path.as_posix())
    return path_filter(prefixes)


def _baseline_file(args: argparse.Namespace, root: Path) -> Path | None:
    if args.no_baseline:
        return None
    if args.baseline is not None:
        if not args.baseline.is_file():
            raise ConfigError(f"{args.baseline}: baseline file not found")
        return Path(args.baseline)
    default = root / BASELINE_NAME
    return default if default.is_file() else None


def _plural(count: int, word: str) -> str:
    plural = f"{word}es" if word.endswith(("s", "x")) else f"{word}s"
    return f"{count} {word if count == 1 else plural}"


def _run_fix(args: argparse.Namespace, config: Config, root: Path, result: RunResult) -> int:
    """Apply (--fix) or show (--diff) the mechanical fixes; return an exit code for --diff."""
    select = _codes(args.select, "--select")
    ignore = _codes(args.ignore, "--ignore")
    findings = [e for e in result.findings if _selected(e, select, ignore)]
    fastapi = result.fastapi
    scope_keyword = fastapi is None or scope_keyword_available(
        fastapi.upper, exclusive=fastapi.exclusive
    )
    fixes = plan_fixes(findings, config, root, scope_keyword=scope_keyword)
    count = sum(fix.fixes for fix in fixes)
    if args.diff:
        _emit("".join(fix.diff() for fix in fixes).rstrip("\n"), args.output)
        what = f"{_plural(count, 'fix')} in {_plural(len(fixes), 'file')}"
        print(
            f"sessionlint: {what} would be applied" if fixes else "sessionlint: nothing to fix",
            file=sys.stderr,
        )
        return EXIT_FINDINGS if fixes else EXIT_OK
    for fix in fixes:
        fix.write()
    if fixes:
        print(
            f"sessionlint: applied {_plural(count, 'fix')} in {_plural(len(fixes), 'file')}",
            file=sys.stderr,
        )
    return EXIT_OK


def _run_check(args: argparse.Namespace, config: Config, root: Path) -> int:
    select = _codes(args.select, "--select")
    ignore = _codes(args.ignore, "--ignore")
    baseline_file = _baseline_file(args, root)
    result = _analyze(args, config, root)
    if args.fix or args.diff:
        code = _run_fix(args, config, root, result)
        if args.diff:
            return code
        result = _analyze(args, config, root)
    findings = fingerprint(e for e in result.findings if _selected(e, select, ignore))
    reported, known = findings, 0
    if baseline_file is not None:
        in_paths = _in_paths(args, root)

        def in_scope(entry: Entry) -> bool:
            return in_paths(entry.path) and _selected_code(entry.code, select, ignore)

        comparison = compare(findings, load_baseline(baseline_file), in_scope)
        reported, known = comparison.new, len(comparison.known)
        if comparison.fixed:
            print(
                f"sessionlint: {len(comparison.fixed)} fixed: remove them with "
                f"`sessionlint baseline` ({display_path(baseline_file)} only shrinks)",
                file=sys.stderr,
            )
            for entry in comparison.fixed:
                where = f" in {entry.scope}" if entry.scope else ""
                print(f"  {entry.path}{where}: {entry.code} {entry.message}", file=sys.stderr)
    _emit(RENDERERS[args.format](reported), args.output)
    checked = f"{result.files} files checked"
    if baseline_file is not None:
        checked += f", {known} baselined"
    if not reported:
        print(f"sessionlint: all clear ({checked})", file=sys.stderr)
        return EXIT_OK
    errors = sum(1 for f in reported if f.event.is_error)
    warnings = len(reported) - errors
    files = len({f.event.path for f in reported})
    print(
        f"sessionlint: {len(reported)} finding(s) ({_plural(errors, 'error')}, "
        f"{_plural(warnings, 'warning')}) in {files} file(s) ({checked})",
        file=sys.stderr,
    )
    failing = errors or (args.strict and warnings)
    return EXIT_FINDINGS if failing else EXIT_OK


def _run_baseline(args: argparse.Namespace, config: Config, root: Path) -> int:
    """Write today's findings; an existing file may shrink, and grows only with --force."""
    findings = fingerprint(_analyze(args, config, root).findings)
    target: Path = args.output if args.output is not None else root / BASELINE_NAME
    shown = display_path(target)
    if not target.exists():
        _write(target, [Entry.of(f) for f in findings])
        print(f"sessionlint: wrote {_plural(len(findings), 'finding')} to {shown}", file=sys.stderr)
        return EXIT_OK
    in_paths = _in_paths(args, root)
    comparison = compare(findings, load_baseline(target), lambda e: in_paths(e.path))
    if comparison.new and not args.force:
        print(render_text(comparison.new))
        print(
            f"sessionlint: {_plural(len(comparison.new), 'new finding')} not in {shown}; the "
            "baseline only shrinks: fix them, suppress them with a reason, or accept them "
            "with --force",
            file=sys.stderr,
        )
        return EXIT_FINDINGS
    added = comparison.new if args.force else []
    entries = [Entry.of(f) for f in [*comparison.known, *added]] + comparison.untouched
    _write(target, entries)
    print(
        f"sessionlint: {shown}: {_plural(len(entries), 'finding')} "
        f"({len(comparison.fixed)} fixed removed, {len(added)} added)",
        file=sys.stderr,
    )
    return EXIT_OK


def _write(target: Path, entries: list[Entry]) -> None:
    try:
        write_baseline(target, entries)
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write baseline: {exc.strerror}") from exc


def _run_audit(args: argparse.Namespace, config: Config, root: Path) -> int:
    result = _analyze(args, config, root)
    rows = audit_rows(result.events)
    render = render_json if args.format == "json" else render_markdown
    print(render(rows, result.sources))
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
        if args.command in {"check", "baseline"}:
            # The root the runner anchors relpaths to (a nested project is checked as itself):
            # baselines, fixes and report paths use the same one.
            root = effective_root(args.paths, root)
        if args.command == "check":
            return _run_check(args, config, root)
        if args.command == "baseline":
            return _run_baseline(args, config, root)
        return _run_audit(args, config, root)
    except ConfigError as exc:
        print(f"sessionlint: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
