"""The vocabulary of the Raft core: entries, durable state, membership, messages, Ready.

Rules:
- Every value here is a frozen, slotted dataclass or an enum. Nothing here does I/O.
- Field names follow the Raft paper and Ongaro's thesis (`current_term`, `voted_for`,
  `commit_index`, `prev_log_index`, ...). Units come last (`cluster_time_ticks`).
- Node ids are short strings ("n1"). Time is counted in ticks; the node that drives the
  core decides how long a tick is.

Theory of operation (the contract between the core and whoever drives it, as in etcd's
`Ready`): the driver calls `tick()`, `step(message)`, `propose(...)` and friends, then
takes `ready()`. For each `Ready`, in this order, the driver

1. persists `snapshot` (if any), then `entries` (which may replace a suffix of the log
   starting at `entries[0].index`), then `hard_state` (if any), and fsyncs when
   `must_sync` is true;
2. sends `messages` (only now: they may promise things that step 1 made durable);
3. applies `committed_entries` to the state machine (restoring from `snapshot` first if
   one was received), and serves `read_states` once the applied index reaches each one's
   `index`;
4. calls `advance(ready)`.

One exception to the order of steps 1 and 2 (thesis 10.2.1, etcd's async storage writes):
the messages of `messages_before_persist()` may be sent before step 1 starts or while it
runs. They are a leader's `AppendEntriesRequest` and `HeartbeatRequest`s of a Ready with
`send_before_persist` true, which the core sets only when the Ready changes no term and
no vote and installs no snapshot. Such a request promises nothing about the leader's own
disk: the leader counts itself in a commit quorum only for entries it reported persisted
(`advance`, which then emits `PersistEntries`), so a crash before step 1 finishes loses
at most entries no quorum counted on the leader for. Everything else (`messages_after_persist()`:
every answer such as an AppendEntries acknowledgment or a vote, every RequestVote,
InstallSnapshot and TimeoutNow, and every message of a Ready that changes the term or vote)
is still sent only after step 1.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

NodeId = str


class Role(enum.Enum):
    """The role a server plays; the values are the spec's role names."""

    FOLLOWER = "Follower"
    PRE_CANDIDATE = "PreCandidate"
    CANDIDATE = "Candidate"
    LEADER = "Leader"


class EntryKind(enum.IntEnum):
    """What a log entry carries."""

    NORMAL = 0
    """An application command (opaque bytes for the core)."""
    NOOP = 1
    """The empty entry a new leader appends to commit entries of earlier terms."""
    CONF_CHANGE = 2
    """A single-server membership change (`ConfChange` encoded in `data`)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry. `cluster_time_ticks` is the leader's cluster clock when appended.

    The cluster clock never goes backwards along a log: a new leader starts its clock at
    the cluster time of the last entry in its log, so state machines can expire client
    sessions deterministically from the entries alone.
    """

    term: int
    index: int
    kind: EntryKind = EntryKind.NORMAL
    data: bytes = b""
    cluster_time_ticks: int = 0


@dataclass(frozen=True, slots=True)
class HardState:
    """The durable per-server state of the paper's Figure 2 (plus the commit index)."""

    current_term: int = 0
    voted_for: NodeId | None = None
    commit_index: int = 0


@dataclass(frozen=True, slots=True)
class Membership:
    """A configuration: voting members and learners (non-voting members). Disjoint sets."""

    voters: frozenset[NodeId] = frozenset()
    learners: frozenset[NodeId] = frozenset()

    def __post_init__(self) -> None:
        assert not (self.voters & self.learners), "a node is a voter or a learner, not both"

    def members(self) -> frozenset[NodeId]:
        return self.voters | self.learners


class ConfChangeKind(enum.Enum):
    """Single-server membership changes (thesis chapter 4, with learners)."""

    ADD_LEARNER = "AddLearner"
    PROMOTE_LEARNER = "PromoteLearner"
    REMOVE_SERVER = "RemoveServer"


