"""CPU work off the event loop, and read-ahead between a job's stages."""

from __future__ import annotations

import asyncio
import platform
import threading
from collections.abc import AsyncGenerator
from xml.parsers import expat

import pytest

from {{ cookiecutter.project_slug }}.jobs.offload import (
    CPU_THREADS,
    ReadAhead,
    cpu,
    release_memory,
)


class Ticker:
    """Counts how often the event loop gets to run it."""

    def __init__(self) -> None:
        self.ticks = 0
        self._stop = False

    async def run(self) -> None:
        while not self._stop:
            self.ticks += 1
            await asyncio.sleep(0)

    def stop(self) -> None:
        self._stop = True


def busy_and_watch(ticker: Ticker) -> int:
    """Parse a 4 MB XML document (CPU for a few hundred ms); the loop's ticks meanwhile."""
    before = ticker.ticks
    document = b"<urlset>" + b"<url><loc>https://example.com/page</loc></url>" * 90_000
    parser = expat.ParserCreate()
    parser.StartElementHandler = lambda name, attributes: None
    parser.Parse(document + b"</urlset>", True)
    return ticker.ticks - before


async def test_the_loop_keeps_running_during_cpu_work() -> None:
    """Run inline, the work would stop the loop: the ticker would not move at all."""
    ticker = Ticker()
    ticking = asyncio.create_task(ticker.run())
    await asyncio.sleep(0)
    try:
        inline = busy_and_watch(ticker)
        offloaded = await cpu.run(busy_and_watch, ticker)
    finally:
        ticker.stop()
        await ticking
    assert inline == 0
    assert offloaded > 0


async def test_the_pool_is_small_and_shared() -> None:
    """However many jobs ask, at most `CPU_THREADS` steps run at once."""
    loop = asyncio.get_running_loop()
    full = asyncio.Event()
    running = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()

    def step() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            if running == CPU_THREADS:
                loop.call_soon_threadsafe(full.set)
        release.wait(timeout=10)
        with lock:
            running -= 1

    steps = [asyncio.create_task(cpu.run(step)) for _ in range(CPU_THREADS * 3)]
    await full.wait()
    await asyncio.sleep(0.2)  # room for more to start, if the pool allowed it
    at_once = most
    release.set()
    await asyncio.gather(*steps)
    assert at_once == most == CPU_THREADS


async def numbers(
    produced: list[int], count: int, *, fail_at: int | None = None
) -> AsyncGenerator[int]:
    for number in range(count):
        if number == fail_at:
            raise ValueError(f"broken at {number}")
        produced.append(number)
        yield number


async def test_reading_ahead_stays_at_most_size_items_ahead() -> None:
    produced: list[int] = []
    consumed: list[int] = []
    async with ReadAhead(numbers(produced, 20), size=2) as items:
        async for number in items:
            await asyncio.sleep(0.001)  # the producer runs meanwhile, up to the bound
            # the queue (2), the item waiting for room in it, and this one
            assert len(produced) - len(consumed) <= 2 + 1 + 1
            consumed.append(number)
    assert consumed == list(range(20))


async def test_reading_ahead_raises_the_source_error_after_its_items() -> None:
    consumed: list[int] = []

    async def consume() -> None:
        async with ReadAhead(numbers([], 10, fail_at=3)) as items:
            async for number in items:
                consumed.append(number)

    with pytest.raises(ValueError, match="broken at 3"):
        await consume()
    assert consumed == [0, 1, 2]


async def test_reading_ahead_closes_the_source_when_the_consumer_fails() -> None:
    closed = asyncio.Event()

    async def endless() -> AsyncGenerator[int]:
        try:
            number = 0
            while True:
                yield number
                number += 1
        finally:
            closed.set()

    async def consume() -> None:
        async with ReadAhead(endless()) as items:
            async for number in items:
                if number == 5:
                    raise RuntimeError("store failed")

    with pytest.raises(RuntimeError, match="store failed"):
        await consume()
    assert closed.is_set()


def rss() -> int:
    """This process's resident memory in bytes (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def churn() -> list[bytes]:
    """What a large job does to the allocator: 48 MB of objects, 1% of them kept."""
    items = [str(number).encode() * 100 + b"x" * 700 for number in range(40_000)]
    return items[::100]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
async def test_release_memory_hands_freed_memory_back() -> None:
    kept = await cpu.run(churn)  # freed in a worker thread's arena, as parsed batches are
    before = rss()
    await release_memory()
    assert len(kept) == 400
    assert rss() < before - 30 * 1024 * 1024
