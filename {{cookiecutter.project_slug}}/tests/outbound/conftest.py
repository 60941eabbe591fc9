"""Fixtures of the outbound tests: a local server and resolvers that need no DNS."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from {{ cookiecutter.project_slug }}.outbound.client import (
    OutboundConfig,
    build_client,
)
from {{ cookiecutter.project_slug }}.outbound.guard import Allowlist

from tests.localserver import LocalServer

LOCAL = Allowlist.parse("127.0.0.1/32")
FakeDNS = Callable[[dict[str, list[str]]], None]


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A local HTTP server on 127.0.0.1 serving tests/fixtures and scripted routes."""
    with LocalServer().running() as running:
        yield running


@pytest.fixture
def local_config() -> OutboundConfig:
    """Limits for tests, with 127.0.0.1 allowlisted so the local server is reachable."""
    return OutboundConfig(allowlist=LOCAL, timeout=2.0, total_timeout=5.0, max_bytes=64 * 1024)


@pytest.fixture
async def client(local_config: OutboundConfig) -> AsyncIterator[httpx.AsyncClient]:
    """The guarded client with the test limits."""
    async with build_client(local_config) as client:
        yield client


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    """Install answers for host names on the running loop's resolver; others fail."""

    def install(answers: dict[str, list[str]]) -> None:
        async def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
            if host not in answers:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [_info(address, port) for address in answers[host]]

        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)

    return install


def _info(address: str, port: int) -> tuple[Any, ...]:
    """One getaddrinfo entry for `address`."""
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
