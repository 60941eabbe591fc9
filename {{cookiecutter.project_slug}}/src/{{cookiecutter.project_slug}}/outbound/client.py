"""The shared outbound HTTP client: every request is checked, resolved and pinned to a safe IP.

Build one client per process or job with `build_client(config)` and fetch with `fetch(...)`,
which follows redirects itself (re-checking every hop) and caps the body size.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from {{ cookiecutter.project_slug }}.outbound.errors import (
    BlockedURLError,
    ConnectionFailedError,
    FetchTimeoutError,
    OutboundError,
    TooLargeError,
    TooManyRedirectsError,
)
from {{ cookiecutter.project_slug }}.outbound.guard import (
    DEFAULT_PORTS,
    Allowlist,
    check_url,
    resolve_checked,
)
from {{ cookiecutter.project_slug }}.settings import Settings

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
TLS_POOLS = 32  # https connection pools kept, one per host name (least recently used dropped)

TransportFactory = Callable[[], httpx.AsyncBaseTransport]


@dataclass(frozen=True)
class OutboundConfig:
    """Limits and identity of outbound requests."""

    allowlist: Allowlist = field(default_factory=Allowlist)
    timeout: float = 10.0
    """Seconds for each network step (connect, read a chunk, write, wait for a connection)."""
    total_timeout: float = 30.0
    """Seconds for one `fetch`, redirects and body included (stops slow-drip bodies)."""
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = "{{ cookiecutter.project_slug }}/0.1"

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundConfig:
        """Build the config from the `OUTBOUND_*` settings."""
        return cls(
            allowlist=Allowlist.parse(settings.outbound_allowlist),
            timeout=settings.outbound_timeout,
            total_timeout=3 * settings.outbound_timeout,
            max_bytes=settings.outbound_max_bytes,
            max_redirects=settings.outbound_max_redirects,
            user_agent=settings.outbound_user_agent,
        )


@dataclass(frozen=True)
class FetchResult:
    """A fetched response: the requested and final URL, status, headers and the whole body."""

    url: str
    final_url: str
    status_code: int
    content_type: str | None
    headers: httpx.Headers
    body: bytes

    @property
    def media_type(self) -> str | None:
        """The content type without parameters, lower-cased (`text/html`)."""
        if not self.content_type:
            return None
        return self.content_type.split(";", 1)[0].strip().lower() or None

    @property
    def is_success(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status_code < 300


class GuardedTransport(httpx.AsyncBaseTransport):
    """Resolve and check each request's host, then connect to the checked IP.

    The URL's host is replaced by the IP; the `Host` header and, for https, the TLS server name
    (`sni_hostname`, also used for certificate checks) keep the original name. https pools are
    kept per host name so a TLS connection is never reused for another name on the same IP.
    """

    def __init__(self, allowlist: Allowlist, *, inner: TransportFactory | None = None) -> None:
        self._allowlist = allowlist
        self._inner = inner or httpx.AsyncHTTPTransport
        self._plain = self._inner()
        self._tls: OrderedDict[str, httpx.AsyncBaseTransport] = OrderedDict()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Check the URL, pin the connection to a checked address and send the request."""
        url = check_url(request.url, self._allowlist)
        port = url.port or DEFAULT_PORTS[url.scheme]
        addresses = await resolve_checked(url.host, port, self._allowlist)
        transport = await self._transport_for(url)
        for address in addresses[:-1]:
            try:
                return await transport.handle_async_request(self._pinned(request, url, address))
            except httpx.ConnectError:
                continue  # try the next checked address (IPv6 then IPv4, for example)
        return await transport.handle_async_request(self._pinned(request, url, addresses[-1]))

    @staticmethod
    def _pinned(request: httpx.Request, url: httpx.URL, address: str) -> httpx.Request:
        """A copy of `request` addressed to `address`, keeping the Host header and TLS name."""
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions["sni_hostname"] = url.host
        return httpx.Request(
            request.method,
            url.copy_with(host=address),
            headers=request.headers,  # carries the original Host header
            stream=request.stream,
            extensions=extensions,
        )

    async def _transport_for(self, url: httpx.URL) -> httpx.AsyncBaseTransport:
        """The plain transport for http; a per-host-name transport for https."""
        if url.scheme != "https":
            return self._plain
        if url.host in self._tls:
            self._tls.move_to_end(url.host)
            return self._tls[url.host]
        self._tls[url.host] = self._inner()
        if len(self._tls) > TLS_POOLS:
            _, oldest = self._tls.popitem(last=False)
            await oldest.aclose()
        return self._tls[url.host]

    async def aclose(self) -> None:
        """Close every connection pool."""
        await self._plain.aclose()
        while self._tls:
            await self._tls.popitem()[1].aclose()


