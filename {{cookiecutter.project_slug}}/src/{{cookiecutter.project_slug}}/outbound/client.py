"""The shared outbound HTTP client: every request is checked, resolved and pinned to a safe IP.

Build one client per process or job with `build_client(config)`. `fetch(...)` returns a whole
(capped) body; `fetch_stream(...)` hands the body over chunk by chunk as it arrives, so a large
document never sits in memory. Both follow redirects themselves (re-checking every hop), cap the
body's size and spend at most `config.total_timeout` seconds waiting on the network.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from types import TracebackType
from typing import Any

import httpx

from {{ cookiecutter.project_slug }}.db.guard import check_outbound_request
{%- if cookiecutter.include_sitemaps or cookiecutter.include_places or cookiecutter.include_pages %}
from {{ cookiecutter.project_slug }}.observability.metrics import MeteredTransport
{%- endif %}
from {{ cookiecutter.project_slug }}.outbound.errors import (
    BlockedURLError,
    BodyDecodingError,
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
from {{ cookiecutter.project_slug }}.outbound.network import PoolTransport
from {{ cookiecutter.project_slug }}.settings import Settings

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
TLS_POOLS = 32  # https connection pools kept, one per host name (least recently used dropped)
DECODE_STEP = 64 * 1024  # bytes produced per step when undoing a Content-Encoding

TransportFactory = Callable[[], httpx.AsyncBaseTransport]


@dataclass(frozen=True)
class OutboundConfig:
    """Limits and identity of outbound requests."""

    allowlist: Allowlist = field(default_factory=Allowlist)
    timeout: float = 10.0
    """Seconds for each network step (connect, read a chunk, write, wait for a connection)."""
    total_timeout: float = 30.0
    """Seconds one fetch may spend waiting on the network, redirects and body included (stops
    slow-drip bodies); the time a caller spends on a streamed body's chunks is not counted."""
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
class ResponseHead:
    """What is known of a response before its body: requested and final URL, status, headers."""

    url: str
    final_url: str
    status_code: int
    content_type: str | None
    headers: httpx.Headers

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


@dataclass(frozen=True)
class FetchResult(ResponseHead):
    """A fetched response with its whole body."""

    body: bytes


class _Budget:
    """The seconds a fetch may still spend waiting on the network, across hops and body reads.

    Each wait runs inside it: `async with budget:` raises `FetchTimeoutError` when it runs out.
    It is entered for each hop's headers and each body chunk, so a wait costs two clock readings
    and no timer: one timer per fetch (armed at its first wait for all of the budget, re-armed
    when it fires early because the caller's own work between waits does not count) cancels the
    waiting task when the budget is spent, as `asyncio.timeout` does. A timer per wait
    (`asyncio.timeout_at`) was 4 % of a page batch's instructions. Call `close()` when the
    fetch ends. Waits of one budget do not overlap (one fetch is read by one task at a time).
    """

    def __init__(self, seconds: float, url: str) -> None:
        self.seconds = seconds
        self.left = seconds
        self.url = url
        self._loop = asyncio.get_running_loop()
        self._started: float | None = None  # when the current wait began; None between waits
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0  # the task's pending cancellations when the wait began
        self._timer: asyncio.TimerHandle | None = None
        self._expiring = False  # the timer cancelled the waiting task

    async def __aenter__(self) -> None:
        if self.left <= 0:
            raise self._spent()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a fetch's time budget must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._started = self._loop.time()
        if self._timer is None:
            self._timer = self._loop.call_at(self._started + self.left, self._on_timer)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._started is not None:
            self.left -= self._loop.time() - self._started
            self._started = None
        if self._expiring and self._task is not None:
            self._expiring = False
            cancelled = exc_type is not None and issubclass(exc_type, asyncio.CancelledError)
            if self._task.uncancel() <= self._cancelling and cancelled:
                raise self._spent() from exc

    def close(self) -> None:
        """Drop the timer (the fetch is over)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        """At the budget's earliest end: cancel the wait if it is spent, else wait on."""
        self._timer = None
        if self._started is None or self._task is None:
            return  # between waits: the next wait arms the timer again
        now = self._loop.time()
        left = self.left - (now - self._started)
        if left > 0:  # the caller worked between waits: the budget ends later
            self._timer = self._loop.call_at(now + left, self._on_timer)
            return
        self._expiring = True
        self._task.cancel()

    def _spent(self) -> FetchTimeoutError:
        return FetchTimeoutError(f"timeout: {self.url} took longer than {self.seconds}s")


