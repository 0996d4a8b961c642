"""Read-only storage the core reads its durable log from (the in-memory one is memstorage.py).

Rules:
- The core never writes to storage. The driver writes what `Ready` hands out (entries, hard
  state, snapshots) and compacts after taking snapshots; the core only reads.
- Indexes: `first_index()` is the first entry still held (snapshot index + 1);
  `last_index()` is the last entry held (the snapshot index when the log is empty);
  `term(snapshot index)` answers the snapshot's term.
"""

from __future__ import annotations

from typing import Protocol

from raftcore.types import Entry, HardState, Snapshot


class Storage(Protocol):
    def initial_state(self) -> HardState:
        """The persisted hard state. The core derives the configuration itself, from
        `snapshot().meta.membership` and the configuration entries after it."""
        ...

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries [lo, hi); at least one if any, then stop before exceeding max_bytes."""
        ...

    def term(self, index: int) -> int:
        """The term of the entry at `index` (raises Compacted / Unavailable)."""
        ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def snapshot(self) -> Snapshot:
        """The most recent snapshot (index 0 with the bootstrap membership at the start)."""
        ...