def build_client(
    config: OutboundConfig, *, inner: TransportFactory | None = None
) -> httpx.AsyncClient:
    """Return the guarded client; `inner` replaces the network transport (tests only)."""
    return httpx.AsyncClient(
        transport=GuardedTransport(config.allowlist, inner=inner),
        timeout=httpx.Timeout(config.timeout),
        follow_redirects=False,
        trust_env=False,  # proxies from the environment would bypass the pinned connection
        headers={"User-Agent": config.user_agent, "Accept-Encoding": "identity"},
    )


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    config: OutboundConfig,
    accept: str | None = None,
    truncate: bool = False,
) -> FetchResult:
    """GET `url`, following up to `config.max_redirects` redirects, each hop re-checked.

    The body is streamed and refused past `config.max_bytes` (`TooLargeError`), or cut there
    when `truncate` is set. Any status is returned; failures raise `OutboundError` subclasses.
    """
    current = check_url(url, config.allowlist)
    try:
        async with asyncio.timeout(config.total_timeout):
            for _ in range(config.max_redirects + 1):
                result = await _fetch_once(client, current, config, accept, truncate)
                location = _redirect_target(result)
                if location is None:
                    return dataclasses.replace(result, url=url)
                current = _next_hop(current, location, config.allowlist)
    except TimeoutError as exc:
        raise FetchTimeoutError(f"timeout: {url} took longer than {config.total_timeout}s") from exc
    raise TooManyRedirectsError(f"too many redirects: more than {config.max_redirects} from {url}")


def _redirect_target(result: FetchResult) -> str | None:
    """The Location of a redirect response, else None."""
    if result.status_code in REDIRECT_STATUSES:
        return result.headers.get("location") or None
    return None


def _next_hop(current: httpx.URL, location: str, allowlist: Allowlist) -> httpx.URL:
    """Resolve a Location header against the current URL and check the result."""
    try:
        target = current.join(location)
    except httpx.InvalidURL as exc:
        raise BlockedURLError(f"invalid redirect target {location!r}") from exc
    return check_url(target, allowlist)


async def _fetch_once(
    client: httpx.AsyncClient,
    url: httpx.URL,
    config: OutboundConfig,
    accept: str | None,
    truncate: bool,
) -> FetchResult:
    """One GET without redirects, with httpx errors turned into `OutboundError`s."""
    headers = {"Accept": accept} if accept else {}
    try:
        async with client.stream("GET", url, headers=headers) as response:
            body = await _read_capped(response, config.max_bytes, truncate)
    except httpx.TimeoutException as exc:
        raise FetchTimeoutError(f"timeout: {url.host} did not answer in time") from exc
    except httpx.TransportError as exc:
        detail = str(exc) or type(exc).__name__
        raise ConnectionFailedError(f"connection failed: {url.host}: {detail}") from exc
    return FetchResult(
        url=str(url),
        final_url=str(url),
        status_code=response.status_code,
        content_type=response.headers.get("content-type"),
        headers=response.headers,
        body=body,
    )


async def _read_capped(response: httpx.Response, max_bytes: int, truncate: bool) -> bytes:
    """Read the body; past `max_bytes` raise `TooLargeError` or, with `truncate`, cut it."""
    declared = response.headers.get("content-length", "")
    if not truncate and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(response, max_bytes)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            if truncate:
                return bytes(body[:max_bytes])
            raise _too_large(response, max_bytes)
    return bytes(body)


def _too_large(response: httpx.Response, max_bytes: int) -> OutboundError:
    """The error for a body past the limit."""
    return TooLargeError(f"too large: {response.request.url} is larger than {max_bytes} bytes")
