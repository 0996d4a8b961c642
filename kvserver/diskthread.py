"""The node's disk thread: runs file I/O jobs one at a time, in order, off the event loop.

Role: while a Ready's write and fsync run here, the event loop keeps accepting requests
and peer messages (kvserver/node.py). This is `loop.run_in_executor` on a one-thread
executor with less machinery per job: one queue put to start it, one
`call_soon_threadsafe` to hand the result back.

Rules: jobs run in submission order; a job's exception is raised by its future; `close`
runs what is queued, then stops the thread. `run_timed` runs a job here, or inline on the
loop when the node has no disk thread, and measures it.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

T = TypeVar("T")

_Job = tuple[Callable[[], object], asyncio.Future[object], asyncio.AbstractEventLoop]


class DiskThread:
    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def run(self, job: Callable[[], T]) -> asyncio.Future[T]:
        """Queue `job`; the future has what it returns (or raises)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((job, future, loop))  # type: ignore[arg-type]
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            job, future, loop = item
            try:
                result = job()
            except BaseException as exc:  # handed to the awaiting coroutine
                _deliver(loop, _set_exception, future, exc)
            else:
                _deliver(loop, _set_result, future, result)


async def run_timed(disk: DiskThread | None, job: Callable[[], object]) -> float:
    """Run `job` in `disk` (None: inline, blocking the loop); returns its duration in s."""
    if disk is None:
        return _timed(job)
    return await disk.run(partial(_timed, job))


def _timed(job: Callable[[], object]) -> float:
    started = time.perf_counter()
    job()
    return time.perf_counter() - started


def _deliver(loop: asyncio.AbstractEventLoop, setter: Callable[..., None],
             future: asyncio.Future[object], value: object) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
        loop.call_soon_threadsafe(setter, future, value)


def _set_result(future: asyncio.Future[object], value: object) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[object], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
