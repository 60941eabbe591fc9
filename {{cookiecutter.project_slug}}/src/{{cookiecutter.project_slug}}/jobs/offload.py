"""Keep jobs off the event loop's back: CPU-heavy steps in a small thread pool, stages in step.

- `cpu.run(fn, ...)`: parsing (sitemap XML, HTML metadata) runs in a small thread pool
  (`CPU_THREADS`) shared by every job of the process, so the loop keeps answering requests
  (`/health`) while a hostile document is parsed. Give it bounded steps (64 KB of XML, one
  page): a thread cannot be interrupted, so a cancelled job waits at most one step, and the
  loop gets the GIL back between steps (the sitemap parser's C tree builder holds it for a
  64 KB step, a few milliseconds) and whenever a step runs Python code.
- `ReadAhead(source, size)`: runs an async generator (fetch and parse) in its own task at most
  `size` items ahead of its consumer (store), so the network and the database overlap while
  memory stays bounded by `size` items.
- `release_memory()`: after every job (`run_job` calls it), hands the memory its freed objects
  left in glibc's arenas back to the OS, so the process's RSS returns near its baseline.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import ParamSpec, TypeVar

CPU_THREADS = 1
"""Threads for CPU-heavy steps. expat holds the GIL while it parses, so a second thread adds no
throughput, only a contender for the GIL against the event loop: with four large sitemap jobs,
one thread gave a loop lag p99 of 21-29 ms and jobs done in 5.5 s, two threads 38-51 ms, 7-8 s."""

P = ParamSpec("P")
T = TypeVar("T")


class CpuPool:
    """A thread pool for CPU-heavy steps; `cpu` is the one the jobs of a process share."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(*args, **kwargs)` in the pool and wait for it without blocking the loop."""
        if self._executor is None:  # on first use: after a worker process has forked
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="cpu")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))


cpu = CpuPool(CPU_THREADS)
"""The process's CPU pool: `items = await cpu.run(parse_step, data)`."""


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where there is none (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


async def release_memory() -> None:
    """Return free memory to the OS (glibc keeps what freed objects leave in its arenas).

    A large job allocates and frees tens of MB across threads; glibc keeps the freed pages, so
    without this the RSS of a process that ran 20 large sitemap jobs stayed about 120 MB above
    its baseline. It takes a few milliseconds, in the CPU pool.
    """
    trim = _malloc_trim()
    if trim is not None:
        await cpu.run(trim, 0)


class _End:
    """Marks the end of the source in the queue of `ReadAhead`."""


class ReadAhead(AsyncIterator[T]):
    """Iterate `source` in a task of its own, at most `size` items ahead of the consumer.

        async with ReadAhead(fetch_and_parse(), size=1) as items:
            async for item in items:
                await store(item)

    The source's error is raised to the consumer after the items that came before it. On exit
    (the consumer finished, failed or was cancelled) the source is cancelled and closed.
    """

    def __init__(self, source: AsyncGenerator[T], size: int = 1) -> None:
        self._source = source
        self._queue: asyncio.Queue[T | _End | BaseException] = asyncio.Queue(maxsize=size)
        self._producer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ReadAhead[T]:
        """Start reading ahead."""
        self._producer = asyncio.create_task(self._produce())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the source, whatever state it is in."""
        if self._producer is not None:
            self._producer.cancel()
            # Not `await producer`: that would swallow a cancellation of the consumer's task.
            await asyncio.wait([self._producer])

    async def __anext__(self) -> T:
        """The next item once the producer has it."""
        item = await self._queue.get()
        if isinstance(item, _End):
            self._queue.put_nowait(item)  # keep answering "done" (the queue has room now)
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item

    async def _produce(self) -> None:
        try:
            async for item in self._source:
                await self._queue.put(item)
        except Exception as exc:  # handed to the consumer, which raises it
            await self._queue.put(exc)
        else:
            await self._queue.put(_End())
        finally:
            await self._source.aclose()
