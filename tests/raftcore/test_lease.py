"""The leader lease (thesis 4.2.3) and lease reads: what a voter promises and for how long.

A voter that heard from a leader (or restarted, with lease reads) ignores vote requests for
one election timeout; lease reads rely on that promise holding exactly that long.
"""

from __future__ import annotations

import pytest
from raftcore_paper_util import node_with_log, sent

from raftcore.memstorage import MemoryStorage
from raftcore.node import Node
from raftcore.types import (
    AppendEntriesResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    Message,
    RequestVoteRequest,
    RequestVoteResponse,
    Role,
)

LEASE = {"pre_vote": True, "check_quorum": True, "lease_reads": True}


def test_restart_lease_ends_when_the_election_timer_fires() -> None:
    # A restarted voter refuses votes for one election timeout. Once its own timer has
    # fired it has waited that long: it must answer other pre-candidates, or a whole
    # cluster restarted together keeps refusing each other's pre-votes.
    node, storage = node_with_log(terms=(1, 1), term=1, **LEASE)
    while node.role is not Role.PRE_CANDIDATE:
        node.tick()
    sent(node, storage)
    node.step(
        RequestVoteRequest(
            term=2, from_id="n2", to_id="n1", last_log_index=2, last_log_term=1, pre_vote=True
        )
    )
    replies = [m for m in sent(node, storage) if isinstance(m, RequestVoteResponse)]
    assert [(m.to_id, m.term, m.vote_granted) for m in replies] == [("n2", 2, True)]


def follower_in_lease() -> tuple[Node, MemoryStorage]:
    """n1 follows n2 in term 2 and has just heard from it."""
    node, storage = node_with_log(terms=(1, 2), term=2, **LEASE)
    node.step(HeartbeatRequest(term=2, from_id="n2", to_id="n1", commit_index=2))
    sent(node, storage)
    assert node.leader_id == "n2"
    return node, storage


@pytest.mark.parametrize(
    "stale",
    [
        RequestVoteResponse(term=5, from_id="n3", to_id="n1", vote_granted=False, pre_vote=True),
        RequestVoteResponse(term=5, from_id="n3", to_id="n1", vote_granted=False),
        AppendEntriesResponse(term=5, from_id="n3", to_id="n1", success=False),
        HeartbeatResponse(term=5, from_id="n3", to_id="n1"),
    ],
    ids=["pre-vote-rejection", "vote-rejection", "append-rejection", "heartbeat-response"],
)
def test_stale_higher_term_answer_does_not_end_the_lease(stale: Message) -> None:
    # A delayed answer to something n1 sent in an earlier role can carry a term above the
    # current one. Raising the term would forget the leader and let n1 vote in that term
    # within the election timeout it promised n2 (whose lease reads rely on it).
    node, storage = follower_in_lease()
    node.step(stale)
    node.step(
        RequestVoteRequest(term=5, from_id="n3", to_id="n1", last_log_index=2, last_log_term=2)
    )
    granted = [
        m for m in sent(node, storage) if isinstance(m, RequestVoteResponse) and m.vote_granted
    ]
    assert granted == []
    assert node.leader_id == "n2"
    assert node.current_term == 2
