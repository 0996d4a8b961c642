"""The Raft log as the core sees it: durable entries in storage plus an unstable suffix.

Role: etcd's raft_log.go and log_unstable.go in one module. `RaftLog` answers term and
entry queries over (storage snapshot, storage entries, unstable snapshot, unstable
entries), appends and truncates the unstable suffix, and tracks the commit and apply
indexes.

Theory of operation:
- Entries the core appended but the driver has not yet persisted are *unstable*. They are
  handed out in `Ready.entries` and become stable when `advance` calls `stable_to`.
- A snapshot received from a leader is unstable in the same way until `stable_snap_to`.
- Unstable data shadows storage: an index held by both is answered from the unstable part,
  which is the newer truth (storage may still hold a suffix the leader truncated).
- `committed` never decreases; `applied` is what the driver has applied (acknowledged in
  `advance`), `applying` what has been handed out in a Ready but not yet acknowledged.

Rules: never writes storage; out-of-range queries raise `Compacted` / `Unavailable`.
"""

from __future__ import annotations

from collections.abc import Sequence

from raftcore.errors import Compacted, Unavailable
from raftcore.storage import Storage
from raftcore.types import Entry, Snapshot

ENTRY_OVERHEAD_BYTES = 24
"""Bytes an entry counts for beyond its data when batching by size (header estimate)."""


def entry_size(entry: Entry) -> int:
    """The size an entry counts for against `max_bytes_per_msg`."""
    return len(entry.data) + ENTRY_OVERHEAD_BYTES


def limit_size(entries: list[Entry], max_bytes: int) -> list[Entry]:
    """The longest prefix within `max_bytes`, but always at least one entry."""
    total = 0
    for position, entry in enumerate(entries):
        total += len(entry.data) + ENTRY_OVERHEAD_BYTES
        if total > max_bytes and position > 0:
            return entries[:position]
    return entries


