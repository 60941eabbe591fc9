"""The target project's FastAPI version: read from its requirements, pins and lock files.

The scope rule depends on it: from FastAPI 0.118 a yield dependency's exit code (the session
dependency's commit) runs after the response is sent; from 0.106 to 0.117 it ran before. A
project that pins FastAPI below 0.118 is correct today and breaks on upgrade (a warning, SL009);
a project that allows 0.118 or later, or whose requirement is unknown, is affected now (SL001).
"""

import json
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SCOPE_CHANGE = (0, 118)
"""First FastAPI release that runs a yield dependency's exit code after the response."""

_NAME_RE = re.compile(r"^\s*fastapi(?![\w.-])(?:\[[^\]]*\])?\s*(?P<spec>[^;#]*)", re.IGNORECASE)
_CLAUSE_RE = re.compile(r"(?P<op>===|==|~=|<=|>=|!=|<|>)\s*(?P<version>[0-9][0-9A-Za-z.*+!-]*)")
_MARKERS = (
    "pyproject.toml",
    "requirements.txt",
    "setup.py",
    "setup.cfg",
    "uv.lock",
    "poetry.lock",
    "Pipfile.lock",
    "Pipfile",
)


@dataclass(frozen=True, slots=True)
class FastAPIVersion:
    """What is known of the target's FastAPI: the newest version its requirement allows."""

    upper: tuple[int, ...] | None
    """Newest allowed release (exclusive when ``exclusive``); None when unbounded or unknown."""
    exclusive: bool = False
    source: str = ""
    """Where it was read (a file path, ``--fastapi-version`` or ``unknown``)."""

    @property
    def before_scope_change(self) -> bool:
        """Return True when every allowed version runs the dependency's exit before the response."""
        if self.upper is None:
            return False
        if self.exclusive:
            return self.upper <= SCOPE_CHANGE
        return self.upper < SCOPE_CHANGE

    def describe(self) -> str:
        """Return a short human description, e.g. ``<0.116 (requirements.txt)``."""
        if self.upper is None:
            return f"unbounded ({self.source or 'unknown'})"
        version = ".".join(str(part) for part in self.upper)
        return f"{'<' if self.exclusive else '<='}{version} ({self.source})"


def parse_version(text: str) -> tuple[int, ...] | None:
    """Return the numeric release tuple of a version string (``0.115.6`` -> (0, 115, 6))."""
    parts: list[int] = []
    for piece in text.strip().lstrip("v").split("."):
        match = re.match(r"\d+", piece)
        if match is None:
            break
        parts.append(int(match.group()))
        if match.end() != len(piece):
            break
    return tuple(parts) if parts else None


def from_specifier(spec: str, source: str) -> FastAPIVersion | None:
    """Read the newest allowed version from a PEP 440 specifier such as ``>=0.110,<0.116``."""
    uppers: list[tuple[tuple[int, ...], bool]] = []
    found = False
    for match in _CLAUSE_RE.finditer(spec):
        found = True
        op, raw = match.group("op"), match.group("version")
        version = parse_version(raw.rstrip(".*"))
        if version is None:
            continue
        if op in {"==", "==="}:
            if raw.endswith("*"):
                uppers.append(((*version[:-1], version[-1] + 1), True))
            else:
                uppers.append((version, False))
        elif op == "<":
            uppers.append((version, True))
        elif op == "<=":
            uppers.append((version, False))
        elif op == "~=":
            head = version[:-1] if len(version) > 1 else version
            uppers.append(((*head[:-1], head[-1] + 1), True))
    if not uppers:
        return FastAPIVersion(None, source=source) if found or spec.strip() == "" else None

    def key(item: tuple[tuple[int, ...], bool]) -> tuple[tuple[int, ...], int]:
        return (item[0], 0 if item[1] else 1)

    upper, exclusive = min(uppers, key=key)
    return FastAPIVersion(upper, exclusive, source)


