"""Simulated disk: a `MemoryStorage` the node reads, and the part of it that survived fsync.

Rules:
- The node reads `live`, which holds everything the driver wrote (as a page cache would).
- Writes also go to a journal of unsynced operations; `sync()` replays the journal onto
  `durable`. A Ready with `must_sync` is synced before its messages leave (except a
  leader's early requests, `Ready.messages_before_persist`, which leave before the sync);
  a Ready without it (commit-index-only hard state changes) stays unsynced until a later
  sync.
- `crash()` throws `live` away and rebuilds it from `durable`: unsynced writes are lost,
  exactly what a power cut does to a page cache.
- Snapshots the driver takes (compaction) are synced at once, as a snapshot file would be.
"""

from __future__ import annotations

from collections.abc import Sequence

from raftcore.memstorage import MemoryStorage
from raftcore.types import Entry, HardState, Snapshot


class SimStorage:
    """A node's disk: `live` for the node, `durable` for what survives a crash."""

    __slots__ = ("_journal", "durable", "live", "syncs")

    def __init__(self, initial: MemoryStorage) -> None:
        self.durable = initial
        self.live = _copy(initial)
        self._journal: list[tuple[str, object]] = []
        self.syncs = 0

    def write_ready(
        self,
        snapshot: Snapshot | None,
        entries: Sequence[Entry],
        hard_state: HardState | None,
    ) -> None:
        """Persist a Ready's snapshot, entries and hard state, in the contract's order."""
        live = self.live
        journal = self._journal
        if snapshot is not None:
            live.apply_snapshot(snapshot)
            journal.append(("snapshot", snapshot))
        if entries:
            live.append(entries)
            journal.append(("entries", entries))
        if hard_state is not None:
            live.set_hard_state(hard_state)
            journal.append(("hard_state", hard_state))

    def sync(self) -> None:
        """fsync: everything written so far survives a crash."""
        durable = self.durable
        for kind, value in self._journal:
            if kind == "snapshot":
                assert isinstance(value, Snapshot)
                durable.apply_snapshot(value)
            elif kind == "entries":
                durable.append(value)  # type: ignore[arg-type]
            else:
                assert isinstance(value, HardState)
                durable.set_hard_state(value)
        self._journal.clear()
        self.syncs += 1

    def unsynced(self) -> int:
        return len(self._journal)

    def snapshot_and_compact(self, index: int, data: bytes) -> Snapshot:
        """The driver took a state-machine snapshot at `index`: record it, drop the prefix."""
        self.sync()
        snapshot = self.live.create_snapshot(index, data)
        self.live.compact(index)
        self.durable.create_snapshot(index, data)
        self.durable.compact(index)
        return snapshot

    def crash(self) -> None:
        """Lose every unsynced write."""
        self._journal.clear()
        self.live = _copy(self.durable)


def _copy(storage: MemoryStorage) -> MemoryStorage:
    """An independent MemoryStorage with the same contents (entries are immutable)."""
    snapshot = storage.snapshot()
    copy = MemoryStorage(snapshot)
    copy.set_hard_state(storage.initial_state())
    first = storage.first_index()
    last = storage.last_index()
    if last >= first:
        entries = storage.entries(first, last + 1)
        start = snapshot.meta.index + 1 - first
        copy.append(entries[max(start, 0) :])
    return copy
