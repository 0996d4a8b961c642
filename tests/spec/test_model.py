"""Model checking spec/raft.tla with TLC: the bounded model passes exhaustively, and each
negative control (a guard or dedup removed) is caught with the right violation.

A TLC error (parse error, evaluation error, out of memory) must never count as a pass:
`test_a_tlc_error_is_not_a_pass` shows the runner reports one as an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from spec_support import needs_tlc

from raftcore.validate.tlc import Outcome, run_tlc


@needs_tlc
@pytest.mark.parametrize("cfg", ["MCraft.cfg", "MCraft_faults.cfg"])
def test_bounded_model_is_checked_exhaustively_and_passes(
    model_folder: Callable[[str], Path], cfg: str
) -> None:
    folder = model_folder(cfg)
    result = run_tlc(folder, "MCraft", cfg, timeout_s=840)
    assert result.exit_code == 0, result.output[-3000:]
    assert result.outcome is Outcome.OK
    assert result.completed, "TLC must report that model checking completed"
    assert result.distinct_states is not None
    assert result.distinct_states > 10_000, "the bounded model is not trivially small"
    print(f"{cfg}: {result.distinct_states} distinct states, depth {result.depth}")


@needs_tlc
@pytest.mark.slow
def test_the_leaders_parallel_write_is_checked_exhaustively(
    model_folder: Callable[[str], Path],
) -> None:
    """MCraft_async.cfg: a client request's write races with the leader's sends and a
    crash may cut it (about 4 to 5 minutes, so only with --runslow)."""
    folder = model_folder("MCraft_async.cfg")
    result = run_tlc(folder, "MCraft", "MCraft_async.cfg", timeout_s=1200)
    assert result.exit_code == 0, result.output[-3000:]
    assert result.completed
    assert result.distinct_states is not None
    assert result.distinct_states > 100_000


@needs_tlc
def test_larger_bounds_pass_random_simulation(model_folder: Callable[[str], Path]) -> None:
    folder = model_folder("MCraft_sim.cfg")
    result = run_tlc(folder, "MCraft", "MCraft_sim.cfg", simulate="num=3000",
                     extra_args=("-depth", "80", "-seed", "20261123"), timeout_s=600)  # fmt: skip
    assert result.exit_code == 0, result.output[-3000:]
    assert result.completed
    assert result.generated_states is not None
    assert result.generated_states > 100_000


@needs_tlc
def test_removing_the_conf_guard_finds_the_july_2015_bug(
    model_folder: Callable[[str], Path],
) -> None:
    folder = model_folder("MCraft_noguard.cfg")
    result = run_tlc(folder, "MCraft", "MCraft_noguard.cfg", timeout_s=840)
    assert result.exit_code == 12, result.output[-3000:]
    assert result.outcome is Outcome.VIOLATION
    assert result.violated == "LeaderCompleteness"
    # The counterexample is the July 2015 shape: two leaders of different terms each
    # append one configuration change, and the later leader lacks a committed entry.
    trace = result.output[result.output.index("The behavior up to this point is") :]
    removed = set(re.findall(r'kind \|-> "RemoveServer"[^\]]*target \|-> (\w+)', trace))
    removed |= set(re.findall(r'target \|-> (\w+)[^\]]*kind \|-> "RemoveServer"', trace))
    assert len(removed) >= 2, "two different servers removed by two leaders"
    assert "Leader" in trace


@needs_tlc
def test_removing_dedup_violates_the_session_invariant(
    model_folder: Callable[[str], Path],
) -> None:
    folder = model_folder("MCraft_nodedup.cfg")
    result = run_tlc(folder, "MCraft", "MCraft_nodedup.cfg", timeout_s=600)
    assert result.exit_code == 12, result.output[-3000:]
    assert result.violated == "SessionAtMostOnce"


@needs_tlc
def test_a_tlc_error_is_not_a_pass(model_folder: Callable[[str], Path]) -> None:
    folder = model_folder("MCraft_nodedup.cfg")
    broken = (folder / "raft.tla").read_text().replace("Init ==", "Init == ((", 1)
    (folder / "raft.tla").write_text(broken)
    result = run_tlc(folder, "MCraft", "MCraft_nodedup.cfg", timeout_s=120)
    assert result.exit_code not in (0, 10, 11, 12, 13, 14)
    assert result.outcome is Outcome.ERROR
    assert not result.completed
