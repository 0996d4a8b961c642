"""MemoryStorage: the in-memory `Storage` that tests and the simulator drive the core with.

Role: holds what a driver persisted (hard state, snapshot, log entries after the snapshot)
and answers the core's read-only `Storage` queries. The writer methods (`append`,
`set_hard_state`, `apply_snapshot`, `create_snapshot`, `compact`) are for the driver only;
the core never calls them.

Rules:
- Entries are held contiguously from `first_index()` to `last_index()`. The term of the
  entry just before `first_index()` is kept too (it is the snapshot's term after a
  snapshot), so `term(first_index() - 1)` always answers.
- `append` replaces any suffix that conflicts with the new entries (etcd's semantics):
  entries at or after `entries[0].index` are dropped first.
- `MemoryStorage.bootstrap(voters)` is a fresh member of a new cluster: a snapshot at index
  0 whose membership has those voters. `MemoryStorage()` is a joining node: an empty
  membership, learned from its leader (which sends it a snapshot first).
- Bad arguments are programmer errors (asserts); queries out of range raise `Compacted` or
  `Unavailable` as the Storage protocol says.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from raftcore import confchange
from raftcore.errors import Compacted, Unavailable
from raftcore.log import limit_size
from raftcore.types import (
    Entry,
    EntryKind,
    HardState,
    Membership,
    NodeId,
    Snapshot,
    SnapshotMeta,
)


class MemoryStorage:
    """A `Storage` kept in memory, with the writer methods a driver uses."""

    __slots__ = ("_entries", "_hard_state", "_offset", "_prev_term", "_snapshot")

    def __init__(self, snapshot: Snapshot | None = None) -> None:
        if snapshot is None:
            snapshot = Snapshot(SnapshotMeta(index=0, term=0, membership=Membership()))
        self._hard_state = HardState()
        self._snapshot = snapshot
        self._offset = snapshot.meta.index + 1
        self._prev_term = snapshot.meta.term
        self._entries: list[Entry] = []

    @classmethod
    def bootstrap(cls, voters: Iterable[NodeId]) -> MemoryStorage:
        """Storage of an initial member: a snapshot at index 0 with `voters` as members."""
        membership = Membership(voters=frozenset(voters))
        assert membership.voters, "a cluster needs at least one voter"
        return cls(Snapshot(SnapshotMeta(index=0, term=0, membership=membership)))

    # The read-only Storage protocol.

    def initial_state(self) -> HardState:
        return self._hard_state

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        if lo < self._offset:
            raise Compacted(f"index {lo} is compacted (first index {self._offset})")
        last = self._offset + len(self._entries) - 1
        if hi > last + 1:
            raise Unavailable(f"index {hi - 1} is beyond the last index {last}")
        assert lo <= hi, "entries(lo, hi) needs lo <= hi"
        selected = self._entries[lo - self._offset : hi - self._offset]
        if max_bytes is not None:
            return limit_size(selected, max_bytes)
        return selected

    def term(self, index: int) -> int:
        offset = self._offset
        if index >= offset:
            position = index - offset
            if position >= len(self._entries):
                raise Unavailable(f"index {index} is beyond the last index")
            return self._entries[position].term
        if index == offset - 1:
            return self._prev_term
        raise Compacted(f"index {index} is compacted (first index {offset})")

    def first_index(self) -> int:
        return self._offset

    def last_index(self) -> int:
        return self._offset + len(self._entries) - 1

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # Writers (the driver's side).

    def set_hard_state(self, hard_state: HardState) -> None:
        self._hard_state = hard_state

    def append(self, entries: Sequence[Entry]) -> None:
        """Persist entries, replacing any suffix from `entries[0].index` on."""
        if not entries:
            return
        first = entries[0].index
        for position in range(1, len(entries)):
            assert entries[position].index == first + position, "entries must be contiguous"
        assert first <= self.last_index() + 1, "append would leave a gap in the log"
        if first < self._offset:
            # The part already covered by the snapshot is committed and identical; skip it.
            entries = entries[self._offset - first :]
            if not entries:
                return
            first = entries[0].index
        del self._entries[first - self._offset :]
        self._entries.extend(entries)

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Replace the whole log with a snapshot received from a leader."""
        assert snapshot.meta.index >= self._snapshot.meta.index, "snapshot is older than ours"
        self._snapshot = snapshot
        self._offset = snapshot.meta.index + 1
        self._prev_term = snapshot.meta.term
        self._entries = []

    def create_snapshot(self, index: int, data: bytes) -> Snapshot:
        """Record a snapshot of the state machine at `index` (applied by the driver).

        The configuration in force at `index` is derived from the log, and the cluster
        time is that of the entry at `index`. The log is not compacted; call `compact`.
        """
        assert index >= self._snapshot.meta.index, "snapshot would go backwards"
        assert index <= self.last_index(), "cannot snapshot beyond the last index"
        if index == self._snapshot.meta.index:
            meta = self._snapshot.meta
        else:
            entry = self._entries[index - self._offset]
            meta = SnapshotMeta(
                index=index,
                term=entry.term,
                membership=self.membership_at(index),
                cluster_time_ticks=entry.cluster_time_ticks,
            )
        self._snapshot = Snapshot(meta, data)
        return self._snapshot

    def compact(self, index: int) -> None:
        """Drop entries up to and including `index` (which a snapshot must cover)."""
        assert index <= self._snapshot.meta.index, "compact only what a snapshot covers"
        if index < self._offset:
            return
        self._prev_term = self._entries[index - self._offset].term
        del self._entries[: index + 1 - self._offset]
        self._offset = index + 1

    def membership_at(self, index: int) -> Membership:
        """The configuration in force at `index`: the last configuration entry at or
        before it, applied on top of the snapshot's membership."""
        assert index >= self._snapshot.meta.index, "index is before the snapshot"
        membership = self._snapshot.meta.membership
        start = max(self._snapshot.meta.index + 1, self._offset)
        for entry in self._entries[start - self._offset : index + 1 - self._offset]:
            if entry.kind is EntryKind.CONF_CHANGE:
                membership = confchange.apply(membership, confchange.decode(entry.data))
        return membership