@dataclass(frozen=True, slots=True)
class ConfChange:
    """A membership change proposal. `context` is opaque to the core (e.g. addresses)."""

    kind: ConfChangeKind
    node_id: NodeId
    context: bytes = b""


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """Where a snapshot stands in the log, and the configuration in force there."""

    index: int
    term: int
    membership: Membership
    cluster_time_ticks: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A state-machine snapshot covering the log up to and including `meta.index`."""

    meta: SnapshotMeta
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state the driver may want to observe (not persisted)."""

    leader_id: NodeId | None
    role: Role


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read may be served once the applied index reaches `index`."""

    index: int
    request_ctx: bytes


# Messages. Every message carries `term`, `from_id` and `to_id`. `seq` is a per-sender
# counter used only to pair sends with receives when node traces are merged.


@dataclass(frozen=True, slots=True)
class RequestVoteRequest:
    term: int
    from_id: NodeId
    to_id: NodeId
    last_log_index: int
    last_log_term: int
    pre_vote: bool = False
    transfer: bool = False
    """Sent after TimeoutNow: voters ignore their leader lease (leadership transfer)."""
    seq: int = 0


@dataclass(frozen=True, slots=True)
class RequestVoteResponse:
    term: int
    from_id: NodeId
    to_id: NodeId
    vote_granted: bool
    pre_vote: bool = False
    seq: int = 0


@dataclass(frozen=True, slots=True)
class AppendEntriesRequest:
    term: int
    from_id: NodeId
    to_id: NodeId
    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...]
    leader_commit: int
    seq: int = 0


@dataclass(frozen=True, slots=True)
class AppendEntriesResponse:
    """Answer to AppendEntries and to InstallSnapshot.

    On success `match_index` is the last index known to match the leader's log. On
    rejection `reject_index` is the request's `prev_log_index` (so stale rejections are
    recognised) and `conflict_term` / `conflict_index` are the fast-backtracking hints:
    the term of the follower's entry at `reject_index` (0 if its log is shorter) and the
    first index the follower holds with that term (or its last index + 1).
    """

    term: int
    from_id: NodeId
    to_id: NodeId
    success: bool
    match_index: int = 0
    reject_index: int = 0
    conflict_term: int = 0
    conflict_index: int = 0
    seq: int = 0


@dataclass(frozen=True, slots=True)
class InstallSnapshotRequest:
    term: int
    from_id: NodeId
    to_id: NodeId
    snapshot: Snapshot
    seq: int = 0


@dataclass(frozen=True, slots=True)
class HeartbeatRequest:
    """Leader liveness and commit propagation; `read_round` confirms leadership for reads."""

    term: int
    from_id: NodeId
    to_id: NodeId
    commit_index: int
    read_round: int = 0
    seq: int = 0


@dataclass(frozen=True, slots=True)
class HeartbeatResponse:
    term: int
    from_id: NodeId
    to_id: NodeId
    read_round: int = 0
    seq: int = 0


@dataclass(frozen=True, slots=True)
class TimeoutNow:
    """Leadership transfer: the target starts an election at once, skipping PreVote."""

    term: int
    from_id: NodeId
    to_id: NodeId
    seq: int = 0


Message = (
    RequestVoteRequest
    | RequestVoteResponse
    | AppendEntriesRequest
    | AppendEntriesResponse
    | InstallSnapshotRequest
    | HeartbeatRequest
    | HeartbeatResponse
    | TimeoutNow
)


@dataclass(frozen=True, slots=True)
class Ready:
    """A batch of work for the driver; see the module docstring for the contract."""

    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    entries: tuple[Entry, ...] = ()
    snapshot: Snapshot | None = None
    messages: tuple[Message, ...] = ()
    committed_entries: tuple[Entry, ...] = ()
    read_states: tuple[ReadState, ...] = ()
    must_sync: bool = False
    send_before_persist: bool = False
    """True when the leader's requests in `messages` may leave before step 1 finishes
    (see the module docstring); drivers read it through `messages_before_persist()`."""

    def messages_before_persist(self) -> tuple[Message, ...]:
        """The messages a driver may send before (or while) it persists this Ready."""
        if not self.send_before_persist:
            return ()
        return tuple(m for m in self.messages if type(m) in _LEADER_REQUESTS)

    def messages_after_persist(self) -> tuple[Message, ...]:
        """The messages a driver must send only after it persisted this Ready."""
        if not self.send_before_persist:
            return self.messages
        return tuple(m for m in self.messages if type(m) not in _LEADER_REQUESTS)

    def is_empty(self) -> bool:
        return (
            self.soft_state is None
            and self.hard_state is None
            and not self.entries
            and self.snapshot is None
            and not self.messages
            and not self.committed_entries
            and not self.read_states
        )


_LEADER_REQUESTS = frozenset((AppendEntriesRequest, HeartbeatRequest))
"""The messages a leader may send before its own persist finishes."""


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One spec action taken by one node (format 1 of DESIGN.md; docs/trace-format.md).

    `params` are the action's parameters (for message handlers, the message rendered as
    a dict with its `seq`); `state` is the node's spec-visible state after the action.
    """

    name: str
    node: NodeId
    params: dict[str, object] = field(default_factory=dict)
    state: dict[str, object] = field(default_factory=dict)
