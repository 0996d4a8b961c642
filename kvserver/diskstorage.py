"""The core's `Storage` over a data directory: WAL segments, hard-state file, snapshot files.

Role: the core reads its durable log through the read-only `Storage` methods; the driver
(kvserver/node.py) writes what each `Ready` hands out through `stage`, `compact` and
`bootstrap`, which update the in-memory view at once and return the file I/O as a
`PersistJob` the driver runs (possibly in a worker thread) before it sends any message.

Layout of DATA_DIR:

    wal/<seq>.wal                     segments of records (kvserver/wal.py), in seq order
    snap/<index>-<term>.snap          one SNAPSHOT record (codec Snapshot)
    hardstate                         one HARD_STATE record (codec HardState)

Theory of operation:
- The log is only appended to. An ENTRY record at index i replaces every entry at index
  >= i (the core replacing a conflicting suffix is one more append), so a crash can only
  cut the log short, never mix an old suffix with a new prefix.
- A SNAPSHOT_MARK record [index, term] says: the state up to `index` is the snapshot file
  of that index and term, and the log restarts empty after it. Taking or installing a
  snapshot writes the snapshot file durably, then writes a new segment (to a temporary
  name, fsynced, renamed, directory fsynced) that holds the mark followed by the entries
  still live, and only then removes older segments and snapshot files. A crash at any
  point leaves either the old state or the new one.
- The hard-state file is replaced atomically, and only when the term or the vote changes;
  the commit index in it is informative (the paper's commit index is volatile) and is
  clamped on open to [snapshot index, last index]. It is written before the entries of
  the same Ready, so a crash never leaves entries of a term the hard state has not seen.
- Entries are held in memory from the snapshot index on; compaction bounds them.
- On open every record is verified (wal.scan). A torn tail of the last segment is cut off;
  any other damage raises CorruptRecord naming the file and offset.
- Threads: `stage`, `compact` and the Storage protocol run on the event loop and touch
  only the in-memory view; the jobs they return, `flush` and `close` touch only the files
  and run in the driver's one disk thread, one at a time.
- `defer_writes_s` > 0 is a planted bug for negative controls only: entry records reach
  the file only once they are that old, so acknowledged entries die with the process.
"""

from __future__ import annotations

import collections
import enum
import itertools
import logging
import os
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Final

from kvserver import codec, wal
from kvserver.errors import CorruptRecord, StorageError
from raftcore.errors import Compacted, Unavailable
from raftcore.types import Entry, HardState, Membership, Snapshot, SnapshotMeta

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_BYTES: Final = 64 * 1024 * 1024
ENTRY_OVERHEAD_BYTES: Final = 32
"""What an entry costs beyond its data, for `entries(max_bytes=...)`."""


class FsyncMode(enum.Enum):
    ALWAYS = "always"
    """fsync each Ready's writes before its messages are sent (group commit)."""
    BATCH = "batch"
    """Write each Ready to the OS at once, fsync on the driver's timer (`flush`): a process
    crash loses nothing, a power failure may lose the last interval's acknowledged writes."""
    NEVER = "never"
    """Never fsync (tests and benchmarks of the rest of the node only)."""


class PersistJob:
    """File I/O for one staged change, run once, in order, by the driver."""

    def __init__(self, steps: list[Callable[[], None]]) -> None:
        self._steps = steps

    def __bool__(self) -> bool:
        return bool(self._steps)

    def run(self) -> None:
        steps, self._steps = self._steps, []
        for step in steps:
            step()


