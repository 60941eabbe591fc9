"""Places Text Search against a local fake of the Places API (New)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from {{ cookiecutter.project_slug }}.outbound.client import (
    OutboundConfig,
    build_client,
)
from {{ cookiecutter.project_slug }}.outbound.errors import BlockedURLError
from {{ cookiecutter.project_slug }}.outbound.guard import Allowlist
from {{ cookiecutter.project_slug }}.places.client import (
    FIELD_MASK,
    PlaceResult,
    PlacesUpstreamError,
    RetryPolicy,
    search_text,
)

from tests.localserver import FIXTURES, LocalServer, Recorded, Reply

PLACES = FIXTURES / "places"
SEARCH = "/v1/places:searchText"
KEY = "test-key-123"
JSON = {"Content-Type": "application/json"}


def fixture_reply(name: str, status: int = 200) -> Reply:
    return Reply(status=status, body=(PLACES / name).read_bytes(), headers=JSON)


def fake_places(request: Recorded) -> Reply:
    """Page 1 without a token, page 2 for its token; 400 for anything else."""
    token = json.loads(request.body).get("pageToken")
    if token is None:
        return fixture_reply("page-1.json")
    if token == "token-page-2":
        return fixture_reply("page-2.json")
    return Reply(status=400, body=b'{"error": {"message": "bad token"}}', headers=JSON)


class Sleeps:
    """A recording stand-in for asyncio.sleep."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer().running() as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The guarded client; the fake Places API runs on 127.0.0.1, so it is allowlisted."""
    config = OutboundConfig(allowlist=Allowlist.parse("127.0.0.1/32"), timeout=0.5)
    async with build_client(config) as client:
        yield client


async def search(
    server: LocalServer,
    client: httpx.AsyncClient,
    *,
    max_pages: int = 3,
    retry: RetryPolicy | None = None,
) -> list[list[PlaceResult]]:
    pages = search_text(
        client,
        base_url=server.url("/"),
        api_key=KEY,
        query="coffee in Vienna",
        latitude=48.2082,
        longitude=16.3738,
        radius_m=2000,
        max_pages=max_pages,
        page_size=50,
        retry=retry or RetryPolicy(sleep=Sleeps()),
    )
    return [page async for page in pages]


