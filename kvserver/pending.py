"""Requests waiting on the node: proposals until their entry applies, reads until their
ReadIndex is confirmed and applied, each with a deadline.

Role: the bookkeeping between kvserver/node.py (which proposes, applies and hands out
read states) and the clients' futures. It decides nothing about Raft; it only matches
outcomes to futures.

Rules:
- A proposal waits for the entry at its index. An entry of the same term answers it; an
  entry of another term means the proposal was overwritten (definitely failed,
  ProposalDropped); a snapshot that covers the index, or the deadline, leaves the outcome
  unknown (OutcomeUnknown).
- A read is answered with the value of its key once the applied index reaches the
  read's confirmed index; losing leadership before that fails it with NotLeader (the HTTP
  layer then retries it at the new leader); the deadline fails it with NoLeader.
- One deadline queue, in arrival order, swept by the node's ticker: no timer and no task
  per request. A future that completed early is skipped when its deadline comes.
- A proposal's future is resolved with its `ApplyResult`, or with a `WriteResult` when it
  was made by `add_write`.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from typing import Any

from kvserver.errors import NoLeader, OutcomeUnknown, ProposalDropped, RequestFailed
from kvserver.service import ReadResult, WriteResult
from raftcore.kv import ApplyResult
from raftcore.types import Entry


class Pending:
    """Futures of waiting proposals and reads (see the module docstring)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._proposals: dict[int, tuple[int, asyncio.Future[Any], bool]] = {}
        """index -> (term, future, answer with a WriteResult)"""
        self._reads: dict[bytes, tuple[asyncio.Future[ReadResult], str]] = {}
        """Reads waiting for their read state: request context -> (future, key)."""
        self._confirmed: list[tuple[int, asyncio.Future[ReadResult], str]] = []
        """Reads whose index is known, waiting for it to apply: (index, future, key)."""
        self._deadlines: collections.deque[tuple[float, asyncio.Future[Any], bytes | None]] = (
            collections.deque())

    def __len__(self) -> int:
        return len(self._proposals) + len(self._reads) + len(self._confirmed)

    @property
    def waiting_reads(self) -> int:
        return len(self._reads) + len(self._confirmed)

    def add_proposal(self, index: int, term: int, *, as_write: bool = False
                     ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._proposals[index] = (term, future, as_write)
        self._deadlines.append((time.monotonic() + self.timeout_s, future, None))
        return future

    def add_read(self, request_ctx: bytes, key: str) -> asyncio.Future[ReadResult]:
        future: asyncio.Future[ReadResult] = asyncio.get_running_loop().create_future()
        self._reads[request_ctx] = (future, key)
        self._deadlines.append((time.monotonic() + self.timeout_s, future, request_ctx))
        return future

    def applied(self, entry: Entry, result: ApplyResult) -> None:
        """The entry at `entry.index` was applied with `result`."""
        waiter = self._proposals.pop(entry.index, None)
        if waiter is None:
            return
        term, future, as_write = waiter
        if future.done():
            return
        if entry.term != term:
            future.set_exception(ProposalDropped(
                f"the entry at index {entry.index} was replaced by a leader of term {entry.term}"
            ))
        elif as_write:
            assert result.response is not None
            future.set_result(WriteResult(result.response, result.index))
        else:
            future.set_result(result)

    def snapshot_installed(self, index: int) -> None:
        """A snapshot up to `index` replaced the log: those outcomes cannot be seen."""
        for waiting in [i for i in self._proposals if i <= index]:
            future = self._proposals.pop(waiting)[1]
            if not future.done():
                future.set_exception(OutcomeUnknown(
                    "a snapshot replaced the log before this proposal's outcome was seen"))

    def read_state(self, request_ctx: bytes, index: int) -> None:
        """The read with this context may be served once `index` is applied."""
        waiting = self._reads.pop(request_ctx, None)
        if waiting is not None and not waiting[0].done():
            self._confirmed.append((index, *waiting))

    def serve_reads(self, applied_index: int, read: Callable[[str], str | None]) -> None:
        """Answer every confirmed read whose index is applied, with `read(key)` now."""
        if not self._confirmed:
            return
        waiting = []
        for index, future, key in self._confirmed:
            if future.done():
                continue
            if index <= applied_index:
                future.set_result(ReadResult(read(key), applied_index))
            else:
                waiting.append((index, future, key))
        self._confirmed = waiting

    def fail_reads(self, failure: Exception) -> None:
        for future in [*(f for f, _ in self._reads.values()),
                       *(f for _, f, _ in self._confirmed)]:
            if not future.done():
                future.set_exception(failure)
        self._reads.clear()
        self._confirmed = []

    def expire(self, now: float) -> None:
        """Fail every request whose deadline is at or before `now`."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, future, read_ctx = deadlines.popleft()
            if future.done():
                continue
            failure: RequestFailed
            if read_ctx is None:
                failure = OutcomeUnknown(f"no outcome within {self.timeout_s} s")
            else:
                self._reads.pop(read_ctx, None)
                failure = NoLeader("leadership could not be confirmed in time; retry")
            future.set_exception(failure)
