"""The state every part of a Raft node shares, and the transitions they all use.

Role: `NodeCore` holds the node's state (durable, volatile, leader-only) and the small
operations the election, replication and public-API parts build on: role resets, the
configuration in force, appending as leader, committing, message sequencing and trace
emission. `Node` (node.py) is `NodeCore` plus `ElectionMixin` (election.py) and
`ReplicationMixin` (replication.py).

Rules:
- Role changes happen only in `_become_*` methods (here and in election.py); each resets
  the timers and the per-role state.
- Trace events are emitted only under `if self._tracer is not None`, so a node without a
  tracer builds no dicts. An event is emitted after the state change it names.
- The configuration in force is the last configuration entry in the log (committed or not)
  applied over the snapshot's; truncating such an entry reverts it (`_on_log_replaced`).
- Messages are only queued here; `ready()` hands them out after the state they depend on.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from raftcore import confchange, trace
from raftcore.bugs import PlantedBug
from raftcore.config import Config
from raftcore.errors import Compacted
from raftcore.log import RaftLog
from raftcore.progress import Progress, ProgressState
from raftcore.quorum import quorum_size
from raftcore.readonly import ReadOnly
from raftcore.storage import Storage
from raftcore.types import (
    ConfChange,
    Entry,
    EntryKind,
    HardState,
    Membership,
    Message,
    NodeId,
    ReadState,
    Role,
    TraceEvent,
)

Tracer = Callable[[TraceEvent], None]


class NodeCore:
    """Shared state and transitions of a Raft node (see the module docstring)."""

    __slots__ = (
        "_base_membership",
        "_bug",
        "_cluster_time_ticks",
        "_conf_entries",
        "_config",
        "_election_elapsed",
        "_heartbeat_elapsed",
        "_id",
        "_leader_id",
        "_lease_sent_ticks",
        "_log",
        "_membership",
        "_msgs",
        "_outstanding",
        "_persisted_index",
        "_prev_hard_state",
        "_prev_soft",
        "_progress",
        "_queued_reads",
        "_randomized_election_timeout",
        "_read_only",
        "_read_states",
        "_restart_lease",
        "_rng",
        "_role",
        "_seq",
        "_snapshot_index",
        "_snapshot_term",
        "_storage",
        "_term",
        "_term_start_index",
        "_timeout_now_sent",
        "_tracer",
        "_transfer_elapsed",
        "_transfer_target",
        "_voted_for",
        "_votes",
    )

    def __init__(
        self, config: Config, storage: Storage, rng: random.Random, tracer: Tracer | None
    ) -> None:
        self._config = config
        self._id = config.id
        self._storage = storage
        self._rng = rng
        self._tracer = tracer
        self._bug = config.planted_bug
        self._seq = config.msg_seq_base
        self._msgs: list[Message] = []
        self._read_states: list[ReadState] = []
        self._votes: dict[NodeId, bool] = {}
        self._progress: dict[NodeId, Progress] = {}
        self._read_only = ReadOnly()
        self._queued_reads: list[bytes] = []
        self._outstanding: object | None = None
        self._role = Role.FOLLOWER
        self._leader_id: NodeId | None = None
        self._load_storage(storage)
        self._prev_soft: tuple[NodeId | None, Role] = (None, Role.FOLLOWER)
        self._term_start_index = 0
        self._cluster_time_ticks = 0
        self._transfer_target: NodeId | None = None
        self._transfer_elapsed = 0
        self._timeout_now_sent = False
        self._lease_sent_ticks: dict[int, int] = {}
        # With lease reads, a restarted voter does not know whether it promised a leader
        # its lease: it refuses votes for one election timeout, as if it had just heard
        # from a leader. (A node that never voted in any term promised nothing.)
        self._restart_lease = config.lease_reads and self._term > 0
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_election_timeout = 0
        self._randomize_election_timeout()
        if self._tracer is not None:
            self._emit("Restart", {})

    def _load_storage(self, storage: Storage) -> None:
        """Recover the durable state: hard state, snapshot, log, configuration."""
        self._log = RaftLog(storage)
        hard_state = storage.initial_state()
        snapshot = storage.snapshot()
        meta = snapshot.meta
        self._snapshot_index = meta.index
        self._snapshot_term = meta.term
        self._base_membership = meta.membership
        self._term = hard_state.current_term
        self._voted_for = hard_state.voted_for
        first, last = storage.first_index(), storage.last_index()
        # A driver may keep some entries the snapshot covers (for slow followers).
        assert first <= meta.index + 1, "storage lost entries its snapshot does not cover"
        assert hard_state.commit_index <= last, "commit index beyond the stored log"
        log = self._log
        log.committed = max(hard_state.commit_index, meta.index)
        log.applied = log.applying = meta.index  # The state machine restarts from it.
        self._persisted_index = max(last, meta.index)
        self._prev_hard_state = hard_state
        self._conf_entries: list[tuple[int, Membership]] = []
        self._membership = self._base_membership
        if last > meta.index:
            self._on_log_replaced(meta.index + 1, storage.entries(meta.index + 1, last + 1))

    # Trace emission and message sequencing.

    def _emit(self, name: str, params: dict[str, object]) -> None:
        tracer = self._tracer
        assert tracer is not None, "emit only when tracing"
        tracer(trace.make_event(self, name, params))  # type: ignore[arg-type]

    def _emit_msg(self, name: str, msg: Message, reply: Message | None = None) -> None:
        self._emit(name, trace.handler_params(msg, reply))

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # Timers and role transitions.

    def _randomize_election_timeout(self) -> None:
        timeout = self._config.election_timeout_ticks
        self._randomized_election_timeout = timeout + self._rng.randrange(timeout)

    def _reset(self, term: int) -> None:
        """Enter `term` (forgetting the vote if the term changes) with fresh timers."""
        if term != self._term:
            self._term = term
            self._voted_for = None
        self._leader_id = None
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomize_election_timeout()
        self._votes = {}
        self._progress = {}
        self._transfer_target = None
        self._transfer_elapsed = 0
        self._timeout_now_sent = False
        self._lease_sent_ticks = {}
        self._restart_lease = False
        self._read_only.reset()
        self._queued_reads = []

    def _become_follower(self, term: int, leader_id: NodeId | None) -> None:
        self._reset(term)
        self._role = Role.FOLLOWER
        self._leader_id = leader_id

    def _update_term(self, msg: Message) -> None:
        """UpdateTerm: a message with a higher term makes us a follower of that term."""
        self._become_follower(msg.term, None)
        if self._tracer is not None:
            self._emit_msg("UpdateTerm", msg)

    def _promotable(self) -> bool:
        """Only a voter of the configuration in force may campaign."""
        return self._id in self._membership.voters

    def _in_lease(self) -> bool:
        """Whether we heard from a leader within the election timeout (thesis 4.2.3), or
        restarted less than an election timeout ago."""
        return (
            self._config.check_quorum
            and (self._leader_id is not None or self._restart_lease)
            and self._election_elapsed < self._config.election_timeout_ticks
        )

    def _has_no_state(self) -> bool:
        """A joining node that has never seen a configuration or an entry."""
        return (
            not self._base_membership.voters
            and not self._base_membership.learners
            and not self._conf_entries
            and self._log.last_index() == 0
        )

    # The configuration in force.

    def _on_log_replaced(self, first_index: int, entries: Sequence[Entry]) -> None:
        """Entries from `first_index` on were replaced by `entries`: revert configuration
        entries that were truncated, then apply the new ones (effective when appended)."""
        records = self._conf_entries
        while records and records[-1][0] >= first_index:
            records.pop()
        membership = records[-1][1] if records else self._base_membership
        for entry in entries:
            if entry.kind is EntryKind.CONF_CHANGE:
                membership = confchange.apply(membership, confchange.decode(entry.data))
                records.append((entry.index, membership))
        if membership != self._membership:
            self._membership = membership
            if self._role is Role.LEADER:
                # New members probe from the configuration entry itself.
                self._sync_progress(max(self._log.last_index(), 1))

    def _pending_conf_index(self) -> int:
        """Index of the last configuration entry in the log (0 if only the snapshot's)."""
        return self._conf_entries[-1][0] if self._conf_entries else 0

    def _sync_progress(self, next_index: int) -> None:
        """Leader: one Progress per member other than ourselves (new ones probe from
        `next_index`). Members are added in sorted order so iteration is deterministic."""
        members = self._membership.members()
        progress = self._progress
        for node_id in list(progress):
            if node_id not in members:
                del progress[node_id]
        for node_id in sorted(members):
            if node_id != self._id and node_id not in progress:
                progress[node_id] = Progress(next_index, self._config.max_inflight_msgs)

    # Appending as leader and committing.

    def _last_cluster_time(self) -> int:
        """The cluster time of the last entry in the log (or of the snapshot)."""
        log = self._log
        last = log.last_index()
        try:
            return log.entries(last, last + 1)[0].cluster_time_ticks
        except Compacted:
            snapshot = log.unstable_snapshot or self._storage.snapshot()
            return snapshot.meta.cluster_time_ticks

    def _append_as_leader(self, kind: EntryKind, data: bytes) -> Entry:
        entry = Entry(
            term=self._term,
            index=self._log.last_index() + 1,
            kind=kind,
            data=data,
            cluster_time_ticks=self._cluster_time_ticks,
        )
        self._log.append((entry,))
        if kind is EntryKind.CONF_CHANGE:
            self._on_log_replaced(entry.index, (entry,))
        return entry

    def _append_conf_change(self, change: ConfChange) -> Entry:
        """Append a configuration entry (the caller checked validity and the guard)."""
        entry = self._append_as_leader(EntryKind.CONF_CHANGE, confchange.encode(change))
        if self._tracer is not None:
            self._emit(
                change.kind.value,
                {
                    "node_id": change.node_id,
                    "index": entry.index,
                    "term": entry.term,
                    "cluster_time_ticks": entry.cluster_time_ticks,
                },
            )
        return entry

    def _maybe_commit(self) -> bool:
        """AdvanceCommitIndex: move the commit index to the highest index replicated on a
        majority of voters, if that entry is of the current term (Figure 8). The leader
        counts itself only up to `_persisted_index` (thesis 10.2.1): its own entries count
        once the driver reported them durable, not when they were appended."""
        voters = self._membership.voters
        if not voters:
            return False
        log = self._log
        own = self._persisted_index
        if self._bug is PlantedBug.COUNT_UNPERSISTED_SELF:
            own = log.last_index()
        progress = self._progress
        self_id = self._id
        matches = sorted(
            (own if voter == self_id else progress[voter].match_index for voter in voters),
            reverse=True,
        )
        index = matches[quorum_size(len(voters)) - 1]
        if index <= log.committed:
            return False
        if log.term(index) != self._term and self._bug is not PlantedBug.COMMIT_OLD_TERM:
            return False
        log.commit_to(index)
        if self._tracer is not None:
            self._emit("AdvanceCommitIndex", {"commit_index": index})
        self._on_leader_commit()
        return True

    def _on_leader_commit(self) -> None:
        """After the leader's commit index moved: serve queued reads once an entry of the
        term is committed, and step down if our own removal committed."""
        committed = self._log.committed
        if self._queued_reads and committed >= self._term_start_index:
            self._register_queued_reads()
        if (
            self._id not in self._membership.members()
            and committed >= self._pending_conf_index()
        ):
            removal_index = self._pending_conf_index()
            self._become_follower(self._term, None)
            if self._tracer is not None:
                self._emit("StepDownRemoved", {"index": removal_index})

    def _persisted_to(self, index: int) -> None:
        """PersistEntries: the driver reported the log up to `index` durable (a leader's
        own entries count toward commit from now on)."""
        self._persisted_index = index
        if self._tracer is not None:
            self._emit("PersistEntries", {"index": index})
        if self._role is Role.LEADER and index > self._log.committed:
            self._maybe_commit()

    def _committed_in_term(self) -> bool:
        return self._log.committed >= self._term_start_index

    # Hooks the mixins implement (declared here so each part can call the others).

    def _register_queued_reads(self) -> None:
        raise NotImplementedError

    def _broadcast_append(self) -> None:
        raise NotImplementedError

    # Read-only views shared by trace.state_image and the public properties.

    def _match_index_view(self) -> dict[NodeId, int] | None:
        if self._role is not Role.LEADER:
            return None
        return {node_id: pr.match_index for node_id, pr in self._progress.items()}

    def _hard_state(self) -> HardState:
        return HardState(self._term, self._voted_for, self._log.committed)

    def _progress_state(self, node_id: NodeId) -> ProgressState | None:
        pr = self._progress.get(node_id)
        return None if pr is None else pr.state
