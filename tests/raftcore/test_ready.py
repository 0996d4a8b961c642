"""The Ready contract: what is handed out together, once, and only after it changed."""

from __future__ import annotations

import random

import pytest
from raftcore_paper_util import elect, node_with_log, persist, sent

from raftcore.node import Node
from raftcore.types import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    RequestVoteRequest,
    RequestVoteResponse,
    Role,
)


def test_a_vote_leaves_with_the_hard_state_that_records_it() -> None:
    node, _ = node_with_log("n1")
    node.step(RequestVoteRequest(term=1, from_id="n2", to_id="n1", last_log_index=0,
                                 last_log_term=0))
    ready = node.ready()
    assert ready.hard_state is not None
    assert ready.hard_state.voted_for == "n2"
    assert ready.must_sync
    (reply,) = ready.messages
    assert isinstance(reply, RequestVoteResponse)
    assert reply.vote_granted


def test_an_append_answer_leaves_with_the_entries_it_acknowledges() -> None:
    node, _ = node_with_log("n1")
    node.step(
        AppendEntriesRequest(term=1, from_id="n2", to_id="n1", prev_log_index=0, prev_log_term=0,
                             entries=(Entry(1, 1), Entry(1, 2)), leader_commit=0)
    )
    ready = node.ready()
    assert [e.index for e in ready.entries] == [1, 2]
    assert ready.must_sync
    (reply,) = ready.messages
    assert isinstance(reply, AppendEntriesResponse)
    assert reply.match_index == 2


def test_one_ready_at_a_time() -> None:
    node, _ = node_with_log("n1")
    while not node.has_ready():
        node.tick()
    ready = node.ready()
    with pytest.raises(AssertionError):
        node.ready()
    with pytest.raises(AssertionError):
        node.advance(type(ready)())
    node.advance(ready)
    assert not node.has_ready()


def test_committed_entries_are_handed_out_once_and_soft_state_on_change() -> None:
    node, storage = node_with_log("n1", voters=("n1",))
    elect(node, storage)  # Single voter: leader, and the no-op committed once persisted.
    node.propose(b"a")
    appended = persist(node, storage)
    assert [e.data for e in appended.entries] == [b"a"]
    assert not appended.committed_entries  # A leader counts itself once persisted only.
    first = persist(node, storage)
    assert [e.data for e in first.committed_entries] == [b"a"]
    assert first.soft_state is None
    assert not node.has_ready()
    node.propose(b"b")
    persist(node, storage)
    second = persist(node, storage)
    assert [e.data for e in second.committed_entries] == [b"b"]
    assert node.applied_index == 3


def test_commit_only_change_does_not_require_sync() -> None:
    node, storage = node_with_log("n1")
    node.step(
        AppendEntriesRequest(term=1, from_id="n2", to_id="n1", prev_log_index=0, prev_log_term=0,
                             entries=(Entry(1, 1),), leader_commit=0)
    )
    persist(node, storage)
    node.step(
        AppendEntriesRequest(term=1, from_id="n2", to_id="n1", prev_log_index=1, prev_log_term=1,
                             entries=(), leader_commit=1)
    )
    ready = persist(node, storage)
    assert ready.hard_state is not None
    assert ready.hard_state.commit_index == 1
    assert not ready.must_sync


def test_restart_replays_committed_entries_from_the_snapshot() -> None:
    node, storage = node_with_log("n1", voters=("n1",))
    elect(node, storage)
    node.propose(b"a")
    persist(node, storage)
    persist(node, storage)  # The commit index reaches storage in the next Ready.
    restarted = Node(node.config, storage, random.Random(3))
    ready = restarted.ready()
    assert [e.index for e in ready.committed_entries] == [1, 2]
    assert restarted.role is Role.FOLLOWER


def test_unpersisted_state_is_lost_on_restart() -> None:
    # The vote was cast in memory but never handed out: a restart has no trace of it,
    # and the answer promising it never left either.
    node, storage = node_with_log("n1")
    node.step(RequestVoteRequest(term=1, from_id="n2", to_id="n1", last_log_index=0,
                                 last_log_term=0))
    restarted = Node(node.config, storage, random.Random(1))
    assert restarted.voted_for is None
    assert restarted.current_term == 0


def test_a_leader_may_send_its_append_entries_before_its_own_persist() -> None:
    node, storage = node_with_log("n1", voters=("n1", "n2", "n3"))
    elect(node, storage)
    for follower in ("n2", "n3"):  # Both hold the no-op: replicating, not probing.
        node.step(AppendEntriesResponse(term=node.current_term, from_id=follower,
                                        to_id="n1", success=True, match_index=1))
    sent(node, storage)
    index = node.propose(b"a")
    ready = node.ready()
    assert [e.index for e in ready.entries] == [index]
    assert ready.send_before_persist
    early = ready.messages_before_persist()
    assert {m.to_id for m in early} == {"n2", "n3"}
    assert all(isinstance(m, AppendEntriesRequest) for m in early)
    assert ready.messages_after_persist() == ()
    # Acks from both followers commit without the leader: its own entry does not count
    # before `advance` reports it persisted, and then it does (PersistEntries).
    node.step(AppendEntriesResponse(term=node.current_term, from_id="n2", to_id="n1",
                                    success=True, match_index=index))
    assert node.commit_index == index - 1
    storage.append(ready.entries)
    node.advance(ready)
    assert node.commit_index == index


def test_answers_and_term_changes_never_leave_before_the_persist() -> None:
    node, _ = node_with_log("n1")
    node.step(RequestVoteRequest(term=1, from_id="n2", to_id="n1", last_log_index=0,
                                 last_log_term=0))
    ready = node.ready()
    assert not ready.send_before_persist
    assert ready.messages_before_persist() == ()
    assert ready.messages_after_persist() == ready.messages


def test_durable_committed_entries_stop_below_the_write_in_flight() -> None:
    node, storage = node_with_log("n1", voters=("n1", "n2", "n3"))
    elect(node, storage)
    sent(node, storage)
    first = node.propose(b"a")
    persist(node, storage)  # a is durable here; no follower has acknowledged it yet
    second = node.propose(b"b")
    in_flight = node.ready()  # b's write is in flight: handed out, not advanced
    assert [e.index for e in in_flight.entries] == [second]
    assert node.durable_committed_entries(0) == []  # nothing committed yet
    for follower in ("n2", "n3"):
        node.step(AppendEntriesResponse(term=node.current_term, from_id=follower,
                                        to_id="n1", success=True, match_index=second))
    assert node.commit_index == second  # the two followers are a majority (10.2.1)
    early = node.durable_committed_entries(0)
    assert [e.data for e in early if e.data] == [b"a"]
    assert early[-1].index == first
    assert node.durable_committed_entries(first) == []  # all applied already
    storage.append(in_flight.entries)
    node.advance(in_flight)
    assert [e.index for e in node.durable_committed_entries(first)] == [second]
