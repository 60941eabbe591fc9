"""File discovery, glob matching and path-to-module-name mapping."""

import os
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath


def match_module(module: str, patterns: Iterable[str]) -> bool:
    """Return True when a dotted module name matches any glob (``*`` spans dots)."""
    return any(fnmatchcase(module, pattern) for pattern in patterns)


def match_path(relpath: str, patterns: Iterable[str]) -> bool:
    """Return True when a posix relative path, or any of its components, matches a glob."""
    parts = PurePosixPath(relpath).parts
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if fnmatchcase(relpath, pattern) or fnmatchcase(relpath, f"{pattern}/*"):
            return True
        if "/" not in pattern and any(fnmatchcase(part, pattern) for part in parts):
            return True
    return False


def relative_to(path: Path, base: Path) -> str | None:
    """Return path relative to base in posix form, or None if it lies outside."""
    absolute, absolute_base = os.path.abspath(path), os.path.abspath(base)
    if absolute == absolute_base:
        return "."
    if absolute.startswith(absolute_base.rstrip(os.sep) + os.sep):
        return PurePosixPath(
            *Path(absolute[len(absolute_base.rstrip(os.sep)) + 1 :]).parts
        ).as_posix()
    try:  # through symlinks
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return None


def display_path(path: Path) -> str:
    """Return the path as shown to users: relative to the cwd when possible."""
    rel = relative_to(path, Path.cwd())
    return rel if rel is not None else path.as_posix()


def module_name(relpath: str, source_roots: Sequence[str]) -> str:
    """Map a root-relative file path to a dotted module name using the first matching root."""
    rest = relpath
    for root in source_roots:
        root_posix = PurePosixPath(root).as_posix()
        if root_posix in {".", ""}:
            rest = relpath
            break
        if relpath.startswith(root_posix.rstrip("/") + "/"):
            rest = relpath[len(root_posix.rstrip("/")) + 1 :]
            break
    parts = list(PurePosixPath(rest).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def iter_python_files(paths: Sequence[Path], root: Path, exclude: Sequence[str]) -> list[Path]:
    """Return the sorted .py files under paths, skipping excluded files and directories."""
    found: set[Path] = set()

    def excluded(path: Path) -> bool:
        rel = relative_to(path, root)
        return match_path(rel if rel is not None else path.name, exclude)

    for start in paths:
        if start.is_file():
            if start.suffix == ".py" and not excluded(start):
                found.add(start)
            continue
        for dirpath, dirnames, filenames in os.walk(start):
            current = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if not excluded(current / d))
            for filename in filenames:
                candidate = current / filename
                if filename.endswith(".py") and not excluded(candidate):
                    found.add(candidate)
    return sorted(found)
