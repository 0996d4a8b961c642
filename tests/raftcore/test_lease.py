"""The leader lease (thesis 4.2.3) and lease reads: what a voter promises and for how long.

A voter that heard from a leader (or restarted, with lease reads) ignores vote requests for
one election timeout; lease reads rely on that promise holding exactly that long.
"""

from __future__ import annotations

from raftcore_paper_util import node_with_log, sent

from raftcore.types import RequestVoteRequest, RequestVoteResponse, Role

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
