"""Per-file facts the rules depend on: module name, role and allowances."""

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sessionlint.config import Config
from sessionlint.paths import display_path, match_module, match_path, module_name, relative_to

_ROLE_STEMS = frozenset(
    {
        "router",
        "routers",
        "routes",
        "service",
        "services",
        "models",
        "schemas",
        "tasks",
        "worker",
        "workers",
        "api",
        "deps",
        "dependencies",
        "views",
        "main",
        "__init__",
    }
)
_GENERIC_DIRS = frozenset(
    {
        "src",
        "app",
        "routers",
        "routes",
        "services",
        "api",
        "session",
        "core",
        "tasks",
        "workers",
        "models",
        "schemas",
        "utils",
        "common",
        "lib",
        "scripts",
        "tests",
        "v1",
        "v2",
    }
)
_SUFFIXES = ("_service", "_services", "_router", "_routes", "_api", "_tasks", "_task", "_worker")


@dataclass(frozen=True, slots=True)
class FileContext:
    """Where a file sits in the project and which rules relax for it."""

    path: str
    relpath: str
    module: str
    feature: str
    is_db: bool = False
    is_settings: bool = False
    is_service: bool = False
    is_router: bool = False
    is_task: bool = False
    allow_driver: bool = False
    allow_urls: bool = False
    allow_sessions: bool = False


def feature_name(module: str, *, is_db: bool = False, is_settings: bool = False) -> str:
    """Derive a human name ("Profiles", "Sitemap") from a dotted module name."""
    if is_db:
        return "Database"
    if is_settings:
        return "Settings"
    parts = [part for part in module.split(".") if part]
    if not parts:
        return "Root"
    stem = parts[-1]
    parents = parts[:-1]
    if parents and (stem in _ROLE_STEMS or parents[-1] not in _GENERIC_DIRS):
        chosen = parents[-1]
    else:
        chosen = stem
        for suffix in _SUFFIXES:
            if chosen.endswith(suffix) and len(chosen) > len(suffix):
                chosen = chosen[: -len(suffix)]
                break
    return " ".join(word.capitalize() for word in chosen.split("_") if word) or chosen


def build_context(path: Path, root: Path, config: Config) -> FileContext:
    """Compute the FileContext of a file relative to the project root."""
    rel = relative_to(path, root)
    if rel is None:
        rel = PurePosixPath(display_path(path)).as_posix().lstrip("/")
    module = module_name(rel, config.source_roots)
    is_db = match_module(module, config.db_modules)
    is_settings = match_module(module, config.settings_modules)
    return FileContext(
        path=display_path(path),
        relpath=rel,
        module=module,
        feature=feature_name(module, is_db=is_db, is_settings=is_settings),
        is_db=is_db,
        is_settings=is_settings,
        is_service=match_module(module, config.service_modules),
        is_router=match_module(module, config.router_modules),
        is_task=match_module(module, config.task_modules),
        allow_driver=match_module(module, config.allow_driver_modules),
        allow_urls=match_path(rel, config.allow_urls_in),
        allow_sessions=match_path(rel, config.allow_sessions_in),
    )