@dataclass(frozen=True)
class FetchStream(ResponseHead):
    """An open response whose body is read with `iter_bytes()` (once)."""

    _response: httpx.Response = field(repr=False, compare=False)
    _config: OutboundConfig = field(repr=False, compare=False)
    _budget: _Budget = field(repr=False, compare=False)

    async def iter_bytes(self, *, truncate: bool = False) -> AsyncGenerator[bytes]:
        """The body as it arrives; past `max_bytes`, `TooLargeError` (or the end, to `truncate`).

        A gzip or deflate Content-Encoding is undone in steps of at most `DECODE_STEP` bytes.
        """
        max_bytes = self._config.max_bytes
        declared = self.headers.get("content-length", "")
        if not truncate and declared.isdigit() and int(declared) > max_bytes:
            raise self._too_large()
        consumed = self._response.is_stream_consumed  # read (and decoded) by its transport
        decoder = _Decoder("" if consumed else self.headers.get("content-encoding", ""))
        received = 0
        async with aclosing(self._raw()) as raw_chunks:  # closed early when truncating
            async for raw in raw_chunks:
                for chunk in decoder.decode(raw):
                    if received + len(chunk) > max_bytes:
                        if not truncate:
                            raise self._too_large()
                        yield chunk[: max_bytes - received]
                        return
                    received += len(chunk)
                    yield chunk

    async def read(self, *, truncate: bool = False) -> bytes:
        """The whole body (see `iter_bytes` for the limits).

        A body that arrives in one chunk (a page of some 30 KB on a fast network) is that chunk:
        copying it into a buffer and out again cost 25 µs a page. Later chunks go to a buffer,
        not a list, so a server sending tiny chunks cannot make each byte cost an object.
        """
        first, rest = None, bytearray()
        async for chunk in self.iter_bytes(truncate=truncate):
            if first is None:
                first = chunk
            else:
                rest += chunk
        if first is None:
            return b""
        return first + rest if rest else first

    async def _raw(self) -> AsyncGenerator[bytes]:
        """The body's bytes as received, each read inside the time budget."""
        if self._response.is_stream_consumed:
            yield self._response.content
            return
        chunks = self._response.aiter_raw()
        host = self._response.request.url.host
        try:
            while True:
                try:
                    async with self._budget:
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
                except httpx.TimeoutException as exc:
                    raise FetchTimeoutError(f"timeout: {host} did not answer in time") from exc
                except httpx.TransportError as exc:
                    detail = str(exc) or type(exc).__name__
                    raise ConnectionFailedError(f"connection failed: {host}: {detail}") from exc
                yield chunk
        finally:
            if isinstance(chunks, AsyncGenerator):
                await chunks.aclose()

    def _too_large(self) -> OutboundError:
        url, limit = self._response.request.url, self._config.max_bytes
        return TooLargeError(f"too large: {url} is larger than {limit} bytes")


