"""Tests named after the rules of the Raft paper (Ongaro and Ousterhout, 2014), section by
section, in the manner of etcd's raft_paper_test.go: init, act, check.

PreVote and CheckQuorum are off here unless a test says otherwise: these are the rules of
the paper itself; the thesis extensions have their own scripts in testdata/.
"""

from __future__ import annotations

import random

import pytest
from raftcore_harness import Cluster
from raftcore_paper_util import elect, node_with_log, persist, sent

from raftcore.config import Config
from raftcore.node import Node
from raftcore.types import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    HeartbeatRequest,
    RequestVoteRequest,
    RequestVoteResponse,
    Role,
)


def append_request(
    term: int, prev: tuple[int, int], entries: tuple[tuple[int, int], ...] = (), commit: int = 0,
    frm: str = "n2", to: str = "n1",
) -> AppendEntriesRequest:
    """AppendEntries with entries given as (term, index)."""
    return AppendEntriesRequest(
        term=term,
        from_id=frm,
        to_id=to,
        prev_log_term=prev[0],
        prev_log_index=prev[1],
        entries=tuple(Entry(term=t, index=i) for t, i in entries),
        leader_commit=commit,
    )


def paper_cluster(ids: list[str], seed: int = 0) -> Cluster:
    return Cluster(
        ids, seed=seed, config=lambda i: Config(id=i, pre_vote=False, check_quorum=False)
    )


# 5.1: servers start as followers; terms act as logical clocks.


def test_start_as_follower() -> None:
    node, _ = node_with_log()
    assert node.role is Role.FOLLOWER
    assert node.current_term == 0


@pytest.mark.parametrize("role", ["follower", "candidate", "leader"])
def test_update_term_from_message(role: str) -> None:
    """If a server's current term is smaller than another's, it updates its term; a
    candidate or leader that discovers a larger term reverts to follower."""
    node, storage = node_with_log()
    if role == "candidate":
        while node.role is not Role.CANDIDATE:
            node.tick()
    elif role == "leader":
        elect(node, storage)
    node.step(append_request(term=5, prev=(0, 0)))
    assert node.current_term == 5
    assert node.role is Role.FOLLOWER


def test_reject_stale_term_message() -> None:
    """If a server receives a request with a stale term number, it rejects the request."""
    node, storage = node_with_log(term=3)
    node.step(append_request(term=2, prev=(0, 0), entries=((2, 1),)))
    (reply,) = sent(node, storage)
    assert isinstance(reply, AppendEntriesResponse)
    assert not reply.success
    assert reply.term == 3
    assert node.last_index == 0


# 5.2: leader election.


def test_leader_broadcasts_heartbeats() -> None:
    """Leaders send periodic heartbeats to all followers to maintain their authority."""
    node, storage = node_with_log(heartbeat_timeout_ticks=2)
    elect(node, storage)
    node.tick()
    assert not [m for m in sent(node, storage) if isinstance(m, HeartbeatRequest)]
    node.tick()
    beats = [m for m in sent(node, storage) if isinstance(m, HeartbeatRequest)]
    assert sorted(m.to_id for m in beats) == ["n2", "n3"]


@pytest.mark.parametrize("start", ["follower", "candidate"])
def test_start_new_election_on_timeout(start: str) -> None:
    """A follower (or a candidate whose election timed out) increments its term, votes
    for itself and issues RequestVote in parallel to each of the other servers."""
    node, storage = node_with_log()
    if start == "candidate":
        while node.role is not Role.CANDIDATE:
            node.tick()
        sent(node, storage)
    term = node.current_term
    for _ in range(2 * node.config.election_timeout_ticks):
        node.tick()
        if node.current_term != term:
            break
    assert node.role is Role.CANDIDATE
    assert node.current_term == term + 1
    assert node.voted_for == "n1"
    requests = [m for m in sent(node, storage) if isinstance(m, RequestVoteRequest)]
    assert sorted(m.to_id for m in requests) == ["n2", "n3"]
    assert all(m.term == term + 1 for m in requests)


