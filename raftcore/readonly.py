"""ReadIndex bookkeeping: reads waiting for a heartbeat round to confirm leadership.

Role: etcd's read_only.go, keyed by heartbeat rounds instead of request contexts.

Theory of operation (thesis 6.4): a leader that wants to serve a read records its commit
index as the read's index, then proves it is still the leader by a round of heartbeats.
Each registered read starts a new round `r` (heartbeats carry `read_round = r`); a
follower echoes the round in its response. Once a majority of voters (the leader counts
itself) has echoed a round `>= r`, every read registered in rounds `<= r` is confirmed:
nobody can have been elected in a later term before those acknowledgments, so the
recorded commit index is at least as new as any write completed before the read began.

Rules: reads are released in registration order; a leader that steps down drops them all
(the clients time out and retry); acknowledgments only grow.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass

from raftcore.quorum import committed_index
from raftcore.types import NodeId


@dataclass(frozen=True, slots=True)
class PendingRead:
    request_ctx: bytes
    index: int
    read_round: int


class ReadOnly:
    """Reads registered by a leader and the heartbeat rounds acknowledged so far."""

    __slots__ = ("_acks", "_pending", "read_round")

    def __init__(self) -> None:
        self.read_round = 0
        self._pending: deque[PendingRead] = deque()
        self._acks: dict[NodeId, int] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, request_ctx: bytes, index: int) -> int:
        """Register a read at `index`; returns the new round its heartbeats must carry."""
        self.read_round += 1
        self._pending.append(PendingRead(request_ctx, index, self.read_round))
        return self.read_round

    def next_round(self) -> int:
        """Start a heartbeat round with no read of its own (lease bookkeeping)."""
        self.read_round += 1
        return self.read_round

    def confirmed_round(self, voters: Collection[NodeId], self_id: NodeId) -> int:
        """The highest round a majority of `voters` has acknowledged (we count ourselves
        at the current round)."""
        acks = dict(self._acks)
        acks[self_id] = self.read_round
        return committed_index(voters, acks)

    def ack(self, node_id: NodeId, read_round: int) -> None:
        """A heartbeat response echoed `read_round`."""
        if read_round > self._acks.get(node_id, 0):
            self._acks[node_id] = read_round

    def confirmed(self, voters: Collection[NodeId], self_id: NodeId) -> list[PendingRead]:
        """Pop and return the reads a majority of `voters` has confirmed."""
        if not self._pending:
            return []
        confirmed_round = self.confirmed_round(voters, self_id)
        released: list[PendingRead] = []
        pending = self._pending
        while pending and pending[0].read_round <= confirmed_round:
            released.append(pending.popleft())
        return released

    def pop_all(self) -> list[PendingRead]:
        """Release every pending read at once (a single-voter cluster, or lease reads)."""
        released = list(self._pending)
        self._pending.clear()
        return released

    def reset(self) -> None:
        """Forget everything (leadership lost or gained)."""
        self._pending.clear()
        self._acks.clear()
        self.read_round = 0
