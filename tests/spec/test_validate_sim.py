"""Trace validation of simulator executions: a seed sweep, the simulator's targeted
scenarios and hypothesis-drawn fault schedules are all ACCEPTED by spec/Traceraft.tla,
and together they take every action of the spec (the coverage table is printed).

The traces of one cluster setup share one TLC run (`validate_batch`), so hundreds of
traces cost a few JVM starts.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_support import REPORT, needs_tlc, write_sim_trace

from raftcore.sim.options import WorldOptions
from raftcore.validate.traceio import ACTIONS
from raftcore.validate.validator import Options, Prepared, Status, prepare, validate_batch

SEEDS = range(1, 121)
SCENARIOS = ("figure8", "july2015", "promoted_learner", "unpersisted_self")


def _prepared(path: Path) -> Prepared:
    events, copies, setup = prepare([path], Options())
    return Prepared(path.name, events, copies, setup)


def _assert_accepted(items: list[Prepared]) -> Counter[str]:
    verdicts = validate_batch(items)
    failed = [
        f"{item.name}: {v.status.value} {v.reason} "
        f"{v.failed_event.name + ' at ' + v.failed_event.where() if v.failed_event else ''}"
        for item, v in zip(items, verdicts, strict=True)
        if v.status is not Status.ACCEPTED
    ]
    assert not failed, "\n".join(failed)
    return Counter(e.name for item in items for e in item.events)


@pytest.fixture(scope="module")
def sweep_coverage(tmp_path_factory: pytest.TempPathFactory) -> Counter[str]:
    """Validate the seed sweep and the scenarios once; return how often each action ran."""
    folder = tmp_path_factory.mktemp("sweep")
    items = []
    for seed in SEEDS:
        path = folder / f"seed{seed}.ndjson"
        write_sim_trace(path, seed, nodes=3 if seed % 2 else 5, ticks=250)
        items.append(_prepared(path))
    for scenario in SCENARIOS:
        path = folder / f"{scenario}.ndjson"
        write_sim_trace(path, 1, scenario=scenario)
        items.append(_prepared(path))
    return _assert_accepted(items)


@needs_tlc
def test_simulator_seed_sweep_and_scenarios_are_accepted(sweep_coverage: Counter[str]) -> None:
    assert sum(sweep_coverage.values()) > 50_000


@needs_tlc
def test_every_spec_action_appears_in_an_accepted_trace(sweep_coverage: Counter[str]) -> None:
    width = max(len(name) for name in ACTIONS)
    REPORT.append("spec action coverage (events of each action in accepted simulator traces):")
    for name in sorted(ACTIONS):
        REPORT.append(f"  {name:<{width}}  {sweep_coverage.get(name, 0):>8}")
    missing = sorted(name for name in ACTIONS if sweep_coverage.get(name, 0) == 0)
    assert not missing, f"spec actions no accepted trace takes: {missing}"


@st.composite
def fault_schedules(draw: st.DrawFn) -> WorldOptions:
    """A world's knobs: crashes (with unsynced writes lost), partitions, membership
    changes, transfers, snapshots, short session timeouts."""
    seed = draw(st.integers(1, 10**6))
    base = WorldOptions.from_seed(seed, draw(st.sampled_from((3, 5))))
    return dataclasses.replace(
        base,
        pre_vote=draw(st.booleans()),
        check_quorum=draw(st.booleans()),
        session_timeout_ticks=draw(st.sampled_from((15, 60, 100_000))),
        partition_probability=draw(st.sampled_from((0.0, 0.02, 0.05))),
        crash_probability=draw(st.sampled_from((0.0, 0.005, 0.02))),
        unsynced_crash_fraction=draw(st.sampled_from((0.0, 1.0))),
        leader_crash_probability=draw(st.sampled_from((0.0, 0.5))),
        crash_after_vote_probability=draw(st.sampled_from((0.0, 1.0))),
        conf_change_probability=draw(st.sampled_from((0.0, 0.02, 0.05))),
        transfer_probability=draw(st.sampled_from((0.0, 0.01))),
        compact_every_entries=draw(st.sampled_from((0, 3, 10))),
    )


@needs_tlc
def test_hypothesis_fault_schedules_are_accepted(tmp_path: Path) -> None:
    items: list[Prepared] = []

    @settings(
        max_examples=100, derandomize=True, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )  # fmt: skip
    @given(options=fault_schedules())
    def collect(options: WorldOptions) -> None:
        path = tmp_path / f"world{len(items)}.ndjson"
        write_sim_trace(path, options.seed, ticks=200, options=options)
        items.append(_prepared(path))

    collect()
    assert len(items) == 100
    coverage = _assert_accepted(items)
    starts = sum(len(item.setup.init_servers) for item in items)
    assert coverage["Restart"] > starts, "some schedules crash and restart servers"