class RaftLog:
    """Storage plus the unstable suffix; see the module docstring."""

    __slots__ = (
        "_last",
        "applied",
        "applying",
        "committed",
        "storage",
        "unstable_entries",
        "unstable_offset",
        "unstable_snapshot",
    )

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        first = storage.first_index()
        last = storage.last_index()
        self.unstable_entries: list[Entry] = []
        self.unstable_offset = last + 1
        self.unstable_snapshot: Snapshot | None = None
        # The last index changes only through `append` and `restore` (the driver persists
        # exactly what it was handed), so it is kept rather than recomputed.
        self._last = last
        self.committed = first - 1
        self.applied = first - 1
        self.applying = first - 1

    # Queries.

    def first_index(self) -> int:
        if self.unstable_snapshot is not None:
            return self.unstable_snapshot.meta.index + 1
        return self.storage.first_index()

    def last_index(self) -> int:
        return self._last

    def term(self, index: int) -> int:
        """The term at `index`; raises Compacted / Unavailable outside the log."""
        offset = self.unstable_offset
        if index >= offset:
            position = index - offset
            if position < len(self.unstable_entries):
                return self.unstable_entries[position].term
            raise Unavailable(f"index {index} is beyond the last index")
        snapshot = self.unstable_snapshot
        if snapshot is not None:
            if index == snapshot.meta.index:
                return snapshot.meta.term
            raise Compacted(f"index {index} is before the received snapshot")
        return self.storage.term(index)

    def term_or_zero(self, index: int) -> int:
        """The term at `index`, or 0 where the log has no entry (compacted or beyond)."""
        try:
            return self.term(index)
        except (Compacted, Unavailable):
            return 0

    def last_term(self) -> int:
        return self.term(self.last_index())

    def match_term(self, index: int, term: int) -> bool:
        try:
            return self.term(index) == term
        except (Compacted, Unavailable):
            return False

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Whether a log ending at (last_index, last_term) is at least as up to date
        as ours (paper section 5.4.1)."""
        our_term = self.last_term()
        return last_term > our_term or (last_term == our_term and last_index >= self.last_index())

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries [lo, hi), limited to `max_bytes` (but at least one)."""
        if lo >= hi:
            return []
        if lo < self.first_index():
            raise Compacted(f"index {lo} is compacted")
        if hi > self.last_index() + 1:
            raise Unavailable(f"index {hi - 1} is beyond the last index")
        offset = self.unstable_offset
        if lo >= offset:
            selected = self.unstable_entries[lo - offset : hi - offset]
        elif hi <= offset:
            return self.storage.entries(lo, hi, max_bytes)
        else:
            selected = self.storage.entries(lo, offset, None)
            selected = selected + self.unstable_entries[: hi - offset]
        if max_bytes is not None:
            return limit_size(selected, max_bytes)
        return selected

    def find_conflict(self, entries: Sequence[Entry]) -> int:
        """Index of the first entry whose term differs from ours (or that we lack), 0 if
        every entry is already in the log."""
        last = self.last_index()
        for entry in entries:
            index = entry.index
            if index > last or not self.match_term(index, entry.term):
                return index
        return 0

    def first_index_of_term(self, index: int) -> int:
        """The first index of the run of entries ending at `index` that share its term
        (bounded below by the first index we still hold). Terms never decrease along a
        log, so this is a binary search."""
        term = self.term(index)
        lo = self.first_index()
        hi = index
        while lo < hi:
            mid = (lo + hi) // 2
            if self.term(mid) < term:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def last_index_of_term(self, term: int, at_or_below: int) -> int:
        """The last index at or below `at_or_below` holding an entry of `term`, or 0 if
        there is none (or it was compacted). A binary search, as above."""
        lo = self.first_index() - 1
        hi = min(at_or_below, self.last_index())
        if hi < lo or self.term(lo) > term:
            return 0
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.term(mid) <= term:
                lo = mid
            else:
                hi = mid - 1
        return lo if self.term(lo) == term else 0

    # Changes.

    def append(self, entries: Sequence[Entry]) -> int:
        """Put entries into the unstable suffix, truncating what they replace."""
        if not entries:
            return self.last_index()
        first = entries[0].index
        assert first > self.committed, "appending would truncate committed entries"
        offset = self.unstable_offset
        if first == offset + len(self.unstable_entries):
            self.unstable_entries.extend(entries)
        elif first <= offset:
            # Replaces everything unstable (and possibly a durable suffix of storage).
            self.unstable_offset = first
            self.unstable_entries = list(entries)
        else:
            del self.unstable_entries[first - offset :]
            self.unstable_entries.extend(entries)
        self._last = last = entries[-1].index
        return last

    def maybe_append(
        self, prev_index: int, prev_term: int, committed: int, entries: Sequence[Entry]
    ) -> int | None:
        """The AppendEntries receiver rule: None if (prev_index, prev_term) does not
        match; else append what is new, advance commit, and return the last new index."""
        if not self.match_term(prev_index, prev_term):
            return None
        last_new = prev_index + len(entries)
        conflict = self.find_conflict(entries)
        if conflict:
            assert conflict > self.committed, "a conflict with a committed entry"
            self.append(entries[conflict - prev_index - 1 :])
        self.commit_to(min(committed, last_new))
        return last_new

    def commit_to(self, index: int) -> bool:
        """Advance the commit index (never backwards); True if it moved."""
        if index > self.committed:
            assert index <= self.last_index(), "commit beyond the last index"
            self.committed = index
            return True
        return False

    def has_next_committed(self) -> bool:
        return self.committed > self.applying

    def next_committed_entries(self, max_bytes: int | None) -> list[Entry]:
        """Committed entries not yet handed out for applying."""
        lo = max(self.applying + 1, self.first_index())
        if lo > self.committed:
            return []
        return self.entries(lo, self.committed + 1, max_bytes)

    def stable_to(self, index: int, term: int) -> None:
        """Entries up to (index, term) are durable: drop them from the unstable part."""
        offset = self.unstable_offset
        position = index - offset
        if position < 0 or position >= len(self.unstable_entries):
            return
        if self.unstable_entries[position].term != term:
            return  # Replaced after being handed out; the newer version is still unstable.
        del self.unstable_entries[: position + 1]
        self.unstable_offset = index + 1

    def stable_snap_to(self, index: int) -> None:
        if self.unstable_snapshot is not None and self.unstable_snapshot.meta.index == index:
            self.unstable_snapshot = None

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the log with a snapshot received from a leader."""
        index = snapshot.meta.index
        assert index >= self.committed, "restoring a snapshot below the commit index"
        self.unstable_snapshot = snapshot
        self.unstable_entries = []
        self.unstable_offset = index + 1
        self._last = index
        self.committed = index
