"""An in-memory database and its nodes' APIs, so the harness can test its own control flow.

Role: a fake `DB` in this process (Jepsen's in-memory DB for testing the harness itself).
A run against `MemoryDB()` goes through every part a real run does (generators, workers,
clients, nemesis, history, checks, store) without SSH, processes or sockets.

Theory of operation: one authoritative store (a dict under a lock) applies every write
atomically, so it is linearizable; a client session table makes retried session
requests exactly-once. Faults act on who can reach it:
- a killed or removed node refuses connections (definite failures);
- a paused node times out (a write may or may not have been applied: indefinite);
- a node outside the majority side of a partition answers `no_leader` (definite);
- with `flaky_probability`, an applied write still answers with a timeout (indefinite),
  which exercises the clients' retries and the `info` rule.
Each node also keeps a replica that catches up only now and then. Reads with
`consistency=stale` are served from it (so `--unsafe-stale-reads` is caught); with
`stale=True` every read is (the deliberately broken database of the negative control).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jepsen.api import ApiFailure, ApiTimeout, CasMismatch, Session
from jepsen.db import DBError
from jepsen.grudges import majority


@dataclass(slots=True)
class _Store:
    data: dict[str, str] = field(default_factory=dict)
    sessions: dict[int, dict[int, str | None]] = field(default_factory=dict)
    next_client_id: int = 1


class MemoryDB:
    """The in-memory database (see the module docstring)."""

    def __init__(self, nodes: Sequence[str], seed: int = 0, *, stale: bool = False,
                 flaky_probability: float = 0.0, catch_up_probability: float = 0.2) -> None:
        assert nodes, "at least one node"
        self._nodes = tuple(nodes)
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._store = _Store()
        self._replicas: dict[str, dict[str, str]] = {n: {} for n in nodes}
        self.stale = stale
        self.flaky_probability = flaky_probability
        self.catch_up_probability = catch_up_probability
        self.down: set[str] = set()
        self.paused: set[str] = set()
        self.removed: set[str] = set()
        self.grudge: dict[str, frozenset[str]] = {}
        self.leader_node: str | None = self._nodes[0]
        self.events: list[str] = []
        self.is_setup = False

    @property
    def nodes(self) -> tuple[str, ...]:
        return self._nodes

    # ------------------------------------------------------------ DB protocol
    def setup(self) -> None:
        self.is_setup = True
        self.events.append("setup")

    def teardown(self) -> None:
        self.is_setup = False
        self.events.append("teardown")

    def collect(self, target_dir: Path) -> None:
        for node in self._nodes:
            folder = target_dir / node
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "node.log").write_text(f"in-memory node {node}\n", encoding="utf-8")

    def api(self, node: str, timeout_s: float) -> MemoryKvApi:  # noqa: ARG002 - protocol
        assert node in self._nodes, node
        return MemoryKvApi(self, node)

    def await_healthy(self, nodes: Sequence[str], timeout_s: float) -> bool:  # noqa: ARG002
        with self._lock:
            return all(self._serving(node) for node in nodes)

    def leader(self) -> str | None:
        with self._lock:
            return self._leader()

    def kill(self, node: str) -> None:
        self._check(node)
        with self._lock:
            self.down.add(node)
            self.paused.discard(node)
        self.events.append(f"kill {node}")

    def start(self, node: str) -> None:
        self._check(node)
        with self._lock:
            self.down.discard(node)
        self.events.append(f"start {node}")

    def pause(self, node: str) -> None:
        self._check(node)
        with self._lock:
            self.paused.add(node)

    def resume(self, node: str) -> None:
        self._check(node)
        with self._lock:
            self.paused.discard(node)

    def partition(self, grudge: Mapping[str, frozenset[str]]) -> None:
        with self._lock:
            self.grudge = {node: frozenset(dropped) for node, dropped in grudge.items()}

    def heal_network(self) -> None:
        with self._lock:
            self.grudge = {}

    def remove_member(self, node: str) -> None:
        self._check(node)
        with self._lock:
            self.removed.add(node)

    def add_member(self, node: str) -> None:
        self._check(node)
        with self._lock:
            self.removed.discard(node)
            self.down.discard(node)
            self._replicas[node] = {}

    def transfer_leadership(self, to: str | None) -> str:
        with self._lock:
            candidates = [n for n in self._members() if self._alive(n)]
            if not candidates:
                raise DBError("cluster", "no live voter to transfer leadership to")
            self.leader_node = to if to in candidates else candidates[0]
            return self.leader_node

    def damage_wal(self, node: str, kind: str, amount: int) -> str:
        self._check(node)
        assert node in self.down, "WAL damage needs a stopped node"
        return f"{kind} {amount} (in memory: no WAL)"

    # ------------------------------------------------------------ cluster view
    def _check(self, node: str) -> None:
        if node not in self._nodes:
            raise DBError(node, "not a node of this test")

    def _members(self) -> list[str]:
        return [n for n in self._nodes if n not in self.removed]

    def _alive(self, node: str) -> bool:
        return node not in self.down and node not in self.paused and node not in self.removed

    def _component(self, node: str) -> set[str]:
        """The live members `node` can exchange messages with (both ways), itself included."""
        return {
            other for other in self._members()
            if self._alive(other)
            and other not in self.grudge.get(node, frozenset())
            and node not in self.grudge.get(other, frozenset())
        } | {node}

    def _has_quorum(self, node: str) -> bool:
        return len(self._component(node)) >= majority(len(self._members()))

    def _leader(self) -> str | None:
        preferred = self.leader_node
        if preferred is not None and self._alive(preferred) and self._has_quorum(preferred):
            return preferred
        for node in self._members():
            if self._alive(node) and self._has_quorum(node):
                self.leader_node = node
                return node
        return None

    def _serving(self, node: str) -> bool:
        return self._alive(node) and self._has_quorum(node) and self._leader() is not None

    def _gate(self, node: str) -> None:
        """Raise the failure a request to `node` meets now; caller holds the lock."""
        if node in self.down or node in self.removed:
            raise ApiFailure(True, "connect_failed", f"{node} refuses connections")
        if node in self.paused:
            raise ApiTimeout(f"{node} is paused")
        if not self._serving(node):
            raise ApiFailure(True, "no_leader", f"{node} has no leader")

    def _after_write(self, node: str) -> None:
        if self._rng.random() < self.flaky_probability:
            raise ApiTimeout(f"{node}: the answer was lost (applied)")

    # ------------------------------------------------------------ operations
    def read(self, node: str, key: str, consistency: str) -> str | None:
        with self._lock:
            self._gate(node)
            replica = self._replicas[node]
            if self._rng.random() < self.catch_up_probability:
                replica.clear()
                replica.update(self._store.data)
            if self.stale or consistency == "stale":
                return replica.get(key)
            return self._store.data.get(key)

    def write(self, node: str, key: str, session: Session | None, update: _Update) -> str | None:
        with self._lock:
            self._gate(node)
            if session is not None:
                table = self._store.sessions.get(session.client_id)
                if table is None:
                    raise ApiFailure(True, "session_expired", "unknown session")
                for seq in [s for s in table if s < session.ack_seq]:
                    del table[seq]
                if session.seq in table:
                    return table[session.seq]
            current = self._store.data.get(key)
            new = update(current)
            self._store.data[key] = new
            if session is not None:
                self._store.sessions[session.client_id][session.seq] = new
            self._after_write(node)
            return new

    def register_session(self, node: str) -> int:
        with self._lock:
            self._gate(node)
            client_id = self._store.next_client_id
            self._store.next_client_id += 1
            self._store.sessions[client_id] = {}
            return client_id


class _Update:
    """A write's effect on the current value; raises CasMismatch for a failed compare."""

    def __init__(self, kind: str, value: str, expected: str | None = None) -> None:
        self.kind, self.value, self.expected = kind, value, expected

    def __call__(self, current: str | None) -> str:
        if self.kind == "put":
            return self.value
        if self.kind == "cas":
            if current != self.expected:
                raise CasMismatch(f"current value is {current!r}")
            return self.value
        assert self.kind == "append"
        return (current or "") + self.value


class MemoryKvApi:
    """One node's `KvApi` on a `MemoryDB`."""

    def __init__(self, db: MemoryDB, node: str) -> None:
        self._db = db
        self._node = node

    @property
    def node(self) -> str:
        return self._node

    def close(self) -> None:
        return None

    def get(self, key: str, consistency: str = "linearizable") -> str | None:
        return self._db.read(self._node, key, consistency)

    def put(self, key: str, value: str, session: Session | None = None) -> None:
        self._db.write(self._node, key, session, _Update("put", value))

    def cas(self, key: str, expected: str, new: str, session: Session | None = None) -> None:
        self._db.write(self._node, key, session, _Update("cas", new, expected))

    def append(self, key: str, value: str, session: Session | None = None) -> str | None:
        return self._db.write(self._node, key, session, _Update("append", value))

    def register_session(self) -> int:
        return self._db.register_session(self._node)
