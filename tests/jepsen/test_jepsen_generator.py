"""Generators and the nemesis schedule, pure and seeded: no cluster, no clock, no sleep."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jepsen import schedule
from jepsen.generator import (
    AppendMix,
    Context,
    IndependentKeys,
    Limit,
    OpSpec,
    TimeLimit,
    final_reads,
    mean_delay_s,
    register_mix,
    stagger_delay_s,
)

NODES = ("n1", "n2", "n3", "n4", "n5")


def drive(generator: IndependentKeys | TimeLimit | Limit, threads: int, calls: int,
          time_s: float = 0.0) -> list[tuple[int, OpSpec | None]]:
    return [(call % threads, generator.next_op(Context(call % threads, time_s)))
            for call in range(calls)]


def register_keys(seed: int, threads_per_key: int = 2, ops_per_key: int = 5) -> IndependentKeys:
    return IndependentKeys(lambda _k, rng: register_mix(rng), threads_per_key, ops_per_key,
                           random.Random(seed))


def test_same_seed_same_operations_and_another_seed_differs() -> None:
    first = drive(register_keys(7), threads=4, calls=200)
    second = drive(register_keys(7), threads=4, calls=200)
    other = drive(register_keys(8), threads=4, calls=200)
    assert first == second
    assert first != other


def test_register_mix_covers_read_write_cas_with_small_values() -> None:
    ops = [spec for _, spec in drive(register_keys(1), threads=1, calls=400) if spec]
    counts = Counter(spec.f for spec in ops)
    assert set(counts) == {"read", "write", "cas"}
    assert counts["read"] > counts["write"]
    for spec in ops:
        if spec.f == "write":
            assert spec.value in range(5)
        if spec.f == "cas":
            assert len(spec.value) == 2
            assert all(v in range(5) for v in spec.value)


@given(threads=st.integers(1, 12), per_key=st.integers(1, 6), ops_per_key=st.integers(1, 20),
       seed=st.integers(0, 2**32))
def test_independent_keys_bound_ops_per_key_and_share_keys_within_groups(
    threads: int, per_key: int, ops_per_key: int, seed: int
) -> None:
    generator = register_keys(seed, per_key, ops_per_key)
    results = drive(generator, threads=threads, calls=threads * 30)
    per_key_count: Counter[object] = Counter()
    groups_of_key: dict[object, set[int]] = {}
    for thread, spec in results:
        assert spec is not None
        per_key_count[spec.key] += 1
        groups_of_key.setdefault(spec.key, set()).add(thread // per_key)
    assert max(per_key_count.values()) <= ops_per_key
    assert all(len(groups) == 1 for groups in groups_of_key.values())
    assert sorted(per_key_count) == generator.keys_used


def test_append_mix_values_are_unique_per_key() -> None:
    generator = IndependentKeys(lambda _k, rng: AppendMix(rng), 3, 50, random.Random(3))
    seen: dict[object, list[int]] = {}
    for _, spec in drive(generator, threads=6, calls=600):
        assert spec is not None
        if spec.f == "append":
            seen.setdefault(spec.key, []).append(spec.value)
    assert seen
    for values in seen.values():
        assert len(values) == len(set(values))


def test_time_limit_and_limit_stop_the_generator() -> None:
    timed = TimeLimit(10.0, register_keys(1))
    assert timed.next_op(Context(0, 9.99)) is not None
    assert timed.next_op(Context(0, 10.0)) is None
    limited = Limit(3, register_keys(1))
    assert [s is not None for _, s in drive(limited, threads=2, calls=5)] == [
        True, True, True, False, False]


def test_stagger_keeps_the_mean_and_bounds() -> None:
    rng = random.Random(5)
    mean_s = mean_delay_s(rate_per_s=50.0, concurrency=10)
    assert mean_s == pytest.approx(0.2)
    delays = [stagger_delay_s(rng, mean_s) for _ in range(20_000)]
    assert all(0.0 <= d <= 2 * mean_s for d in delays)
    assert sum(delays) / len(delays) == pytest.approx(mean_s, rel=0.03)


def test_final_reads_read_every_key_through_every_node() -> None:
    reads = final_reads([0, 1, 2], NODES)
    assert len(reads) == 15
    assert {(node, spec.key) for node, spec in reads} == {(n, k) for n in NODES for k in [0, 1, 2]}
    assert all(spec.f == "read" for _, spec in reads)


def test_parse_faults_families_all_and_errors() -> None:
    assert schedule.parse_faults("all", 5) == schedule.ALL_FAULTS
    assert schedule.parse_faults("none", 5) == ()
    assert schedule.parse_faults("kill", 5) == schedule.FAMILIES["kill"]
    assert schedule.parse_faults("partition-halves,kill-one", 5) == (
        "partition-halves", "kill-one")
    with pytest.raises(schedule.FaultSpecError, match="unknown nemesis 'explode'"):
        schedule.parse_faults("kill,explode", 5)
    with pytest.raises(schedule.FaultSpecError, match="partition-bridge"):
        schedule.parse_faults("partition-bridge", 2)
    assert "partition-bridge" not in schedule.parse_faults("all", 2)


@given(seed=st.integers(0, 2**32), interval=st.floats(0.5, 20), limit=st.floats(1, 300))
def test_schedule_alternates_start_and_stop_within_the_time_limit(
    seed: int, interval: float, limit: float
) -> None:
    steps = schedule.nemesis_schedule(schedule.ALL_FAULTS, NODES, interval, limit,
                                      random.Random(seed))
    times = [step.at_s for step in steps]
    assert times == sorted(times)
    assert all(0 < t <= limit for t in times)
    active: str | None = None
    for step in steps:
        if step.f.startswith("start-"):
            assert active is None, "two faults at once"
            active = step.f.removeprefix("start-")
        elif step.f.startswith("stop-"):
            assert active == step.f.removeprefix("stop-")
            active = None
        else:
            assert step.f == "transfer-leadership"
            assert active is None
    assert active is None, "every started fault is stopped by the time limit"


def test_schedule_is_seeded_and_targets_are_nodes() -> None:
    make = lambda seed: schedule.nemesis_schedule(  # noqa: E731
        schedule.ALL_FAULTS, NODES, 5.0, 200.0, random.Random(seed))
    assert make(3) == make(3)
    assert make(3) != make(4)
    for step in make(3):
        for node in step.value.get("nodes", []):
            assert node in NODES
        for node, dropped in step.value.get("grudge", {}).items():
            assert node in NODES
            assert node not in dropped
        if step.f == "start-kill" and step.value["fault"] == "kill-minority":
            assert len(step.value["nodes"]) == 2


def test_schedule_first_fault_waits_one_interval_and_final_heals() -> None:
    steps = schedule.nemesis_schedule(("kill-one",), NODES, 10.0, 60.0, random.Random(1))
    assert steps[0].at_s == 10.0
    assert [s.f for s in steps[:2]] == ["start-kill", "stop-kill"]
    assert steps[1].at_s == 20.0
    assert schedule.final_steps(60.0)[0].f == "heal"
    periods = schedule.active_periods(steps, 60.0)
    assert periods[0] == (10.0, 20.0, "kill-one")
