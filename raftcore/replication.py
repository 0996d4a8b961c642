"""Log replication: AppendEntries, heartbeats, InstallSnapshot, commit, reads, transfer.

Role: the replication half of a Raft node (paper 5.3-5.4, 7; thesis 3.10, 6.4), as a mixin
over `NodeCore`: the leader's tick, sending and answering AppendEntries / Heartbeat /
InstallSnapshot, the follower's side of each, ReadIndex confirmation and the leadership
transfer hand-off.

Theory of operation:
- The leader sends entries from `next_index` per follower, batched by
  `max_entries_per_msg` and `max_bytes_per_msg`, paced by the follower's progress state
  (progress.py): one probe at a time, or a window of `max_inflight_msgs` when replicating.
- A follower answers every AppendEntries. A rejection carries the fast-backtracking hints
  (`conflict_term`, `conflict_index`; see `AppendEntriesResponse`); a joining node with no
  state at all answers `conflict_index = 0`, which asks for a snapshot.
- The leader commits by counting `match_index` of voters (core.py, Figure 8 rule) whenever
  a success moves a follower's match.
- Heartbeats carry `min(match_index, commit_index)` so a follower never commits past what
  it is known to share with the leader, and the current read round (readonly.py).
- A follower needing entries the leader compacted gets the leader's snapshot.

Rules: messages to and from stale terms change nothing (requests are answered with our
term so a stale leader learns it); every iteration over members is in sorted order.
"""

from __future__ import annotations

from raftcore import fastmsg
from raftcore.core import NodeCore
from raftcore.errors import Compacted
from raftcore.progress import Progress, ProgressState
from raftcore.quorum import quorum_size
from raftcore.types import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    HeartbeatRequest,
    HeartbeatResponse,
    InstallSnapshotRequest,
    ReadState,
    Role,
    Snapshot,
    TimeoutNow,
)


