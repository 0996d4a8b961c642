"""Majority arithmetic: the commit index a set of voters agrees on, and vote tallies.

Role: etcd's quorum/majority.go for single configurations. Only voters count; learners
never appear here (the caller passes the voters).

Rules: pure functions; an empty voter set commits nothing and wins no election.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping

from raftcore.types import NodeId


class VoteResult(enum.Enum):
    PENDING = "Pending"
    WON = "Won"
    LOST = "Lost"


def quorum_size(voter_count: int) -> int:
    """The number of voters that make a majority."""
    return voter_count // 2 + 1


def committed_index(voters: Collection[NodeId], match_index: Mapping[NodeId, int]) -> int:
    """The highest index replicated on a majority of `voters` (0 if there are none).

    Voters missing from `match_index` count as having nothing (index 0).
    """
    count = len(voters)
    if count == 0:
        return 0
    matches = sorted((match_index.get(voter, 0) for voter in voters), reverse=True)
    return matches[quorum_size(count) - 1]


def vote_result(voters: Collection[NodeId], votes: Mapping[NodeId, bool]) -> VoteResult:
    """Tally `votes` (granted or rejected) of `voters`; votes of non-voters are ignored."""
    count = len(voters)
    if count == 0:
        return VoteResult.LOST
    granted = 0
    rejected = 0
    for voter in voters:
        vote = votes.get(voter)
        if vote is None:
            continue
        if vote:
            granted += 1
        else:
            rejected += 1
    needed = quorum_size(count)
    if granted >= needed:
        return VoteResult.WON
    if rejected > count - needed:
        return VoteResult.LOST
    return VoteResult.PENDING


def has_quorum(voters: Collection[NodeId], active: Collection[NodeId]) -> bool:
    """Whether the `active` nodes include a majority of `voters`."""
    count = len(voters)
    if count == 0:
        return False
    present = sum(1 for voter in voters if voter in active)
    return present >= quorum_size(count)
