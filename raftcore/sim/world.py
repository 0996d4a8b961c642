"""The simulated world: nodes on simulated disks, a faulty network, clients, and checks.

Role: the mechanism of the simulator. `World` drives real `raftcore.Node`s exactly as a
real server would (persist, then send, then apply, then advance; a leader's early
requests leave before its persist, which completes `fsync_delay_ticks` later), with the
fault actions a scheduler may take: crash, restart, partition, heal, membership changes,
leadership transfers and compaction. The random scheduler (runner.py) and the hypothesis state
machine (tests) both drive this same class.

Rules:
- Deterministic: every random choice comes from `random.Random`s derived from the seed in
  a fixed order; nodes are visited in the order they were created; nothing iterates an
  unordered set.
- Each node incarnation gets its own derived `random.Random` and a fresh `msg_seq_base`,
  so `(from, seq)` stays unique across restarts.
- `ready()` is taken after every input, and every Ready is checked as it is handled
  (raftcore.sim.checks); a breach raises `Violation` at once.
- Clients reach every node; partitions cut only links between nodes.
- A frozen node's clock is stalled (no ticks) while it still handles messages.
- The global trace (optional) gets every event of every node and state machine, in
  execution order, with `step` and `tick` keys (docs/trace-format.md).
"""

from __future__ import annotations

import dataclasses
import json
import random
import zlib
from collections.abc import Callable

from raftcore.commands import Response, Status
from raftcore.config import Config
from raftcore.errors import (
    ConfChangeRejected,
    InvalidConfChange,
    InvalidTransfer,
    NotLeader,
    RaftError,
    TransferInProgress,
)
from raftcore.kv import KVStateMachine, Outcome
from raftcore.memstorage import MemoryStorage
from raftcore.node import Node
from raftcore.sim.checks import SafetyChecker, Violation
from raftcore.sim.clients import Client, ClientReply, ClientRequest, ReplyKind
from raftcore.sim.linearizability import Operation
from raftcore.sim.network import Network, NetworkOptions
from raftcore.sim.options import WorldOptions
from raftcore.sim.storage import SimStorage
from raftcore.trace import encode_event
from raftcore.types import (
    ConfChange,
    ConfChangeKind,
    Entry,
    Message,
    NodeId,
    ReadState,
    Ready,
    Role,
    TraceEvent,
)

SEQ_STRIDE = 1_000_000_000
"""Message sequence numbers of incarnation k start above k * SEQ_STRIDE."""


class Host:
    """One simulated server: its disk, and while it is up, its node and state machine."""

    __slots__ = (
        "applied_early_to",
        "commit_seen",
        "incarnation",
        "last_vote",
        "node",
        "node_id",
        "pending_reads",
        "pending_writes",
        "ready_reads",
        "seen",
        "sm",
        "storage",
        "unpersisted",
    )

    def __init__(self, node_id: NodeId, storage: SimStorage) -> None:
        self.node_id = node_id
        self.storage = storage
        self.node: Node | None = None
        self.sm: KVStateMachine | None = None
        self.incarnation = 0
        self.commit_seen = 0
        self.last_vote: tuple[int, NodeId] | None = None
        self.seen: tuple[int, bool, NodeId | None] | None = None
        """(term, is leader, vote) when last checked, per incarnation."""
        self.pending_writes: dict[tuple[int, int], tuple[str, int]] = {}
        self.pending_reads: dict[bytes, tuple[str, int, str]] = {}
        self.ready_reads: list[ReadState] = []
        self.applied_early_to = 0
        """The last entry applied early (`World._apply_early`) by this incarnation."""
        self.unpersisted: tuple[Ready, int] | None = None
        """A leader's Ready whose requests left before its persist, and the tick it was
        written: it is synced, and the rest of it handled, `fsync_delay_ticks` later."""