@pytest.mark.parametrize(
    ("size", "votes", "role"),
    [
        (1, {}, Role.LEADER),
        (3, {"n2": True}, Role.LEADER),
        (3, {"n2": False}, Role.CANDIDATE),
        (5, {"n2": True, "n3": True}, Role.LEADER),
        (5, {"n2": True}, Role.CANDIDATE),
        (5, {"n2": False, "n3": False, "n4": False}, Role.CANDIDATE),
    ],
)
def test_leader_election_in_one_round(size: int, votes: dict[str, bool], role: Role) -> None:
    """A candidate wins if it receives votes from a majority of the servers."""
    voters = tuple(f"n{i}" for i in range(1, size + 1))
    node, _ = node_with_log(voters=voters)
    while node.role is Role.FOLLOWER:
        node.tick()
    for voter, granted in votes.items():
        node.step(RequestVoteResponse(term=1, from_id=voter, to_id="n1", vote_granted=granted))
    assert node.role is role


def test_follower_votes_first_come_first_served() -> None:
    """Each server votes for at most one candidate in a given term."""
    node, storage = node_with_log()
    for candidate, expected in [("n2", True), ("n3", False), ("n2", True)]:
        node.step(
            RequestVoteRequest(
                term=1, from_id=candidate, to_id="n1", last_log_index=0, last_log_term=0
            )
        )
        (reply,) = sent(node, storage)
        assert isinstance(reply, RequestVoteResponse)
        assert reply.vote_granted is expected


def test_candidate_falls_back_to_follower() -> None:
    """If the leader's term is at least as large as the candidate's current term, the
    candidate recognizes the leader as legitimate and returns to follower state."""
    node, _ = node_with_log()
    while node.role is not Role.CANDIDATE:
        node.tick()
    node.step(append_request(term=node.current_term, prev=(0, 0)))
    assert node.role is Role.FOLLOWER
    assert node.leader_id == "n2"


def test_election_timeouts_are_randomized() -> None:
    """Election timeouts are chosen randomly from a fixed interval [T, 2T)."""
    seen = set()
    for seed in range(40):
        node, _ = node_with_log(seed=seed, election_timeout_ticks=10)
        ticks = 0
        while node.role is Role.FOLLOWER:
            node.tick()
            ticks += 1
        assert 10 <= ticks < 20
        seen.add(ticks)
    assert len(seen) > 3


def test_split_votes_resolve_with_random_timeouts() -> None:
    """Randomized timeouts make split votes rare and resolve them quickly."""
    for seed in range(10):
        cluster = paper_cluster(["n1", "n2", "n3", "n4", "n5"], seed=seed)
        cluster.tick_all(60)
        leaders = [n for n in cluster.nodes.values() if n.role is Role.LEADER]
        assert len(leaders) == 1


# 5.3: log replication.


def test_leader_starts_replication() -> None:
    """The leader appends the command to its log as a new entry, then issues
    AppendEntries in parallel to each of the other servers."""
    node, storage = node_with_log()
    elect(node, storage)
    for voter in ("n2", "n3"):
        node.step(AppendEntriesResponse(term=1, from_id=voter, to_id="n1", success=True,
                                        match_index=1))
    sent(node, storage)
    index = node.propose(b"cmd")
    assert index == 2
    requests = [m for m in sent(node, storage) if isinstance(m, AppendEntriesRequest)]
    assert sorted(m.to_id for m in requests) == ["n2", "n3"]
    for request in requests:
        assert request.prev_log_index == 1
        assert request.prev_log_term == 1
        assert [e.data for e in request.entries] == [b"cmd"]


def test_leader_commits_an_entry_replicated_on_a_majority() -> None:
    """A log entry is committed once the leader that created it has replicated it on a
    majority of the servers; the leader applies it and followers learn of it."""
    cluster = paper_cluster(["n1", "n2", "n3"])
    leader = cluster.elect("n1")
    cluster.down.add("n3")
    leader.propose(b"x")
    cluster.stabilize()
    assert leader.commit_index == 2
    assert cluster.applied_data("n1") == [b"x"]
    cluster.tick("n1")
    cluster.stabilize()
    assert cluster.applied_data("n2") == [b"x"]


