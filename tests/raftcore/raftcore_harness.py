"""A small in-process cluster for the core's tests: deliver messages by hand, tick, propose.

Each node has a MemoryStorage. `process_ready(node_id)` does what a driver does with each
Ready (persist snapshot, entries, hard state; collect messages into the network; record
committed entries as applied; advance). Messages wait in `network` until delivered, so a
test decides exactly which message arrives when (etcd's rafttest/interaction_env).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from raftcore.config import Config
from raftcore.memstorage import MemoryStorage
from raftcore.node import Node
from raftcore.types import Entry, Message, ReadState, Ready, Role, TraceEvent


class Cluster:
    def __init__(
        self,
        voters: Iterable[str],
        *,
        seed: int = 0,
        config: Callable[[str], Config] | None = None,
        tracer: Callable[[TraceEvent], None] | None = None,
    ) -> None:
        self.voters = sorted(voters)
        self.seed = seed
        self.make_config = config or (lambda node_id: Config(id=node_id))
        self.tracer = tracer
        self.nodes: dict[str, Node] = {}
        self.storages: dict[str, MemoryStorage] = {}
        self.network: list[Message] = []
        self.applied: dict[str, list[Entry]] = {}
        self.read_states: dict[str, list[ReadState]] = {}
        self.readies: dict[str, list[Ready]] = {}
        self.down: set[str] = set()
        self.incarnation: dict[str, int] = {}
        for node_id in self.voters:
            self.add_node(node_id, MemoryStorage.bootstrap(self.voters))

    def add_node(self, node_id: str, storage: MemoryStorage | None = None) -> Node:
        """Start a node (a joining one if no storage: empty membership)."""
        storage = storage if storage is not None else MemoryStorage()
        self.storages[node_id] = storage
        return self._start(node_id)

    def _start(self, node_id: str) -> Node:
        incarnation = self.incarnation.get(node_id, -1) + 1
        self.incarnation[node_id] = incarnation
        base = self.make_config(node_id)
        config = Config(
            **{
                name: getattr(base, name)
                for name in base.__slots__  # type: ignore[attr-defined]
                if name != "msg_seq_base"
            },
            msg_seq_base=incarnation * 1_000_000,
        )
        rng = random.Random(f"{self.seed}/{node_id}/{incarnation}")
        node = Node(config, self.storages[node_id], rng, self.tracer)
        self.nodes[node_id] = node
        self.applied.setdefault(node_id, [])
        self.read_states.setdefault(node_id, [])
        self.readies.setdefault(node_id, [])
        return node

    def restart(self, node_id: str) -> Node:
        """Rebuild the node from its storage (everything volatile is lost)."""
        self.applied[node_id] = []
        self.down.discard(node_id)
        return self._start(node_id)

    def leader(self) -> Node:
        leaders = [n for n in self.nodes.values() if n.role is Role.LEADER]
        assert len(leaders) >= 1, "no leader"
        return max(leaders, key=lambda n: n.current_term)

    def process_ready(self, node_id: str) -> list[Ready]:
        node = self.nodes[node_id]
        storage = self.storages[node_id]
        handled = []
        while node.has_ready():
            ready = node.ready()
            if ready.snapshot is not None:
                storage.apply_snapshot(ready.snapshot)
                self.applied[node_id] = []
            storage.append(ready.entries)
            if ready.hard_state is not None:
                storage.set_hard_state(ready.hard_state)
            if node_id not in self.down:
                self.network.extend(ready.messages)
            self.applied[node_id].extend(ready.committed_entries)
            self.read_states[node_id].extend(ready.read_states)
            node.advance(ready)
            handled.append(ready)
        self.readies[node_id].extend(handled)
        return handled

    def deliver(
        self, to: str | None = None, predicate: Callable[[Message], bool] | None = None
    ) -> list[Message]:
        """Deliver (and remove) every queued message to `to` that matches `predicate`."""
        chosen = [
            msg
            for msg in self.network
            if (to is None or msg.to_id == to) and (predicate is None or predicate(msg))
        ]
        chosen_ids = {id(msg) for msg in chosen}
        self.network = [msg for msg in self.network if id(msg) not in chosen_ids]
        for msg in chosen:
            if msg.to_id in self.nodes and msg.to_id not in self.down:
                self.nodes[msg.to_id].step(msg)
        return chosen

    def drop(self, predicate: Callable[[Message], bool]) -> list[Message]:
        dropped = [msg for msg in self.network if predicate(msg)]
        self.network = [msg for msg in self.network if not predicate(msg)]
        return dropped

    def stabilize(self, max_rounds: int = 1000) -> None:
        """Process readies and deliver messages until nothing is left."""
        for _ in range(max_rounds):
            for node_id in sorted(self.nodes):
                if node_id not in self.down:
                    self.process_ready(node_id)
            if not self.network:
                return
            self.deliver()
        raise AssertionError("cluster did not stabilize")

    def tick(self, node_id: str, ticks: int = 1) -> None:
        for _ in range(ticks):
            self.nodes[node_id].tick()

    def tick_all(self, ticks: int = 1, stabilize: bool = True) -> None:
        for _ in range(ticks):
            for node_id in sorted(self.nodes):
                if node_id not in self.down:
                    self.nodes[node_id].tick()
            if stabilize:
                self.stabilize()

    def campaign(self, node_id: str) -> None:
        """Tick `node_id` until its election timer fires (it starts a pre-vote/vote)."""
        node = self.nodes[node_id]
        term, role = node.current_term, node.role
        for _ in range(10 * node.config.election_timeout_ticks):
            node.tick()
            if node.current_term != term or node.role is not role:
                return
        raise AssertionError(f"{node_id} never campaigned")

    def elect(self, node_id: str) -> Node:
        """Make `node_id` leader with everyone connected."""
        self.campaign(node_id)
        self.stabilize()
        node = self.nodes[node_id]
        assert node.role is Role.LEADER, f"{node_id} is {node.role}"
        return node

    def applied_data(self, node_id: str) -> list[bytes]:
        return [e.data for e in self.applied[node_id] if e.data and e.kind == 0]
