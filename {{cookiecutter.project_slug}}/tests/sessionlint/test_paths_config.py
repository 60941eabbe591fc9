"""Module naming, glob matching and configuration loading."""

from pathlib import Path

import pytest

from sessionlint.config import (
    Config,
    ConfigError,
    apply_overrides,
    config_from_table,
    load_pyproject,
)
from sessionlint.context import feature_name
from sessionlint.events import Status
from sessionlint.paths import iter_python_files, match_module, match_path, module_name
from sessionlint.runner import effective_root, run


@pytest.mark.parametrize(
    ("relpath", "expected"),
    [
        ("src/app/db/__init__.py", "app.db"),
        ("src/app/profiles/router.py", "app.profiles.router"),
        ("debug_sitemap_flow.py", "debug_sitemap_flow"),
        ("migrations/env.py", "migrations.env"),
        ("src/__init__.py", ""),
    ],
)
def test_module_name(relpath: str, expected: str) -> None:
    assert module_name(relpath, ("src", ".")) == expected


def test_module_name_without_dot_root_keeps_full_path() -> None:
    assert module_name("lib/pkg/mod.py", ("src",)) == "lib.pkg.mod"


@pytest.mark.parametrize(
    ("module", "patterns", "expected"),
    [
        ("app.db", ("*.db",), True),
        ("app.db.session", ("*.db.*",), True),
        ("db", ("db",), True),
        ("app.dbx", ("*.db", "*.db.*"), False),
        ("services.sitemap.processing_service", ("*_service",), True),
    ],
)
def test_match_module(module: str, patterns: tuple[str, ...], expected: bool) -> None:
    assert match_module(module, patterns) is expected


def test_match_path_matches_components_and_globs() -> None:
    assert match_path("a/.venv/lib/x.py", (".venv",))
    assert match_path("tests/sessionlint/fixtures/bad/x.py", ("tests/sessionlint/fixtures",))
    assert match_path("pkg/tests/test_x.py", ("*/tests/*",))
    assert not match_path("src/app/testsuite.py", ("tests",))


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("app.profiles.router", "Profiles"),
        ("services.sitemap.processing_service", "Sitemap"),
        ("routers.google_maps_api", "Google Maps"),
        ("services.profile_service", "Profile"),
        ("debug_sitemap_flow", "Debug Sitemap Flow"),
    ],
)
def test_feature_name(module: str, expected: str) -> None:
    assert feature_name(module) == expected


def test_feature_name_for_roles() -> None:
    assert feature_name("app.db.session", is_db=True) == "Database"
    assert feature_name("app.settings", is_settings=True) == "Settings"


def test_config_table_keys_are_kebab_case() -> None:
    config = config_from_table({"db-modules": ["core.database"], "session-dependency": "dep"})
    assert config.db_modules == ("core.database",)
    assert config.session_dependency == "dep"
    assert config.task_session_helper == Config().task_session_helper


@pytest.mark.parametrize(
    "table",
    [{"db_modules": ["x"]}, {"db-modules": 3}, {"session-dependency": ["x"]}, {"nope": 1}],
)
def test_invalid_config_is_rejected(table: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        config_from_table(table)


def test_overrides_split_on_commas() -> None:
    config = apply_overrides(Config(), {"db_modules": "a.db, b.db ,", "task_session_helper": "ts"})
    assert config.db_modules == ("a.db", "b.db")
    assert config.task_session_helper == "ts"


def test_load_pyproject_without_table_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\n', encoding="utf-8")
    assert load_pyproject(path) == Config()


def test_load_pyproject_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.sessionlint\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_pyproject(path)


def test_discovery_respects_exclude_and_extend_exclude(tmp_path: Path) -> None:
    for rel in ("a.py", ".venv/b.py", "fixtures/c.py", "pkg/d.py", "pkg/e.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("", encoding="utf-8")
    config = Config(extend_exclude=("fixtures",))
    files = iter_python_files([tmp_path], tmp_path, config.excluded)
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["a.py", "pkg/d.py"]


def test_fastapi_version_key_is_validated() -> None:
    assert config_from_table({"fastapi-version": "0.115.6"}).fastapi_version == "0.115.6"
    assert apply_overrides(Config(), {"fastapi_version": "0.120"}).fastapi_version == "0.120"
    with pytest.raises(ConfigError, match="fastapi-version"):
        config_from_table({"fastapi-version": "latest"})
    with pytest.raises(ConfigError, match="fastapi-version"):
        apply_overrides(Config(), {"fastapi_version": "soon"})


def test_a_project_nested_below_the_root_is_checked_as_itself(tmp_path: Path) -> None:
    nested = tmp_path / "tests" / "sample_app"
    (nested / "app" / "db").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "outer"\n', encoding="utf-8")
    (nested / "requirements.txt").write_text("fastapi==0.115.6\n", encoding="utf-8")
    (nested / "app" / "db" / "engine.py").write_text(
        "from sqlalchemy import create_engine\nengine = create_engine('sqlite://')\n",
        encoding="utf-8",
    )
    # Relative to the outer root the file would sit under tests/ (allow-sessions-in) and its
    # module would not be a db module; checked as its own project it is app.db.engine.
    assert effective_root([nested], tmp_path) == nested.resolve()
    assert effective_root([nested / "app"], tmp_path) == nested.resolve()
    assert effective_root([tmp_path], tmp_path) == tmp_path
    result = run([nested], Config(), tmp_path)
    assert [(e.relpath, e.method, e.status) for e in result.events] == [
        ("app/db/engine.py", "Engine creation", Status.CORRECT)
    ]
