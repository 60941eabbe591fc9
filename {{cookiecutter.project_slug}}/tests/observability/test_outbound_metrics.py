"""`MeteredTransport`: every outbound request counted, its series looked up once."""
{%- if cookiecutter.include_sitemaps or cookiecutter.include_places or cookiecutter.include_pages %}

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY

from {{ cookiecutter.project_slug }}.observability import metrics
from {{ cookiecutter.project_slug }}.observability.metrics import MeteredTransport

COUNT = "http_client_request_duration_seconds_count"


class Answering(httpx.AsyncBaseTransport):
    """Answers `status`, or raises `ConnectError` for host `down.test`."""

    def __init__(self, status: int) -> None:
        self.status = status

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "down.test":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(self.status)


def count(method: str, status: str, error: str) -> float:
    """The requests counted with these labels so far."""
    labels = {
        "http_request_method": method,
        "http_response_status_code": status,
        "error_type": error,
    }
    return REGISTRY.get_sample_value(COUNT, labels) or 0.0


async def test_each_request_is_counted_under_its_labels() -> None:
    before = [
        count("GET", "418", ""),
        count("_OTHER", "418", ""),
        count("GET", "", "ConnectError"),
    ]
    async with httpx.AsyncClient(transport=MeteredTransport(Answering(418))) as client:
        for _ in range(3):
            await client.get("http://up.test/")
        await client.request("BREW", "http://up.test/")
        with pytest.raises(httpx.ConnectError):
            await client.get("http://down.test/")
    after = [
        count("GET", "418", ""),
        count("_OTHER", "418", ""),
        count("GET", "", "ConnectError"),
    ]
    assert [b - a for a, b in zip(before, after, strict=True)] == [3, 1, 1]


async def test_past_the_kept_series_requests_are_still_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics, "SERIES_CACHED", 0)
    monkeypatch.setattr(metrics, "_client_series", metrics._Series(metrics.HTTP_CLIENT_DURATION))
    before = count("GET", "419", "")
    async with httpx.AsyncClient(transport=MeteredTransport(Answering(419))) as client:
        for _ in range(2):
            await client.get("http://up.test/")
    assert count("GET", "419", "") == before + 2
    assert metrics._client_series._kept == {}
{%- endif %}
