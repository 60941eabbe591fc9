"""The time budget of a fetch: only the waits on the network count, and it runs out once."""

from __future__ import annotations

import asyncio
import time

import pytest

from {{ cookiecutter.project_slug }}.outbound.client import _Budget
from {{ cookiecutter.project_slug }}.outbound.errors import FetchTimeoutError


async def test_only_the_waits_count_and_a_spent_budget_refuses_the_next_wait() -> None:
    budget = _Budget(0.5, "http://example.test/")
    for _ in range(2):
        async with budget:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the caller's own work between waits
    assert 0 < budget.left <= 0.4
    with pytest.raises(FetchTimeoutError) as caught:
        async with budget:
            await asyncio.sleep(5)
    assert caught.value.reason == "timeout: http://example.test/ took longer than 0.5s"
    assert budget.left <= 0
    with pytest.raises(FetchTimeoutError):
        async with budget:
            pytest.fail("a spent budget let a wait begin")
    budget.close()


async def test_its_deadline_passing_between_waits_cancels_nothing() -> None:
    """The budget's one timer may fire while the caller works between waits: that work goes on,
    and the budget runs out later by as much."""
    loop = asyncio.get_running_loop()
    budget = _Budget(0.3, "http://example.test/")
    async with budget:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # past the budget's first deadline, outside any wait
    async with budget:
        await asyncio.sleep(0.1)  # still inside the budget: about 0.15 s is left
    started = loop.time()
    with pytest.raises(FetchTimeoutError):
        async with budget:
            await asyncio.sleep(5)
    assert 0.05 < loop.time() - started < 1.0
    budget.close()


async def test_other_errors_and_cancellation_pass_through() -> None:
    budget = _Budget(5.0, "http://example.test/")
    with pytest.raises(ValueError, match="broken"):
        async with budget:
            raise ValueError("broken")

    async def wait() -> None:
        async with budget:
            await asyncio.sleep(5)

    task = asyncio.create_task(wait())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 4 < budget.left < 5
    budget.close()


async def test_a_cancellation_from_outside_stays_one_when_the_budget_runs_out_with_it() -> None:
    """The caller is cancelled (a shutdown) as the budget runs out: the task ends cancelled, as
    with `asyncio.timeout`, not with a timeout that the caller might take for the server's."""
    budget = _Budget(0.05, "http://example.test/")

    async def wait() -> None:
        async with budget:
            await asyncio.sleep(5)

    task = asyncio.create_task(wait())
    await asyncio.sleep(0.01)
    asyncio.get_running_loop().call_later(0.05, task.cancel)  # just after the budget's end
    time.sleep(0.1)  # noqa: ASYNC251 -- the loop is held past both: one turn runs them
    with pytest.raises(asyncio.CancelledError):
        await task
    assert budget.left <= 0
    budget.close()