class DiskStorage:
    """The raftcore Storage protocol over a data directory, plus the driver's writers."""

    def __init__(self, data_dir: Path, fsync: FsyncMode, segment_bytes: int,
                 defer_writes_s: float = 0.0) -> None:
        self.data_dir = data_dir
        self._defer_writes_s = defer_writes_s
        self._deferred: collections.deque[tuple[float, bytes]] = collections.deque()
        self.fsync_mode = fsync
        self._segment_bytes = segment_bytes
        self._wal_dir = data_dir / "wal"
        self._snap_dir = data_dir / "snap"
        self._hard_state_path = data_dir / "hardstate"
        self._snapshot = Snapshot(SnapshotMeta(0, 0, Membership()))
        self._entries: list[Entry] = []
        self._hard_state = HardState()
        self._durable_vote: tuple[int, str | None] = (0, None)
        self._active: wal.SegmentWriter | None = None
        self._active_seq = 0
        self._unsynced = False
        self.wal_fsyncs = 0
        """fsync calls on WAL segments so far (for metrics; written by the disk thread)."""

    # ------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        data_dir: Path,
        fsync: FsyncMode = FsyncMode.ALWAYS,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        *,
        defer_writes_s: float = 0.0,
    ) -> DiskStorage:
        """Open (creating directories if needed) and verify a data directory."""
        storage = cls(data_dir, fsync, segment_bytes, defer_writes_s)
        for directory in (data_dir, storage._wal_dir, storage._snap_dir):
            directory.mkdir(parents=True, exist_ok=True)
        stray = data_dir / ("hardstate" + wal.TEMP_SUFFIX)
        if stray.exists():
            stray.unlink()  # a hard-state write interrupted before its rename
        segments = wal.list_segments(storage._wal_dir)
        if not segments:
            if storage._hard_state_path.exists():
                raise StorageError(f"{storage._hard_state_path} exists but the WAL is empty")
            for leftover in storage._snap_dir.iterdir():
                leftover.unlink()  # an interrupted bootstrap
            return storage
        storage._replay(segments)
        storage._load_hard_state()
        return storage

    @property
    def is_empty(self) -> bool:
        """True until `bootstrap` has run on this data directory."""
        return self._active is None

    def bootstrap(self, membership: Membership, data: bytes = b"") -> None:
        """Start an empty log after a snapshot at index 0 holding `membership`.

        A founding node passes itself as the one voter; a node that will join passes an
        empty membership and learns the configuration from the leader.
        """
        assert self.is_empty, "bootstrap of a data directory that has state"
        self._snapshot = Snapshot(SnapshotMeta(0, 0, membership), data)
        self._restart_log_files(self._snapshot, [], seq=1)

    def _replay(self, segments: list[tuple[int, Path]]) -> None:
        base: SnapshotMeta | None = None
        entries: list[Entry] = []
        mark_seq = 0
        for position, (seq, path) in enumerate(segments):
            final = position == len(segments) - 1
            result = wal.scan(path, path.read_bytes(), tail_may_be_torn=final)
            if result.torn_reason is not None:
                log.warning(
                    "truncating torn tail of %s at byte %d (%s)",
                    path, result.valid_bytes, result.torn_reason,
                )
                wal.truncate_file(path, result.valid_bytes, sync=self._sync_enabled)
            for record in result.records:
                base = self._replay_record(path, record, base, entries)
                if record.type == wal.RecordType.SNAPSHOT_MARK:
                    mark_seq = seq
            self._active_seq = seq
        if base is None:
            raise StorageError(f"no snapshot mark in the WAL of {self.data_dir}")
        self._snapshot = self._load_snapshot(base)
        self._entries = entries
        self._remove_stale_files(mark_seq, base)
        self._active = wal.SegmentWriter(
            self._wal_dir / wal.segment_name(self._active_seq), fsync=self._sync_enabled
        )

    @staticmethod
    def _replay_record(
        path: Path, record: wal.Record, base: SnapshotMeta | None, entries: list[Entry]
    ) -> SnapshotMeta:
        try:
            if record.type == wal.RecordType.SNAPSHOT_MARK:
                entries.clear()
                return _decode_mark(record.payload)
            if record.type != wal.RecordType.ENTRY:
                raise CorruptRecord(path, record.offset, f"{record.type.name} record in WAL")
            entry = codec.decode_entry(record.payload)
        except codec.CodecError as exc:
            raise CorruptRecord(path, record.offset, str(exc)) from None
        if base is None:
            raise CorruptRecord(path, record.offset, "entry before any snapshot mark")
        position = entry.index - base.index - 1
        if not 0 <= position <= len(entries):
            last = base.index + len(entries)
            raise CorruptRecord(
                path, record.offset, f"entry index {entry.index} does not follow {last}"
            )
        del entries[position:]
        previous_term = entries[-1].term if entries else base.term
        if entry.term < previous_term:
            raise CorruptRecord(path, record.offset, "entry term below its predecessor's")
        entries.append(entry)
        return base

    def _load_snapshot(self, mark: SnapshotMeta) -> Snapshot:
        path = self._snapshot_path(mark.index, mark.term)
        if not path.exists():
            raise StorageError(f"the WAL refers to snapshot {path}, which is missing")
        try:
            snapshot = codec.decode_snapshot(
                wal.read_single_record(path, wal.RecordType.SNAPSHOT)
            )
        except codec.CodecError as exc:
            raise CorruptRecord(path, 0, str(exc)) from None
        if (snapshot.meta.index, snapshot.meta.term) != (mark.index, mark.term):
            raise CorruptRecord(path, 0, "snapshot index or term does not match its name")
        return snapshot

    def _load_hard_state(self) -> None:
        if self._hard_state_path.exists():
            payload = wal.read_single_record(self._hard_state_path, wal.RecordType.HARD_STATE)
            try:
                hard_state = codec.decode_hard_state(payload)
            except codec.CodecError as exc:
                raise CorruptRecord(self._hard_state_path, 0, str(exc)) from None
        else:
            hard_state = HardState()
        last_term = self._entries[-1].term if self._entries else self._snapshot.meta.term
        if last_term > hard_state.current_term:
            raise StorageError(
                f"log holds term {last_term} beyond the hard state's term "
                f"{hard_state.current_term} in {self.data_dir}"
            )
        commit = min(max(hard_state.commit_index, self._snapshot.meta.index), self.last_index())
        self._hard_state = HardState(hard_state.current_term, hard_state.voted_for, commit)
        self._durable_vote = (hard_state.current_term, hard_state.voted_for)

    # ------------------------------------------------------------ Storage protocol

    def initial_state(self) -> HardState:
        return self._hard_state

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        base = self._snapshot.meta.index
        if lo <= base:
            raise Compacted(f"index {lo} is compacted (first index {base + 1})")
        if hi > self.last_index() + 1:
            raise Unavailable(f"index {hi - 1} is beyond the last index {self.last_index()}")
        chosen = self._entries[lo - base - 1 : hi - base - 1]
        if max_bytes is None:
            return chosen
        total = 0
        for count, entry in enumerate(chosen):
            total += len(entry.data) + ENTRY_OVERHEAD_BYTES
            if total > max_bytes and count > 0:
                return chosen[:count]
        return chosen

    def term(self, index: int) -> int:
        base = self._snapshot.meta.index
        if index == base:
            return self._snapshot.meta.term
        if index < base:
            raise Compacted(f"index {index} is compacted (first index {base + 1})")
        if index > self.last_index():
            raise Unavailable(f"index {index} is beyond the last index {self.last_index()}")
        return self._entries[index - base - 1].term

    def first_index(self) -> int:
        return self._snapshot.meta.index + 1

    def last_index(self) -> int:
        return self._snapshot.meta.index + len(self._entries)

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # ------------------------------------------------------------ writers (the driver's)

    def stage(
        self,
        *,
        hard_state: HardState | None = None,
        snapshot: Snapshot | None = None,
        entries: Sequence[Entry] = (),
        must_sync: bool = True,
    ) -> PersistJob:
        """Take one Ready's durable parts into memory now; return the file I/O to run.

        The I/O runs in this order: hard state (when term or vote changed), snapshot
        (replacing the whole log), entries (one write, then one fsync if `must_sync`).
        """
        assert not self.is_empty, "stage before bootstrap"
        steps: list[Callable[[], None]] = []
        if hard_state is not None:
            self._hard_state = hard_state
            vote = (hard_state.current_term, hard_state.voted_for)
            if vote != self._durable_vote:
                self._durable_vote = vote
                steps.append(partial(self._write_hard_state, hard_state))
        if snapshot is not None:
            assert snapshot.meta.index >= self._snapshot.meta.index, "snapshot goes backwards"
            self._snapshot, self._entries = snapshot, []
            steps.append(partial(self._restart_log_files, snapshot, [], None))
        if entries:
            self._append_in_memory(entries)
            payload = b"".join(
                wal.encode_record(wal.RecordType.ENTRY, codec.encode_entry(e)) for e in entries
            )
            steps.append(partial(self._append_to_wal, payload, must_sync))
        return PersistJob(steps)

    def compact(self, snapshot: Snapshot) -> PersistJob:
        """Make `snapshot` (taken at an applied index) the base; drop entries it covers."""
        base, index = self._snapshot.meta.index, snapshot.meta.index
        assert index <= self.last_index(), "snapshot beyond the last index"
        assert self.term(index) == snapshot.meta.term, "snapshot term does not match the log"
        if index <= base:
            return PersistJob([])
        self._entries = self._entries[index - base :]
        self._snapshot = snapshot
        live = list(self._entries)
        return PersistJob([partial(self._restart_log_files, snapshot, live, None)])

    @property
    def needs_flush(self) -> bool:
        """Whether `flush` has work: unsynced writes (BATCH) or deferred ones."""
        return self._unsynced or bool(self._deferred)

    def flush(self) -> None:
        """fsync writes that were appended without one (FsyncMode.BATCH); file I/O."""
        if self._deferred:
            self._write_deferred()
        if self._unsynced and self._active is not None:
            self._unsynced = False
            self._sync_active()

    def close(self) -> None:
        if self._active is not None:
            self._active.close()

    def _append_in_memory(self, entries: Sequence[Entry]) -> None:
        base = self._snapshot.meta.index
        position = entries[0].index - base - 1
        assert 0 <= position <= len(self._entries), "entries leave a gap or overwrite a snapshot"
        for before, after in itertools.pairwise(entries):
            assert after.index == before.index + 1, "entries are not contiguous"
        del self._entries[position:]
        self._entries.extend(entries)

    # ------------------------------------------------------------ file I/O

    @property
    def _sync_enabled(self) -> bool:
        return self.fsync_mode is not FsyncMode.NEVER

    def _snapshot_path(self, index: int, term: int) -> Path:
        return self._snap_dir / f"{index:020d}-{term:020d}.snap"

    def _write_hard_state(self, hard_state: HardState) -> None:
        record = wal.encode_record(wal.RecordType.HARD_STATE, codec.encode_hard_state(hard_state))
        wal.write_file_atomically(self._hard_state_path, record, sync=self._sync_enabled)

    def _write_deferred(self) -> None:
        """The planted bug's delayed writes: those old enough reach the file now."""
        old_enough = time.monotonic() - self._defer_writes_s
        deferred = self._deferred
        while deferred and deferred[0][0] <= old_enough:
            self._append_to_wal(deferred.popleft()[1], True, deferring=False)

    def _append_to_wal(self, payload: bytes, must_sync: bool, *, deferring: bool = True
                       ) -> None:
        if deferring and self._defer_writes_s > 0:
            self._deferred.append((time.monotonic(), payload))
            return
        active = self._active
        assert active is not None
        active.write(payload)
        if must_sync and self.fsync_mode is FsyncMode.ALWAYS:
            self._sync_active()
        else:
            self._unsynced = True
        if active.size_bytes >= self._segment_bytes:
            self._sync_active()
            self._unsynced = False
            self._active_seq += 1
            self._active = wal.SegmentWriter(
                self._wal_dir / wal.segment_name(self._active_seq), fsync=self._sync_enabled
            )
            active.close()
            if self._sync_enabled:
                wal.fsync_dir(self._wal_dir)

    def _sync_active(self) -> None:
        assert self._active is not None
        if self._sync_enabled:
            self._active.sync()
            self.wal_fsyncs += 1

    def _restart_log_files(self, snapshot: Snapshot, live: list[Entry], seq: int | None) -> None:
        """Durable snapshot file, then a new segment [mark, live...], then drop the old."""
        meta = snapshot.meta
        sync = self._sync_enabled
        snap_record = wal.encode_record(wal.RecordType.SNAPSHOT, codec.encode_snapshot(snapshot))
        wal.write_file_atomically(self._snapshot_path(meta.index, meta.term), snap_record,
                                  sync=sync)
        mark = wal.encode_record(wal.RecordType.SNAPSHOT_MARK, codec.pack([meta.index, meta.term]))
        body = b"".join(
            wal.encode_record(wal.RecordType.ENTRY, codec.encode_entry(e)) for e in live
        )
        new_seq = self._active_seq + 1 if seq is None else seq
        new_path = self._wal_dir / wal.segment_name(new_seq)
        wal.write_file_atomically(new_path, mark + body, sync=sync)
        if self._active is not None:
            self._active.close()
        self._deferred.clear()  # Those entries are in `live` or were replaced.
        self._active, self._active_seq = wal.SegmentWriter(new_path, fsync=sync), new_seq
        self._unsynced = False
        self._remove_stale_files(new_seq, meta)

    def _remove_stale_files(self, keep_seq: int, keep: SnapshotMeta) -> None:
        """Segments before `keep_seq` and snapshot files other than `keep`'s."""
        removed = False
        for seq, path in wal.list_segments(self._wal_dir):
            if seq < keep_seq:
                path.unlink()
                removed = True
        keep_name = self._snapshot_path(keep.index, keep.term).name
        for path in self._snap_dir.iterdir():
            if path.name != keep_name:
                path.unlink()
                removed = True
        if removed and self._sync_enabled:
            wal.fsync_dir(self._wal_dir)
            wal.fsync_dir(self._snap_dir)


def _decode_mark(payload: bytes) -> SnapshotMeta:
    value = codec.unpack(payload)
    if (
        type(value) is not list
        or len(value) != 2
        or not all(type(v) is int and v >= 0 for v in value)
    ):
        raise codec.CodecError(f"bad snapshot mark {value!r:.60}")
    return SnapshotMeta(value[0], value[1], Membership())


def directory_size_bytes(path: Path) -> int:
    """Total size of the files under `path` (for metrics)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not os.path.islink(p))