class ReplicationMixin(NodeCore):
    __slots__ = ()

    # The leader's clock.

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        self._cluster_time_ticks += 1
        config = self._config
        if self._election_elapsed >= config.election_timeout_ticks:
            self._election_elapsed = 0
            if config.check_quorum and not self._check_quorum():
                return
            if self._transfer_target is not None:
                self._abort_transfer("timeout")
        for pr in self._progress.values():
            if pr.state is ProgressState.SNAPSHOT:
                pr.snapshot_elapsed_ticks += 1
                if pr.snapshot_elapsed_ticks >= config.election_timeout_ticks:
                    # The snapshot (or its answer) was lost: probe again.
                    pr.pending_snapshot = 0
                    pr.become_probe()
        if self._heartbeat_elapsed >= config.heartbeat_timeout_ticks:
            self._heartbeat_elapsed = 0
            self._broadcast_heartbeat()

    def _check_quorum(self) -> bool:
        """CheckQuorum: step down unless a quorum of voters was heard from recently."""
        voters = self._membership.voters
        progress = self._progress
        active = 1 if self._id in voters else 0
        for voter in voters:
            pr = progress.get(voter)
            if pr is not None and pr.recent_active:
                active += 1
        for pr in progress.values():
            pr.recent_active = False
        if active >= quorum_size(len(voters)):
            return True
        self._become_follower(self._term, None)
        if self._tracer is not None:
            self._emit("CheckQuorum", {})
        return False

    # Sending.

    def _broadcast_append(self) -> None:
        for to in self._progress:
            self._send_append(to, send_if_empty=False)

    def _broadcast_heartbeat(self) -> None:
        read_only = self._read_only
        if self._config.lease_reads:
            # Every heartbeat starts a round: its acknowledgments extend the lease.
            read_round = read_only.next_round()
            self._lease_sent_ticks[read_round] = self._cluster_time_ticks
        else:
            read_round = read_only.read_round if len(read_only) else 0
        committed = self._log.committed
        term, self_id = self._term, self._id
        for to, pr in self._progress.items():
            self._seq += 1
            match_index = pr.match_index
            msg = fastmsg.heartbeat_request(
                term,
                self_id,
                to,
                match_index if match_index < committed else committed,
                read_round,
                self._seq,
            )
            self._msgs.append(msg)
            if self._tracer is not None:
                self._emit_msg("Heartbeat", msg)

    def _send_append(self, to: str, send_if_empty: bool) -> bool:
        """AppendEntries to `to` if its progress allows; a snapshot if it needs one."""
        pr = self._progress[to]
        if pr.is_paused():
            return False
        log = self._log
        next_index = pr.next_index
        last = log.last_index()
        if next_index > last and not send_if_empty:
            return False
        try:
            prev_term = log.term(next_index - 1)
            entries: tuple[Entry, ...]
            if next_index > last:
                entries = ()
            else:
                config = self._config
                hi = min(last + 1, next_index + config.max_entries_per_msg)
                entries = tuple(log.entries(next_index, hi, config.max_bytes_per_msg))
        except Compacted:
            return self._send_snapshot(to, pr)
        self._seq += 1
        msg = fastmsg.append_entries_request(
            self._term, self._id, to, next_index - 1, prev_term, entries, log.committed, self._seq
        )
        pr.sent_entries(next_index - 1 + len(entries), len(entries))
        self._msgs.append(msg)
        if self._tracer is not None:
            self._emit_msg("AppendEntries", msg)
        return True

    def _send_snapshot(self, to: str, pr: Progress) -> bool:
        snapshot = self._log.unstable_snapshot or self._storage.snapshot()
        pr.become_snapshot(snapshot.meta.index)
        msg = InstallSnapshotRequest(
            term=self._term, from_id=self._id, to_id=to, snapshot=snapshot, seq=self._next_seq()
        )
        self._msgs.append(msg)
        if self._tracer is not None:
            self._emit_msg("InstallSnapshot", msg)
        return True

    def _send_timeout_now(self, to: str) -> None:
        # The target may win an election at any time now, lease or not.
        self._timeout_now_sent = True
        msg = TimeoutNow(term=self._term, from_id=self._id, to_id=to, seq=self._next_seq())
        self._msgs.append(msg)
        if self._tracer is not None:
            self._emit_msg("TimeoutNow", msg)

    def _abort_transfer(self, reason: str) -> None:
        target = self._transfer_target
        self._transfer_target = None
        if self._tracer is not None:
            self._emit("AbortTransfer", {"target": target, "reason": reason})

    # The follower's side.

    def _accept_leader(self, leader_id: str) -> None:
        """A message of our term from its leader: follow it and restart the timer."""
        if self._role is not Role.FOLLOWER:
            self._become_follower(self._term, leader_id)
        self._leader_id = leader_id
        self._election_elapsed = 0

    def _reply_append(
        self,
        to: str,
        success: bool,
        *,
        match_index: int = 0,
        reject_index: int = 0,
        conflict_term: int = 0,
        conflict_index: int = 0,
    ) -> AppendEntriesResponse:
        self._seq += 1
        reply = fastmsg.append_entries_response(
            self._term,
            self._id,
            to,
            success,
            match_index,
            reject_index,
            conflict_term,
            conflict_index,
            self._seq,
        )
        self._msgs.append(reply)
        return reply

    def _handle_append_entries_request(self, msg: AppendEntriesRequest) -> None:
        """HandleAppendEntriesRequest: the receiver rules of the paper's Figure 2."""
        if msg.term < self._term:
            reply = self._reply_append(msg.from_id, False, reject_index=msg.prev_log_index)
        elif self._role is Role.LEADER:
            reply = None  # Two leaders in one term: only a planted bug gets here.
        else:
            self._accept_leader(msg.from_id)
            reply = self._append_to_log(msg)
        if self._tracer is not None:
            self._emit_msg("HandleAppendEntriesRequest", msg, reply)

    def _append_to_log(self, msg: AppendEntriesRequest) -> AppendEntriesResponse:
        log = self._log
        prev = msg.prev_log_index
        to = msg.from_id
        if self._has_no_state():
            return self._reply_append(to, False, reject_index=prev)
        if prev < log.committed:
            self._promise_persisted(log.committed)
            return self._reply_append(to, True, match_index=log.committed)
        if log.match_term(prev, msg.prev_log_term):
            entries = msg.entries
            last_new = prev + len(entries)
            conflict = log.find_conflict(entries) if entries else 0
            if conflict:
                new_entries = entries[conflict - prev - 1 :]
                log.append(new_entries)
                self._on_log_replaced(conflict, new_entries)
                self._persisted_index = last_new
            else:
                self._promise_persisted(last_new)
            log.commit_to(min(msg.leader_commit, last_new))
            return self._reply_append(to, True, match_index=last_new)
        last = log.last_index()
        if prev > last:
            return self._reply_append(to, False, reject_index=prev, conflict_index=last + 1)
        conflict_term = log.term(prev)
        return self._reply_append(
            to,
            False,
            reject_index=prev,
            conflict_term=conflict_term,
            conflict_index=log.first_index_of_term(prev),
        )

    def _promise_persisted(self, index: int) -> None:
        """A follower acknowledges the log up to `index`: its answer leaves only after its
        Ready is persisted, and Readys persist in order, so the log up to there counts
        as durable from now on (the spec's followers persist at once)."""
        self._persisted_index = max(self._persisted_index, index)

    def _handle_heartbeat_request(self, msg: HeartbeatRequest) -> None:
        """HandleHeartbeatRequest: note the leader, learn its commit index."""
        if msg.term < self._term:
            reply: HeartbeatResponse | None = HeartbeatResponse(
                term=self._term, from_id=self._id, to_id=msg.from_id, seq=self._next_seq()
            )
        elif self._role is Role.LEADER:
            reply = None
        else:
            self._accept_leader(msg.from_id)
            log = self._log
            log.commit_to(min(msg.commit_index, log.last_index()))
            self._seq += 1
            reply = fastmsg.heartbeat_response(
                self._term, self._id, msg.from_id, msg.read_round, self._seq
            )
        if reply is not None:
            self._msgs.append(reply)
        if self._tracer is not None:
            self._emit_msg("HandleHeartbeatRequest", msg, reply)

    def _handle_install_snapshot_request(self, msg: InstallSnapshotRequest) -> None:
        """HandleInstallSnapshotRequest: replace the log unless we already have it."""
        if msg.term < self._term:
            reply = self._reply_append(msg.from_id, False)
        elif self._role is Role.LEADER:
            reply = None
        else:
            self._accept_leader(msg.from_id)
            if self._restore(msg.snapshot):
                match_index = msg.snapshot.meta.index
            else:
                match_index = self._log.committed
            self._promise_persisted(match_index)
            reply = self._reply_append(msg.from_id, True, match_index=match_index)
        if self._tracer is not None:
            self._emit_msg("HandleInstallSnapshotRequest", msg, reply)

    def _restore(self, snapshot: Snapshot) -> bool:
        """Install `snapshot` if it is news to us; True if the log was replaced."""
        meta = snapshot.meta
        log = self._log
        no_state = self._has_no_state()
        if meta.index < log.committed or (meta.index == log.committed and not no_state):
            return False
        if not no_state and log.match_term(meta.index, meta.term):
            log.commit_to(meta.index)  # We hold that entry already: fast-forward only.
            return False
        log.restore(snapshot)
        self._persisted_index = meta.index
        self._snapshot_index = meta.index
        self._snapshot_term = meta.term
        self._base_membership = meta.membership
        self._conf_entries = []
        self._membership = meta.membership
        return True

    # The leader's side of the answers.

    def _handle_append_entries_response(self, msg: AppendEntriesResponse) -> None:
        """HandleAppendEntriesResponse: update progress, commit, send what is next."""
        pr = self._progress.get(msg.from_id) if self._role is Role.LEADER else None
        if pr is None or msg.term < self._term:
            if self._tracer is not None:
                self._emit_msg("HandleAppendEntriesResponse", msg)
            return
        pr.recent_active = True
        to = msg.from_id
        if not msg.success:
            self._handle_rejection(msg, pr)
            return
        updated = pr.maybe_update(msg.match_index)
        if pr.state is ProgressState.PROBE:
            if updated:
                pr.become_replicate()
        elif pr.state is ProgressState.SNAPSHOT and pr.match_index >= pr.pending_snapshot:
            pr.become_probe()
            if pr.match_index + 1 >= self._log.first_index():
                pr.become_replicate()
        if self._tracer is not None:
            self._emit_msg("HandleAppendEntriesResponse", msg)
        if updated:
            # Only a match that passed the commit index can move it.
            if pr.match_index > self._log.committed:
                self._maybe_commit()
                if self._role is not Role.LEADER:
                    return
            if self._transfer_target == to and pr.match_index == self._log.last_index():
                self._send_timeout_now(to)
        while self._send_append(to, send_if_empty=False):
            pass

    def _handle_rejection(self, msg: AppendEntriesResponse, pr: Progress) -> None:
        applied = pr.maybe_decrease(msg.reject_index, self._hint_next_index(msg))
        if self._tracer is not None:
            self._emit_msg("HandleAppendEntriesResponse", msg)
        if not applied:
            return  # A stale rejection: we already moved on.
        if msg.conflict_index == 0:
            self._send_snapshot(msg.from_id, pr)  # A node with no state at all.
        else:
            self._send_append(msg.from_id, send_if_empty=True)

    def _hint_next_index(self, msg: AppendEntriesResponse) -> int:
        """Where to probe next, from the follower's conflict hints."""
        if msg.conflict_index == 0 or msg.conflict_term == 0:
            return max(msg.conflict_index, 1)
        index = self._log.last_index_of_term(msg.conflict_term, msg.reject_index)
        return index + 1 if index else msg.conflict_index

    def _handle_heartbeat_response(self, msg: HeartbeatResponse) -> None:
        """HandleHeartbeatResponse: the follower is alive; resume it; count read rounds."""
        pr = self._progress.get(msg.from_id) if self._role is Role.LEADER else None
        if pr is None or msg.term < self._term:
            if self._tracer is not None:
                self._emit_msg("HandleHeartbeatResponse", msg)
            return
        pr.recent_active = True
        pr.probe_sent = False
        if pr.state is ProgressState.REPLICATE:
            pr.free_first_inflight()
        if msg.read_round:
            self._read_only.ack(msg.from_id, msg.read_round)
        if self._tracer is not None:
            self._emit_msg("HandleHeartbeatResponse", msg)
        if msg.read_round:
            self._release_confirmed_reads()
        if pr.match_index < self._log.last_index():
            self._send_append(msg.from_id, send_if_empty=True)

    # ReadIndex.

    def _register_read(self, request_ctx: bytes) -> bool:
        """ReadIndex: record a read at the commit index. True if it needs a heartbeat
        round; a single voter, or a read under a valid lease, is confirmed at once."""
        index = self._log.committed
        voters = self._membership.voters
        immediate = (len(voters) == 1 and self._id in voters) or self._lease_valid()
        if not immediate:
            self._read_only.add(request_ctx, index)
        if self._tracer is not None:
            self._emit("ReadIndex", {"ctx": request_ctx.hex(), "index": index})
        if immediate:
            self._release_read(request_ctx, index)
        return not immediate

    def _lease_valid(self) -> bool:
        """Lease reads: a quorum acknowledged a heartbeat sent less than an election
        timeout ago, so no voter of that quorum can have voted for anyone since (each
        ignores votes for an election timeout after hearing from us, and after a restart).
        Never after TimeoutNow: a transfer target campaigns past the lease."""
        if not self._config.lease_reads or self._timeout_now_sent:
            return False
        confirmed = self._read_only.confirmed_round(self._membership.voters, self._id)
        sent = self._lease_sent_ticks
        for stale in [r for r in sent if r < confirmed]:
            del sent[stale]
        sent_ticks = sent.get(confirmed)
        if sent_ticks is None:
            return False
        # One tick of margin: within one global tick a voter may tick (ending its lease)
        # and a new leader be elected before this node's own tick is counted.
        return self._cluster_time_ticks - sent_ticks < self._config.election_timeout_ticks - 1

    def _register_queued_reads(self) -> None:
        queued = self._queued_reads
        self._queued_reads = []
        needs_round = False
        for request_ctx in queued:
            needs_round = self._register_read(request_ctx) or needs_round
        if needs_round:
            self._broadcast_heartbeat()

    def _release_confirmed_reads(self) -> None:
        for read in self._read_only.confirmed(self._membership.voters, self._id):
            self._release_read(read.request_ctx, read.index)

    def _release_read(self, request_ctx: bytes, index: int) -> None:
        self._read_states.append(ReadState(index=index, request_ctx=request_ctx))
        if self._tracer is not None:
            self._emit("ReadIndexReady", {"ctx": request_ctx.hex(), "index": index})
