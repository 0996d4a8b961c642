"""Configuration of one Raft node: identity, timing in ticks, flow-control limits, options.

Rules: a frozen value checked on construction; a bad value raises `ValueError` with a clear
message (configurations come from command lines and files). Timing is in ticks: the driver
decides how long a tick is. `planted_bug` is a test-only switch (see raftcore.bugs).
"""

from __future__ import annotations

from dataclasses import dataclass

from raftcore.bugs import PlantedBug
from raftcore.types import NodeId


@dataclass(frozen=True, slots=True)
class Config:
    id: NodeId
    election_timeout_ticks: int = 10
    """Followers wait a random time in [this, 2 * this) ticks before campaigning."""
    heartbeat_timeout_ticks: int = 1
    """A leader sends heartbeats every this many ticks."""
    pre_vote: bool = True
    """Run a pre-vote round (thesis 9.6) before starting a real election."""
    check_quorum: bool = True
    """A leader steps down if a quorum was silent for an election timeout; voters refuse
    votes within an election timeout of hearing from a leader (the leader lease)."""
    max_entries_per_msg: int = 64
    max_bytes_per_msg: int = 1 << 20
    max_inflight_msgs: int = 256
    """Unacknowledged AppendEntries allowed per follower in the Replicate state."""
    lease_reads: bool = False
    """Serve ReadIndex without a heartbeat round while a quorum acknowledged a heartbeat
    sent less than an election timeout ago (the followers' leader lease). Set it on every
    node of a cluster: it also makes a restarted node refuse votes for one election
    timeout, so a restart cannot cut a lease short. Relies on ticks advancing at the same
    rate on every node (bounded clock drift)."""
    msg_seq_base: int = 0
    """First message sequence number minus one; a distinct base per incarnation keeps
    (from_id, seq) unique across restarts."""
    planted_bug: PlantedBug | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("node id must be a non-empty string")
        if self.heartbeat_timeout_ticks < 1:
            raise ValueError("heartbeat_timeout_ticks must be at least 1")
        if self.election_timeout_ticks <= self.heartbeat_timeout_ticks:
            raise ValueError("election_timeout_ticks must exceed heartbeat_timeout_ticks")
        if self.max_entries_per_msg < 1:
            raise ValueError("max_entries_per_msg must be at least 1")
        if self.max_bytes_per_msg < 1:
            raise ValueError("max_bytes_per_msg must be at least 1")
        if self.max_inflight_msgs < 1:
            raise ValueError("max_inflight_msgs must be at least 1")
        if self.lease_reads and not self.check_quorum:
            raise ValueError("lease_reads relies on check_quorum; enable both")
        if self.msg_seq_base < 0:
            raise ValueError("msg_seq_base must be non-negative")
