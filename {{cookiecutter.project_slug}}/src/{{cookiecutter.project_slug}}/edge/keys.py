"""API keys: required by every mutating request under `/api/` and by every job submission.

A key travels as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Keys are compared as
SHA-256 digests with `hmac.compare_digest`, against every configured key, so the time taken
tells nothing about which key or how much of it matched. Several keys (`API_KEYS`) allow
rotation: add the new key, move the clients, remove the old one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Request, status
from starlette.datastructures import Headers

from {{ cookiecutter.project_slug }}.errors import DomainError
from {{ cookiecutter.project_slug }}.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing; every other method needs a key."""
API_KEY_HEADER = "X-API-Key"
ANONYMOUS = "anonymous"
"""The caller's name when keys are off (development without `API_KEYS`)."""


class MissingKeyError(DomainError):
    """No API key, or not one of the configured keys."""

    status_code = status.HTTP_401_UNAUTHORIZED


class KeysNotConfiguredError(DomainError):
    """Keys are required here, but none is configured: nothing can be authorised."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE


@dataclass(frozen=True)
class KeyRing:
    """The configured keys as digests, and whether requests must carry one."""

    digests: tuple[bytes, ...]
    required: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """The keys of `API_KEYS`; required outside development or whenever keys are set."""
        keys = (key.get_secret_value() for key in settings.api_keys)
        return cls(digests=_digests(keys), required=settings.api_keys_required)

    def identify(self, headers: Headers) -> str | None:
        """The caller's key id (a digest prefix, never the key) if it sent a valid key."""
        presented = presented_key(headers)
        if presented is None:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        matched: bytes | None = None
        for known in self.digests:  # no early exit: every key is compared every time
            if hmac.compare_digest(digest, known):
                matched = known
        return None if matched is None else matched.hex()[:16]

    def caller(self, headers: Headers) -> str:
        """The key id of an authorised caller; raise 401 (or 503 with no keys) otherwise."""
        caller = self.identify(headers)
        if caller is not None:
            return caller
        if not self.required:
            return ANONYMOUS
        if not self.digests:
            raise KeysNotConfiguredError(
                "this service requires API keys but has none configured; its operator must "
                "set API_KEYS"
            )
        sent = presented_key(headers) is not None
        raise MissingKeyError(
            "invalid API key" if sent else "an API key is required",
            headers={
                "WWW-Authenticate": 'Bearer error="invalid_token"' if sent else "Bearer",
            },
        )


def _digests(keys: Iterable[str]) -> tuple[bytes, ...]:
    return tuple(hashlib.sha256(key.encode()).digest() for key in keys)


def presented_key(headers: Headers) -> str | None:
    """The key a request carries: `X-API-Key`, else an `Authorization: Bearer` token."""
    key = headers.get(API_KEY_HEADER)
    if key:
        return key.strip()
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def key_ring(request: Request) -> KeyRing:
    """The app's key ring, installed by `main.create_app`."""
    return cast(KeyRing, request.app.state.key_ring)


async def require_api_key(request: Request) -> None:
    """Router dependency: mutating methods need a valid key (401 without one)."""
    if request.method not in SAFE_METHODS:
        key_ring(request).caller(request.headers)


async def get_caller(request: Request) -> str:
    """The key id of the caller (`anonymous` when keys are off); 401 without a valid key."""
    ring: KeyRing | None = getattr(request.app.state, "key_ring", None)
    if ring is None:  # an app assembled without create_app (a test harness): no edge
        return ANONYMOUS
    return ring.caller(request.headers)


CallerDep = Annotated[str, Depends(get_caller)]
"""The authorised caller's key id, for the edge only: never pass it to services or queries."""
