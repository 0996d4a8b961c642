"""kvserver.diskstorage: the core's Storage over a data directory, across reopen and crash."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kvserver import codec, wal
from kvserver.diskstorage import DiskStorage, FsyncMode
from kvserver.errors import CorruptRecord, StorageError
from raftcore.errors import Compacted, Unavailable
from raftcore.types import Entry, HardState, Membership, Snapshot, SnapshotMeta

VOTERS = Membership(frozenset({"n1"}))


def ents(lo: int, hi: int, term: int = 1, tag: bytes = b"") -> list[Entry]:
    return [Entry(term, i, data=b"v%d" % i + tag) for i in range(lo, hi)]


def fresh(path: Path, **kwargs: object) -> DiskStorage:
    storage = DiskStorage.open(path, **kwargs)  # type: ignore[arg-type]
    assert storage.is_empty
    storage.bootstrap(VOTERS)
    return storage


def save(storage: DiskStorage, **kwargs: object) -> None:
    storage.stage(**kwargs).run()  # type: ignore[arg-type]


def reopen(storage: DiskStorage, **kwargs: object) -> DiskStorage:
    storage.close()
    return DiskStorage.open(storage.data_dir, **kwargs)  # type: ignore[arg-type]


def log_of(storage: DiskStorage) -> list[Entry]:
    return storage.entries(storage.first_index(), storage.last_index() + 1)


def segments(storage: DiskStorage) -> list[Path]:
    return [p for _, p in wal.list_segments(storage.data_dir / "wal")]


def test_bootstrap_state_and_storage_protocol_bounds(tmp_path: Path) -> None:
    storage = fresh(tmp_path)
    assert storage.snapshot().meta == SnapshotMeta(0, 0, VOTERS)
    assert (storage.first_index(), storage.last_index()) == (1, 0)
    assert storage.term(0) == 0
    assert storage.entries(1, 1) == []
    with pytest.raises(Unavailable):
        storage.term(1)
    save(storage, hard_state=HardState(1, "n1", 0), entries=ents(1, 4))
    assert storage.entries(2, 4) == ents(2, 4)
    assert storage.entries(1, 4, max_bytes=1) == ents(1, 2)
    assert storage.entries(1, 4, max_bytes=70) == ents(1, 3)
    with pytest.raises(Unavailable):
        storage.entries(1, 5)
    with pytest.raises(Compacted):
        storage.entries(0, 2)


def test_entries_and_hard_state_survive_reopen(tmp_path: Path) -> None:
    storage = fresh(tmp_path)
    save(storage, hard_state=HardState(2, "n1", 3), entries=ents(1, 6, term=2))
    storage = reopen(storage)
    assert not storage.is_empty
    assert log_of(storage) == ents(1, 6, term=2)
    assert storage.initial_state() == HardState(2, "n1", 3)
    assert storage.snapshot().meta.membership == VOTERS


def test_a_replaced_suffix_stays_replaced_after_reopen(tmp_path: Path) -> None:
    storage = fresh(tmp_path)
    save(storage, hard_state=HardState(3), entries=ents(1, 6, term=1))
    save(storage, entries=ents(3, 5, term=3, tag=b"new"))
    expected = ents(1, 3, term=1) + ents(3, 5, term=3, tag=b"new")
    assert log_of(storage) == expected
    assert log_of(reopen(storage)) == expected


def test_commit_only_changes_do_not_rewrite_the_hard_state_file(tmp_path: Path) -> None:
    storage = fresh(tmp_path)
    save(storage, hard_state=HardState(1, "n1", 0), entries=ents(1, 3))
    before = (tmp_path / "hardstate").read_bytes()
    save(storage, hard_state=HardState(1, "n1", 2))
    assert (tmp_path / "hardstate").read_bytes() == before
    assert storage.initial_state().commit_index == 2
    # The commit index is volatile: after reopen it is what was last written, clamped.
    assert reopen(storage).initial_state() == HardState(1, "n1", 0)


def test_hard_state_write_interrupted_before_rename_keeps_the_old_one(tmp_path: Path) -> None:
    storage = fresh(tmp_path)
    save(storage, hard_state=HardState(4, "n2", 0))
    storage.close()
    (tmp_path / "hardstate.tmp").write_bytes(b"half a record")
    storage = DiskStorage.open(tmp_path)
    assert storage.initial_state() == HardState(4, "n2", 0)
    assert not (tmp_path / "hardstate.tmp").exists()


def test_corrupt_hard_state_file_is_refused(tmp_path: Path) -> None:
    storage = fresh(tmp_path)
    save(storage, hard_state=HardState(4, "n2", 0))
    storage.close()
    data = bytearray((tmp_path / "hardstate").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "hardstate").write_bytes(bytes(data))
    with pytest.raises(CorruptRecord, match="hardstate"):
        DiskStorage.open(tmp_path)


def test_crash_between_write_and_fsync_at_every_byte_reopens_to_a_prefix(
    tmp_path: Path,
) -> None:
    """Cut the last batch at every byte offset: each reopens to a consistent prefix."""
    origin = tmp_path / "origin"
    storage = fresh(origin)
    save(storage, hard_state=HardState(2, "n1", 0), entries=ents(1, 4, term=1))
    segment = segments(storage)[-1]
    durable_size = segment.stat().st_size
    save(storage, entries=ents(3, 6, term=2, tag=b"x"))  # replaces index 3, adds 4 and 5
    final = segment.read_bytes()
    storage.close()
    batch_offsets = [r.offset for r in wal.scan(segment, final, tail_may_be_torn=False).records]
    batch_offsets = [o for o in batch_offsets if o >= durable_size] + [len(final)]
    new = ents(3, 6, term=2, tag=b"x")
    for cut in range(durable_size, len(final) + 1):
        copy = tmp_path / f"cut{cut}"
        shutil.copytree(origin, copy)
        (copy / "wal" / segment.name).write_bytes(final[:cut])
        reopened = DiskStorage.open(copy)
        whole = sum(1 for o in batch_offsets[1:] if o <= cut)
        expected = ents(1, 4, term=1) if whole == 0 else ents(1, 3, term=1) + new[:whole]
        assert log_of(reopened) == expected, cut
        assert (copy / "wal" / segment.name).stat().st_size == batch_offsets[whole]
        save(reopened, entries=[Entry(2, reopened.last_index() + 1, data=b"after")])
        assert log_of(reopen(reopened))[-1].data == b"after"
        shutil.rmtree(copy)


def test_corrupt_middle_record_stops_the_open_and_leaves_the_file(tmp_path: Path) -> None:
    storage = fresh(tmp_path)
    save(storage, hard_state=HardState(1), entries=ents(1, 5))
    segment = segments(storage)[-1]
    storage.close()
    records = wal.scan(segment, segment.read_bytes(), tail_may_be_torn=False).records
    target = records[2]
    data = bytearray(segment.read_bytes())
    data[target.offset + wal.HEADER_BYTES] ^= 0x01
    segment.write_bytes(bytes(data))
    with pytest.raises(CorruptRecord) as caught:
        DiskStorage.open(tmp_path)
    assert caught.value.path == segment
    assert caught.value.offset == target.offset
    assert segment.read_bytes() == bytes(data)


def test_entry_index_gap_is_corruption(tmp_path: Path) -> None:
    storage = fresh(tmp_path)
    save(storage, hard_state=HardState(1), entries=ents(1, 3))
    segment = segments(storage)[-1]
    storage.close()
    with open(segment, "ab") as f:
        f.write(wal.encode_record(wal.RecordType.ENTRY, codec.encode_entry(Entry(1, 9))))
    with pytest.raises(CorruptRecord, match="does not follow 2"):
        DiskStorage.open(tmp_path)


def test_segments_rotate_and_a_torn_tail_in_an_older_one_is_corruption(tmp_path: Path) -> None:
    storage = fresh(tmp_path, segment_bytes=200)
    save(storage, hard_state=HardState(1))
    for i in range(1, 40):
        save(storage, entries=ents(i, i + 1))
    assert len(segments(storage)) > 3
    storage = reopen(storage)
    assert log_of(storage) == ents(1, 40)
    older = segments(storage)[1]
    storage.close()
    older.write_bytes(older.read_bytes()[:-3])
    with pytest.raises(CorruptRecord, match="truncated record"):
        DiskStorage.open(tmp_path)


def test_compaction_removes_old_segments_and_survives_reopen(tmp_path: Path) -> None:
    storage = fresh(tmp_path, segment_bytes=300)
    save(storage, hard_state=HardState(2))
    for i in range(1, 30):
        save(storage, entries=ents(i, i + 1, term=2))
    old_segments = segments(storage)
    snapshot = Snapshot(SnapshotMeta(25, 2, VOTERS, 7), b"state at 25")
    storage.compact(snapshot).run()
    assert (storage.first_index(), storage.last_index()) == (26, 29)
    assert storage.term(25) == 2
    with pytest.raises(Compacted):
        storage.term(24)
    assert not set(old_segments) & set(segments(storage))
    assert len(list((tmp_path / "snap").iterdir())) == 1
    save(storage, entries=ents(30, 32, term=2))
    storage = reopen(storage)
    assert storage.snapshot() == snapshot
    assert log_of(storage) == ents(26, 32, term=2)


def test_installed_snapshot_replaces_the_whole_log(tmp_path: Path) -> None:
    storage = fresh(tmp_path)
    save(storage, hard_state=HardState(1), entries=ents(1, 10, term=1))
    snapshot = Snapshot(SnapshotMeta(50, 3, Membership(frozenset({"n1", "n2"}))), b"s")
    save(storage, hard_state=HardState(3, None, 50), snapshot=snapshot, entries=ents(51, 53, 3))
    assert log_of(storage) == ents(51, 53, 3)
    storage = reopen(storage)
    assert storage.snapshot() == snapshot
    assert log_of(storage) == ents(51, 53, 3)
    assert storage.initial_state() == HardState(3, None, 50)


def test_snapshot_file_without_its_mark_is_ignored_and_removed(tmp_path: Path) -> None:
    """A crash after the snapshot file but before the new segment: the old state stands."""
    storage = fresh(tmp_path)
    save(storage, hard_state=HardState(1), entries=ents(1, 5))
    storage.close()
    orphan = tmp_path / "snap" / f"{4:020d}-{1:020d}.snap"
    snap = Snapshot(SnapshotMeta(4, 1, VOTERS), b"x")
    orphan.write_bytes(wal.encode_record(wal.RecordType.SNAPSHOT, codec.encode_snapshot(snap)))
    storage = DiskStorage.open(tmp_path)
    assert storage.snapshot().meta.index == 0
    assert log_of(storage) == ents(1, 5)
    assert not orphan.exists()


def test_missing_or_corrupt_referenced_snapshot_is_refused(tmp_path: Path) -> None:
    storage = fresh(tmp_path)
    save(storage, hard_state=HardState(1), entries=ents(1, 5))
    storage.compact(Snapshot(SnapshotMeta(3, 1, VOTERS), b"abc")).run()
    storage.close()
    (snap,) = (tmp_path / "snap").iterdir()
    data = bytearray(snap.read_bytes())
    data[-2] ^= 0x10
    snap.write_bytes(bytes(data))
    with pytest.raises(CorruptRecord):
        DiskStorage.open(tmp_path)
    snap.unlink()
    with pytest.raises(StorageError, match="missing"):
        DiskStorage.open(tmp_path)


def test_log_term_beyond_hard_state_term_is_refused(tmp_path: Path) -> None:
    storage = fresh(tmp_path)
    save(storage, hard_state=HardState(1), entries=ents(1, 3, term=1))
    save(storage, entries=ents(3, 4, term=5))
    with pytest.raises(StorageError, match="beyond the hard state"):
        reopen(storage)


def test_batch_mode_defers_fsync_to_flush_and_never_mode_still_reopens(tmp_path: Path) -> None:
    storage = fresh(tmp_path / "b", fsync=FsyncMode.BATCH)
    save(storage, hard_state=HardState(1), entries=ents(1, 3))
    storage.flush()
    assert log_of(reopen(storage, fsync=FsyncMode.BATCH)) == ents(1, 3)
    storage = fresh(tmp_path / "n", fsync=FsyncMode.NEVER)
    save(storage, hard_state=HardState(1), entries=ents(1, 3))
    assert log_of(reopen(storage)) == ents(1, 3)


def test_empty_directory_with_hard_state_but_no_wal_is_refused(tmp_path: Path) -> None:
    storage = fresh(tmp_path)
    save(storage, hard_state=HardState(1))
    storage.close()
    for path in segments(storage):
        path.unlink()
    with pytest.raises(StorageError, match="WAL is empty"):
        DiskStorage.open(tmp_path)
