"""Validate the template answers before cookiecutter writes a single project file.

Each check prints one line naming the answer, the value and the fix, then exits 1.
Cookiecutter removes the (still empty) project directory when this hook fails.
"""

from __future__ import annotations

import json
import keyword
import re
import sys

SUPPORTED_PYTHON = ("3.11", "3.12", "3.13")
PROVIDERS = ("postgres", "supabase")
CHOICES = {
    "task_engine": ("redis", "rabbitmq", "none"),
    "ci_provider": ("github", "gitlab", "none"),
    "deploy_target": ("render", "none"),
}
WORKLOADS = ("include_sitemaps", "include_places", "include_pages")
MAX_SLUG = 40
SLUG = re.compile(r"^[a-z][a-z0-9_]*$")
SUPABASE_REF = re.compile(r"^[a-z]{20}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
# Names that would shadow a dependency or the standard library inside the project's own venv.
RESERVED = {"test", "tests", "app", "src", "db", "alembic", "fastapi", "sqlalchemy", "sessionlint"}

# Every answer, as cookiecutter resolved it (booleans stay booleans; replays are not checked by
# cookiecutter itself, hence the checks of choices below).
answers = json.loads({{ cookiecutter | tojson | tojson }})


def problems(values: dict[str, object]) -> list[str]:
    """Return one readable line per invalid answer."""
    found: list[str] = []
    found += choice_problems(values)
    name = str(values["project_name"])
    if not name.strip():
        found.append("project_name is empty: give the service a human-readable name.")
    elif any(char in name for char in '"\\') or not name.isprintable():
        found.append(
            f"project_name {name!r} may not contain double quotes, backslashes or control "
            "characters (it is written into Python and TOML strings)."
        )
    slug = str(values["project_slug"])
    if not SLUG.match(slug) or keyword.iskeyword(slug):
        found.append(
            f"project_slug {slug!r} is not a valid Python package name: use lowercase letters, "
            "digits and underscores, starting with a letter (for example 'my_service')."
        )
    elif len(slug) > MAX_SLUG:
        found.append(
            f"project_slug {slug!r} is longer than {MAX_SLUG} characters: choose a shorter name "
            "(it prefixes every import)."
        )
    elif slug in RESERVED or slug in sys.stdlib_module_names:
        found.append(
            f"project_slug {slug!r} would shadow an existing module: choose a more specific name."
        )
    email = str(values["author_email"])
    if email and not EMAIL.match(email):
        found.append(f"author_email {email!r} is not an email address.")
    version = values["python_version"]
    if version not in SUPPORTED_PYTHON:
        found.append(
            f"python_version {version!r} is not supported by the stack: "
            f"choose one of {', '.join(SUPPORTED_PYTHON)}."
        )
    provider = values["database_provider"]
    if provider not in PROVIDERS:
        found.append(
            f"database_provider {provider!r} is unknown: choose one of {', '.join(PROVIDERS)}."
        )
    ref = str(values["supabase_project_ref"])
    if ref and provider != "supabase":
        found.append(
            f"supabase_project_ref {ref!r} is set but database_provider is {provider!r}: "
            "the ref only applies to Supabase; leave it blank or choose database_provider=supabase."
        )
    elif ref and not SUPABASE_REF.match(ref):
        found.append(
            f"supabase_project_ref {ref!r} has the wrong shape: a Supabase project ref is "
            "20 lowercase letters (Dashboard > Project Settings > General)."
        )
    return found


def choice_problems(values: dict[str, object]) -> list[str]:
    """The answers cookiecutter does not check on replay: workload flags and choices."""
    found = [
        f"{flag} must be yes or no (true/false), not {values[flag]!r}."
        for flag in WORKLOADS
        if not isinstance(values[flag], bool)
    ]
    found += [
        f"{answer} {values[answer]!r} is unknown: choose one of {', '.join(choices)}."
        for answer, choices in CHOICES.items()
        if values[answer] not in choices
    ]
    return found


def main() -> int:
    """Print every problem, one per line, and fail generation if there is any."""
    found = problems(answers)
    for line in found:
        print(f"ERROR: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
