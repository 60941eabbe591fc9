"""The SSRF guard: URLs and resolved addresses that outbound requests may not reach."""

from __future__ import annotations

import ipaddress

import pytest

from {{ cookiecutter.project_slug }}.outbound.errors import (
    BlockedURLError,
    ConnectionFailedError,
)
from {{ cookiecutter.project_slug }}.outbound.guard import (
    Allowlist,
    blocked_reason,
    check_url,
    resolve_checked,
)

from tests.outbound.conftest import FakeDNS

NOTHING = Allowlist()


def test_allowlist_parses_hosts_and_networks() -> None:
    allowlist = Allowlist.parse(" Example.COM., 127.0.0.0/8,\n::1  10.1.2.3 ")
    assert allowlist.hosts == frozenset({"example.com"})
    assert [str(network) for network in allowlist.networks] == [
        "127.0.0.0/8",
        "::1/128",
        "10.1.2.3/32",
    ]
    assert allowlist.allows_host("EXAMPLE.com")
    assert allowlist.allows_ip(ipaddress.ip_address("127.9.9.9"))
    assert not allowlist.allows_ip(ipaddress.ip_address("10.1.2.4"))
    assert Allowlist.parse("") == NOTHING


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme 'file'"),
        ("ftp://example.com/", "scheme 'ftp'"),
        ("gopher://example.com/", "scheme 'gopher'"),
        ("http://user:secret@example.com/", "credentials"),
        ("http://user@example.com/", "credentials"),
        ("http://localhost/", "loopback name"),
        ("http://LocalHost./", "loopback name"),
        ("http://api.localhost/", "loopback name"),
        ("http://127.0.0.1/", "loopback"),
        ("http://127.1.2.3:8080/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:7f00:1]/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[fd00:ec2::254]/", "cloud metadata"),
        ("http://10.0.0.1/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://[fc00::1]/", "private"),
        ("http://169.254.1.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("http://[64:ff9b::a00:1]/", "private"),  # NAT64 wrapping 10.0.0.1
        ("http://192.0.2.10/", "private"),  # documentation range
        ("http:///path-only", "no host"),
        ("http://[::1/", "invalid URL"),
    ],
)
def test_check_url_refuses(url: str, reason: str) -> None:
    with pytest.raises(BlockedURLError) as caught:
        check_url(url, NOTHING)
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    "url", ["https://example.com/a?b=c", "http://93.184.216.34:8080/", "http://[2606:4700::1]/"]
)
def test_check_url_passes_public_urls(url: str) -> None:
    assert str(check_url(url, NOTHING)).startswith(url.split("?")[0][:12])


@pytest.mark.parametrize(
    ("url", "allowlist"),
    [
        ("http://127.0.0.1:9000/", "127.0.0.1/32"),
        ("http://[::ffff:127.0.0.1]/", "127.0.0.0/8"),
        ("http://[::1]/", "::1"),
        ("http://localhost/", "localhost"),
        ("http://10.0.0.7/", "10.0.0.0/24"),
    ],
)
def test_allowlisted_addresses_pass(url: str, allowlist: str) -> None:
    check_url(url, Allowlist.parse(allowlist))


def test_allowlist_does_not_open_credentials_or_schemes() -> None:
    allowlist = Allowlist.parse("127.0.0.0/8, localhost")
    for url in ("http://a:b@127.0.0.1/", "file://localhost/etc/passwd"):
        with pytest.raises(BlockedURLError):
            check_url(url, allowlist)


def test_metadata_address_is_named() -> None:
    assert blocked_reason(ipaddress.ip_address("169.254.169.254")) == "cloud metadata"
    assert blocked_reason(ipaddress.ip_address("8.8.8.8")) is None


async def test_localhost_resolves_to_a_refused_address() -> None:
    with pytest.raises(BlockedURLError) as caught:
        await resolve_checked("localhost", 80, NOTHING)
    assert "loopback" in caught.value.reason


async def test_localhost_resolves_when_allowlisted() -> None:
    addresses = await resolve_checked("localhost", 80, Allowlist.parse("127.0.0.0/8, ::1"))
    assert "127.0.0.1" in addresses or "::1" in addresses


async def test_any_internal_address_refuses_the_host(fake_dns: FakeDNS) -> None:
    fake_dns({"mixed.test": ["93.184.216.34", "10.0.0.5"], "public.test": ["93.184.216.34"]})
    assert await resolve_checked("public.test", 443, NOTHING) == ["93.184.216.34"]
    with pytest.raises(BlockedURLError) as caught:
        await resolve_checked("mixed.test", 443, NOTHING)
    assert caught.value.reason == "blocked address: mixed.test (10.0.0.5) is a private address"


async def test_mapped_and_metadata_answers_are_refused(fake_dns: FakeDNS) -> None:
    fake_dns({"mapped.test": ["::ffff:192.168.0.1"], "meta.test": ["fd00:ec2::254"]})
    for host in ("mapped.test", "meta.test"):
        with pytest.raises(BlockedURLError):
            await resolve_checked(host, 80, NOTHING)


async def test_allowlisted_host_skips_the_address_check(fake_dns: FakeDNS) -> None:
    fake_dns({"intranet.test": ["10.0.0.5"]})
    assert await resolve_checked("Intranet.TEST", 80, Allowlist.parse("intranet.test")) == [
        "10.0.0.5"
    ]


async def test_unresolvable_host_is_a_connection_failure(fake_dns: FakeDNS) -> None:
    fake_dns({})
    with pytest.raises(ConnectionFailedError) as caught:
        await resolve_checked("nowhere.test", 80, NOTHING)
    assert caught.value.reason == "connection failed: cannot resolve nowhere.test"