async def test_paginates_with_next_page_token(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    server.routes[SEARCH] = fake_places
    pages = await search(server, client)
    assert [[place.place_id for place in page] for page in pages] == [
        ["ChIJ-page1-a", "ChIJ-page1-b"],
        ["ChIJ-page2-a"],
    ]
    assert pages[0][0] == PlaceResult(
        place_id="ChIJ-page1-a",
        name="Café Central",
        address="Herrengasse 14, 1010 Wien, Austria",
        latitude=48.2104,
        longitude=16.3655,
        rating=4.5,
        user_rating_count=21034,
        types=("cafe", "restaurant", "food"),
        website="https://cafecentral.wien/",
        phone="01 5333763",
    )
    assert pages[1][0].rating == 4.0
    assert pages[0][1].address is None


async def test_request_shape(server: LocalServer, client: httpx.AsyncClient) -> None:
    server.routes[SEARCH] = fake_places
    await search(server, client)
    first, second = server.hits(SEARCH)
    assert first.method == "POST"
    assert first.headers["x-goog-api-key"] == KEY
    assert first.headers["x-goog-fieldmask"] == FIELD_MASK
    assert set(FIELD_MASK.split(",")) >= {"places.id", "places.websiteUri", "nextPageToken"}
    assert json.loads(first.body) == {
        "textQuery": "coffee in Vienna",
        "pageSize": 20,  # 50 asked, the API's maximum sent
        "locationBias": {
            "circle": {"center": {"latitude": 48.2082, "longitude": 16.3738}, "radius": 2000.0}
        },
    }
    assert json.loads(second.body) == {**json.loads(first.body), "pageToken": "token-page-2"}


async def test_max_pages_stops_pagination(server: LocalServer, client: httpx.AsyncClient) -> None:
    server.routes[SEARCH] = fake_places
    assert len(await search(server, client, max_pages=1)) == 1
    assert len(server.hits(SEARCH)) == 1


async def test_429_then_success(server: LocalServer, client: httpx.AsyncClient) -> None:
    limited = Reply(status=429, body=b'{"error": {"message": "slow down"}}', headers=JSON)
    server.sequence(SEARCH, [limited, fixture_reply("page-2.json")])
    sleeps = Sleeps()
    pages = await search(server, client, retry=RetryPolicy(sleep=sleeps))
    assert [place.place_id for place in pages[0]] == ["ChIJ-page2-a"]
    assert len(server.hits(SEARCH)) == 2
    assert len(sleeps.delays) == 1
    assert 0 <= sleeps.delays[0] <= 0.5


async def test_retry_after_is_honoured(server: LocalServer, client: httpx.AsyncClient) -> None:
    limited = Reply(status=429, headers={"Retry-After": "3"})
    server.sequence(SEARCH, [limited, fixture_reply("page-2.json")])
    sleeps = Sleeps()
    await search(server, client, retry=RetryPolicy(sleep=sleeps))
    assert sleeps.delays == [3.0]


async def test_500_three_times_then_failure(server: LocalServer, client: httpx.AsyncClient) -> None:
    broken = Reply(status=500, body=b'{"error": {"message": "backend error"}}', headers=JSON)
    server.reply(SEARCH, broken)
    sleeps = Sleeps()
    with pytest.raises(PlacesUpstreamError) as caught:
        await search(server, client, retry=RetryPolicy(max_attempts=3, sleep=sleeps))
    assert caught.value.status == 500
    assert caught.value.reason == "Places API HTTP 500: backend error (after 3 attempts)"
    assert len(server.hits(SEARCH)) == 3
    assert len(sleeps.delays) == 2


async def test_403_carries_googles_message(server: LocalServer, client: httpx.AsyncClient) -> None:
    server.reply(SEARCH, fixture_reply("error-403.json", status=403))
    sleeps = Sleeps()
    with pytest.raises(PlacesUpstreamError) as caught:
        await search(server, client, retry=RetryPolicy(sleep=sleeps))
    assert caught.value.status == 403
    assert caught.value.reason.startswith("Places API HTTP 403: PERMISSION_DENIED: Requests to")
    assert KEY not in caught.value.reason
    assert (len(server.hits(SEARCH)), sleeps.delays) == (1, [])


async def test_timeout_is_retried(server: LocalServer, client: httpx.AsyncClient) -> None:
    server.sequence(SEARCH, [Reply(delay=1.5), fixture_reply("page-2.json")])
    sleeps = Sleeps()
    pages = await search(server, client, retry=RetryPolicy(sleep=sleeps))
    assert len(pages) == 1
    assert len(sleeps.delays) == 1


async def test_timeouts_exhaust_the_attempts(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    server.reply(SEARCH, Reply(delay=1.5))
    with pytest.raises(PlacesUpstreamError) as caught:
        await search(server, client, retry=RetryPolicy(max_attempts=2, sleep=Sleeps()))
    assert caught.value.status is None
    assert caught.value.reason == "Places API unreachable: ReadTimeout (after 2 attempts)"


async def test_places_requests_pass_the_ssrf_guard(server: LocalServer) -> None:
    config = OutboundConfig()  # nothing allowlisted: 127.0.0.1 is refused
    async with build_client(config) as client:
        with pytest.raises(BlockedURLError):
            await search(server, client)
    assert server.requests == []


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 5.0)]:
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= delay <= ceiling for delay in delays)
        assert max(delays) > ceiling / 2  # jitter spreads over the range
    assert policy.delay(1, retry_after=60) == 5.0
