"""RaftLog over MemoryStorage: terms, appends and truncation, commit, compaction, snapshots."""

from __future__ import annotations

import pytest

from raftcore import confchange
from raftcore.errors import Compacted, Unavailable
from raftcore.log import ENTRY_OVERHEAD_BYTES, RaftLog, limit_size
from raftcore.memstorage import MemoryStorage
from raftcore.types import (
    ConfChange,
    ConfChangeKind,
    Entry,
    EntryKind,
    Membership,
    Snapshot,
    SnapshotMeta,
)


def entries(*terms: int, start: int = 1) -> list[Entry]:
    return [Entry(term=t, index=start + i, data=b"x") for i, t in enumerate(terms)]


def stored(*terms: int) -> tuple[MemoryStorage, RaftLog]:
    storage = MemoryStorage.bootstrap(["n1"])
    storage.append(entries(*terms))
    return storage, RaftLog(storage)


def test_empty_log_answers_the_snapshot_position() -> None:
    _, log = stored()
    assert (log.first_index(), log.last_index(), log.last_term()) == (1, 0, 0)
    assert log.term(0) == 0
    with pytest.raises(Unavailable):
        log.term(1)


def test_unstable_entries_shadow_storage_and_truncate() -> None:
    storage, log = stored(1, 1, 2)
    log.append(entries(3, 3, start=2))
    assert [log.term(i) for i in range(1, 4)] == [1, 3, 3]
    assert log.last_index() == 3
    # Storage still holds the replaced suffix until the driver persists.
    assert storage.term(2) == 1
    assert log.unstable_entries[0].index == 2


def test_append_refuses_to_truncate_committed_entries() -> None:
    _, log = stored(1, 1, 1)
    log.commit_to(2)
    with pytest.raises(AssertionError):
        log.append(entries(2, start=2))


def test_maybe_append_checks_prev_and_commits_only_what_matched() -> None:
    _, log = stored(1, 1)
    assert log.maybe_append(prev_index=2, prev_term=2, committed=2, entries=[]) is None
    last_new = log.maybe_append(prev_index=1, prev_term=1, committed=5, entries=entries(2, start=2))
    assert last_new == 2
    assert log.committed == 2  # min(leader commit, last new entry)
    assert log.term(2) == 2


def test_find_conflict() -> None:
    _, log = stored(1, 1, 2)
    assert log.find_conflict(entries(1, 1, start=1)) == 0
    assert log.find_conflict(entries(1, 3, start=2)) == 3
    assert log.find_conflict(entries(2, 2, start=3)) == 4


def test_term_run_searches() -> None:
    _, log = stored(1, 1, 2, 2, 2, 5)
    assert log.first_index_of_term(5) == 3
    assert log.first_index_of_term(2) == 1
    assert log.last_index_of_term(2, at_or_below=6) == 5
    assert log.last_index_of_term(2, at_or_below=4) == 4
    assert log.last_index_of_term(3, at_or_below=6) == 0
    assert log.last_index_of_term(1, at_or_below=6) == 2


def test_is_up_to_date() -> None:
    _, log = stored(1, 2)
    assert log.is_up_to_date(2, 2)
    assert log.is_up_to_date(1, 3)
    assert not log.is_up_to_date(1, 2)
    assert not log.is_up_to_date(9, 1)


def test_stable_to_ignores_a_replaced_entry() -> None:
    storage, log = stored()
    log.append(entries(1, 1))
    handed_out = list(log.unstable_entries)
    log.append(entries(2, start=2))  # Replaced after being handed out.
    storage.append(handed_out)
    log.stable_to(2, 1)
    assert log.term(2) == 2
    assert log.unstable_entries


def test_next_committed_entries_and_limits() -> None:
    _, log = stored(1, 1, 1)
    log.commit_to(3)
    assert [e.index for e in log.next_committed_entries(None)] == [1, 2, 3]
    log.applying = 2
    assert [e.index for e in log.next_committed_entries(None)] == [3]


def test_limit_size_keeps_at_least_one_entry() -> None:
    big = [Entry(1, i, data=b"y" * 100) for i in range(1, 4)]
    assert len(limit_size(big, 10)) == 1
    assert len(limit_size(big, 2 * (100 + ENTRY_OVERHEAD_BYTES))) == 2


def test_compaction_in_storage() -> None:
    storage, log = stored(1, 1, 2, 2)
    storage.create_snapshot(3, b"state")
    storage.compact(3)
    assert storage.first_index() == 4
    assert log.term(3) == 2
    with pytest.raises(Compacted):
        log.term(2)
    with pytest.raises(Compacted):
        log.entries(2, 4)
    assert log.term_or_zero(2) == 0


def test_restore_from_snapshot() -> None:
    _, log = stored(1, 1)
    snapshot = Snapshot(SnapshotMeta(index=10, term=3, membership=Membership(frozenset({"n1"}))))
    log.restore(snapshot)
    assert (log.first_index(), log.last_index(), log.last_term(), log.committed) == (11, 10, 3, 10)
    log.stable_snap_to(10)
    assert log.unstable_snapshot is None


def test_memstorage_append_replaces_suffix_and_rejects_gaps() -> None:
    storage, _ = stored(1, 1, 1)
    storage.append(entries(2, start=2))
    assert storage.last_index() == 2
    assert storage.term(2) == 2
    with pytest.raises(AssertionError):
        storage.append(entries(2, start=5))


def test_memstorage_snapshot_carries_membership_and_clock() -> None:
    storage = MemoryStorage.bootstrap(["n1"])
    change = confchange.encode(ConfChange(ConfChangeKind.ADD_LEARNER, "n2"))
    storage.append(
        [
            Entry(1, 1, EntryKind.NOOP, cluster_time_ticks=5),
            Entry(1, 2, EntryKind.CONF_CHANGE, change, cluster_time_ticks=7),
        ]
    )
    assert storage.membership_at(1) == Membership(frozenset({"n1"}))
    snapshot = storage.create_snapshot(2, b"s")
    assert snapshot.meta.membership == Membership(frozenset({"n1"}), frozenset({"n2"}))
    assert snapshot.meta.cluster_time_ticks == 7