def test_leader_does_not_commit_without_a_majority() -> None:
    cluster = paper_cluster(["n1", "n2", "n3", "n4", "n5"])
    leader = cluster.elect("n1")
    cluster.down.update({"n3", "n4", "n5"})
    leader.propose(b"x")
    cluster.stabilize()
    assert leader.commit_index == 1


def test_commit_includes_preceding_entries() -> None:
    """Committing an entry also commits all preceding entries in the leader's log,
    including entries created by previous leaders."""
    node, storage = node_with_log(terms=(1, 1, 2), term=2)
    elect(node, storage)
    assert node.current_term == 3
    node.step(AppendEntriesResponse(term=3, from_id="n2", to_id="n1", success=True,
                                    match_index=4))
    assert node.commit_index == 4
    committed = persist(node, storage).committed_entries
    assert [e.index for e in committed] == [1, 2, 3, 4]


def test_follower_commits_what_the_leader_committed() -> None:
    """Once a follower learns that a log entry is committed, it applies the entry."""
    node, storage = node_with_log("n1")
    node.step(append_request(term=1, prev=(0, 0), entries=((1, 1), (1, 2)), commit=1))
    ready = persist(node, storage)
    assert [e.index for e in ready.committed_entries] == [1]


@pytest.mark.parametrize(
    ("prev", "accepted"),
    [((0, 0), True), ((1, 1), True), ((2, 2), True), ((1, 2), False), ((3, 3), False)],
)
def test_follower_checks_the_previous_entry(prev: tuple[int, int], accepted: bool) -> None:
    """If the follower does not find an entry in its log with the same index and term as
    prev, it refuses the new entries."""
    node, storage = node_with_log("n1", terms=(1, 2), term=2)
    node.step(append_request(term=2, prev=prev, entries=((2, prev[1] + 1),)))
    (reply,) = sent(node, storage)
    assert isinstance(reply, AppendEntriesResponse)
    assert reply.success is accepted


@pytest.mark.parametrize(
    ("prev", "entries", "expected_terms"),
    [
        ((2, 2), ((3, 3),), [1, 2, 3]),
        ((1, 1), ((3, 2), (4, 3)), [1, 3, 4]),
        ((0, 0), ((1, 1),), [1, 2, 2]),
        ((0, 0), ((3, 1),), [3]),
    ],
)
def test_follower_deletes_conflicting_entries(
    prev: tuple[int, int], entries: tuple[tuple[int, int], ...], expected_terms: list[int]
) -> None:
    """If an existing entry conflicts with a new one (same index, different terms), the
    follower deletes it and all that follow it; entries it already has are kept."""
    node, storage = node_with_log("n1", terms=(1, 2, 2), term=2)
    node.step(append_request(term=4, prev=prev, entries=entries))
    persist(node, storage)
    assert [node.term_at(i) for i in range(1, node.last_index + 1)] == expected_terms


# Figure 7: a leader brings every kind of follower log in line with its own.
FIGURE_7_LEADER = (1, 1, 1, 4, 4, 5, 5, 6, 6, 6)
FIGURE_7_FOLLOWERS = {
    "a": (1, 1, 1, 4, 4, 5, 5, 6, 6),
    "b": (1, 1, 1, 4),
    "c": (1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6),
    "d": (1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7),
    "e": (1, 1, 1, 4, 4, 4, 4),
    "f": (1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3),
}


