"""The interaction environment behind the data-driven scripts (etcd's rafttest model).

Commands (arguments in brackets are optional):

    cluster voters=(n1,n2,n3) [learners=(..)] [pre-vote=false] [check-quorum=false]
            [lease-reads=true] [max-entries=N] [max-bytes=N] [max-inflight=N]
            [election=N] [heartbeat=N] [bug=NAME] [seed=N] [trace=true]
    add-node n4                      a joining node (empty storage, empty membership)
    tick n1 [N]                      N ticks (default 1)
    tick-election n1 [n2 ...]        one election timeout of ticks each
    campaign n1                      tick n1 until its election timer fires
    process-ready [n1 ...]           hand out and act on each node's Ready
    deliver-msgs [n1 ...] [from=n2] [type=Kind]   deliver queued messages
    drop-msgs [to=n1] [from=n2] [type=Kind]       drop queued messages
    stabilize [n1 ...]               process readies and deliver until quiet
    isolate n1 / heal                drop everything to and from n1 / stop doing so
    crash n1 / restart n1            stop n1 (volatile state lost) / rebuild it from storage
    propose n1 DATA                  a client request
    propose-conf-change n1 AddLearner|PromoteLearner|RemoveServer n4
    read-index n1 CTX / read-states n1
    transfer-leadership n1 n2
    compact n1 INDEX                 snapshot at INDEX (applied) and compact storage
    status [n1 ...] / raft-log n1 / applied n1 / trace-events

Message kinds for `type=` are the describe names (AppendEntries, Heartbeat, PreVote, ...).
"""

from __future__ import annotations

import random

from datadriven import Directive

from raftcore.bugs import PlantedBug
from raftcore.config import Config
from raftcore.describe import (
    describe_entry,
    describe_membership,
    describe_message,
    describe_read_state,
    describe_ready,
    describe_snapshot,
)
from raftcore.errors import RaftError
from raftcore.memstorage import MemoryStorage
from raftcore.node import Node
from raftcore.types import (
    ConfChange,
    ConfChangeKind,
    EntryKind,
    Membership,
    Message,
    Role,
    Snapshot,
    SnapshotMeta,
    TraceEvent,
)


def message_kind(msg: Message) -> str:
    return describe_message(msg).split()[1]


