"""Each planted bug changes the core's behaviour at the one decision it corrupts.

These are direct unit tests (the simulator and the hypothesis machine show they are caught
end to end). Each test runs the same scenario with and without the bug.
"""

from __future__ import annotations

import random

import pytest
from raftcore_paper_util import elect, node_with_log, persist, sent

from raftcore.bugs import PlantedBug
from raftcore.errors import ConfChangePending, LeaderNotReady
from raftcore.memstorage import MemoryStorage
from raftcore.node import Node
from raftcore.types import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    ConfChange,
    ConfChangeKind,
    Entry,
    RequestVoteRequest,
    RequestVoteResponse,
)


def _vote_request(
    candidate: str, term: int, last_index: int = 9, last_term: int = 9
) -> RequestVoteRequest:
    return RequestVoteRequest(
        term=term, from_id=candidate, to_id="n1", last_log_index=last_index, last_log_term=last_term
    )


def _granted(node: Node, storage: MemoryStorage) -> list[bool]:
    return [m.vote_granted for m in sent(node, storage) if isinstance(m, RequestVoteResponse)]


@pytest.mark.parametrize("bug", [None, PlantedBug.COMMIT_OLD_TERM])
def test_commit_old_term_counts_replicas_of_an_earlier_term(bug: PlantedBug | None) -> None:
    # n1 holds an entry of term 1 at index 1 that nobody else has; it becomes leader of
    # term 2 (no-op at index 2). A follower acknowledges index 1 only.
    node, storage = node_with_log("n1", terms=(1,), term=1, planted_bug=bug)
    elect(node, storage)
    assert node.current_term == 2
    node.step(AppendEntriesResponse(term=2, from_id="n2", to_id="n1", success=True, match_index=1))
    expected = 1 if bug is PlantedBug.COMMIT_OLD_TERM else 0
    assert node.commit_index == expected


@pytest.mark.parametrize("bug", [None, PlantedBug.DOUBLE_VOTE])
def test_double_vote_grants_a_second_vote_in_one_term(bug: PlantedBug | None) -> None:
    node, storage = node_with_log("n1", planted_bug=bug)
    node.step(_vote_request("n2", term=1))
    assert _granted(node, storage) == [True]
    node.step(_vote_request("n3", term=1))
    assert _granted(node, storage) == [bug is PlantedBug.DOUBLE_VOTE]


@pytest.mark.parametrize("bug", [None, PlantedBug.SKIP_CONF_GUARD])
def test_skip_conf_guard_appends_before_the_term_commits(bug: PlantedBug | None) -> None:
    node, storage = node_with_log("n1", planted_bug=bug)
    elect(node, storage)
    add = ConfChange(ConfChangeKind.ADD_LEARNER, "n4")
    if bug is None:
        with pytest.raises(LeaderNotReady):
            node.propose_conf_change(add)
    else:
        assert node.propose_conf_change(add) == 2


@pytest.mark.parametrize("bug", [None, PlantedBug.SKIP_CONF_GUARD])
def test_skip_conf_guard_appends_while_another_change_is_pending(bug: PlantedBug | None) -> None:
    node, storage = node_with_log("n1", voters=("n1",), planted_bug=bug)
    elect(node, storage)
    node.propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, "n4"))
    sent(node, storage)
    # A single voter commits once it persisted the entry; promoting n4 makes two voters,
    # so the promotion stays uncommitted (n4 never answers) and blocks the next change.
    node.propose_conf_change(ConfChange(ConfChangeKind.PROMOTE_LEARNER, "n4"))
    second = ConfChange(ConfChangeKind.ADD_LEARNER, "n5")
    if bug is None:
        with pytest.raises(ConfChangePending):
            node.propose_conf_change(second)
    else:
        node.propose_conf_change(second)
        assert node.membership.learners == {"n5"}


@pytest.mark.parametrize("bug", [None, PlantedBug.FORGET_PERSIST_VOTE])
def test_forget_persist_vote_loses_the_vote_across_a_restart(bug: PlantedBug | None) -> None:
    node, storage = node_with_log("n1", planted_bug=bug)
    node.step(_vote_request("n2", term=1))
    ready = persist(node, storage)
    assert ready.hard_state is not None
    assert ready.hard_state.voted_for == (None if bug else "n2")
    # Rebuilt from storage, it is asked again in the same term by another candidate.
    restarted = Node(node.config, storage, random.Random(1))
    restarted.step(_vote_request("n3", term=1))
    assert _granted(restarted, storage) == [bug is PlantedBug.FORGET_PERSIST_VOTE]


def test_no_bug_is_the_default() -> None:
    node, _ = node_with_log("n1")
    assert node.config.planted_bug is None


def test_append_entries_are_unaffected_by_bugs_of_other_decisions() -> None:
    # A follower appends identically with any core bug planted (they touch other paths).
    logs = []
    for bug in (None, *[b for b in PlantedBug if b is not PlantedBug.APPLY_DUPLICATE]):
        node, storage = node_with_log("n2", planted_bug=bug)
        node.step(
            AppendEntriesRequest(
                term=1,
                from_id="n1",
                to_id="n2",
                prev_log_index=0,
                prev_log_term=0,
                entries=(Entry(1, 1), Entry(1, 2)),
                leader_commit=1,
            )
        )
        persist(node, storage)
        logs.append((node.last_index, node.commit_index))
    assert len(set(logs)) == 1


@pytest.mark.parametrize("bug", [None, PlantedBug.COUNT_UNPERSISTED_SELF])
def test_count_unpersisted_self_commits_before_the_leader_persisted(
    bug: PlantedBug | None,
) -> None:
    # Three voters: the leader's own unpersisted entry plus one follower's ack is a
    # quorum only if the leader counts entries it has not yet persisted.
    node, storage = node_with_log("n1", voters=("n1", "n2", "n3"), planted_bug=bug)
    elect(node, storage)
    for follower in ("n2", "n3"):  # Both hold the no-op: replicating, not probing.
        node.step(AppendEntriesResponse(term=node.current_term, from_id=follower,
                                        to_id="n1", success=True, match_index=1))
    sent(node, storage)
    index = node.propose(b"x")
    ready = node.ready()  # Handed out, sent early, not yet persisted.
    assert ready.messages_before_persist()
    node.step(AppendEntriesResponse(term=node.current_term, from_id="n2", to_id="n1",
                                    success=True, match_index=index))
    assert node.commit_index == (index if bug is PlantedBug.COUNT_UNPERSISTED_SELF else 1)
