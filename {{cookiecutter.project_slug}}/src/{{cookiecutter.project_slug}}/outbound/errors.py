"""Errors of outbound requests; each carries a `reason` a user can read."""

from __future__ import annotations


class OutboundError(Exception):
    """An outbound request failed or was refused; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BlockedURLError(OutboundError):
    """The URL or an address it resolves to is not allowed (SSRF guard)."""


class TooLargeError(OutboundError):
    """The response body is larger than the configured limit."""


class TooManyRedirectsError(OutboundError):
    """The redirect chain is longer than the configured limit."""


class FetchTimeoutError(OutboundError):
    """The server did not answer in time."""


class BodyDecodingError(OutboundError):
    """The response declared a Content-Encoding its body does not follow."""


class ConnectionFailedError(OutboundError):
    """The host could not be resolved or reached, or the connection broke."""
