"""The ``audit`` subcommand on the good, bad and legacy trees."""

import json

from .helpers import FIXTURES, run_cli

LEGACY_FLAGS = ("--no-config", "--db-modules", "session.*,db.*")


def _audit(*args: str, tree: str) -> dict[str, list[dict[str, object]]]:
    result = run_cli("audit", "--format", "json", *args, cwd=FIXTURES / tree)
    assert result.returncode == 0, result.stderr
    payload: dict[str, list[dict[str, object]]] = json.loads(result.stdout)
    return payload


def _audit_json(*args: str, tree: str) -> list[dict[str, object]]:
    return _audit(*args, tree=tree)["rows"]


def test_good_tree_audit_has_only_correct_and_one_review() -> None:
    rows = _audit_json(tree="good")
    statuses = {(row["file"], row["status"]) for row in rows}
    assert ("scripts/seed.py", "review") in statuses
    assert {row["status"] for row in rows} == {"correct", "review"}
    methods = {(row["file"], row["method"]) for row in rows if row["status"] == "correct"}
    assert ("src/app/db/engine.py", "Engine creation") in methods
    assert ("src/app/db/engine.py", "Sessionmaker creation") in methods
    assert ("src/app/db/session.py", "Session dependency definition") in methods
    assert ("src/app/profiles/router.py", "SessionDep") in methods
    assert ("src/app/profiles/router.py", "Depends(get_session_dependency)") in methods
    assert ("src/app/profiles/service.py", "session parameter") in methods
    assert ("src/app/profiles/tasks.py", "task_session()") in methods
    assert ("migrations/env.py", "Direct engine connection") in methods


def test_audit_json_keys() -> None:
    payload = _audit(tree="bad")
    assert set(payload) == {"rows", "sources"}
    rows = payload["rows"]
    assert set(rows[0]) == {
        "module",
        "file",
        "line",
        "method",
        "status",
        "code",
        "severity",
        "scope",
        "notes",
    }
    assert set(payload["sources"][0]) == {"name", "path", "line", "kind", "why"}
    fixes = [row for row in rows if row["status"] == "fix"]
    assert all(str(row["notes"]).startswith(f"{row['code']}: ") for row in fixes)


def test_bad_tree_flags_second_sessionmaker_for_review() -> None:
    rows = _audit_json(tree="bad")
    makers = [row for row in rows if row["method"] == "Sessionmaker creation"]
    db_makers = [row for row in makers if row["file"] == "src/app/db/__init__.py"]
    assert [row["status"] for row in db_makers] == ["review", "review"]


def test_legacy_audit_statuses() -> None:
    rows = _audit_json(*LEGACY_FLAGS, tree="legacy")
    got = {(row["file"], row["line"], row["status"], row["code"]) for row in rows}
    expected = {
        ("debug_sitemap_flow.py", 3, "fix", "SL004"),
        ("debug_sitemap_flow.py", 7, "fix", "SL005"),
        ("src/config/settings.py", 3, "review", None),
        ("src/db/direct_session.py", 5, "review", None),
        ("src/db/direct_session.py", 6, "review", None),
        ("src/session/async_session.py", 5, "review", None),
        ("src/session/async_session.py", 6, "review", None),
        ("src/routers/batch_page_scraper.py", 10, "fix", "SL001"),
        ("src/routers/batch_page_scraper.py", 16, "fix", "SL001"),
        ("src/routers/google_maps_api.py", 13, "fix", "SL001"),
        ("src/routers/google_maps_api.py", 15, "fix", "SL006"),
        ("src/routers/profile.py", 12, "correct", None),
        ("src/services/profile_service.py", 7, "correct", None),
        ("src/services/profile_service.py", 8, "fix", "SL007"),
        ("src/services/sitemap/processing_service.py", 5, "fix", "SL002"),
    }
    assert expected <= got
    assert not {row for row in got if row[2] == "fix"} - expected
    # The service commits a session it opened itself: the opening is the finding, not the commit.
    assert ("src/services/sitemap/processing_service.py", 7, "fix", "SL003") not in got
    modules = {row["file"]: row["module"] for row in rows}
    assert modules["src/services/sitemap/processing_service.py"] == "Sitemap"
    assert modules["src/routers/profile.py"] == "Profile"
    assert modules["src/routers/google_maps_api.py"] == "Google Maps"


def test_legacy_audit_markdown() -> None:
    result = run_cli("audit", *LEGACY_FLAGS, cwd=FIXTURES / "legacy")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "| Module | File | Line | Connection Method | Status | Notes |"
    assert (
        "| Sitemap | src/services/sitemap/processing_service.py | 5 | Direct session creation "
        "| ❌ Fix Required | SL002: get_session() outside the db package |"
    ) in lines
    assert (
        "| Profile | src/routers/profile.py | 12 | Depends(get_session_dependency) "
        "| ✅ Correct | request session |"
    ) in lines
    summary = next(line for line in lines if line.startswith("Summary: "))
    assert "❌ Fix Required" in summary


def test_legacy_audit_lists_inferred_sources() -> None:
    sources = _audit(*LEGACY_FLAGS, tree="legacy")["sources"]
    got = {(s["name"], s["path"], s["line"], s["kind"]) for s in sources}
    assert got == {
        ("db.direct_session.direct_engine", "src/db/direct_session.py", 5, "engine"),
        (
            "db.direct_session.direct_session_factory",
            "src/db/direct_session.py",
            6,
            "session factory",
        ),
        ("session.async_session.engine", "src/session/async_session.py", 5, "engine"),
        (
            "session.async_session.async_session_factory",
            "src/session/async_session.py",
            6,
            "session factory",
        ),
        ("session.async_session.get_session", "src/session/async_session.py", 9, "session source"),
        (
            "session.async_session.get_db_session",
            "src/session/async_session.py",
            14,
            "session source",
        ),
        (
            "session.async_session.get_session_dependency",
            "src/session/async_session.py",
            19,
            "session source",
        ),
    }
    why = {s["name"]: s["why"] for s in sources}
    assert why["session.async_session.get_session"] == (
        "yields a session entered from async_session_factory()"
    )


def test_legacy_audit_markdown_lists_sources_after_the_summary() -> None:
    lines = run_cli("audit", *LEGACY_FLAGS, cwd=FIXTURES / "legacy").stdout.splitlines()
    heading = lines.index("## Session sources and engines")
    assert lines[heading - 2].startswith("Summary: ")
    assert lines[heading + 2] == "| Name | Defined at | Kind | Why |"
    assert (
        "| session.async_session.get_db_session | src/session/async_session.py:14 "
        "| session source | yields a session entered from async_session_factory() |"
    ) in lines


def test_legacy_check_without_config_fails() -> None:
    result = run_cli("check", *LEGACY_FLAGS, cwd=FIXTURES / "legacy")
    assert result.returncode == 1


def test_fail_on() -> None:
    assert run_cli("audit", "--fail-on", "fix", cwd=FIXTURES / "bad").returncode == 1
    assert run_cli("audit", "--fail-on", "fix", cwd=FIXTURES / "good").returncode == 0
    assert run_cli("audit", "--fail-on", "review", cwd=FIXTURES / "good").returncode == 1
