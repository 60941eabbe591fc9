"""The request body limit (`MAX_BODY_BYTES`), paid only by requests that carry a body.

Starlette's `RequestBodyLimitMiddleware` does the counting: a `Content-Length` over the limit
is answered 413 in plain text as soon as the app reads the body or starts its response, and a
chunked body is counted as it arrives (the `HTTPException` it raises from `receive()` becomes
`{"detail": "Content Too Large"}`).
FastAPI's `max_body_size` wraps every request in it, and in three more layers, which costs a
`GET` about 5 % of its instructions and a frame on every resumption of the request's task.
`BodyLimitMiddleware` hands a request to the limiter only when the request can have a body:
over HTTP/1.x that is exactly when it has a `Content-Length` or a `Transfer-Encoding` header
(RFC 9112, section 6.3; the server reads no body otherwise). Any other HTTP version is always
counted. A request without a body goes straight on, and this layer is not even a frame of it:
`__call__` returns the next app's coroutine instead of awaiting it.
"""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

_BODY_HEADERS = (b"content-length", b"transfer-encoding")
_FRAMED_VERSIONS = ("1.1", "1.0")
"""HTTP versions whose request bodies are announced by headers (RFC 9112, section 6.3)."""


def has_body(scope: Scope) -> bool:
    """Whether the request can carry body bytes (see the module's docstring)."""
    if scope.get("http_version") not in _FRAMED_VERSIONS:
        return True
    return any(name in _BODY_HEADERS for name, _ in scope["headers"])


class BodyLimitMiddleware:
    """Pure ASGI middleware: requests with a body go through Starlette's body limit."""

    def __init__(self, app: ASGIApp, *, max_body_size: int) -> None:
        self.app = app
        self.limited = RequestBodyLimitMiddleware(app, max_body_size=max_body_size)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """The limited app for a request with a body, else the next app itself."""
        if scope["type"] == "http" and has_body(scope):
            return self.limited(scope, receive, send)
        return self.app(scope, receive, send)
