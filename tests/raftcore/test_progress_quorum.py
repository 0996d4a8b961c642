"""Progress states and flow control; majority arithmetic; ReadIndex rounds."""

from __future__ import annotations

import pytest

from raftcore.progress import Progress, ProgressState
from raftcore.quorum import VoteResult, committed_index, has_quorum, quorum_size, vote_result
from raftcore.readonly import ReadOnly

V3 = frozenset({"a", "b", "c"})


def test_probe_sends_one_at_a_time_until_answered() -> None:
    pr = Progress(next_index=5, max_inflight=4)
    assert not pr.is_paused()
    pr.sent_entries(last_sent_index=6, count=2)
    assert pr.is_paused()
    assert pr.next_index == 5  # Probe does not move next optimistically.
    assert pr.maybe_update(6)
    assert not pr.is_paused()


def test_replicate_pipelines_within_the_window() -> None:
    pr = Progress(next_index=1, max_inflight=2)
    pr.maybe_update(0)
    pr.become_replicate()
    pr.sent_entries(3, 3)
    pr.sent_entries(5, 2)
    assert pr.next_index == 6
    assert pr.is_paused()
    pr.maybe_update(3)
    assert not pr.is_paused()
    assert list(pr.inflight) == [5]


def test_full_window_frees_one_slot_on_heartbeat_response() -> None:
    pr = Progress(next_index=1, max_inflight=1)
    pr.become_replicate()
    pr.sent_entries(1, 1)
    assert pr.is_paused()
    pr.free_first_inflight()
    assert not pr.is_paused()


def test_stale_rejections_are_ignored() -> None:
    pr = Progress(next_index=10, max_inflight=4)
    assert not pr.maybe_decrease(rejected_index=5, hint_next_index=3)  # Not our probe.
    assert pr.maybe_decrease(rejected_index=9, hint_next_index=4)
    assert pr.next_index == 4
    pr.maybe_update(6)
    pr.become_replicate()
    assert not pr.maybe_decrease(rejected_index=6, hint_next_index=2)  # At or below match.
    assert pr.maybe_decrease(rejected_index=8, hint_next_index=7)
    assert pr.state is ProgressState.PROBE
    assert pr.next_index == 7


def test_rejection_never_goes_below_match() -> None:
    pr = Progress(next_index=10, max_inflight=4)
    pr.match_index = 6
    assert pr.maybe_decrease(rejected_index=9, hint_next_index=2)
    assert pr.next_index == 7


def test_match_only_grows() -> None:
    pr = Progress(next_index=1, max_inflight=4)
    assert pr.maybe_update(5)
    assert not pr.maybe_update(3)
    assert pr.match_index == 5


def test_snapshot_state_pauses_and_resumes_past_the_snapshot() -> None:
    pr = Progress(next_index=3, max_inflight=4)
    pr.become_snapshot(20)
    assert pr.is_paused()
    pr.maybe_update(20)
    pr.become_probe()
    assert pr.next_index == 21


@pytest.mark.parametrize(
    ("voters", "matches", "expected"),
    [
        (V3, {"a": 5, "b": 3, "c": 1}, 3),
        (V3, {"a": 5, "b": 5}, 5),
        (V3, {"a": 5}, 0),
        (frozenset({"a"}), {"a": 9}, 9),
        (frozenset({"a", "b", "c", "d"}), {"a": 4, "b": 3, "c": 2, "d": 1}, 2),
        (frozenset(), {"a": 4}, 0),
    ],
)
def test_committed_index(voters: frozenset[str], matches: dict[str, int], expected: int) -> None:
    assert committed_index(voters, matches) == expected


def test_vote_results_and_quorum() -> None:
    assert quorum_size(3) == 2
    assert quorum_size(4) == 3
    assert vote_result(V3, {"a": True}) is VoteResult.PENDING
    assert vote_result(V3, {"a": True, "b": True}) is VoteResult.WON
    assert vote_result(V3, {"a": True, "b": False, "c": False}) is VoteResult.LOST
    assert vote_result(V3, {"a": True, "x": True, "y": True}) is VoteResult.PENDING
    assert has_quorum(V3, {"a", "c"})
    assert not has_quorum(V3, {"a", "z"})


def test_read_rounds_confirm_in_order() -> None:
    reads = ReadOnly()
    assert reads.add(b"r1", 5) == 1
    assert reads.add(b"r2", 6) == 2
    reads.ack("b", 1)
    released = reads.confirmed(V3, "a")
    assert [r.request_ctx for r in released] == [b"r1"]
    reads.ack("c", 2)
    assert [r.request_ctx for r in reads.confirmed(V3, "a")] == [b"r2"]
    assert len(reads) == 0


def test_read_needs_a_quorum_of_voters() -> None:
    reads = ReadOnly()
    reads.add(b"r", 1)
    reads.ack("learner", 1)
    assert reads.confirmed(V3, "a") == []
    reads.ack("b", 1)
    assert len(reads.confirmed(V3, "a")) == 1
