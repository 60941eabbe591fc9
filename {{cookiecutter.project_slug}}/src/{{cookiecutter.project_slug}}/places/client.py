"""Google Places API (New) Text Search, paginated, with bounded retries.

Requests go through the caller's client (the guarded outbound client in the service), to
`{base_url}/v1/places:searchText`; the base URL is a setting so tests can use a local fake.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

SEARCH_PATH = "/v1/places:searchText"
MAX_PAGE_SIZE = 20
MAX_RESPONSE_BYTES = 5 * 1024 * 1024
FIELD_MASK = ",".join(
    [
        *(
            f"places.{name}"
            for name in (
                "id",
                "displayName",
                "formattedAddress",
                "location",
                "rating",
                "userRatingCount",
                "types",
                "websiteUri",
                "nationalPhoneNumber",
            )
        ),
        "nextPageToken",
    ]
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

Sleep = Callable[[float], Awaitable[None]]


class PlacesError(Exception):
    """A Places search failed; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PlacesUpstreamError(PlacesError):
    """Google refused the request or kept failing; `status` is the last HTTP status, if any."""

    def __init__(self, status: int | None, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    sleep: Sleep = asyncio.sleep
    """Injected in tests to avoid real waiting."""

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        jittered = random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography
        if retry_after is not None:
            return min(max(retry_after, jittered), self.max_delay)
        return jittered


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class PlaceResult:
    """One place, with the fields of the field mask."""

    place_id: str
    name: str
    address: str | None
    latitude: float | None
    longitude: float | None
    rating: float | None
    user_rating_count: int | None
    types: tuple[str, ...]
    website: str | None
    phone: str | None


async def search_text(
    client: httpx.AsyncClient,
    *,
    base_url: str,
    api_key: str,
    query: str,
    latitude: float,
    longitude: float,
    radius_m: float,
    max_pages: int,
    page_size: int = MAX_PAGE_SIZE,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> AsyncIterator[list[PlaceResult]]:
    """Yield one list of places per result page, following `nextPageToken` up to `max_pages`."""
    url = base_url.rstrip("/") + SEARCH_PATH
    headers = {"X-Goog-Api-Key": api_key, "X-Goog-FieldMask": FIELD_MASK}
    body = _search_body(query, latitude, longitude, radius_m, page_size)
    for _ in range(max(max_pages, 1)):
        data = await _post_with_retry(client, url, headers, body, retry)
        yield _parse_places(data)
        token = data.get("nextPageToken")
        if not isinstance(token, str) or not token:
            return
        body = {**body, "pageToken": token}


def _search_body(
    query: str, latitude: float, longitude: float, radius_m: float, page_size: int
) -> dict[str, Any]:
    """The Text Search request body."""
    return {
        "textQuery": query,
        "pageSize": min(max(page_size, 1), MAX_PAGE_SIZE),
        "locationBias": {
            "circle": {
                "center": {"latitude": latitude, "longitude": longitude},
                "radius": float(radius_m),
            }
        },
    }


async def _post_with_retry(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any],
    retry: RetryPolicy,
) -> dict[str, Any]:
    """POST `body`; retry 429, 5xx and network errors; raise `PlacesUpstreamError` otherwise."""
    attempts = max(retry.max_attempts, 1)
    for attempt in range(1, attempts + 1):
        try:
            status, data, retry_after = await _post(client, url, headers, body)
        except RETRY_ERRORS as exc:
            failure = PlacesUpstreamError(None, f"Places API unreachable: {type(exc).__name__}")
            retry_after = None
        else:
            if 200 <= status < 300:
                return data
            failure = PlacesUpstreamError(status, _error_reason(status, data))
            if status not in RETRY_STATUSES:
                raise failure
        if attempt < attempts:
            await retry.sleep(retry.delay(attempt, retry_after))
    raise PlacesUpstreamError(failure.status, f"{failure.reason} (after {attempts} attempts)")


async def _post(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], body: dict[str, Any]
) -> tuple[int, dict[str, Any], float | None]:
    """One POST: status, JSON object (empty if none), Retry-After seconds."""
    async with client.stream("POST", url, headers=headers, json=body) as response:
        raw = bytearray()
        async for chunk in response.aiter_bytes():
            raw += chunk
            if len(raw) > MAX_RESPONSE_BYTES:
                raise PlacesUpstreamError(response.status_code, "Places API response too large")
    return response.status_code, _json_object(bytes(raw)), _retry_after(response.headers)


def _json_object(raw: bytes) -> dict[str, Any]:
    """The JSON object in `raw`, or an empty dict for anything else."""
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from a numeric Retry-After header."""
    try:
        return max(float(headers.get("retry-after", "")), 0.0)
    except ValueError:
        return None


def _error_reason(status: int, data: dict[str, Any]) -> str:
    """Google's `error.message` (with `error.status`), else the HTTP status."""
    error = data.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        code = error.get("status")
        prefix = f"{code}: " if isinstance(code, str) else ""
        return f"Places API HTTP {status}: {prefix}{error['message']}"
    return f"Places API HTTP {status}"


def _parse_places(data: dict[str, Any]) -> list[PlaceResult]:
    """The places of one response page (entries without an id are skipped)."""
    places = data.get("places")
    if not isinstance(places, list):
        return []
    return [result for item in places if (result := _parse_place(item)) is not None]


def _parse_place(item: Any) -> PlaceResult | None:
    """One place from its JSON object."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return None
    location = _dict(item.get("location"))
    return PlaceResult(
        place_id=item["id"],
        name=_str(_dict(item.get("displayName")).get("text")) or "",
        address=_str(item.get("formattedAddress")),
        latitude=_float(location.get("latitude")),
        longitude=_float(location.get("longitude")),
        rating=_float(item.get("rating")),
        user_rating_count=_int(item.get("userRatingCount")),
        types=_strings(item.get("types")),
        website=_str(item.get("websiteUri")),
        phone=_str(item.get("nationalPhoneNumber")),
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _strings(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else []
    return tuple(item for item in items if isinstance(item, str))


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
