"""API keys: required by every mutating request under `/api/` and by every job submission.

`ApiKeyMiddleware` enforces the first rule for every path under `/api/` (routes added later and
unknown paths included) before a route is matched or the body is read; job submissions check
the key in their dependency (`get_caller`, through `jobs.queue.EnqueueDep`).

A key travels as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Keys are compared as
SHA-256 digests with `hmac.compare_digest`, against every configured key, so the time taken
tells nothing about which key or how much of it matched. Several keys (`API_KEYS`) allow
rotation: add the new key, move the clients, remove the old one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, status
from fastapi.routing import iter_route_contexts
from starlette.datastructures import Headers
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.errors import DomainError, domain_error_response
from {{ cookiecutter.project_slug }}.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing; every other method needs a key."""
API_PREFIX = "/api/"
"""Every path under it needs a key for any method but `SAFE_METHODS`."""
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


def key_required(path: str, method: str) -> bool:
    """Whether a request for `path` (the route's path, without the root path) needs a key."""
    return method not in SAFE_METHODS and path.startswith(API_PREFIX)


class ApiKeyMiddleware:
    """Pure ASGI middleware: a mutating request under `/api/` needs a valid key.

    It answers 401 (or 503 when keys are required and none is configured) with the body and
    headers of the `DomainError` handler, before routing and before the body is read, so an
    unauthorised client cannot make the service parse what it sends. The one exception is a
    method the path's routes do not declare: that stays routing's 405. A read passes after one
    comparison of its method.
    """

    def __init__(self, app: ASGIApp, *, keys: KeyRing, router: Router) -> None:
        self.app = app
        self.keys = keys
        self.router = router

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """Refuse a mutating `/api/` request without a valid key; pass everything else on.

        A read goes straight to the next app: its coroutine is returned, not awaited here, so
        this layer is no frame of the request's task.
        """
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            return self._check(scope, receive, send)
        return self.app(scope, receive, send)

    async def _check(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
            path = path[len(root) :]  # as Starlette's routing reads it
        if path.startswith(API_PREFIX):
            try:
                self.keys.caller(Headers(scope=scope))
            except DomainError as refused:
                if self._match(scope) is not Match.PARTIAL:
                    await domain_error_response(refused)(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _match(self, scope: Scope) -> Match:
        """How a refused request matches the app's routes (only refusals pay for the search).

        `FULL`: the route goes into the scope, as routing would put it, so that the request's
        metrics carry its template. `PARTIAL` (the path of a route, not one of its methods):
        the request goes on to routing, which answers 405 with `Allow` as the OpenAPI contract
        says, reading no body. `NONE`: an unknown path under `/api/`, refused like the others.
        """
        found = Match.NONE
        for route in iter_route_contexts(self.router.routes):
            match = route.matches(scope)[0]
            if match is Match.FULL:
                scope["route"] = route
                return match
            if match is Match.PARTIAL:
                found = match
        return found


async def get_caller(request: Request) -> str:
    """The key id of the caller (`anonymous` when keys are off); 401 without a valid key."""
    ring: KeyRing | None = getattr(request.app.state, "key_ring", None)
    if ring is None:  # an app assembled without create_app (a test harness): no edge
        return ANONYMOUS
    return ring.caller(request.headers)


CallerDep = Annotated[str, Depends(get_caller)]
"""The authorised caller's key id, for the edge only: never pass it to services or queries."""
