"""The body limit is paid only by requests that can carry a body, and misses none of them.

`tests/test_main.py` proves the 413s through the whole app; here, which requests reach the
limiter, down to the ASGI messages a server would send.
"""

from __future__ import annotations

import pytest
from starlette.types import Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.edge.body import BodyLimitMiddleware, has_body

LIMIT = 10
OWN_CALL = BodyLimitMiddleware.__call__
"""The middleware's own method, taken at collection: once a test initialises Sentry, its Starlette
integration wraps every middleware class's `__call__` in a span layer for the whole process."""


def http_scope(version: str, headers: list[tuple[bytes, bytes]]) -> Scope:
    """An HTTP scope as a server would build it."""
    return {
        "type": "http",
        "http_version": version,
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), *headers],
    }


@pytest.mark.parametrize(
    ("version", "headers", "expected"),
    [
        ("1.1", [], False),
        ("1.0", [(b"accept", b"*/*")], False),
        ("1.1", [(b"content-length", b"0")], True),
        ("1.1", [(b"content-length", b"12")], True),
        ("1.1", [(b"transfer-encoding", b"chunked")], True),
        ("2", [], True),  # HTTP/2 and 3 frame bodies without announcing them
        ("3", [], True),
    ],
)
def test_a_request_has_a_body_exactly_when_its_version_and_headers_allow_one(
    version: str, headers: list[tuple[bytes, bytes]], expected: bool
) -> None:
    assert has_body(http_scope(version, headers)) is expected


async def reading_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the whole body, then answer 200 with its size."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


async def call(scope: Scope, chunks: list[bytes]) -> tuple[int, bytes]:
    """Serve `chunks` as the request body through the limit; the status and response body."""
    incoming: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await BodyLimitMiddleware(reading_app, max_body_size=LIMIT)(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def test_an_http_2_body_without_content_length_is_counted() -> None:
    status, body = await call(http_scope("2", []), [b"x" * 6, b"x" * 6])
    assert (status, body) == (413, b"Content Too Large")


async def test_a_chunked_http_1_body_is_counted() -> None:
    scope = http_scope("1.1", [(b"transfer-encoding", b"chunked")])
    status, body = await call(scope, [b"x" * 6, b"x" * 6])
    assert (status, body) == (413, b"Content Too Large")


async def test_a_body_at_the_limit_passes() -> None:
    scope = http_scope("1.1", [(b"content-length", b"10")])
    assert await call(scope, [b"x" * 4, b"x" * 6]) == (200, b"10")


async def test_a_request_without_a_body_is_not_wrapped() -> None:
    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("never awaited")

    middleware = BodyLimitMiddleware(inner, max_body_size=LIMIT)

    async def receive() -> Message:
        raise AssertionError("never called")

    async def send(message: Message) -> None:
        raise AssertionError("never called")

    bare = OWN_CALL(middleware, http_scope("1.1", []), receive, send)
    wrapped = OWN_CALL(middleware, http_scope("1.1", [(b"content-length", b"1")]), receive, send)
    try:
        # The next app's own coroutine: no layer of the limiter, no frame of this middleware.
        assert getattr(bare, "cr_code", None) is inner.__code__
        assert getattr(wrapped, "cr_code", None) is not inner.__code__
    finally:
        bare.close()  # type: ignore[attr-defined]
        wrapped.close()  # type: ignore[attr-defined]
