"""Coalescing of a Ready's messages (kvserver/batching.py).

The property that matters: a follower that receives the coalesced messages ends in the
same state (log, commit index) and acknowledges as much (match index, read round) as one
that receives the originals one by one. Followers here are the real core
(raftcore.node.Node) over MemoryStorage, driven through the Ready contract.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvserver import batching
from kvserver.batching import coalesce
from raftcore.config import Config
from raftcore.memstorage import MemoryStorage
from raftcore.node import Node
from raftcore.types import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    HeartbeatRequest,
    HeartbeatResponse,
    Message,
    RequestVoteRequest,
)


def entry(index: int, term: int = 1) -> Entry:
    return Entry(term, index, data=f"e{index}".encode())


def append(to: str, prev: int, count: int, commit: int, seq: int, term: int = 1
           ) -> AppendEntriesRequest:
    return AppendEntriesRequest(term, "n1", to, prev, term if prev else 0,
                                tuple(entry(prev + i + 1, term) for i in range(count)),
                                commit, seq)


def beat(to: str, commit: int, read_round: int, seq: int, term: int = 1) -> HeartbeatRequest:
    return HeartbeatRequest(term, "n1", to, commit, read_round, seq)


def test_contiguous_appends_merge_and_heartbeats_collapse_per_peer() -> None:
    messages: list[Message] = [
        append("n2", 0, 1, 0, 1), append("n3", 0, 1, 0, 2), beat("n2", 0, 1, 3),
        append("n2", 1, 2, 1, 4), beat("n2", 1, 2, 5), append("n3", 1, 1, 1, 6),
    ]
    out = coalesce(messages)
    assert out == [
        AppendEntriesRequest(1, "n1", "n2", 0, 0, (entry(1), entry(2), entry(3)), 1, 4),
        AppendEntriesRequest(1, "n1", "n3", 0, 0, (entry(1), entry(2)), 1, 6),
        HeartbeatRequest(1, "n1", "n2", 1, 2, 5),
    ]


def test_gaps_other_terms_other_messages_and_the_size_limit_stop_a_merge() -> None:
    vote = RequestVoteRequest(2, "n1", "n2", 5, 1)
    cases: list[list[Message]] = [
        [append("n2", 0, 1, 0, 1), append("n2", 3, 1, 0, 2)],         # a gap
        [append("n2", 0, 1, 0, 1), append("n2", 1, 1, 0, 2, term=2)],  # another term
        [append("n2", 0, 1, 0, 1), vote, append("n2", 1, 1, 0, 2)],   # something between
    ]
    for messages in cases:
        assert coalesce(messages) == messages
    big = [append("n2", i, 1, 0, i) for i in range(10)]
    assert len(coalesce(big, max_batch_bytes=3 * 30)) > 1
    assert len(coalesce(big)) == 1


def drive(node: Node, storage: MemoryStorage, messages: list[Message]) -> list[Message]:
    """Step each message into `node`, handling every Ready as the contract says."""
    out: list[Message] = []
    for msg in messages:
        node.step(msg)
        while node.has_ready():
            ready = node.ready()
            storage.append(ready.entries)
            if ready.hard_state is not None:
                storage.set_hard_state(ready.hard_state)
            out.extend(ready.messages)
            node.advance(ready)
    return out


def follower(node_id: str) -> tuple[Node, MemoryStorage]:
    storage = MemoryStorage.bootstrap(["n1", "n2", "n3"])
    return Node(Config(id=node_id), storage, random.Random(1)), storage


def acknowledged(replies: list[Message]) -> tuple[int, int]:
    match = max((r.match_index for r in replies
                 if isinstance(r, AppendEntriesResponse) and r.success), default=0)
    read_round = max((r.read_round for r in replies if isinstance(r, HeartbeatResponse)),
                     default=0)
    return match, read_round


@st.composite
def leader_output(draw: st.DrawFn, resends: bool) -> list[Message]:
    """What a leader of term 1 sends n2 over several Readies' worth of proposals and
    reads: appends that continue each other, heartbeats carrying growing commit indexes
    and read rounds, and (with `resends`) now and then a resend from an earlier point."""
    messages: list[Message] = []
    sent = 0
    read_round = 0
    for seq in range(1, draw(st.integers(1, 25)) + 1):
        committed = draw(st.integers(0, sent))
        kind = draw(st.sampled_from(["append", "append", "beat", "resend"]))
        if kind == "append" or (kind == "resend" and not resends):
            count = draw(st.integers(0, 3))
            messages.append(append("n2", sent, count, committed, seq))
            sent += count
        elif kind == "resend" and sent:
            prev = draw(st.integers(0, sent - 1))
            messages.append(append("n2", prev, sent - prev, committed, seq))
        else:
            read_round += draw(st.integers(0, 1))
            messages.append(beat("n2", committed, read_round, seq))
    return messages


def deliver_both(messages: list[Message]) -> tuple[tuple[Node, MemoryStorage, list[Message]],
                                                    tuple[Node, MemoryStorage, list[Message]]]:
    one_by_one, storage_a = follower("n2")
    merged, storage_b = follower("n2")
    replies_a = drive(one_by_one, storage_a, messages)
    replies_b = drive(merged, storage_b, coalesce(messages))
    return (one_by_one, storage_a, replies_a), (merged, storage_b, replies_b)


@given(leader_output(resends=False))
def test_a_follower_ends_the_same_with_coalesced_messages(messages: list[Message]) -> None:
    (node_a, storage_a, replies_a), (node_b, storage_b, replies_b) = deliver_both(messages)
    last = storage_a.last_index()
    assert storage_b.last_index() == last
    assert storage_b.entries(1, last + 1) == storage_a.entries(1, last + 1)
    assert node_b.commit_index == node_a.commit_index
    assert acknowledged(replies_b) == acknowledged(replies_a)
    assert len(replies_b) <= len(replies_a)


@given(leader_output(resends=True))
def test_with_resends_a_coalesced_follower_never_holds_or_acknowledges_more(
        messages: list[Message]) -> None:
    """A merged run that starts with a resend below the follower's commit index is
    answered with that commit index and its tail ignored (the core's receiver rule for
    any such AppendEntries): the leader sends the tail again. The follower never holds
    an entry the originals would not have given it, never commits past what the leader
    said was committed, and confirms the same read rounds."""
    (_, storage_a, replies_a), (node_b, storage_b, replies_b) = deliver_both(messages)
    last = storage_b.last_index()
    assert last <= storage_a.last_index()
    assert storage_b.entries(1, last + 1) == storage_a.entries(1, last + 1)
    said_committed = max((m.leader_commit if isinstance(m, AppendEntriesRequest)
                          else m.commit_index for m in messages
                          if isinstance(m, AppendEntriesRequest | HeartbeatRequest)), default=0)
    assert node_b.commit_index <= min(said_committed, last)
    match_b, round_b = acknowledged(replies_b)
    assert match_b <= last
    assert round_b == acknowledged(replies_a)[1]


def test_negative_control_a_merge_that_loses_entries_is_caught(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A coalescer that keeps only the first of two merged appends (a planted bug) leaves
    the follower short of entries: the equivalence check above fails on it."""
    monkeypatch.setattr(batching, "_merge_appends", lambda first, second: first)
    messages: list[Message] = [append("n2", 0, 1, 0, 1), append("n2", 1, 2, 0, 2)]
    with pytest.raises(AssertionError):
        test_a_follower_ends_the_same_with_coalesced_messages.hypothesis.inner_test(messages)
