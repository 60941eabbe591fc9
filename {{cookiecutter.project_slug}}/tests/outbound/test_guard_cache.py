"""The answers an allowlist keeps per address: the same as computed, bounded, its own."""

from __future__ import annotations

import ipaddress

import pytest

from {{ cookiecutter.project_slug }}.outbound import guard
from {{ cookiecutter.project_slug }}.outbound.errors import BlockedURLError
from {{ cookiecutter.project_slug }}.outbound.guard import (
    Allowlist,
    check_url,
    resolve_checked,
)

ADDRESSES = ["192.168.1.1", "10.1.2.3", "93.184.216.34", "::ffff:10.1.2.3", "169.254.169.254"]


def test_kept_answers_are_the_computed_ones_and_belong_to_their_allowlist() -> None:
    allowlist = Allowlist.parse("10.0.0.0/8")
    expected = ["private", None, None, None, "cloud metadata"]
    for _ in range(2):  # computed, then kept
        assert [allowlist.refusal(ipaddress.ip_address(a)) for a in ADDRESSES] == expected
    assert Allowlist().refusal(ipaddress.ip_address("10.1.2.3")) == "private"
    assert allowlist == Allowlist.parse("10.0.0.0/8")  # what it keeps is not part of its value
    assert "refusals" not in repr(allowlist)


def test_an_allowlist_keeps_a_bounded_number_of_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "_REFUSALS_CACHED", 2)
    allowlist = Allowlist()
    answers = [allowlist.refusal(ipaddress.ip_address(a)) for a in ADDRESSES]
    assert answers == ["private", "private", None, "private", "cloud metadata"]
    assert len(allowlist._refusals) == 2


async def test_a_refused_literal_is_refused_every_time() -> None:
    allowlist = Allowlist()
    reason = "blocked address: 10.0.0.1 is a private address"
    for _ in range(3):
        with pytest.raises(BlockedURLError) as caught:
            check_url("http://10.0.0.1/", allowlist)
        assert caught.value.reason == reason
        with pytest.raises(BlockedURLError) as caught:
            await resolve_checked("10.0.0.1", 80, allowlist)
        assert caught.value.reason == reason
    assert await resolve_checked("93.184.216.34", 80, allowlist) == ["93.184.216.34"]