class InteractionEnv:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.storages: dict[str, MemoryStorage] = {}
        self.network: list[Message] = []
        self.applied: dict[str, list[bytes]] = {}
        self.read_states: dict[str, list[str]] = {}
        self.isolated: set[str] = set()
        self.crashed: set[str] = set()
        self.incarnation: dict[str, int] = {}
        self.options: dict[str, str] = {}
        self.events: list[TraceEvent] = []
        self.seed = 0

    # Dispatch.

    def handle(self, d: Directive) -> str:
        handler = getattr(self, "cmd_" + d.command.replace("-", "_"), None)
        assert handler is not None, f"{d.pos}: unknown command {d.command}"
        try:
            return str(handler(d))
        except RaftError as error:
            return f"error: {type(error).__name__}: {error}"

    # Building the cluster.

    def _config(self, node_id: str) -> Config:
        opt = self.options
        bug = opt.get("bug")
        incarnation = self.incarnation[node_id]
        return Config(
            id=node_id,
            election_timeout_ticks=int(opt.get("election", "10")),
            heartbeat_timeout_ticks=int(opt.get("heartbeat", "1")),
            pre_vote=opt.get("pre-vote", "true") == "true",
            check_quorum=opt.get("check-quorum", "true") == "true",
            lease_reads=opt.get("lease-reads", "false") == "true",
            max_entries_per_msg=int(opt.get("max-entries", "64")),
            max_bytes_per_msg=int(opt.get("max-bytes", str(1 << 20))),
            max_inflight_msgs=int(opt.get("max-inflight", "256")),
            msg_seq_base=incarnation * 1000,
            planted_bug=PlantedBug[bug] if bug else None,
        )

    def _start(self, node_id: str) -> Node:
        self.incarnation[node_id] = self.incarnation.get(node_id, -1) + 1
        rng = random.Random(f"{self.seed}/{node_id}/{self.incarnation[node_id]}")
        tracer = self.events.append if self.options.get("trace") == "true" else None
        node = Node(self._config(node_id), self.storages[node_id], rng, tracer)
        self.nodes[node_id] = node
        self.applied.setdefault(node_id, [])
        self.read_states.setdefault(node_id, [])
        return node

    def cmd_cluster(self, d: Directive) -> str:
        self.__init__()  # type: ignore[misc]  # A fresh world per `cluster` command.
        voters = d.get_list("voters")
        learners = d.get_list("learners")
        self.options = {arg.key: arg.one() for arg in d.args if arg.key not in
                        ("voters", "learners") and arg.values}
        self.seed = int(self.options.get("seed", "0"))
        membership = Membership(voters=frozenset(voters), learners=frozenset(learners))
        for node_id in sorted(voters + learners):
            snapshot = Snapshot(SnapshotMeta(index=0, term=0, membership=membership))
            self.storages[node_id] = MemoryStorage(snapshot)
            self._start(node_id)
        return "ok"

    def cmd_add_node(self, d: Directive) -> str:
        for node_id in d.positional():
            self.storages[node_id] = MemoryStorage()
            self._start(node_id)
        return "ok"

    # Time.

    def cmd_tick(self, d: Directive) -> str:
        args = d.positional()
        count = int(args[1]) if len(args) > 1 else 1
        for _ in range(count):
            self.nodes[args[0]].tick()
        return "ok"

    def cmd_tick_election(self, d: Directive) -> str:
        for node_id in d.positional():
            node = self.nodes[node_id]
            for _ in range(node.config.election_timeout_ticks):
                node.tick()
        return "ok"

    def cmd_campaign(self, d: Directive) -> str:
        node = self.nodes[d.positional()[0]]
        for _ in range(2 * node.config.election_timeout_ticks):
            term, role, sent = node.current_term, node.role, len(node._msgs)
            node.tick()
            if node.current_term != term or node.role is not role or len(node._msgs) > sent:
                return "ok"
        return "did not campaign"

    # Readies and messages.

    def _targets(self, d: Directive) -> list[str]:
        named = d.positional()
        return named if named else sorted(self.nodes)

    def _process_ready(self, node_id: str, lines: list[str]) -> None:
        node = self.nodes[node_id]
        storage = self.storages[node_id]
        while node.has_ready():
            ready = node.ready()
            lines.append(f"> {node_id} handling Ready")
            lines.append(describe_ready(ready, indent="  "))
            if ready.snapshot is not None:
                storage.apply_snapshot(ready.snapshot)
                self.applied[node_id] = [b"<snapshot>"]
            storage.append(ready.entries)
            if ready.hard_state is not None:
                storage.set_hard_state(ready.hard_state)
            self.network.extend(ready.messages)
            for entry in ready.committed_entries:
                if entry.kind is EntryKind.NORMAL:
                    self.applied[node_id].append(entry.data)
            self.read_states[node_id].extend(
                describe_read_state(state) for state in ready.read_states
            )
            node.advance(ready)

    def cmd_process_ready(self, d: Directive) -> str:
        lines: list[str] = []
        for node_id in self._targets(d):
            if node_id not in self.crashed:
                self._process_ready(node_id, lines)
        return "\n".join(lines)

    def _select(self, d: Directive, to: list[str]) -> list[Message]:
        sender = d.get("from")
        kind = d.get("type")
        return [
            msg
            for msg in self.network
            if (not to or msg.to_id in to)
            and (sender is None or msg.from_id == sender)
            and (kind is None or message_kind(msg) == kind)
        ]

    def _deliver(self, chosen: list[Message], lines: list[str]) -> None:
        chosen_ids = {id(msg) for msg in chosen}
        self.network = [msg for msg in self.network if id(msg) not in chosen_ids]
        for to in sorted({msg.to_id for msg in chosen}):
            lines.append(f"> {to} receiving messages")
            for msg in chosen:
                if msg.to_id != to:
                    continue
                text = describe_message(msg)
                blocked = {msg.from_id, msg.to_id} & (self.isolated | self.crashed)
                if blocked or to not in self.nodes:
                    lines.append(f"  {text} (dropped)")
                    continue
                lines.append(f"  {text}")
                self.nodes[to].step(msg)

    def cmd_deliver_msgs(self, d: Directive) -> str:
        lines: list[str] = []
        self._deliver(self._select(d, d.positional()), lines)
        return "\n".join(lines)

    def cmd_drop_msgs(self, d: Directive) -> str:
        to = d.get_list("to")
        chosen = self._select(d, to)
        chosen_ids = {id(msg) for msg in chosen}
        self.network = [msg for msg in self.network if id(msg) not in chosen_ids]
        return "\n".join(f"dropped: {describe_message(msg)}" for msg in chosen)

    def cmd_stabilize(self, d: Directive) -> str:
        targets = self._targets(d)
        lines: list[str] = []
        for _ in range(200):
            before = len(lines)
            for node_id in targets:
                if node_id not in self.crashed:
                    self._process_ready(node_id, lines)
            pending = [msg for msg in self.network if msg.to_id in targets]
            if pending:
                self._deliver(pending, lines)
            if len(lines) == before:
                return "\n".join(lines)
        raise AssertionError(f"{d.pos}: did not stabilize")

    def cmd_isolate(self, d: Directive) -> str:
        self.isolated.update(d.positional())
        return "ok"

    def cmd_heal(self, d: Directive) -> str:
        self.isolated.clear()
        return "ok"

    def cmd_crash(self, d: Directive) -> str:
        self.crashed.update(d.positional())
        return "ok"

    def cmd_restart(self, d: Directive) -> str:
        lines = []
        for node_id in d.positional():
            self.crashed.discard(node_id)
            self.applied[node_id] = []
            self._start(node_id)
            lines.append(self._status_line(node_id))
        return "\n".join(lines)

    # Requests.

    def cmd_propose(self, d: Directive) -> str:
        node_id, data = d.positional()[:2]
        return f"index={self.nodes[node_id].propose(data.encode())}"

    def cmd_propose_conf_change(self, d: Directive) -> str:
        node_id, kind, target = d.positional()[:3]
        change = ConfChange(ConfChangeKind(kind), target)
        return f"index={self.nodes[node_id].propose_conf_change(change)}"

    def cmd_read_index(self, d: Directive) -> str:
        node_id, ctx = d.positional()[:2]
        self.nodes[node_id].read_index(ctx.encode())
        return "ok"

    def cmd_read_states(self, d: Directive) -> str:
        node_id = d.positional()[0]
        states, self.read_states[node_id] = self.read_states[node_id], []
        return "\n".join(states) or "none"

    def cmd_transfer_leadership(self, d: Directive) -> str:
        node_id, target = d.positional()[:2]
        self.nodes[node_id].transfer_leadership(target)
        return "ok"

    def cmd_compact(self, d: Directive) -> str:
        node_id, index = d.positional()[0], int(d.positional()[1])
        storage = self.storages[node_id]
        snapshot = storage.create_snapshot(index, b"snapshot@%d" % index)
        storage.compact(index)
        self.nodes[node_id].compact(snapshot.meta)
        return self._status_line(node_id)

    # Inspection.

    def _status_line(self, node_id: str) -> str:
        node = self.nodes[node_id]
        line = (
            f"{node_id}: {node.role.value} term={node.current_term}"
            f" vote={node.voted_for or '-'} leader={node.leader_id or '-'}"
            f" commit={node.commit_index} applied={node.applied_index}"
            f" last={node.last_term}/{node.last_index} {describe_membership(node.membership)}"
        )
        if node_id in self.crashed:
            line += " (crashed)"
        return line

    def cmd_status(self, d: Directive) -> str:
        lines = []
        for node_id in self._targets(d):
            lines.append(self._status_line(node_id))
            node = self.nodes[node_id]
            if node.role is Role.LEADER and d.positional():
                for peer, pr in sorted(node.progress.items()):
                    lines.append(
                        f"  {peer}: {pr.state.value} match={pr.match_index}"
                        f" next={pr.next_index} inflight={len(pr.inflight)}"
                    )
        return "\n".join(lines)

    def cmd_raft_log(self, d: Directive) -> str:
        node_id = d.positional()[0]
        node = self.nodes[node_id]
        storage = self.storages[node_id]
        lines = [f"snapshot {describe_snapshot(storage.snapshot())}"]
        if node.last_index >= node.first_index:
            lines.extend(
                describe_entry(entry)
                for entry in node._log.entries(node.first_index, node.last_index + 1)
            )
        return "\n".join(lines)

    def cmd_applied(self, d: Directive) -> str:
        node_id = d.positional()[0]
        return " ".join(data.decode() for data in self.applied[node_id]) or "none"

    def cmd_trace_events(self, d: Directive) -> str:
        events = list(self.events)
        self.events.clear()
        return "\n".join(_describe_event(event) for event in events) or "none"


def _describe_event(event: TraceEvent) -> str:
    params = event.params
    if "type" in params:
        detail = f"{params['type']} {params['from']}->{params['to']} term={params['term']}"
    else:
        detail = " ".join(f"{key}={_render(params[key])}" for key in sorted(params))
    state = event.state
    return (
        f"{event.node} {event.name} {detail}".rstrip()
        + f" | {state['role']} term={state['current_term']} commit={state['commit_index']}"
    )


def _render(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
