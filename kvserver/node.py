"""The node: asyncio I/O around the pure core (raftcore.node.Node) and state machine.

Role: timers call `tick`, the transport calls `step`, HTTP requests call `propose` and
`read_index`, and one loop hands every `Ready` through the contract of raftcore/types.py.
Everything Raft or the data decides is decided by raftcore; this module only moves bytes
and waits.

Rules:
- Each Ready goes through the contract's steps in order: persist (one write and one fsync
  for all the Ready's entries: group commit), then send, then apply, then advance. The
  next Ready is taken only after `advance`. One exception (thesis 10.2.1): a leader's
  AppendEntries and heartbeats of a Ready with entries that changes no term or vote
  (`Ready.messages_before_persist`) are sent before its write, so followers write in
  parallel with the leader's own fsync; the core counts the leader's own entries toward
  commit only after `advance` reports them persisted.
- The disk work of a Ready runs in one worker thread while the event loop goes on
  accepting requests and peer messages and stepping them into the core, as etcd's node
  does between Ready and Advance. What they produce waits in the core for the next Ready,
  so every proposal that arrives during one fsync shares the next one (pipelined group
  commit). All file I/O runs in that one thread, in order.
- On a leader, committed entries that earlier Readies already made durable are applied
  (and their clients answered) before the Ready's own write, not after it
  (`_apply_durable`): a commit learned while the next batch is being written does not
  wait for that fsync. A follower applies after it sends.
- Every Ready's write and fsync go to the disk thread, also when nothing else waits: a
  leader writing on the loop while at most one request waited saved the thread's two
  hand-offs (about 0.06 to 0.09 ms in timestamps) but no measurable latency (better in
  10 of 21 alternated pairs of one-client runs), and followers writing on the loop too
  made the fsyncs and one-client latency several times worse (docs/benchmarks.md).
- Outgoing messages of a Ready are coalesced per peer (kvserver/batching.py) unless the
  node writes a trace.
- With `--trace FILE`, the Ready loop writes the trace (kvserver/nodetrace.py) before a
  Ready's WAL write and early sends, and its `Persisted` marker after the fsync and before
  the other sends, as that module's rules say.
- Proposals and reads wait in kvserver/pending.py (which states when each is answered);
  its deadlines are swept by the ticker (no timer or task per request).
- `start_write` and `start_read` do their synchronous part at once (refusals such as
  NotLeader are raised before anything happens) and return a future, so the HTTP front
  (kvserver/httpfront.py) answers from a callback without a task per request.
- Peer addresses travel with the configuration and the snapshots; the node's address book
  (`PeerBook`, kvserver/addresses.py) keeps the transport's peers in step with them.
- What `GET /metrics` shows is defined in kvserver/nodemetrics.py; the node bumps its counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvserver.addresses import (
    AddressBook,
    PeerBook,
    conf_context,
    pack_snapshot_data,
    split_address,
    unpack_snapshot_data,
)
from kvserver.batching import coalesce
from kvserver.diskstorage import DiskStorage, FsyncMode, PersistJob
from kvserver.diskthread import DiskThread, run_timed
from kvserver.errors import (
    DataDirMismatch,
    OutcomeUnknown,
    Overloaded,
)
from kvserver.nodemetrics import NodeMetrics
from kvserver.nodetrace import NodeTrace
from kvserver.pending import Pending
from kvserver.service import (
    ClusterStatus,
    Consistency,
    Member,
    ReadResult,
    Staleness,
    WriteResult,
)
from kvserver.transport import Transport, TransportConfig
from raftcore import commands, confchange
from raftcore.config import Config
from raftcore.describe import describe_ready
from raftcore.errors import InvalidConfChange, NotLeader, RaftError
from raftcore.kv import ApplyResult, KVStateMachine
from raftcore.node import Node
from raftcore.types import (
    ConfChange,
    ConfChangeKind,
    Entry,
    EntryKind,
    Membership,
    Message,
    NodeId,
    Ready,
    Role,
    Snapshot,
    SnapshotMeta,
)

log = logging.getLogger(__name__)
raft_log = logging.getLogger("kvserver.raft")

PLANTED_ACK_BEFORE_PERSIST = "ack-before-persist"
"""Test-only planted bug: entries reach the WAL file only after they are 2 s old, so a
node acknowledges writes it has not persisted (the SIGKILL-all test must catch it)."""
PLANTED_BUG_DEFER_S = 2.0


@dataclass(frozen=True, slots=True)
class NodeOptions:
    node_id: NodeId
    raft_address: str
    http_address: str
    data_dir: Path
    cluster_secret: bytes
    join: str | None = None
    fsync: FsyncMode = FsyncMode.ALWAYS
    trace_path: Path | None = None
    tick_s: float = 0.05
    election_timeout_ticks: int = 10
    heartbeat_timeout_ticks: int = 1
    snapshot_entries: int = 10_000
    request_timeout_s: float = 5.0
    session_timeout_s: float = 600.0
    lease_reads: bool = False
    max_pending: int = 20_000
    disk_thread: bool = True
    """Run each Ready's file I/O in a worker thread (False: inline, blocking the loop)."""
    coalesce_messages: bool = True
    planted_bug: str | None = None


