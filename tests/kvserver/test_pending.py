"""Waiting requests (kvserver/pending.py) and the disk thread (kvserver/diskthread.py).

Pure asyncio, no sockets: futures are resolved by the calls a node makes.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from kvserver.diskthread import DiskThread
from kvserver.errors import NoLeader, OutcomeUnknown, ProposalDropped
from kvserver.pending import Pending
from kvserver.service import ReadResult, WriteResult
from raftcore.commands import Response, Status
from raftcore.errors import NotLeader
from raftcore.kv import ApplyResult, Outcome
from raftcore.types import Entry


def applied(index: int, term: int) -> tuple[Entry, ApplyResult]:
    return Entry(term, index), ApplyResult(index, Outcome.APPLIED, Response(Status.OK, "v"))


def test_proposals_are_answered_dropped_or_unknown_by_what_applies() -> None:
    async def scenario() -> None:
        pending = Pending(timeout_s=5.0)
        same = pending.add_proposal(1, term=2, as_write=True)
        replaced = pending.add_proposal(2, term=2)
        covered = pending.add_proposal(3, term=2)
        raw = pending.add_proposal(4, term=2)
        pending.applied(*applied(1, 2))
        pending.applied(*applied(2, 3))  # a leader of term 3 put another entry there
        pending.snapshot_installed(3)
        pending.applied(*applied(4, 2))
        assert same.result() == WriteResult(Response(Status.OK, "v"), 1)
        assert isinstance(replaced.exception(), ProposalDropped)
        assert isinstance(covered.exception(), OutcomeUnknown)
        assert raw.result().index == 4
        assert len(pending) == 0

    asyncio.run(scenario())


def test_reads_wait_for_their_index_and_fail_on_leadership_loss() -> None:
    async def scenario() -> None:
        pending = Pending(timeout_s=5.0)
        data = {"k": "old"}
        first = pending.add_read(b"a", "k")
        second = pending.add_read(b"b", "k")
        lost = pending.add_read(b"c", "k")
        pending.read_state(b"a", 5)
        pending.read_state(b"b", 7)
        pending.serve_reads(6, data.get)
        assert first.result() == ReadResult("old", 6)
        assert not second.done()
        data["k"] = "new"
        pending.serve_reads(7, data.get)
        assert second.result() == ReadResult("new", 7)
        pending.fail_reads(NotLeader("n2"))
        assert isinstance(lost.exception(), NotLeader)
        assert pending.waiting_reads == 0

    asyncio.run(scenario())


def test_deadlines_fail_writes_as_unknown_and_reads_as_definite() -> None:
    async def scenario() -> None:
        pending = Pending(timeout_s=0.5)
        write = pending.add_proposal(1, term=1)
        read = pending.add_read(b"r", "k")
        pending.expire(time.monotonic())
        assert not write.done()
        pending.expire(time.monotonic() + 1.0)
        assert isinstance(write.exception(), OutcomeUnknown)
        assert isinstance(read.exception(), NoLeader)
        pending.read_state(b"r", 1)  # too late: nothing is waiting for it any more
        pending.serve_reads(1, {}.get)
        assert pending.waiting_reads == 0

    asyncio.run(scenario())


def test_disk_thread_runs_jobs_in_order_off_the_loop_and_raises_their_errors() -> None:
    async def scenario() -> None:
        disk = DiskThread("disk-test")
        seen: list[tuple[int, str]] = []

        def job(n: int) -> int:
            seen.append((n, threading.current_thread().name))
            return n * n

        def broken() -> None:
            raise OSError("disk full")

        results = [disk.run(lambda n=n: job(n)) for n in range(5)]
        failing = disk.run(broken)
        assert await asyncio.gather(*results) == [0, 1, 4, 9, 16]
        with pytest.raises(OSError, match="disk full"):
            await failing
        disk.close()
        assert [n for n, _ in seen] == [0, 1, 2, 3, 4]
        assert {name for _, name in seen} == {"disk-test"}

    asyncio.run(scenario())
