"""Configuration: defaults, ``[tool.sessionlint]`` in pyproject.toml, CLI overrides."""

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    """Raised for unreadable or invalid configuration (CLI exit code 2)."""


@dataclass(frozen=True, slots=True)
class Config:
    """Effective settings; every field maps to a kebab-case TOML key and a CLI flag."""

    db_modules: tuple[str, ...] = ("*.db", "*.db.*", "db", "db.*")
    settings_modules: tuple[str, ...] = ("*.settings", "settings", "*.config", "config")
    service_modules: tuple[str, ...] = (
        "*.service",
        "*.services",
        "*.services.*",
        "*_service",
        "service",
        "services",
        "services.*",
    )
    router_modules: tuple[str, ...] = (
        "*.router",
        "*.routers",
        "*.routers.*",
        "*.api",
        "*.api.*",
        "*_router",
        "router",
        "routers",
        "routers.*",
        "api",
        "api.*",
    )
    task_modules: tuple[str, ...] = (
        "*.tasks",
        "*.tasks.*",
        "*.worker",
        "*.workers.*",
        "*_tasks",
        "tasks",
        "tasks.*",
        "worker",
        "workers.*",
    )
    session_dependency: str = "get_session_dependency"
    session_aliases: tuple[str, ...] = ("SessionDep",)
    task_session_helper: str = "task_session"
    session_factories: tuple[str, ...] = (
        "async_session_factory",
        "SessionLocal",
        "AsyncSessionLocal",
        "session_factory",
        "direct_session_factory",
    )
    session_getters: tuple[str, ...] = (
        "get_db_session",
        "get_session",
        "get_db",
        "get_async_session",
    )
    exclude: tuple[str, ...] = (
        ".venv",
        "venv",
        "build",
        "dist",
        "node_modules",
        ".git",
        "__pycache__",
    )
    extend_exclude: tuple[str, ...] = ()
    source_roots: tuple[str, ...] = ("src", ".")
    allow_driver_modules: tuple[str, ...] = ()
    allow_urls_in: tuple[str, ...] = (
        "tests/*",
        "*/tests/*",
        "conftest.py",
        "*/conftest.py",
        "docs/*",
    )
    allow_sessions_in: tuple[str, ...] = (
        "migrations/*",
        "*/migrations/*",
        "alembic/*",
        "*/alembic/*",
        "tests/*",
        "*/tests/*",
        "conftest.py",
        "*/conftest.py",
    )
    tenant_names: tuple[str, ...] = (
        "tenant_id",
        "tenant",
        "org_id",
        "organization_id",
        "account_id",
        "company_id",
        "workspace_id",
    )
    fastapi_version: str = ""
    """The target's FastAPI version; empty: read it from the target's requirements."""

    @property
    def excluded(self) -> tuple[str, ...]:
        """Return exclude plus extend-exclude."""
        return (*self.exclude, *self.extend_exclude)


def config_keys() -> dict[str, str]:
    """Return the mapping of kebab-case config keys to Config field names."""
    return {f.name.replace("_", "-"): f.name for f in dataclasses.fields(Config)}


def _is_list_field(name: str) -> bool:
    return isinstance(getattr(Config(), name), tuple)


def _coerce(key: str, field: str, value: object, source: str) -> str | tuple[str, ...]:
    if _is_list_field(field):
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        raise ConfigError(f"{source}: '{key}' must be a list of strings")
    if isinstance(value, str) and value:
        return value
    raise ConfigError(f"{source}: '{key}' must be a non-empty string")


def config_from_table(table: Mapping[str, object], source: str = "config") -> Config:
    """Build a Config from a ``[tool.sessionlint]`` table, rejecting unknown keys."""
    keys = config_keys()
    changes: dict[str, str | tuple[str, ...]] = {}
    for key, value in table.items():
        field = keys.get(key)
        if field is None:
            known = ", ".join(sorted(keys))
            raise ConfigError(f"{source}: unknown key '{key}' in [tool.sessionlint] ({known})")
        changes[field] = _coerce(key, field, value, source)
    return _validated(dataclasses.replace(Config(), **changes), source)  # type: ignore[arg-type]


def _validated(config: Config, source: str) -> Config:
    version = config.fastapi_version
    if version and not re.fullmatch(r"v?\d+(\.\d+)*", version.strip()):
        raise ConfigError(f"{source}: 'fastapi-version' must look like 0.115 or 0.115.6")
    return config


def apply_overrides(config: Config, overrides: Mapping[str, str]) -> Config:
    """Return config with CLI overrides (field name -> comma-separated value) applied."""
    changes: dict[str, str | tuple[str, ...]] = {}
    for field, raw in overrides.items():
        key = field.replace("_", "-")
        if _is_list_field(field):
            changes[field] = tuple(part.strip() for part in raw.split(",") if part.strip())
        else:
            changes[field] = _coerce(key, field, raw.strip(), f"--{key}")
    return _validated(dataclasses.replace(config, **changes), "--fastapi-version")  # type: ignore[arg-type]


def find_pyproject(start: Path) -> Path | None:
    """Return the nearest pyproject.toml at or above start, if any."""
    current = start.resolve()
    if current.is_file():
        current = current.parent
    for directory in (current, *current.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_pyproject(path: Path) -> Config:
    """Read ``[tool.sessionlint]`` from a pyproject.toml (defaults when absent)."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    tool = data.get("tool", {})
    table = tool.get("sessionlint", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.sessionlint] must be a table")
    return config_from_table(table, str(path))