class KvNode:
    """One replica: storage, core, state machine, transport; implements `Service`."""

    def __init__(self, options: NodeOptions) -> None:
        self.options = options
        self.node_id = options.node_id
        self.raft_address = options.raft_address
        self.http_address = options.http_address
        self.fatal: asyncio.Future[BaseException] | None = None
        self._pending = Pending(options.request_timeout_s)
        self._read_ids = itertools.count(1)
        self._disk = DiskThread(f"disk-{options.node_id}") if options.disk_thread else None
        self._flush_due = False
        self._persisting = False  # a Ready's write is in flight (see _on_message)
        self._leader_watchers: list[asyncio.Future[None]] = []
        self._last_leader_contact = time.monotonic()
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ticks = 0
        self.needs_join = False
        self._transport = Transport(
            TransportConfig(self.node_id, options.cluster_secret), self._on_message
        )
        self._peers = PeerBook(self.node_id, (self.raft_address, self.http_address),
                               self._transport)
        self._open_storage()
        self._build_core()
        self.metrics = NodeMetrics(self.core, self.sm, self._pending,
                                   self._transport.counters, self.storage)

    # ------------------------------------------------------------ start-up

    def _open_storage(self) -> None:
        options = self.options
        defer_s = PLANTED_BUG_DEFER_S if options.planted_bug == PLANTED_ACK_BEFORE_PERSIST else 0
        self.storage = DiskStorage.open(options.data_dir, options.fsync, defer_writes_s=defer_s)
        id_file = options.data_dir / "node-id"
        if self.storage.is_empty:
            self.needs_join = options.join is not None
            if self.needs_join:
                self.storage.bootstrap(Membership())
            else:
                book: AddressBook = {self.node_id: (self.raft_address, self.http_address)}
                self.storage.bootstrap(
                    Membership(voters=frozenset({self.node_id})), pack_snapshot_data(b"", book)
                )
            id_file.write_text(self.node_id + "\n")
        elif not id_file.exists() or id_file.read_text().strip() != self.node_id:
            raise DataDirMismatch(f"{options.data_dir} does not belong to node {self.node_id}")

    def _build_core(self) -> None:
        options = self.options
        session_ticks = max(1, round(options.session_timeout_s / options.tick_s))
        self._trace = NodeTrace(options.trace_path, self.node_id,
                                session_timeout_ticks=session_ticks,
                                lease_reads=options.lease_reads)
        tracer = self._trace.record if self._trace.enabled else None
        self.sm = KVStateMachine(session_ticks, node_id=self.node_id, tracer=tracer)
        snapshot = self.storage.snapshot()
        self._install_snapshot_state(snapshot)
        for entry in self.storage.entries(self.storage.first_index(),
                                          self.storage.last_index() + 1):
            self._peers.learn_entry(entry)
        config = Config(
            id=self.node_id,
            election_timeout_ticks=options.election_timeout_ticks,
            heartbeat_timeout_ticks=options.heartbeat_timeout_ticks,
            lease_reads=options.lease_reads,
            msg_seq_base=time.time_ns() // 1000,
        )
        self.core = Node(config, self.storage, random.Random(os.urandom(16)), tracer)
        self._trace.write(persisted=self._trace.count)  # Restart shows what is on disk

    def _install_snapshot_state(self, snapshot: Snapshot) -> None:
        kv_blob, book = unpack_snapshot_data(snapshot.data)
        if kv_blob:
            self.sm.restore(kv_blob)
        else:
            assert snapshot.meta.index == 0, "a snapshot past index 0 carries its state"
        self._peers.update(book)
        self._applied_membership = snapshot.meta.membership

    async def start(self) -> None:
        """Listen for peers, start ticking and the Ready loop."""
        self.fatal = asyncio.get_running_loop().create_future()
        host, port = split_address(self.raft_address)
        await self._transport.listen(host, port)
        self._peers.sync()
        self._tasks.append(asyncio.create_task(self._ticker(), name="ticker"))
        self._tasks.append(asyncio.create_task(self._ready_loop(), name="ready-loop"))
        self._wake()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._transport.close()
        if self._disk is not None:
            self._disk.close()
        self.storage.close()
        self._trace.close()

    def learn_peers(self, book: AddressBook) -> None:
        """Addresses handed over by the cluster this node joined."""
        self._peers.learn(book)

    # ------------------------------------------------------------ inputs

    def _wake(self) -> None:
        self._wakeup.set()

    def _on_message(self, msg: Message) -> None:
        if msg.from_id == self.core.leader_id:
            self._last_leader_contact = time.monotonic()
        self.core.step(msg)
        if self._persisting and self.core.role is Role.LEADER:
            self._apply_committed_early()
        self._wake()

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        tick_s = self.options.tick_s
        deadline = loop.time()
        while True:
            deadline += tick_s
            delay_s = deadline - loop.time()
            if delay_s < -tick_s:
                deadline = loop.time()  # the loop stalled: do not burst the missed ticks
            await asyncio.sleep(max(0.0, delay_s))
            self.core.tick()
            self._ticks += 1
            if self._ticks % 4 == 0:
                self._promote_caught_up_learners()
            self._pending.expire(time.monotonic())
            self._flush_due = self.storage.needs_flush
            self._wake()

    # ------------------------------------------------------------ the Ready loop

    async def _ready_loop(self) -> None:
        assert self.fatal is not None
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self.core.has_ready():
                    ready = self.core.ready()
                    in_ready = self._trace.count  # the events this Ready makes durable
                    self._trace.write()
                    self._apply_durable(ready)
                    early = ready.messages_before_persist() if ready.entries else ()
                    if early:
                        self._send(early)  # In parallel with our own fsync (10.2.1).
                    self._persisting = True
                    await self._persist(ready)
                    self._persisting = False
                    self._trace.write(persisted=in_ready)
                    self._handle_ready(
                        ready, ready.messages_after_persist() if early else ready.messages
                    )
                    self.core.advance(ready)
                    self._trace.write()
                    await self._maybe_compact()
                if self._flush_due:
                    self._flush_due = False
                    await run_timed(self._disk, PersistJob([self.storage.flush]).run)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.critical("the Ready loop failed; the node stops: %r", exc, exc_info=True)
            if not self.fatal.done():
                self.fatal.set_result(exc)

    async def _persist(self, ready: Ready) -> None:
        """Step 1 of the contract: the Ready's durable parts, one write, one fsync."""
        if raft_log.isEnabledFor(logging.DEBUG):
            raft_log.debug("%s ready:\n%s", self.node_id, describe_ready(ready, "  "))
        job = self.storage.stage(
            hard_state=ready.hard_state, snapshot=ready.snapshot, entries=ready.entries,
            must_sync=ready.must_sync,
        )
        if job:
            self.metrics.persist_seconds.observe(await run_timed(self._disk, job.run))

    def _apply_durable(self, ready: Ready) -> None:
        """Apply, before this Ready's own write, the committed entries that earlier Readies
        already made durable (below its first new entry: the core's
        `durable_committed_entries`, as in `_apply_committed_early`), and serve the reads
        they allow. Their clients need not wait for the next batch's fsync. Nothing the core or
        a restart can observe changes: the core learns of them in `advance` as before, the
        entries are on disk, and the state machine is rebuilt from the log after a crash.
        A Ready that brings a snapshot is applied in order (the snapshot comes first).
        A follower applies after its send instead: no client waits for its apply, and its
        leader waits for the acknowledgement this Ready sends."""
        if ready.snapshot is not None or self.core.role is not Role.LEADER:
            return
        for entry in self.core.durable_committed_entries(self.sm.applied_index):
            self._apply(entry)
        pending = self._pending
        for read_state in ready.read_states:
            pending.read_state(read_state.request_ctx, read_state.index)
        pending.serve_reads(self.sm.applied_index, self.sm.read)

    def _apply_committed_early(self) -> None:
        """While this leader's write is in flight, an acknowledgement may commit entries
        that earlier Readies made durable: apply them and answer their clients now rather
        than after the write (the next Ready hands them out again and `_apply` skips
        them). Nothing the core or a restart can observe changes, as in `_apply_durable`."""
        entries = self.core.durable_committed_entries(self.sm.applied_index)
        if not entries:
            return
        for entry in entries:
            self._apply(entry)
        self._pending.serve_reads(self.sm.applied_index, self.sm.read)

    def _send(self, messages: tuple[Message, ...]) -> None:
        batch: Any = messages
        if not self._trace.enabled and self.options.coalesce_messages and len(messages) > 1:
            batch = coalesce(messages)
        self._transport.send_all(batch)

    def _handle_ready(self, ready: Ready, messages: tuple[Message, ...]) -> None:
        """Steps 2 and 3 of the contract: send `messages` (those not sent before the
        persist), then apply (what `_apply_durable` has not) and serve reads."""
        if ready.snapshot is not None:
            self._peers.update(unpack_snapshot_data(ready.snapshot.data)[1])
        for entry in ready.entries:
            self._peers.learn_entry(entry)
        self._send(messages)
        if ready.snapshot is not None:
            self._apply_snapshot(ready.snapshot)
        for entry in ready.committed_entries:
            self._apply(entry)
        pending = self._pending
        for read_state in ready.read_states:
            pending.read_state(read_state.request_ctx, read_state.index)
        pending.serve_reads(self.sm.applied_index, self.sm.read)
        if ready.soft_state is not None:
            self._on_soft_state()

    def _apply_snapshot(self, snapshot: Snapshot) -> None:
        self._install_snapshot_state(snapshot)
        self._peers.sync()
        self._pending.snapshot_installed(snapshot.meta.index)

    def _apply(self, entry: Entry) -> None:
        if entry.index <= self.sm.applied_index:
            return
        result = self.sm.apply(entry)
        if entry.kind is EntryKind.CONF_CHANGE:
            self._apply_conf_change(entry)
        self._pending.applied(entry, result)

    def _apply_conf_change(self, entry: Entry) -> None:
        try:
            change = confchange.decode(entry.data)
        except InvalidConfChange:
            return
        self._applied_membership = confchange.apply(self._applied_membership, change)
        if change.kind is not ConfChangeKind.REMOVE_SERVER:
            return
        if change.node_id in self.core.membership.members():
            return  # added back by a later entry (a restart re-applies the whole log)
        if change.node_id == self.node_id:
            log.warning("%s was removed from the cluster", self.node_id)
        else:
            self._peers.forget(change.node_id)

    def _on_soft_state(self) -> None:
        self.metrics.leader_changes.inc()
        if self.core.role is not Role.LEADER:
            self._pending.fail_reads(NotLeader(self.core.leader_id))
        for watcher in self._leader_watchers:
            if not watcher.done():
                watcher.set_result(None)
        self._leader_watchers = []

    async def _maybe_compact(self) -> None:
        applied = self.sm.applied_index
        base = self.storage.snapshot().meta.index
        if applied - base < self.options.snapshot_entries or applied > self.core.applied_index:
            return
        meta = SnapshotMeta(applied, self.core.term_at(applied), self._applied_membership,
                            self.sm.cluster_time_ticks)
        snapshot = Snapshot(meta, pack_snapshot_data(self.sm.snapshot(), self._peers.with_own()))
        job = self.storage.compact(snapshot)
        self.core.compact(meta)
        self._trace.write()  # CompactLog is on file before the snapshot is
        duration_s = await run_timed(self._disk, job.run)
        log.info("compacted the log at index %d in %.1f ms", applied, duration_s * 1000)

    # ------------------------------------------------------------ membership policy

    def _promote_caught_up_learners(self) -> None:
        """The leader promotes a learner once it holds everything committed."""
        core = self.core
        if core.role is not Role.LEADER or not core.membership.learners:
            return
        if core.pending_conf_index > core.commit_index:
            return
        match = core.match_index or {}
        for learner in sorted(core.membership.learners):
            if match.get(learner, 0) >= core.commit_index:
                try:
                    core.propose_conf_change(ConfChange(ConfChangeKind.PROMOTE_LEARNER, learner))
                except RaftError as exc:
                    log.debug("promotion of %s postponed: %s", learner, exc)
                    return
                log.info("promoting learner %s to voter", learner)
                self._wake()
                return

    # ------------------------------------------------------------ Service

    def _wait_applied(self, index: int, term: int, *, as_write: bool = False
                      ) -> asyncio.Future[Any]:
        """A future for the entry at `index` proposed in `term` (kvserver/pending.py)."""
        future = self._pending.add_proposal(index, term, as_write=as_write)
        self._wake()
        return future

    def _check_capacity(self) -> None:
        if len(self._pending) >= self.options.max_pending:
            raise Overloaded()

    def _start_proposal(self, data: bytes, *, as_write: bool = False) -> asyncio.Future[Any]:
        self._check_capacity()
        index = self.core.propose(data)
        self.metrics.proposals.inc()
        return self._wait_applied(index, self.core.current_term, as_write=as_write)

    async def _propose(self, data: bytes) -> ApplyResult:
        result: ApplyResult = await self._start_proposal(data)
        return result

    def start_write(self, command: commands.SessionCommand) -> asyncio.Future[WriteResult]:
        """Propose `command` now (refusals raise at once); the future has its outcome."""
        future: asyncio.Future[WriteResult] = self._start_proposal(
            commands.encode(command), as_write=True)
        return future

    async def write(self, command: commands.SessionCommand) -> WriteResult:
        return await self.start_write(command)

    async def register_session(self) -> int:
        nonce = random.getrandbits(48)
        result = await self._propose(commands.encode(commands.RegisterSession(nonce)))
        assert result.client_id is not None
        return result.client_id

    def start_read(self, key: str, consistency: Consistency) -> asyncio.Future[ReadResult]:
        """Start a read of `key` (refusals raise at once); the future has its result."""
        if consistency is Consistency.STALE:
            future: asyncio.Future[ReadResult] = asyncio.get_running_loop().create_future()
            future.set_result(
                ReadResult(self.sm.read(key), self.sm.applied_index, self._staleness()))
            return future
        self._check_capacity()
        request_ctx = next(self._read_ids).to_bytes(8, "big")
        self.core.read_index(request_ctx)
        future = self._pending.add_read(request_ctx, key)
        self._wake()
        return future

    async def read(self, key: str, consistency: Consistency) -> ReadResult:
        return await self.start_read(key, consistency)

    def _staleness(self) -> Staleness:
        leader = self.core.leader_id
        contact_ms = None if leader == self.node_id else round(
            (time.monotonic() - self._last_leader_contact) * 1000, 1)
        return Staleness(self.sm.applied_index, self.core.commit_index, leader, contact_ms)

    def _require_leader(self) -> None:
        if self.core.role is not Role.LEADER:
            raise NotLeader(self.core.leader_id)

    async def join(self, node_id: NodeId, raft_address: str, http_address: str | None
                   ) -> AddressBook:
        self._require_leader()
        split_address(raft_address)
        book = self._peers.with_own()
        if node_id in self.core.membership.members():
            if self._peers.lookup(node_id)[0] == raft_address:
                return book  # a retried join that already took effect
            raise InvalidConfChange(f"{node_id} is already a member with another address")
        change = ConfChange(ConfChangeKind.ADD_LEARNER, node_id,
                            conf_context(raft_address, http_address))
        index = self.core.propose_conf_change(change)
        await self._wait_applied(index, self.core.current_term)
        return {**book, node_id: (raft_address, http_address)}

    async def remove(self, node_id: NodeId) -> None:
        self._require_leader()
        index = self.core.propose_conf_change(ConfChange(ConfChangeKind.REMOVE_SERVER, node_id))
        await self._wait_applied(index, self.core.current_term)

    async def transfer_leadership(self, target: NodeId | None) -> NodeId:
        self._require_leader()
        if target is None:
            match = self.core.match_index or {}
            voters = sorted(v for v in self.core.membership.voters if v != self.node_id)
            if not voters:
                raise InvalidConfChange("no other voter to transfer leadership to")
            target = max(voters, key=lambda v: match.get(v, 0))
        self.core.transfer_leadership(target)
        self._wake()
        deadline = time.monotonic() + 3 * self.options.election_timeout_ticks * self.options.tick_s
        while self.core.leader_id != target:
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                raise OutcomeUnknown(f"leadership did not move to {target} in time")
            watcher: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._leader_watchers.append(watcher)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watcher, remaining_s)
        return target

    def status(self) -> ClusterStatus:
        core = self.core
        membership = core.membership
        match = core.match_index or {}
        members = []
        for node_id in sorted(membership.members()):
            raft, http = self._peers.addresses_of(node_id)
            role = "voter" if node_id in membership.voters else "learner"
            members.append(Member(node_id, role, raft, http, match.get(node_id)))
        leader = core.leader_id
        leader_http = self._peers.addresses_of(leader)[1] if leader is not None else None
        return ClusterStatus(
            self.node_id, core.role.value, leader, leader_http, core.current_term,
            core.commit_index, self.sm.applied_index, tuple(members),
            {"last_index": core.last_index, "snapshot_index": core.snapshot_index},
        )

    def metrics_text(self) -> str:
        return self.metrics.render()