def _requirement_lines(lines: Iterable[str]) -> Iterator[str]:
    for line in lines:
        match = _NAME_RE.match(line)
        if match is not None:
            yield match.group("spec").strip()


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _from_pyproject(path: Path) -> FastAPIVersion | None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    project = data.get("project", {})
    requirements: list[str] = []
    if isinstance(project, dict):
        requirements += list(_strings(project.get("dependencies", [])))
        requirements += list(_strings(project.get("optional-dependencies", {})))
    requirements += list(_strings(data.get("dependency-groups", {})))
    for spec in _requirement_lines(requirements):
        result = from_specifier(spec, str(path))
        if result is not None:
            return result
    poetry = data.get("tool", {}).get("poetry", {}) if isinstance(data.get("tool"), dict) else {}
    if isinstance(poetry, dict):
        tables = [poetry.get("dependencies", {})]
        groups = poetry.get("group", {})
        if isinstance(groups, dict):
            tables += [g.get("dependencies", {}) for g in groups.values() if isinstance(g, dict)]
        for table in tables:
            if isinstance(table, dict) and "fastapi" in {k.lower() for k in table}:
                value = next(v for k, v in table.items() if k.lower() == "fastapi")
                spec = value.get("version", "") if isinstance(value, dict) else str(value)
                return _poetry_spec(str(spec), str(path))
    return None


def _poetry_spec(spec: str, source: str) -> FastAPIVersion:
    spec = spec.strip()
    if spec.startswith("^"):
        version = parse_version(spec[1:]) or (0,)
        index = next((i for i, part in enumerate(version) if part != 0), len(version) - 1)
        upper = (*version[:index], version[index] + 1)
        return FastAPIVersion(upper, True, source)
    if spec.startswith("~") and not spec.startswith("~="):
        version = parse_version(spec[1:]) or (0,)
        head = version[:2] if len(version) > 1 else version
        return FastAPIVersion((*head[:-1], head[-1] + 1), True, source)
    if spec and spec[0].isdigit():
        spec = f"=={spec}"
    return from_specifier(spec, source) or FastAPIVersion(None, source=source)


def _from_requirements(path: Path) -> FastAPIVersion | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for spec in _requirement_lines(lines):
        result = from_specifier(spec, str(path))
        if result is not None:
            return result
    return None


def _from_toml_lock(path: Path) -> FastAPIVersion | None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    for package in data.get("package", []):
        if isinstance(package, dict) and str(package.get("name", "")).lower() == "fastapi":
            version = parse_version(str(package.get("version", "")))
            if version is not None:
                return FastAPIVersion(version, False, str(path))
    return None


def _from_pipfile_lock(path: Path) -> FastAPIVersion | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    for section in ("default", "develop"):
        table = data.get(section, {}) if isinstance(data, dict) else {}
        entry = table.get("fastapi") if isinstance(table, dict) else None
        if isinstance(entry, dict) and isinstance(entry.get("version"), str):
            return from_specifier(entry["version"], str(path))
    return None


def _in_directory(directory: Path) -> FastAPIVersion | None:
    """Lock files first (the installed version), then requirement files, then pyproject."""
    for name, reader in (
        ("uv.lock", _from_toml_lock),
        ("poetry.lock", _from_toml_lock),
        ("Pipfile.lock", _from_pipfile_lock),
    ):
        candidate = directory / name
        if candidate.is_file():
            found = reader(candidate)
            if found is not None:
                return found
    for candidate in sorted(directory.glob("requirements*.txt")):
        found = _from_requirements(candidate)
        if found is not None:
            return found
    candidate = directory / "pyproject.toml"
    if candidate.is_file():
        return _from_pyproject(candidate)
    return None


def detect(start: Path) -> FastAPIVersion:
    """Find the FastAPI requirement from start upward (stopping at a repository root)."""
    current = start.resolve()
    if not current.is_dir():
        current = current.parent
    for directory in (current, *current.parents):
        found = _in_directory(directory)
        if found is not None:
            return found
        if (directory / ".git").exists():
            break
    return FastAPIVersion(None, source="unknown")


def project_root(start: Path) -> Path | None:
    """Return the nearest directory at or above start with a project marker file."""
    current = start.resolve()
    if not current.is_dir():
        current = current.parent
    for directory in (current, *current.parents):
        if any((directory / name).is_file() for name in _MARKERS) or any(
            directory.glob("requirements*.txt")
        ):
            return directory
    return None


def from_option(value: str) -> FastAPIVersion:
    """Return the version given by ``--fastapi-version`` / ``fastapi-version`` (exact)."""
    version = parse_version(value)
    if version is None:
        raise ValueError(f"not a version: {value!r}")
    return FastAPIVersion(version, False, "--fastapi-version")
