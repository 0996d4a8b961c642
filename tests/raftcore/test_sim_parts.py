"""The simulator's parts on their own: the linearizability checker, the network, the disk."""

from __future__ import annotations

import random

import pytest

from raftcore.commands import Status
from raftcore.memstorage import MemoryStorage
from raftcore.sim.linearizability import Operation, Verdict, check, check_key
from raftcore.sim.network import Network, NetworkOptions
from raftcore.sim.storage import SimStorage
from raftcore.types import Entry, HardState

OK = Status.OK


def op(
    process: int,
    f: str,
    call: int,
    ret: int | None,
    value: str | None = None,
    output: str | None = None,
    status: Status | None = OK,
    expected: str | None = None,
) -> Operation:
    if ret is None:
        status = None
    return Operation(process, f, "k", call, ret, value, expected, status, output)


# The linearizability checker.


def test_sequential_history_is_linearizable() -> None:
    history = [
        op(1, "put", 1, 2, "a"),
        op(1, "get", 3, 4, output="a"),
        op(1, "append", 5, 6, "b", output="ab"),
        op(1, "cas", 7, 8, "c", output="c", expected="ab"),
        op(1, "delete", 9, 10, output="c"),
        op(1, "get", 11, 12, output=None),
    ]
    assert check_key(history) is Verdict.OK


def test_stale_read_after_a_completed_write_is_illegal() -> None:
    history = [op(1, "put", 1, 2, "a"), op(1, "put", 3, 4, "b"), op(2, "get", 5, 6, output="a")]
    assert check_key(history) is Verdict.ILLEGAL


def test_concurrent_operations_may_take_effect_in_either_order() -> None:
    history = [
        op(1, "put", 1, 10, "a"),
        op(2, "put", 2, 9, "b"),
        op(3, "get", 3, 8, output="a"),
        op(3, "get", 11, 12, output="a"),
    ]
    assert check_key(history) is Verdict.OK


def test_an_append_executed_twice_is_caught() -> None:
    history = [op(1, "append", 1, 2, "x", output="x"), op(2, "get", 3, 4, output="xx")]
    assert check_key(history) is Verdict.ILLEGAL


def test_failed_cas_must_report_the_current_value() -> None:
    good = [
        op(1, "put", 1, 2, "a"),
        Operation(1, "cas", "k", 3, 4, "c", "z", Status.CAS_MISMATCH, "a"),
    ]
    assert check_key(good) is Verdict.OK
    bad = [good[0], Operation(1, "cas", "k", 3, 4, "c", "a", Status.CAS_MISMATCH, "a")]
    assert check_key(bad) is Verdict.ILLEGAL


def test_unknown_outcomes_may_or_may_not_take_effect() -> None:
    happened = [op(1, "put", 1, None, "a"), op(2, "get", 5, 6, output="a")]
    never = [op(1, "put", 1, None, "a"), op(2, "get", 5, 6, output=None)]
    assert check_key(happened) is Verdict.OK
    assert check_key(never) is Verdict.OK
    too_early = [op(1, "put", 5, None, "a"), op(2, "get", 1, 2, output="a")]
    assert check_key(too_early) is Verdict.ILLEGAL


def test_check_partitions_by_key_and_names_the_bad_key() -> None:
    history = [
        Operation(1, "put", "x", 1, 2, "a", None, OK, None),
        Operation(2, "get", "y", 3, 4, None, None, OK, "a"),
    ]
    result = check(history)
    assert result.verdict is Verdict.ILLEGAL
    assert result.key == "y"


def test_budget_exhaustion_is_unknown_not_a_guess() -> None:
    history = [op(p, "put", p, 100 + p, str(p)) for p in range(1, 12)]
    history.append(op(99, "get", 200, 201, output="nope"))
    assert check_key(history, budget=50) is Verdict.UNKNOWN


# The network.


def test_links_are_fifo_without_reordering() -> None:
    net = Network(random.Random(1), NetworkOptions(delay_min_ticks=1, delay_max_ticks=9))
    for i in range(50):
        net.send(0, "a", "b", i)
    delivered = [payload for tick in range(1, 20) for _, _, payload in net.due(tick)]
    assert delivered == list(range(50))


def test_reordering_lets_messages_overtake() -> None:
    options = NetworkOptions(delay_min_ticks=1, delay_max_ticks=9, reorder=1.0)
    net = Network(random.Random(1), options)
    for i in range(50):
        net.send(0, "a", "b", i)
    delivered = [payload for tick in range(1, 20) for _, _, payload in net.due(tick)]
    assert sorted(delivered) == list(range(50))
    assert delivered != list(range(50))


def test_partition_cuts_messages_already_in_flight_and_heals() -> None:
    net = Network(random.Random(1), NetworkOptions(delay_min_ticks=2, delay_max_ticks=2))
    net.send(0, "a", "b", "first")
    net.block("a", "b", symmetric=False)
    net.send(0, "b", "a", "reply")
    assert net.due(2) == [("b", "a", "reply")]
    assert net.stats.cut == 1
    net.heal()
    net.send(2, "a", "b", "second")
    assert net.due(4) == [("a", "b", "second")]


def test_loss_and_duplication_rates_are_applied() -> None:
    options = NetworkOptions(delay_min_ticks=0, delay_max_ticks=0, loss=0.5, duplicate=0.5)
    net = Network(random.Random(7), options)
    for i in range(1000):
        net.send(0, "a", "b", i)
    delivered = [payload for _, _, payload in net.due(0)]
    assert 300 < net.stats.lost < 700
    assert len(delivered) == 1000 - net.stats.lost + net.stats.duplicated
    assert len(set(delivered)) < len(delivered)


# The simulated disk.


def test_crash_loses_unsynced_writes_only() -> None:
    disk = SimStorage(MemoryStorage.bootstrap(["n1"]))
    disk.write_ready(None, (Entry(1, 1),), HardState(1, "n1", 0))
    disk.sync()
    disk.write_ready(None, (), HardState(1, "n1", 1))  # A commit-index-only change.
    assert disk.live.initial_state().commit_index == 1
    disk.crash()
    assert disk.live.initial_state() == HardState(1, "n1", 0)
    assert disk.live.last_index() == 1


def test_snapshot_and_compact_survives_a_crash() -> None:
    disk = SimStorage(MemoryStorage.bootstrap(["n1"]))
    disk.write_ready(None, (Entry(1, 1), Entry(1, 2), Entry(1, 3)), HardState(1, "n1", 3))
    disk.sync()
    disk.snapshot_and_compact(2, b"state")
    disk.crash()
    assert disk.live.snapshot().meta.index == 2
    assert disk.live.snapshot().data == b"state"
    assert disk.live.first_index() == 3
    assert disk.live.last_index() == 3


@pytest.mark.parametrize("sync", [True, False])
def test_entries_written_before_a_crash_survive_only_if_synced(sync: bool) -> None:
    disk = SimStorage(MemoryStorage.bootstrap(["n1"]))
    disk.write_ready(None, (Entry(1, 1),), None)
    if sync:
        disk.sync()
    disk.crash()
    assert disk.live.last_index() == (1 if sync else 0)
