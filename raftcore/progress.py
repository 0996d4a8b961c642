"""What a leader knows about each follower's log: match/next index and the flow state.

Role: etcd's tracker/progress.go and inflights.go. A leader keeps one `Progress` per member
other than itself (voters and learners).

Theory of operation (the three states):
- PROBE: the leader does not know where the follower's log diverges. It sends one
  AppendEntries at a time and waits (`probe_sent`) for the answer or for a heartbeat
  response before sending the next, walking `next_index` back with the rejection hints.
- REPLICATE: the follower's log matches up to `match_index`; the leader streams entries
  optimistically (`next_index` jumps past what was sent) with at most `max_inflight`
  AppendEntries unacknowledged (the pipelining window).
- SNAPSHOT: the follower needs entries the leader has compacted; an InstallSnapshot is in
  flight and nothing else is sent until it is acknowledged or times out.

Rules:
- `match_index` only grows (stale responses never lower it); `next_index > match_index`.
- A rejection is applied only if it answers the AppendEntries we are waiting on: in PROBE,
  the one sent at `next_index - 1`; in REPLICATE, any one beyond `match_index`. Older
  rejections are stale and ignored.
"""

from __future__ import annotations

import enum
from collections import deque


class ProgressState(enum.Enum):
    PROBE = "Probe"
    REPLICATE = "Replicate"
    SNAPSHOT = "Snapshot"


class Progress:
    """Replication progress of one follower, as seen by the leader."""

    __slots__ = (
        "inflight",
        "match_index",
        "max_inflight",
        "next_index",
        "pending_snapshot",
        "probe_sent",
        "recent_active",
        "snapshot_elapsed_ticks",
        "state",
    )

    def __init__(self, next_index: int, max_inflight: int) -> None:
        assert next_index >= 1, "next_index starts at 1"
        assert max_inflight >= 1, "the in-flight window holds at least one message"
        self.match_index = 0
        self.next_index = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.pending_snapshot = 0
        self.snapshot_elapsed_ticks = 0
        self.recent_active = False
        self.max_inflight = max_inflight
        self.inflight: deque[int] = deque()

    def __repr__(self) -> str:
        return (
            f"Progress({self.state.value} match={self.match_index} next={self.next_index}"
            f" inflight={len(self.inflight)})"
        )

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            self.next_index = max(self.match_index + 1, self.pending_snapshot + 1)
        else:
            self.next_index = self.match_index + 1
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.pending_snapshot = 0
        self.inflight.clear()

    def become_replicate(self) -> None:
        self.state = ProgressState.REPLICATE
        self.next_index = self.match_index + 1
        self.probe_sent = False
        self.pending_snapshot = 0
        self.inflight.clear()

    def become_snapshot(self, snapshot_index: int) -> None:
        self.state = ProgressState.SNAPSHOT
        self.pending_snapshot = snapshot_index
        self.snapshot_elapsed_ticks = 0
        self.probe_sent = False
        self.inflight.clear()

    def is_paused(self) -> bool:
        """Whether the leader must hold back AppendEntries to this follower now."""
        state = self.state
        if state is ProgressState.REPLICATE:
            return len(self.inflight) >= self.max_inflight
        if state is ProgressState.PROBE:
            return self.probe_sent
        return True

    def sent_entries(self, last_sent_index: int, count: int) -> None:
        """Record an AppendEntries sent with `count` entries ending at `last_sent_index`."""
        if self.state is ProgressState.REPLICATE:
            if count:
                self.next_index = last_sent_index + 1
                self.inflight.append(last_sent_index)
        elif self.state is ProgressState.PROBE:
            self.probe_sent = True

    def maybe_update(self, match_index: int) -> bool:
        """A success response: True if it told us something new (match moved)."""
        updated = False
        if match_index > self.match_index:
            self.match_index = match_index
            updated = True
            self.probe_sent = False
        self.next_index = max(self.next_index, match_index + 1)
        inflight = self.inflight
        while inflight and inflight[0] <= match_index:
            inflight.popleft()
        return updated

    def maybe_decrease(self, rejected_index: int, hint_next_index: int) -> bool:
        """A rejection of the AppendEntries at `rejected_index`: back `next_index` off to
        the hinted index (dropping to PROBE from REPLICATE). False if it is stale."""
        if self.state is ProgressState.REPLICATE:
            if rejected_index <= self.match_index:
                return False
        elif self.next_index - 1 != rejected_index:
            return False
        next_index = max(min(rejected_index, hint_next_index), self.match_index + 1)
        if self.state is ProgressState.REPLICATE:
            self.become_probe()
        self.next_index = next_index
        self.probe_sent = False
        return True

    def free_first_inflight(self) -> None:
        """Free one slot of a full window (a heartbeat response shows the follower is
        alive, so a lost AppendEntries must not stall the stream forever)."""
        if self.inflight and len(self.inflight) >= self.max_inflight:
            self.inflight.popleft()
