"""The Raft node: the public API a driver (simulator, kvserver) and tests use.

Role: `Node` is the pure, deterministic Raft state machine in the style of etcd's RawNode.
Inputs: `tick()`, `step(msg)`, `propose(data)`, `propose_conf_change(change)`,
`read_index(ctx)`, `transfer_leadership(target)`, `compact(meta)`. Output: `ready()`, a
`Ready` batch the driver persists, sends, applies and acknowledges with `advance(ready)`
(the contract is in raftcore/types.py).

Rules:
- No I/O, no clock, no global randomness: time is `tick()`, randomness is the
  `random.Random` handed in (election jitter only).
- Durable state (term, vote, log) leaves only through `Ready`; messages that depend on it
  are in the same Ready, so a driver that persists before sending never sends a promise it
  could forget. The core never assumes anything durable before `advance`: a leader's own
  entries count toward commit only once `advance` reports them persisted
  (`PersistEntries`), which is what lets a leader send them before its fsync
  (`Ready.messages_before_persist`).
- One Ready at a time: `advance` must acknowledge the Ready `ready()` returned before the
  next `ready()` (a programmer error otherwise).
- Operating errors (`NotLeader`, `TransferInProgress`, `LeaderNotReady`,
  `ConfChangePending`, `InvalidConfChange`, `InvalidTransfer`) are raised before anything
  changes, so a refused request definitely did not happen.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

from raftcore import confchange, fastmsg
from raftcore.bugs import PlantedBug
from raftcore.config import Config
from raftcore.election import ElectionMixin
from raftcore.errors import (
    ConfChangePending,
    InvalidTransfer,
    LeaderNotReady,
    NotLeader,
    TransferInProgress,
)
from raftcore.progress import Progress
from raftcore.replication import ReplicationMixin
from raftcore.storage import Storage
from raftcore.types import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    ConfChange,
    Entry,
    EntryKind,
    HardState,
    HeartbeatRequest,
    HeartbeatResponse,
    InstallSnapshotRequest,
    Membership,
    Message,
    Ready,
    RequestVoteRequest,
    RequestVoteResponse,
    Role,
    SnapshotMeta,
    SoftState,
    TimeoutNow,
    TraceEvent,
)


class Node(ElectionMixin, ReplicationMixin):
    """A Raft node over read-only `storage`; see the module docstring."""

    __slots__ = ()

    def __init__(
        self,
        config: Config,
        storage: Storage,
        rng: random.Random,
        tracer: Callable[[TraceEvent], None] | None = None,
    ) -> None:
        super().__init__(config, storage, rng, tracer)

    # Inputs.

    def tick(self) -> None:
        """Advance logical time by one tick."""
        if self._role is Role.LEADER:
            self._tick_leader()
        else:
            self._tick_election()

    def step(self, msg: Message) -> None:
        """Handle a message from a peer (any term; stale ones change nothing)."""
        assert msg.to_id == self._id, f"message for {msg.to_id} stepped into {self._id}"
        if msg.term > self._term:
            msg_type = type(msg)
            if msg_type is RequestVoteRequest:
                if not msg.transfer and self._in_lease():  # type: ignore[union-attr]
                    # Thesis 4.2.3: a live leader exists; neither vote nor raise our term.
                    if self._tracer is not None:
                        self._emit_msg("HandleRequestVoteRequest", msg)
                    return
                if not msg.pre_vote:  # type: ignore[union-attr]
                    self._update_term(msg)
            elif msg_type in _ANSWERS and self._keeps_lease_promise():
                # An answer to something we sent in an earlier role, delayed: its term
                # must not end the lease we promised our leader (lease reads rely on it).
                if self._tracer is not None:
                    self._emit_msg(_ANSWER_HANDLER_NAMES[msg_type], msg)
                return
            elif not (
                msg_type is RequestVoteResponse
                and msg.pre_vote  # type: ignore[union-attr]
                and msg.vote_granted  # type: ignore[union-attr]
            ):
                self._update_term(msg)
        _HANDLERS[type(msg)](self, msg)

    def _keeps_lease_promise(self) -> bool:
        """With lease reads, a follower inside its leader lease ignores higher-term
        answers (vote, append and heartbeat responses): only requests may end it."""
        return self._config.lease_reads and self._role is Role.FOLLOWER and self._in_lease()

    def propose(self, data: bytes) -> int:
        """ClientRequest: append a normal entry; returns its index."""
        self._check_can_propose()
        entry = self._append_as_leader(EntryKind.NORMAL, data)
        if self._tracer is not None:
            self._emit(
                "ClientRequest",
                {
                    "index": entry.index,
                    "term": entry.term,
                    "cluster_time_ticks": entry.cluster_time_ticks,
                },
            )
        self._after_leader_append()
        return entry.index

    def propose_conf_change(self, change: ConfChange) -> int:
        """AddLearner / PromoteLearner / RemoveServer: append a configuration entry.

        Refused (before anything changes) unless this leader has committed an entry of its
        term (`LeaderNotReady`) and no other configuration entry is uncommitted
        (`ConfChangePending`): the fix for the single-server membership bug of July 2015.
        """
        self._check_can_propose()
        confchange.validate(self._membership, change)
        if self._bug is not PlantedBug.SKIP_CONF_GUARD:
            if not self._committed_in_term():
                raise LeaderNotReady()
            pending = self._pending_conf_index()
            if pending > self._log.committed:
                raise ConfChangePending(pending)
        entry = self._append_conf_change(change)
        # The quorum may have changed: entries it now covers can commit.
        self._maybe_commit()
        if self._role is Role.LEADER:
            self._broadcast_append()
        return entry.index

    def read_index(self, request_ctx: bytes) -> None:
        """Ask for a linearizable read; a `ReadState` with this context comes out in a
        later Ready. Queued until this leader has committed an entry of its term."""
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        if not self._committed_in_term():
            self._queued_reads.append(request_ctx)
            return
        if self._register_read(request_ctx):
            self._broadcast_heartbeat()

    def transfer_leadership(self, target: str) -> None:
        """TransferLeadership: catch `target` up, then send it TimeoutNow. Proposals fail
        with `TransferInProgress` until it completes or an election timeout passes."""
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        if target == self._id:
            return
        if target not in self._membership.voters:
            raise InvalidTransfer(target)
        if self._transfer_target is not None:
            if self._transfer_target == target:
                return
            raise TransferInProgress(self._transfer_target)
        self._transfer_target = target
        self._election_elapsed = 0  # The transfer gets one full election timeout.
        if self._tracer is not None:
            self._emit("TransferLeadership", {"target": target})
        if self._progress[target].match_index == self._log.last_index():
            self._send_timeout_now(target)
        else:
            self._send_append(target, send_if_empty=True)

    def compact(self, snapshot_meta: SnapshotMeta) -> None:
        """CompactLog: the driver snapshotted at `snapshot_meta.index` (applied) and
        compacted its storage there; the node forgets the prefix."""
        index = snapshot_meta.index
        assert index <= self._log.applied, "compacting beyond the applied index"
        assert self._storage.snapshot().meta.index >= index, "storage has no such snapshot"
        if index <= self._snapshot_index:
            return
        self._snapshot_index = index
        self._snapshot_term = snapshot_meta.term
        self._base_membership = snapshot_meta.membership
        records = self._conf_entries
        while records and records[0][0] <= index:
            records.pop(0)
        if self._tracer is not None:
            self._emit("CompactLog", {"index": index, "term": snapshot_meta.term})

    def _check_can_propose(self) -> None:
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        if self._transfer_target is not None:
            raise TransferInProgress(self._transfer_target)

    def _after_leader_append(self) -> None:
        if len(self._membership.voters) <= 1:
            self._maybe_commit()
        if self._role is Role.LEADER:
            self._broadcast_append()

    # Output.

    def has_ready(self) -> bool:
        """Whether `ready()` would return a non-empty batch."""
        log = self._log
        if (
            self._msgs
            or log.unstable_entries
            or log.unstable_snapshot is not None
            or log.committed > log.applying
            or self._read_states
        ):
            return True
        prev_soft = self._prev_soft
        if self._leader_id != prev_soft[0] or self._role is not prev_soft[1]:
            return True
        prev = self._prev_hard_state
        return (
            prev.current_term != self._term
            or prev.voted_for != self._voted_for
            or prev.commit_index != log.committed
        )

    def _hard_state_changed(self) -> bool:
        prev = self._prev_hard_state
        return (
            prev.current_term != self._term
            or prev.voted_for != self._voted_for
            or prev.commit_index != self._log.committed
        )

    def ready(self) -> Ready:
        """The next batch of work for the driver (see `raftcore.types` for the contract)."""
        assert self._outstanding is None, "advance() the previous Ready first"
        log = self._log
        soft_state = None
        if (self._leader_id, self._role) != self._prev_soft:
            soft_state = SoftState(leader_id=self._leader_id, role=self._role)
            self._prev_soft = (self._leader_id, self._role)
        hard_state = None
        must_sync = False
        early = self._role is Role.LEADER
        if self._hard_state_changed():
            prev = self._prev_hard_state
            must_sync = prev.current_term != self._term or prev.voted_for != self._voted_for
            early = early and not must_sync
            hard_state = fastmsg.hard_state(self._term, self._voted_for, log.committed)
            self._prev_hard_state = hard_state
            if self._bug is PlantedBug.FORGET_PERSIST_VOTE:
                hard_state = HardState(hard_state.current_term, None, hard_state.commit_index)
        snapshot = log.unstable_snapshot
        if snapshot is not None:
            log.applying = max(log.applying, snapshot.meta.index)
        committed_entries: tuple[Entry, ...] = ()
        if log.committed > log.applying:
            committed_entries = tuple(log.next_committed_entries(None))
            if committed_entries:
                log.applying = committed_entries[-1].index
        entries = tuple(log.unstable_entries)
        ready = fastmsg.ready(
            soft_state,
            hard_state,
            entries,
            snapshot,
            tuple(self._msgs),
            committed_entries,
            tuple(self._read_states) if self._read_states else (),
            must_sync or bool(entries) or snapshot is not None,
            early and snapshot is None and bool(self._msgs),
        )
        self._msgs = []
        if self._read_states:
            self._read_states = []
        self._outstanding = ready
        return ready

    def durable_committed_entries(self, applied_index: int) -> list[Entry]:
        """Committed entries above `applied_index` that are already durable here (below
        the unstable part of the log), for a driver that applies them before a later
        Ready's write is done (kvserver's leader, at the start of a Ready and while its
        write is in flight). The next Ready hands them out again; the driver skips what it
        applied."""
        log = self._log
        if log.unstable_snapshot is not None:
            return []
        hi = min(log.committed, log.unstable_offset - 1)
        if self._bug is PlantedBug.APPLY_UNCOMMITTED_EARLY:
            hi = log.unstable_offset - 1
        lo = max(applied_index + 1, log.first_index())
        return log.entries(lo, hi + 1) if lo <= hi else []

    def advance(self, ready: Ready) -> None:
        """The driver persisted, sent and applied `ready`."""
        assert ready is self._outstanding, "advance() takes the Ready ready() returned"
        self._outstanding = None
        log = self._log
        if ready.snapshot is not None:
            index = ready.snapshot.meta.index
            log.stable_snap_to(index)
            log.applied = max(log.applied, index)
        if ready.entries:
            last = ready.entries[-1]
            log.stable_to(last.index, last.term)
            if last.index > self._persisted_index and log.match_term(last.index, last.term):
                self._persisted_to(last.index)
        if ready.committed_entries:
            log.applied = ready.committed_entries[-1].index

    # Read-only views for drivers and tests.

    @property
    def id(self) -> str:
        return self._id

    @property
    def config(self) -> Config:
        return self._config

    @property
    def role(self) -> Role:
        return self._role

    @property
    def leader_id(self) -> str | None:
        return self._leader_id

    @property
    def current_term(self) -> int:
        return self._term

    @property
    def voted_for(self) -> str | None:
        return self._voted_for

    @property
    def commit_index(self) -> int:
        return self._log.committed

    @property
    def applied_index(self) -> int:
        return self._log.applied

    @property
    def membership(self) -> Membership:
        """The configuration in force (the last one in the log, committed or not)."""
        return self._membership

    @property
    def first_index(self) -> int:
        return self._log.first_index()

    @property
    def last_index(self) -> int:
        return self._log.last_index()

    @property
    def last_term(self) -> int:
        return self._log.last_term()

    @property
    def snapshot_index(self) -> int:
        return self._snapshot_index

    @property
    def snapshot_term(self) -> int:
        return self._snapshot_term

    @property
    def pending_conf_index(self) -> int:
        """Index of the last configuration entry in the log (0: only the snapshot's)."""
        return self._pending_conf_index()

    @property
    def transfer_target(self) -> str | None:
        return self._transfer_target

    @property
    def cluster_time_ticks(self) -> int:
        """The leader's cluster clock (meaningful only while leader)."""
        return self._cluster_time_ticks

    @property
    def match_index(self) -> dict[str, int] | None:
        """Leader only: each other member's match index; None on other roles."""
        return self._match_index_view()

    @property
    def progress(self) -> Mapping[str, Progress]:
        """Leader only: replication progress per member (read-only use, for tests)."""
        return dict(self._progress)

    @property
    def hard_state(self) -> HardState:
        """The current durable state as it will next be handed out."""
        return self._hard_state()

    def term_at(self, index: int) -> int:
        """The term of the entry at `index` (raises Compacted / Unavailable)."""
        return self._log.term(index)


_HANDLERS: dict[type, Callable[[Node, Message], None]] = {
    AppendEntriesRequest: Node._handle_append_entries_request,  # type: ignore[dict-item]
    AppendEntriesResponse: Node._handle_append_entries_response,  # type: ignore[dict-item]
    HeartbeatRequest: Node._handle_heartbeat_request,  # type: ignore[dict-item]
    HeartbeatResponse: Node._handle_heartbeat_response,  # type: ignore[dict-item]
    RequestVoteRequest: Node._handle_request_vote_request,  # type: ignore[dict-item]
    RequestVoteResponse: Node._handle_request_vote_response,  # type: ignore[dict-item]
    InstallSnapshotRequest: Node._handle_install_snapshot_request,  # type: ignore[dict-item]
    TimeoutNow: Node._handle_timeout_now,  # type: ignore[dict-item]
}

_ANSWERS = frozenset((RequestVoteResponse, AppendEntriesResponse, HeartbeatResponse))
_ANSWER_HANDLER_NAMES: dict[type, str] = {
    RequestVoteResponse: "HandleRequestVoteResponse",
    AppendEntriesResponse: "HandleAppendEntriesResponse",
    HeartbeatResponse: "HandleHeartbeatResponse",
}
