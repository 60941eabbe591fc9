"""Request-time refusal of URLs the outbound guard would block (a 422, not a failed job)."""

from __future__ import annotations

from {{ cookiecutter.project_slug }}.errors import DomainError
from {{ cookiecutter.project_slug }}.outbound.errors import BlockedURLError
from {{ cookiecutter.project_slug }}.outbound.guard import (
    Allowlist,
    check_url,
)
from {{ cookiecutter.project_slug }}.settings import Settings


class RefusedURLError(DomainError):
    """The URL points somewhere the service may not fetch."""

    status_code = 422


def refuse_blocked_url(url: str, settings: Settings) -> str:
    """Return the URL if the guard allows it; raise `RefusedURLError` with the reason if not.

    Host names are resolved (and checked again) when the job fetches; this refuses what the URL
    itself shows: the scheme, credentials, literal addresses in blocked ranges, `localhost`.
    """
    try:
        return str(check_url(url, Allowlist.parse(settings.outbound_allowlist)))
    except BlockedURLError as exc:
        raise RefusedURLError(f"url refused: {exc.reason}") from exc