@pytest.mark.parametrize("case", sorted(FIGURE_7_FOLLOWERS))
def test_leader_syncs_follower_logs_figure_7(case: str) -> None:
    """The leader forces the followers' logs to duplicate its own (section 5.3, Figure 7)."""
    leader, leader_storage = node_with_log("n1", terms=FIGURE_7_LEADER, term=7)
    follower, follower_storage = node_with_log("n2", terms=FIGURE_7_FOLLOWERS[case], term=7)
    queue = elect(leader, leader_storage)
    queue = [m for m in queue if m.to_id == "n2"]
    for _ in range(50):
        if not queue:
            break
        msg = queue.pop(0)
        target, storage = (
            (follower, follower_storage) if msg.to_id == "n2" else (leader, leader_storage)
        )
        target.step(msg)
        queue.extend(m for m in sent(target, storage) if m.to_id in ("n1", "n2"))
    terms = [follower.term_at(i) for i in range(1, follower.last_index + 1)]
    assert terms == [*FIGURE_7_LEADER, 8]


# 5.4: safety.


def test_vote_request_carries_the_last_log_entry() -> None:
    node, storage = node_with_log(terms=(1, 2, 2), term=2)
    while node.role is not Role.CANDIDATE:
        node.tick()
    requests = [m for m in sent(node, storage) if isinstance(m, RequestVoteRequest)]
    assert {(m.last_log_index, m.last_log_term) for m in requests} == {(3, 2)}


@pytest.mark.parametrize(
    ("last_index", "last_term", "granted"),
    [(3, 2, True), (4, 2, True), (1, 3, True), (2, 2, False), (9, 1, False)],
)
def test_voter_denies_a_less_up_to_date_candidate(
    last_index: int, last_term: int, granted: bool
) -> None:
    """The voter denies its vote if its own log is more up-to-date than the candidate's:
    the later last term wins; with equal last terms, the longer log."""
    node, storage = node_with_log(terms=(1, 2, 2), term=2)
    node.step(
        RequestVoteRequest(
            term=3, from_id="n2", to_id="n1", last_log_index=last_index, last_log_term=last_term
        )
    )
    (reply,) = sent(node, storage)
    assert isinstance(reply, RequestVoteResponse)
    assert reply.vote_granted is granted


def test_leader_only_commits_entries_of_its_term_by_counting_figure_8() -> None:
    """Raft never commits log entries from previous terms by counting replicas; only
    entries from the leader's current term are committed that way (Figure 8)."""
    node, storage = node_with_log(terms=(1, 2), term=2, voters=("n1", "n2", "n3", "n4", "n5"))
    elect_five = [
        RequestVoteResponse(term=3, from_id=v, to_id="n1", vote_granted=True)
        for v in ("n2", "n3")
    ]
    while node.role is not Role.CANDIDATE:
        node.tick()
    for vote in elect_five:
        node.step(vote)
    assert node.role is Role.LEADER
    sent(node, storage)  # The leader persisted its no-op: it counts itself up to it.
    # The term-2 entry at index 2 reaches a majority (n1, n2, n3): still not committed.
    for voter in ("n2", "n3"):
        node.step(AppendEntriesResponse(term=3, from_id=voter, to_id="n1", success=True,
                                        match_index=2))
    assert node.commit_index == 0
    # Once the term-3 no-op is on a majority, everything up to it commits.
    for voter in ("n2", "n3"):
        node.step(AppendEntriesResponse(term=3, from_id=voter, to_id="n1", success=True,
                                        match_index=3))
    assert node.commit_index == 3


# 5.6 / Figure 2: a leader appends a no-op at the start of its term; 8: restarts.


def test_new_leader_appends_a_noop() -> None:
    node, storage = node_with_log(terms=(1,), term=1)
    elect(node, storage)
    assert node.last_index == 2
    assert node.term_at(2) == 2


def test_restart_recovers_durable_state_only() -> None:
    """currentTerm, votedFor and the log are persistent; everything else is volatile."""
    node, storage = node_with_log(terms=(1, 1), term=1)
    node.step(
        RequestVoteRequest(term=4, from_id="n2", to_id="n1", last_log_index=5, last_log_term=3)
    )
    persist(node, storage)
    restarted = Node(node.config, storage, random.Random(9))
    assert (restarted.current_term, restarted.voted_for, restarted.last_index) == (4, "n2", 2)
    assert restarted.role is Role.FOLLOWER
    assert restarted.leader_id is None
