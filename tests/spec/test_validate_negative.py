"""Negative controls of trace validation: tampered traces and traces of the core with each
planted bug (raftcore/bugs.py) must be REJECTED, each by its own test, at the event the
tampering or the bug produced, and the diagnosis must name what disagrees.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from spec_support import needs_tlc, read_lines, write_lines, write_sim_trace

from raftcore.bugs import PlantedBug
from raftcore.validate.validator import Options, Status, Verdict, validate

pytestmark = needs_tlc


@pytest.fixture(scope="module")
def base_trace(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """An accepted simulator trace to tamper with (header first)."""
    path = tmp_path_factory.mktemp("base") / "base.ndjson"
    write_sim_trace(path, 7, nodes=3, ticks=200)
    verdict = validate([path])
    assert verdict.status is Status.ACCEPTED, verdict.reason
    return read_lines(path)


def _validate(tmp_path: Path, records: list[dict[str, Any]]) -> Verdict:
    path = tmp_path / "tampered.ndjson"
    write_lines(path, records)
    return validate([path], Options())


def _positions(records: list[dict[str, Any]], name: str) -> list[int]:
    return [n for n, r in enumerate(records) if r.get("name") == name]


def test_two_events_swapped_is_rejected(tmp_path: Path, base_trace: list[dict[str, Any]]) -> None:
    records = copy.deepcopy(base_trace)
    # Two consecutive ApplyEntry events of one node, in the wrong order.
    for first in _positions(records, "ApplyEntry"):
        node = records[first]["node"]
        later = [n for n in _positions(records, "ApplyEntry") if n > first]
        second = next(n for n in later if records[n]["node"] == node)
        break
    records[first], records[second] = records[second], records[first]
    verdict = _validate(tmp_path, records)
    assert verdict.status is Status.REJECTED
    assert verdict.failed_index == first  # 1-based over events; the header is line 0
    assert verdict.failed_event is not None
    assert verdict.failed_event.name == "ApplyEntry"


def test_a_changed_term_is_rejected(tmp_path: Path, base_trace: list[dict[str, Any]]) -> None:
    records = copy.deepcopy(base_trace)
    target = _positions(records, "HandleHeartbeatRequest")[5]
    records[target]["state"]["current_term"] += 1
    verdict = _validate(tmp_path, records)
    assert verdict.status is Status.REJECTED
    assert verdict.failed_index == target
    assert [m.field for m in verdict.mismatches] == ["current_term"]


def test_a_dropped_event_is_rejected(tmp_path: Path, base_trace: list[dict[str, Any]]) -> None:
    records = copy.deepcopy(base_trace)
    target = _positions(records, "ClientRequest")[0]
    node = records[target]["node"]
    del records[target]
    verdict = _validate(tmp_path, records)
    assert verdict.status is Status.REJECTED
    # The leader's next event shows a log the spec's leader does not have.
    assert verdict.failed_event is not None
    assert verdict.failed_event.node == node
    assert verdict.failed_index is not None
    assert verdict.failed_index >= target


def test_a_raised_commit_index_is_rejected(
    tmp_path: Path, base_trace: list[dict[str, Any]]
) -> None:
    records = copy.deepcopy(base_trace)
    target = next(
        n for n in _positions(records, "HandleHeartbeatRequest")
        if records[n]["state"]["commit_index"] < records[n]["state"]["last_index"]
    )  # fmt: skip
    records[target]["state"]["commit_index"] += 1
    verdict = _validate(tmp_path, records)
    assert verdict.status is Status.REJECTED
    assert verdict.failed_index == target
    assert [m.field for m in verdict.mismatches] == ["commit_index"]


def test_a_message_other_than_the_logged_one_sent_is_rejected(
    tmp_path: Path, base_trace: list[dict[str, Any]]
) -> None:
    """The sender's log shows a message the spec's action does not send (its receiver
    logs the same message, so only the send can be at fault)."""
    records = copy.deepcopy(base_trace)
    target = _positions(records, "Heartbeat")[5]
    key = (records[target]["params"]["from"], records[target]["params"]["seq"])
    for record in records:
        params = record.get("params", {})
        if (params.get("from"), params.get("seq")) == key:
            params["commit_index"] += 1
    verdict = _validate(tmp_path, records)
    assert verdict.status is Status.REJECTED
    assert verdict.failed_index == target


def test_a_received_message_that_differs_from_its_send_is_rejected(
    tmp_path: Path, base_trace: list[dict[str, Any]]
) -> None:
    """The receiver logs a message other than the one sent under its id."""
    records = copy.deepcopy(base_trace)
    target = _positions(records, "HandleHeartbeatRequest")[5]
    records[target]["params"]["commit_index"] += 1
    verdict = _validate(tmp_path, records)
    assert verdict.status is Status.REJECTED
    assert verdict.failed_index == target


# Each planted bug with a run that exercises it (the simulator's targeted scenarios where
# it has one), and the action at which the spec must refuse the trace.
PLANTED = [
    (PlantedBug.COMMIT_OLD_TERM, 1, "figure8", "AdvanceCommitIndex"),
    (PlantedBug.DOUBLE_VOTE, 3, None, "HandleRequestVoteRequest"),
    (PlantedBug.SKIP_CONF_GUARD, 1, "july2015", "RemoveServer"),
    (PlantedBug.FORGET_PERSIST_VOTE, 2, None, "Restart"),
    (PlantedBug.APPLY_DUPLICATE, 2, None, "ApplyEntry"),
    (PlantedBug.COUNT_UNPERSISTED_SELF, 1, "unpersisted_self", "AdvanceCommitIndex"),
    (PlantedBug.APPLY_UNCOMMITTED_EARLY, 5, None, "ApplyEntry"),
]


@pytest.mark.parametrize(("bug", "seed", "scenario", "action"), PLANTED,
                         ids=[p[0].value for p in PLANTED])  # fmt: skip
def test_planted_bug_trace_is_rejected(
    tmp_path: Path, bug: PlantedBug, seed: int, scenario: str | None, action: str
) -> None:
    path = tmp_path / f"{bug.value}.ndjson"
    write_sim_trace(path, seed, bug=bug, scenario=scenario, ticks=2000)
    verdict = validate([path])
    assert verdict.status is Status.REJECTED, verdict.reason
    assert verdict.failed_event is not None
    assert verdict.failed_event.name == action
    assert verdict.reason
