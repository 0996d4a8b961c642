"""Negative controls: each planted bug is caught by the simulator within a bounded budget.

Each test searches a fixed, bounded list of seeds (random worlds) or runs a targeted
scenario through the simulator, and asserts that a violation of the expected invariant is
found. Some tests also switch off the most direct check to show that the paper's own
invariants (election safety) or the linearizability check catch the bug by themselves.
Without the bug the same seeds pass (the seed sweep in test_sim.py and the scenario tests).
"""

from __future__ import annotations

import os

import pytest

from raftcore.bugs import PlantedBug
from raftcore.sim import run
from raftcore.sim.runner import RunResult


def first_caught(
    bug: PlantedBug,
    seeds: range,
    *,
    ticks: int = 1000,
    disabled_checks: frozenset[str] = frozenset(),
) -> RunResult:
    for seed in seeds:
        result = run(seed, None, ticks, planted_bug=bug, disabled_checks=disabled_checks)
        if not result.ok:
            return result
    pytest.fail(f"{bug.value} was not caught in seeds {seeds.start}..{seeds.stop - 1}")


def test_double_vote_is_caught() -> None:
    result = first_caught(PlantedBug.DOUBLE_VOTE, range(20))
    assert result.violation is not None
    assert result.violation.invariant in {"vote safety", "election safety"}


def test_double_vote_breaks_election_safety_by_itself() -> None:
    result = first_caught(
        PlantedBug.DOUBLE_VOTE, range(40), disabled_checks=frozenset({"vote safety"})
    )
    assert result.violation is not None
    assert result.violation.invariant == "election safety"


def test_forgotten_vote_is_caught() -> None:
    result = first_caught(PlantedBug.FORGET_PERSIST_VOTE, range(40))
    assert result.violation is not None
    assert result.violation.invariant in {"vote safety", "election safety"}


def test_forgotten_vote_breaks_election_safety_by_itself() -> None:
    result = first_caught(
        PlantedBug.FORGET_PERSIST_VOTE, range(100), disabled_checks=frozenset({"vote safety"})
    )
    assert result.violation is not None
    assert result.violation.invariant == "election safety"


def test_applied_duplicate_is_caught() -> None:
    result = first_caught(PlantedBug.APPLY_DUPLICATE, range(20))
    assert result.violation is not None
    assert result.violation.invariant == "at-most-once"


def test_applied_duplicate_is_visible_to_clients() -> None:
    """With the at-most-once check off, the clients' history is not linearizable."""
    result = first_caught(
        PlantedBug.APPLY_DUPLICATE, range(20), disabled_checks=frozenset({"at-most-once"})
    )
    assert result.violation is not None
    assert result.violation.invariant == "linearizability"


def test_applying_uncommitted_entries_early_is_caught() -> None:
    """The leader's early apply (kvserver and the simulator apply what an acknowledgement
    commits while the leader's write is in flight) without its commit bound."""
    result = first_caught(PlantedBug.APPLY_UNCOMMITTED_EARLY, range(20))
    assert result.violation is not None
    assert result.violation.invariant == "state machine safety"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_commit_of_an_old_term_entry_is_caught_in_figure8(seed: int) -> None:
    result = run(seed, planted_bug=PlantedBug.COMMIT_OLD_TERM, scenario="figure8")
    assert result.violation is not None
    assert result.violation.invariant == "leader completeness"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_skipped_conf_change_guard_is_caught_in_july2015(seed: int) -> None:
    result = run(seed, planted_bug=PlantedBug.SKIP_CONF_GUARD, scenario="july2015")
    assert result.violation is not None
    # The new leader of the old configuration lacks a committed entry. It may apply
    # an entry it learned was committed as a follower (the old leader's) in the same
    # step that elects it, while its first write is in flight (the node's early
    # apply); then two state machines differ before its election is checked.
    assert result.violation.invariant in {"leader completeness", "state machine safety"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_counting_an_unpersisted_self_is_caught_when_the_leader_crashes(seed: int) -> None:
    """The leader sends its entry before its fsync; one follower's acknowledgment plus
    its own unpersisted copy make a false quorum, lost in the crash before the fsync."""
    result = run(seed, planted_bug=PlantedBug.COUNT_UNPERSISTED_SELF, scenario="unpersisted_self")
    assert result.violation is not None
    assert result.violation.invariant == "leader completeness"


def _long_enabled(config: pytest.Config) -> bool:
    return bool(os.environ.get("RAFTCORE_SIM_LONG")) or bool(
        config.getoption("--runslow", default=False)
    )


@pytest.mark.slow
def test_skipped_conf_change_guard_in_random_worlds(request: pytest.FixtureRequest) -> None:
    """Random worlds (no script) find this one too, more slowly (about 1 world in 75): a
    bounded search of 1,000 seeds. The default suite relies on the scenario above.
    (COMMIT_OLD_TERM has not been found by random worlds in 1,500 seeds of 2,000 ticks:
    Figure 8 needs the scripted schedule.)"""
    if not _long_enabled(request.config):
        pytest.skip("long search: pass --runslow or set RAFTCORE_SIM_LONG=1")
    result = first_caught(PlantedBug.SKIP_CONF_GUARD, range(1000))
    assert result.violation is not None
    assert result.violation.invariant in {"leader completeness", "state machine safety", "liveness"}
