"""The DB part of a test: what the harness needs from a database under test.

Role: the protocol between the run (jepsen/core.py), the nemesis (jepsen/nemesis.py) and
a database: `KvDB` (jepsen/kvdb.py) deploys kvserver over SSH; `MemoryDB`
(jepsen/memdb.py) is a fake in this process, so the harness tests its own control flow.
Shaped after jepsen-io/jepsen `db.clj` (setup!, teardown!, Kill, Pause, LogFiles) plus the
cluster operations the nemesis drives (partitions, membership, leadership).

Rules:
- Every fault method names its node(s) and either does what it says or raises `DBError`
  naming the node and the cause. Undoing a fault that is not in effect is harmless.
- `await_healthy` waits until the given nodes are members, one leader is known, and every
  node answers; it returns False on timeout instead of raising, so the run can record a
  liveness failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from jepsen.api import KvApi


class DBError(Exception):
    """A database operation failed; names the node and the cause."""

    def __init__(self, node: str, cause: str) -> None:
        super().__init__(f"{node}: {cause}")
        self.node = node
        self.cause = cause


class DB(Protocol):
    @property
    def nodes(self) -> tuple[str, ...]: ...

    def setup(self) -> None:
        """Install, start and join every node into one cluster."""
        ...

    def teardown(self) -> None:
        """Stop every node and remove what setup made (logs are collected first)."""
        ...

    def collect(self, target_dir: Path) -> None:
        """Copy each node's log and trace into target_dir/<node>/ (a DB with traces stops
        its nodes first, so that no trace lacks a send another node received)."""
        ...

    def api(self, node: str, timeout_s: float) -> KvApi: ...

    def await_healthy(self, nodes: Sequence[str], timeout_s: float) -> bool: ...

    def leader(self) -> str | None: ...

    def kill(self, node: str) -> None: ...

    def start(self, node: str) -> None: ...

    def pause(self, node: str) -> None: ...

    def resume(self, node: str) -> None: ...

    def partition(self, grudge: Mapping[str, frozenset[str]]) -> None: ...

    def heal_network(self) -> None: ...

    def remove_member(self, node: str) -> None:
        """Remove `node` from the configuration and stop it."""
        ...

    def add_member(self, node: str) -> None:
        """Start `node` afresh (empty data) and join it to the cluster."""
        ...

    def transfer_leadership(self, to: str | None) -> str:
        """Hand leadership to `to` (or any voter); returns the new leader."""
        ...

    def damage_wal(self, node: str, kind: str, amount: int) -> str:
        """While `node` is stopped: `truncate` drops `amount` bytes off its newest WAL
        segment, `corrupt` flips the byte at offset `amount` (negative: from the end).
        Returns what was done, for the history."""
        ...