class World:
    """A cluster of simulated servers, a network and clients, checked as it runs."""

    def __init__(
        self,
        options: WorldOptions,
        *,
        manual_network: bool = False,
        trace: Callable[[str], None] | None = None,
        disabled_checks: frozenset[str] = frozenset(),
    ) -> None:
        self.options = options
        root = random.Random(f"world/{options.seed}")
        # A copy: the liveness phase calms this world's network, not the caller's options.
        network_options = dataclasses.replace(options.network or NetworkOptions())
        self.net = Network(random.Random(root.getrandbits(64)), network_options)
        self.net.manual = manual_network
        self.rng = random.Random(root.getrandbits(64))
        self._node_seeds = random.Random(root.getrandbits(64))
        client_seed = root.getrandbits(64)
        self.tick_count = 0
        self.clock = 0
        self.checker = SafetyChecker(disabled_checks)
        self.hosts: dict[NodeId, Host] = {}
        self._trace_out = trace
        self._trace_step = 0
        self.applied_entries = 0
        self.client_messages = 0
        """Client requests and replies delivered (the rest of the deliveries are Raft's)."""
        self.voters_granted: list[NodeId] = []
        """Nodes that granted a vote since the nemesis last looked (it may crash them)."""
        self.frozen: set[NodeId] = set()
        """Nodes whose clocks are stalled: they handle messages but get no ticks (a
        paused timer; scenarios use it to decide who times out first)."""
        ids = [f"n{i}" for i in range(1, options.nodes + 1)]
        self.node_ids: list[NodeId] = list(ids)
        if trace is not None:
            self._write_header(ids)
        for node_id in ids:
            host = Host(node_id, SimStorage(MemoryStorage.bootstrap(ids)))
            self.hosts[node_id] = host
            self.start(node_id)
        client_options = options.client
        assert client_options is not None
        client_rng = random.Random(client_seed)
        self.clients: dict[str, Client] = {}
        for i in range(1, options.clients + 1):
            rng = random.Random(client_rng.getrandbits(64))
            self.clients[f"c{i}"] = Client(i, rng, client_options, self.node_ids)

    # Trace.

    def _write_header(self, ids: list[NodeId]) -> None:
        assert self._trace_out is not None
        header = {
            "format": "raftcore-sim-trace/1",
            "seed": self.options.seed,
            "nodes": ids,
            "voters": ids,
            "learners": [],
            "options": self.options.describe(),
        }
        self._trace_out(json.dumps(header, sort_keys=True, separators=(",", ":")))

    def _emit(self, event: TraceEvent) -> None:
        assert self._trace_out is not None
        line = encode_event(event, {"step": self._trace_step, "tick": self.tick_count})
        self._trace_step += 1
        self._trace_out(line)

    # Lifecycle of servers.

    def start(self, node_id: NodeId) -> None:
        """Build a node incarnation from its durable storage (a restart, or the first start)."""
        host = self.hosts[node_id]
        assert host.node is None, f"{node_id} is already up"
        host.incarnation += 1
        options = self.options
        config = Config(
            id=node_id,
            election_timeout_ticks=options.election_timeout_ticks,
            heartbeat_timeout_ticks=options.heartbeat_timeout_ticks,
            pre_vote=options.pre_vote,
            check_quorum=options.check_quorum,
            max_entries_per_msg=options.max_entries_per_msg,
            max_inflight_msgs=options.max_inflight_msgs,
            msg_seq_base=host.incarnation * SEQ_STRIDE,
            planted_bug=options.planted_bug,
        )
        tracer = self._emit if self._trace_out is not None else None
        sm = KVStateMachine(
            options.session_timeout_ticks,
            node_id=node_id,
            tracer=tracer,
            planted_bug=options.planted_bug,
        )
        snapshot = host.storage.live.snapshot()
        if snapshot.data:
            sm.restore(snapshot.data)
        assert sm.applied_index == snapshot.meta.index, "snapshot data and meta disagree"
        host.sm = sm
        host.applied_early_to = 0
        rng = random.Random(self._node_seeds.getrandbits(64))
        node = Node(config, host.storage.live, rng, tracer)
        host.node = node
        host.commit_seen = node.commit_index
        host.seen = None
        self._observe(host)
        self.drain(host)

    def crash(self, node_id: NodeId, *, lose_unsynced: bool = True) -> None:
        """Power off a server: its volatile state is gone, and unsynced writes too unless
        the crash came after the disk caught up (`lose_unsynced=False`)."""
        host = self.hosts[node_id]
        assert host.node is not None, f"{node_id} is already down"
        if not lose_unsynced:
            host.storage.sync()
        host.storage.crash()
        host.node = None
        host.sm = None
        host.pending_writes.clear()
        host.pending_reads.clear()
        host.ready_reads.clear()
        host.unpersisted = None

    def up(self) -> list[Host]:
        return [h for h in self.hosts.values() if h.node is not None]

    def leader(self) -> Host | None:
        """The up leader with the highest term (None if no node is leader)."""
        best: Host | None = None
        best_term = -1
        for host in self.hosts.values():
            node = host.node
            if node is not None and node.role is Role.LEADER and node.current_term > best_term:
                best, best_term = host, node.current_term
        return best

    # Handling Ready (the driver's contract, raftcore/types.py), with the checks.

    def drain(self, host: Host) -> None:
        """Handle every Ready the node has, in the contract's order (raftcore/types.py):
        persist, send, apply, advance. A leader's requests that may leave before its
        persist (`Ready.messages_before_persist`) leave at once; the Ready's sync and the
        rest of it wait `fsync_delay_ticks` (at least until the next drain), so a crash
        in between loses entries followers may already hold. Then check what changed."""
        node = host.node
        assert node is not None
        changed = False  # Any new term, vote, role or commit index shows in these fields.
        fresh = False  # An unpersisted Ready written in this call waits for a later one.
        while True:
            pending = host.unpersisted
            if pending is not None:
                rd, written_tick = pending
                if fresh or self.tick_count < written_tick + self.options.fsync_delay_ticks:
                    self._apply_early(host, node)
                    break
                host.unpersisted = None
                host.storage.sync()
                changed = self._complete(host, node, rd, rd.messages_after_persist()) or changed
                continue
            if not node.has_ready():
                break
            rd = node.ready()
            early = rd.messages_before_persist() if rd.entries else ()
            if early:
                self._persist(host, node, rd, sync=False)
                self._send(host, early)
                host.unpersisted = (rd, self.tick_count)
                fresh = True
                continue
            if rd.entries or rd.hard_state is not None or rd.snapshot is not None:
                self._persist(host, node, rd, sync=rd.must_sync)
            changed = self._complete(host, node, rd, rd.messages) or changed
        if changed or node.commit_index != host.commit_seen:
            self._observe(host)

    def _send(self, host: Host, messages: tuple[Message, ...]) -> None:
        send = self.net.send
        now = self.tick_count
        src = host.node_id
        for msg in messages:
            send(now, src, msg.to_id, msg)

    def _complete(
        self, host: Host, node: Node, rd: Ready, messages: tuple[Message, ...]
    ) -> bool:
        """Steps 2 to 4 of a persisted Ready: send `messages`, apply, advance. True if
        the Ready changed the hard or soft state."""
        sm = host.sm
        assert sm is not None
        if messages:
            self._send(host, messages)
        snapshot = rd.snapshot
        if snapshot is not None:
            sm = self._install_snapshot(host, sm, snapshot.data, snapshot.meta.index)
        committed = rd.committed_entries
        if committed and committed[0].index <= host.applied_early_to:
            committed = tuple(e for e in committed if e.index > host.applied_early_to)
        if committed:
            self._apply(host, sm, committed)
        if rd.read_states:
            host.ready_reads.extend(rd.read_states)
        node.advance(rd)
        if host.ready_reads:
            self._serve_reads(host, sm)
        if committed:
            self._maybe_compact(host, sm)
        return rd.hard_state is not None or rd.soft_state is not None

    def _apply_early(self, host: Host, node: Node) -> None:
        """What kvserver's leader does while its write is in flight: apply the entries an
        acknowledgement committed that earlier Readies made durable
        (`Node.durable_committed_entries`); the next Ready hands them out again."""
        sm = host.sm
        if sm is None or node.role is not Role.LEADER:
            return
        entries = node.durable_committed_entries(sm.applied_index)
        if entries:
            self._apply(host, sm, tuple(entries))
            host.applied_early_to = entries[-1].index
            if host.ready_reads:
                self._serve_reads(host, sm)

    def _persist(self, host: Host, node: Node, rd: Ready, *, sync: bool) -> None:
        """Step 1 of the contract: write snapshot, entries, hard state; sync if `sync`."""
        storage = host.storage
        live = storage.live
        last_stored = live.last_index()
        if rd.snapshot is not None:
            last_stored = rd.snapshot.meta.index
        storage.write_ready(rd.snapshot, rd.entries, rd.hard_state)
        if rd.entries:
            entries = rd.entries
            floor = live.snapshot().meta.index
            if entries[0].index <= floor:
                entries = tuple(e for e in entries if e.index > floor)
            if entries:
                self.checker.on_persist(
                    host.node_id,
                    entries,
                    live.term(entries[0].index - 1),
                    node.role is Role.LEADER,
                    last_stored,
                )
        if sync:
            storage.sync()

    def _install_snapshot(
        self, host: Host, sm: KVStateMachine, data: bytes, index: int
    ) -> KVStateMachine:
        """Restore the state machine from a snapshot the leader sent; returns the machine."""
        if not data:
            # The bootstrap snapshot (index 0) of a joining node: an empty state machine.
            assert index == 0, f"snapshot at index {index} carries no state"
            host.sm = KVStateMachine(
                self.options.session_timeout_ticks,
                node_id=host.node_id,
                tracer=sm.tracer,
                planted_bug=self.options.planted_bug,
            )
            return host.sm
        sm.restore(data)
        assert sm.applied_index == index, "snapshot data and meta disagree"
        self.checker.on_snapshot(host.node_id, index, zlib.crc32(data).to_bytes(4, "big"))
        host.ready_reads = [rs for rs in host.ready_reads if rs.index > index]
        return sm

    def _apply(self, host: Host, sm: KVStateMachine, entries: tuple[Entry, ...]) -> None:
        checker = self.checker
        node_id = host.node_id
        pending = host.pending_writes
        now = self.tick_count
        for entry in entries:
            result = sm.apply(entry)
            checker.on_apply(node_id, entry)
            self.applied_entries += 1
            client_id = result.client_id
            if client_id is None:
                continue
            outcome = result.outcome
            if outcome is Outcome.REGISTERED:
                nonce = result.command.nonce  # type: ignore[union-attr]
                key = (0, nonce)
            else:
                assert result.seq is not None
                if outcome is Outcome.APPLIED:
                    checker.on_execute(node_id, client_id, result.seq, entry.index)
                key = (client_id, result.seq)
            waiter = pending.pop(key, None)
            if waiter is not None:
                reply = ClientReply(waiter[1], ReplyKind.RESULT, result.response, client_id)
                self.net.send(now, node_id, waiter[0], reply)

    def _serve_reads(self, host: Host, sm: KVStateMachine) -> None:
        waiting: list[ReadState] = []
        now = self.tick_count
        for rs in host.ready_reads:
            if rs.index > sm.applied_index:
                waiting.append(rs)
                continue
            waiter = host.pending_reads.pop(rs.request_ctx, None)
            if waiter is not None:
                response = Response(Status.OK, sm.read(waiter[2]))
                reply = ClientReply(waiter[1], ReplyKind.RESULT, response)
                self.net.send(now, host.node_id, waiter[0], reply)
        host.ready_reads = waiting

    def _observe(self, host: Host) -> None:
        """Check what can be seen of a node after it handled an input."""
        node = host.node
        assert node is not None
        checker = self.checker
        term = node.current_term
        is_leader = node.role is Role.LEADER
        vote = node.voted_for
        seen = (term, is_leader, vote)
        if seen != host.seen:  # Nothing new to check while term, role and vote stand still.
            host.seen = seen
            if checker.on_role(host.node_id, term, is_leader, vote):
                self._check_leader_completeness(host, node, term)
            if vote is not None and vote != host.node_id and host.last_vote != (term, vote):
                host.last_vote = (term, vote)
                self.voters_granted.append(host.node_id)
            if not is_leader and host.pending_reads:
                host.pending_reads.clear()
        commit = node.commit_index
        if commit != host.commit_seen:
            if commit < host.commit_seen:
                raise Violation(
                    "commit monotonic",
                    f"{host.node_id} commit index went from {host.commit_seen} to {commit}",
                )
            host.commit_seen = commit
            checker.on_commit(term, commit, node.term_at(commit))

    def _check_leader_completeness(self, host: Host, node: Node, term: int) -> None:
        required = self.checker.required_for_leader(term)
        if required is None:
            return
        index, entry_term = required
        if index <= node.snapshot_index:
            return  # Covered by the snapshot, which only holds committed entries.
        if index > node.last_index or node.term_at(index) != entry_term:
            raise Violation(
                "leader completeness",
                f"{host.node_id} became leader of term {term} without the entry "
                f"committed at index {index} (term {entry_term})",
            )

    def _maybe_compact(self, host: Host, sm: KVStateMachine) -> None:
        every = self.options.compact_every_entries
        if every and sm.applied_index - host.storage.live.snapshot().meta.index >= every:
            self.compact(host.node_id)

    def compact(self, node_id: NodeId) -> bool:
        """Snapshot the node's state machine at its applied index and compact the log."""
        host = self.hosts[node_id]
        node, sm = host.node, host.sm
        if node is None or sm is None:
            return False
        index = sm.applied_index
        if index > node.applied_index:
            return False  # Applied early (`_apply_early`): wait until the node advanced.
        if index <= host.storage.live.snapshot().meta.index:
            return False
        data = sm.snapshot()
        self.checker.on_snapshot(node_id, index, zlib.crc32(data).to_bytes(4, "big"))
        snapshot = host.storage.snapshot_and_compact(index, data)
        node.compact(snapshot.meta)
        return True

    # Delivery and time.

    def deliver(self, dst: str, payload: object) -> None:
        host = self.hosts.get(dst)
        if host is None:
            self.client_messages += 1
            self.clock += 1
            client = self.clients[dst]
            assert isinstance(payload, ClientReply)
            self._send_requests(client.on_reply(payload, self.tick_count, self.clock))
            return
        node = host.node
        if node is None:
            return  # The server is down; the message is lost.
        if type(payload) is ClientRequest:
            self.client_messages += 1
            self._serve_request(host, node, payload)
        else:
            node.step(payload)  # type: ignore[arg-type]
        self.drain(host)

    def _send_requests(self, requests: list[tuple[str, ClientRequest]]) -> None:
        for target, request in requests:
            self.net.send(self.tick_count, request.client, target, request)

    def _serve_request(self, host: Host, node: Node, request: ClientRequest) -> None:
        try:
            if request.read_key is not None:
                ctx = f"{request.client}/{request.request_id}".encode()
                node.read_index(ctx)
                host.pending_reads[ctx] = (request.client, request.request_id, request.read_key)
                return
            node.propose(request.data)
        except (NotLeader, TransferInProgress) as error:
            hint = error.leader_hint if isinstance(error, NotLeader) else None
            reply = ClientReply(request.request_id, ReplyKind.REDIRECT, leader_hint=hint)
            self.net.send(self.tick_count, host.node_id, request.client, reply)
            return
        if request.register_nonce:
            key = (0, request.register_nonce)
        else:
            key = (request.client_id, request.seq)
        host.pending_writes[key] = (request.client, request.request_id)

    def tick(self) -> None:
        """One tick of the world: deliver what is due, tick every node, let clients act."""
        self.tick_count += 1
        if not self.net.manual:
            for _, dst, payload in self.net.due(self.tick_count):
                self.deliver(dst, payload)
        self.tick_nodes()
        self.tick_clients()

    def tick_nodes(self) -> None:
        frozen = self.frozen
        for node_id in self.node_ids:
            host = self.hosts[node_id]
            node = host.node
            if node is not None and node_id not in frozen:
                node.tick()
                self.drain(host)
            elif node is not None and host.unpersisted is not None:
                self.drain(host)  # A stalled clock does not stall the disk.

    def tick_clients(self) -> None:
        for client in self.clients.values():
            self.clock += 1
            self._send_requests(client.tick(self.tick_count, self.clock))

    # Faults and operator actions.

    def add_node(self) -> NodeId:
        """A new, empty server (not yet a member: propose AddLearner for it)."""
        node_id = f"n{len(self.node_ids) + 1}"
        self.hosts[node_id] = Host(node_id, SimStorage(MemoryStorage()))
        self.node_ids.append(node_id)  # Clients share this list as their targets.
        self.start(node_id)
        return node_id

    def conf_change(self, kind: ConfChangeKind, node_id: NodeId) -> bool:
        """Propose a membership change at the leader; False if it was refused."""
        leader = self.leader()
        if leader is None:
            return False
        node = leader.node
        assert node is not None
        try:
            node.propose_conf_change(ConfChange(kind, node_id))
        except (NotLeader, TransferInProgress, ConfChangeRejected, InvalidConfChange):
            return False
        self.drain(leader)
        return True

    def transfer(self, target: NodeId) -> bool:
        leader = self.leader()
        if leader is None:
            return False
        node = leader.node
        assert node is not None
        try:
            node.transfer_leadership(target)
        except (NotLeader, TransferInProgress, InvalidTransfer):
            return False
        self.drain(leader)
        return True

    def propose(self, data: bytes) -> bool:
        """Propose raw data at the leader (used by tests; clients go through the network)."""
        leader = self.leader()
        if leader is None or leader.node is None:
            return False
        try:
            leader.node.propose(data)
        except RaftError:
            return False
        self.drain(leader)
        return True

    def history(self) -> list[Operation]:
        ops: list[Operation] = []
        for client in self.clients.values():
            ops.extend(client.history)
        return ops