class _Decoder:
    """Undo a gzip or deflate Content-Encoding a step at a time (httpx inflates a whole network
    chunk at once: 64 KB of a compression bomb would become 64 MB in memory).

    `Accept-Encoding: identity` is sent, so an encoded body comes from a server that ignores it;
    other encodings are passed through as received.
    """

    def __init__(self, content_encoding: str) -> None:
        encoding = content_encoding.strip().lower()
        self._inflater = None
        if encoding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self._inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS)
        self._raw_deflate = encoding == "deflate"  # some servers send deflate without a header

    def decode(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of `data`, in steps of at most `DECODE_STEP` bytes."""
        if self._inflater is None:
            yield data
            return
        pending = data
        while not self._inflater.eof:
            try:
                chunk = self._inflater.decompress(pending, DECODE_STEP)
            except zlib.error as exc:
                if not self._raw_deflate:
                    raise BodyDecodingError(f"invalid body: broken compression ({exc})") from exc
                self._inflater, self._raw_deflate = zlib.decompressobj(-zlib.MAX_WBITS), False
                continue
            self._raw_deflate = False
            pending = self._inflater.unconsumed_tail
            if chunk:
                yield chunk
            if not pending and len(chunk) < DECODE_STEP:  # a full step may leave output behind
                return


class GuardedTransport(httpx.AsyncBaseTransport):
    """Resolve and check each request's host, then connect to the checked IP.

    The URL's host is replaced by the IP; the `Host` header and, for https, the TLS server name
    (`sni_hostname`, also used for certificate checks) keep the original name. https pools are
    kept per host name so a TLS connection is never reused for another name on the same IP.
    """

    def __init__(self, allowlist: Allowlist, *, inner: TransportFactory | None = None) -> None:
        self._allowlist = allowlist
        self._inner = inner or PoolTransport
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
        """A copy of `request` addressed to `address`, keeping the Host header and TLS name;
        `request` itself when its URL names that address already (an IP literal, checked)."""
        if request.url.host == address:
            return request
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


class _ServerCookiesIgnored(httpx.Cookies):
    """Cookies sent as the caller sets them; none is taken from a response."""

    def extract_cookies(self, response: httpx.Response) -> None:
        """Keep nothing of a response's `Set-Cookie` headers."""


class OutboundClient(httpx.AsyncClient):
    """httpx's client, but no server sets a cookie in it.

    One client serves every job of a process, and the sites it fetches are anyone's: a cookie
    jar would send cookies one job's sites set along with another job's requests, and it keeps
    every cookie a server sends (`http.cookiejar` has no limit), so a hostile server could grow
    the process's memory a response at a time. Cookies set on the client itself
    (`client.cookies.set(...)`) are sent as usual. Taking cookies from responses also cost 7 %
    of a page batch's instructions: httpx builds a `urllib` request for each response to do it.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._own_cookies = _ServerCookiesIgnored(kwargs.get("cookies"))

    @property
    def cookies(self) -> httpx.Cookies:
        """The cookies sent with every request (none comes from a server)."""
        return self._own_cookies

    @cookies.setter
    def cookies(
        self, cookies: httpx.Cookies | CookieJar | dict[str, str] | list[tuple[str, str]]
    ) -> None:
        self._own_cookies = _ServerCookiesIgnored(cookies)


def build_client(
    config: OutboundConfig, *, inner: TransportFactory | None = None
) -> httpx.AsyncClient:
    """Return the guarded client; `inner` replaces the network transport (tests only)."""
    return OutboundClient(
{%- if cookiecutter.include_sitemaps or cookiecutter.include_places or cookiecutter.include_pages %}
        # Outbound requests by status or error in /metrics (docs/operations.md).
        transport=MeteredTransport(GuardedTransport(config.allowlist, inner=inner)),
{%- else %}
        transport=GuardedTransport(config.allowlist, inner=inner),
{%- endif %}
        timeout=httpx.Timeout(config.timeout),
        follow_redirects=False,
        trust_env=False,  # proxies from the environment would bypass the pinned connection
        headers={"User-Agent": config.user_agent, "Accept-Encoding": "identity"},
        # The session guard: no database connection may be held while a request is awaited.
        event_hooks={"request": [check_outbound_request]},
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
    async with fetch_stream(client, url, config=config, accept=accept) as stream:
        body = await stream.read(truncate=truncate)
    return FetchResult(
        url=stream.url,
        final_url=stream.final_url,
        status_code=stream.status_code,
        content_type=stream.content_type,
        headers=stream.headers,
        body=body,
    )


@asynccontextmanager
async def fetch_stream(
    client: httpx.AsyncClient,
    url: str | httpx.URL,
    *,
    config: OutboundConfig,
    accept: str | None = None,
) -> AsyncIterator[FetchStream]:
    """GET `url` like `fetch`, but hand the body over as it arrives (`FetchStream.iter_bytes`).

    The guard, the redirect limit, the size cap and the time budget are those of `fetch`; the
    budget counts only time spent waiting on the network, so a caller that stores each chunk
    before reading the next is not timed out by its own work. The response is closed on exit.
    `url` may be parsed already (`httpx.URL`), which spares parsing it again; it is checked all
    the same.
    """
    current = check_url(url, config.allowlist)
    requested = str(url)
    budget = _Budget(config.total_timeout, requested)
    try:
        for _ in range(config.max_redirects + 1):
            response = await _send(client, current, accept, budget)
            try:
                location = _redirect_target(response)
                if location is None:
                    yield FetchStream(
                        url=requested,
                        final_url=str(current),
                        status_code=response.status_code,
                        content_type=response.headers.get("content-type"),
                        headers=response.headers,
                        _response=response,
                        _config=config,
                        _budget=budget,
                    )
                    return
                current = _next_hop(current, location, config.allowlist)
            finally:
                await response.aclose()
    finally:
        budget.close()
    raise TooManyRedirectsError(
        f"too many redirects: more than {config.max_redirects} from {requested}"
    )


def _redirect_target(response: httpx.Response) -> str | None:
    """The Location of a redirect response, else None."""
    if response.status_code in REDIRECT_STATUSES:
        return response.headers.get("location") or None
    return None


def _next_hop(current: httpx.URL, location: str, allowlist: Allowlist) -> httpx.URL:
    """Resolve a Location header against the current URL and check the result."""
    try:
        target = current.join(location)
    except httpx.InvalidURL as exc:
        raise BlockedURLError(f"invalid redirect target {location!r}") from exc
    return check_url(target, allowlist)


async def _send(
    client: httpx.AsyncClient, url: httpx.URL, accept: str | None, budget: _Budget
) -> httpx.Response:
    """One GET without redirects, up to the response's headers; httpx errors become ours."""
    request = client.build_request("GET", url, headers={"Accept": accept} if accept else {})
    try:
        async with budget:
            return await client.send(request, stream=True)
    except httpx.TimeoutException as exc:
        raise FetchTimeoutError(f"timeout: {url.host} did not answer in time") from exc
    except httpx.TransportError as exc:
        detail = str(exc) or type(exc).__name__
        raise ConnectionFailedError(f"connection failed: {url.host}: {detail}") from exc
