"""The history model and the checks, on histories built by hand: each check is shown to
pass a correct history and to catch the anomaly it exists for (its negative control)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from checker import read_history
from jepsen import checks
from jepsen.history import NEMESIS, History, HistoryFileError, Op, read_jsonl


class Clock:
    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        self.now_ns += 1_000_000
        return self.now_ns


def new_history() -> History:
    return History({"model": "cas-register"}, clock_ns=Clock())


def op(history: History, process: int, f: str, key: Any, value: Any, outcome: str,
       result: Any = None, error: str | None = None, node: str = "n1") -> None:
    history.invoke(process, f, key, value, node)
    history.complete(process, outcome, value if result is None else result, error)  # type: ignore[arg-type]


def final_phase(history: History, healthy: bool = True) -> None:
    history.invoke(NEMESIS, "heal", None, None)
    history.complete(NEMESIS, "info", {})
    history.invoke(NEMESIS, "recovered", None, None)
    history.complete(NEMESIS, "info", {"healthy": healthy})
    history.invoke(NEMESIS, "final-reads", None, None)


def test_history_files_are_what_the_checker_reads(tmp_path: Path) -> None:
    history = new_history()
    history.open_files(tmp_path / "h.jsonl", tmp_path / "h.txt")
    op(history, 0, "write", 1, 3, "ok")
    op(history, 1, "cas", 1, [3, 4], "info", error="timeout")
    history.invoke(NEMESIS, "start-kill", None, {"nodes": ["n2"]})
    history.complete(NEMESIS, "info", {"killed": ["n2"]})
    op(history, 0, "read", 1, None, "ok", result=4)
    history.close()
    header, ops = read_jsonl(tmp_path / "h.jsonl")
    assert header["model"] == "cas-register"
    assert [o.type for o in ops] == ["invoke", "ok", "invoke", "info", "invoke", "info",
                                     "invoke", "ok"]
    assert all(a.time_ns <= b.time_ns for a, b in itertools.pairwise(ops))
    parsed = read_history(tmp_path / "h.jsonl")
    assert parsed.model_name == "cas-register"
    assert len(parsed.operations) == 3
    text = (tmp_path / "h.txt").read_text().splitlines()
    assert len(text) == 8
    assert "cas" in text[3]
    assert "[timeout]" in text[3]


def test_a_process_never_issues_after_info() -> None:
    history = new_history()
    op(history, 0, "write", 1, 3, "info")
    with pytest.raises(AssertionError, match="crashed"):
        history.invoke(0, "read", 1, None)


def test_corrupt_history_file_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    good = json.dumps({"type": "invoke", "process": 0, "f": "read", "key": 1, "value": None,
                       "time": 5})
    path.write_text(good + "\n" + '{"type": "ok", "process": 0, "f": "read", "time": -1}\n')
    with pytest.raises(HistoryFileError, match="line 2"):
        read_jsonl(path)
    path.write_text(good + "\n{not json\n")
    with pytest.raises(HistoryFileError, match="line 2"):
        read_jsonl(path)


def test_linearizable_history_passes_and_a_stale_read_is_caught(tmp_path: Path) -> None:
    history = new_history()
    op(history, 0, "write", 1, 1, "ok")
    op(history, 1, "read", 1, None, "ok", result=1)
    op(history, 0, "write", 1, 2, "ok")
    good = checks.check_linearizable(history.ops(), "cas-register", tmp_path / "r.html")
    assert good["valid"] is True
    op(history, 1, "read", 1, None, "ok", result=1)  # stale: 2 was written before
    bad = checks.check_linearizable(history.ops(), "cas-register", tmp_path / "r.html")
    assert bad["valid"] is False
    assert bad["illegal_keys"] == [1]
    assert "not linearizable" in (tmp_path / "r.html").read_text() or \
        "illegal" in (tmp_path / "r.html").read_text()


def test_a_cas_that_failed_for_another_reason_is_no_observation() -> None:
    history = new_history()
    op(history, 0, "write", 1, 1, "ok")
    # No leader: the cas did nothing and observed nothing, even though 1 == expected.
    op(history, 1, "cas", 1, [1, 2], "fail", error="no_leader")
    assert checks.check_linearizable(history.ops(), "cas-register", None)["valid"] is True
    # A compare that failed while the value was the expected one is an anomaly.
    op(history, 1 + 0, "cas", 1, [1, 2], "fail", error=checks.CAS_MISMATCH)
    assert checks.check_linearizable(history.ops(), "cas-register", None)["valid"] is False


def append_history(duplicate: bool = False, lose: bool = False,
                   failed_present: bool = False) -> list[Op]:
    history = new_history()
    op(history, 0, "append", 7, 0, "ok")
    op(history, 1, "append", 7, 1, "ok")
    op(history, 1, "append", 7, 2, "info")
    op(history, 0, "append", 7, 3, "fail", error="no_leader")
    final_phase(history)
    elements = [0, 1, 2]
    if duplicate:
        elements = [0, 1, 1, 2]
    if lose:
        elements = [0, 2]
    if failed_present:
        elements = [0, 1, 3]
    op(history, 0, "read", 7, None, "ok", result=elements)
    return history.ops()


def test_exactly_once_passes_and_catches_duplicates_losses_and_failed_appends() -> None:
    assert checks.check_exactly_once(append_history())["valid"] is True
    duplicated = checks.check_exactly_once(append_history(duplicate=True))
    assert duplicated["valid"] is False
    assert duplicated["duplicated"] == 1
    lost = checks.check_exactly_once(append_history(lose=True))
    assert lost["valid"] is False
    assert lost["lost"] == 1
    failed = checks.check_exactly_once(append_history(failed_present=True))
    assert failed["valid"] is False
    assert failed["failed_but_present"] == 1


def test_append_list_model_also_catches_the_duplicate() -> None:
    assert checks.check_linearizable(append_history(), "append-list", None)["valid"] is True
    result = checks.check_linearizable(append_history(duplicate=True), "append-list", None)
    assert result["valid"] is False


def test_liveness_needs_recovery_and_every_key_through_every_node() -> None:
    history = new_history()
    op(history, 0, "write", 1, 1, "ok")
    op(history, 1, "write", 2, 1, "ok", node="n2")
    final_phase(history)
    for key in (1, 2):
        for process, node in ((0, "n1"), (1, "n2")):
            op(history, process, "read", key, None, "ok", result=1, node=node)
    assert checks.check_liveness(history.ops(), ["n1", "n2"])["valid"] is True
    missing = checks.check_liveness(history.ops(), ["n1", "n2", "n3"])
    assert missing["valid"] is False
    assert missing["unserved_count"] == 2
    unhealthy = new_history()
    final_phase(unhealthy, healthy=False)
    assert checks.check_liveness(unhealthy.ops(), ["n1"])["valid"] is False
    assert checks.check_liveness(new_history().ops(), ["n1"])["valid"] == checks.UNKNOWN


def test_merge_valid_is_jepsens() -> None:
    assert checks.merge_valid([True, True]) is True
    assert checks.merge_valid([True, checks.UNKNOWN]) == checks.UNKNOWN
    assert checks.merge_valid([checks.UNKNOWN, False, True]) is False
    assert checks.check_stats([])["valid"] == checks.UNKNOWN
