"""Node-trace markers, the merge rule for crashed incarnations (merge.settle_crashes), and
the wall-clock stamps that order the merge without overruling causality.

A kvserver node writes a Ready's events before its WAL write and a `Persisted` marker after
its fsync, before its sends. After a kill -9, the events of the crashed incarnation that no
marker covers are kept as far as the next `Restart`'s durable state shows them, and the
rest dropped; covered events are never dropped, nor a leader's early send that another
node received, and a tail the Restart matches nowhere is kept whole (so the spec rejects
the Restart). Markers that lie are clear errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from raftcore.validate import Options, validate_node_traces
from raftcore.validate.merge import Settled, merge, received_keys, settle_crashes, settle_traces
from raftcore.validate.traceio import Setup, TraceError, infer_setup, read_trace

VOTERS = ["n1", "n2", "n3"]


def state(term: int, voted: str = "", last: int = 1, role: str = "Follower",
          commit: int = 1) -> dict[str, Any]:
    return {"current_term": term, "voted_for": voted, "role": role, "leader_id": "",
            "commit_index": commit, "last_index": last, "last_term": 1, "snapshot_index": 0,
            "snapshot_term": 0, "voters": VOTERS, "learners": []}


def start() -> dict[str, Any]:
    return {"marker": "Start", "node": "n1", "session_timeout_ticks": 500,
            "lease_reads": False}


def persisted(count: int) -> dict[str, Any]:
    return {"marker": "Persisted", "node": "n1", "events": count}


def restart(term: int, voted: str = "") -> dict[str, Any]:
    return {"name": "Restart", "node": "n1", "params": {}, "state": state(term, voted)}


def timeout(term: int) -> dict[str, Any]:
    """A Timeout without PreVote: Candidate of `term`, voting for itself (durable)."""
    return {"name": "Timeout", "node": "n1", "params": {"pre_vote": False},
            "state": state(term, "n1", role="Candidate")}


def heartbeat_commit(term: int, voted: str, commit: int) -> dict[str, Any]:
    """An event that changes only volatile state (the commit index)."""
    return {"name": "CheckQuorum", "node": "n1", "params": {},
            "state": state(term, voted, commit=commit)}


def apply_entry(index: int) -> dict[str, Any]:
    return {"name": "ApplyEntry", "node": "n1",
            "params": {"index": index, "kind": "NoOp", "client_id": 0, "seq": 0,
                       "outcome": "noop"},
            "state": {"applied_index": index, "cluster_time_ticks": 0, "sessions": {}}}


def settle(tmp_path: Path, records: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(kept, dropped) as "name/term" labels."""
    path = tmp_path / "n1.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    trace, dropped = settle_crashes(read_trace(path))

    def label(event: Any) -> str:
        return f"{event.name}/{event.state.get('current_term', '-')}"

    return [label(e) for e in trace.events], [label(e) for e in dropped]


def test_an_unpersisted_tail_the_restart_does_not_show_is_dropped(tmp_path: Path) -> None:
    kept, dropped = settle(tmp_path, [start(), restart(1), persisted(1), timeout(2),
                                      start(), restart(1), persisted(1)])
    assert kept == ["Restart/1", "Restart/1"]
    assert dropped == ["Timeout/2"]


def test_an_unpersisted_tail_the_restart_shows_is_kept(tmp_path: Path) -> None:
    kept, dropped = settle(tmp_path, [start(), restart(1), persisted(1), timeout(2),
                                      start(), restart(2, "n1"), persisted(1)])
    assert kept == ["Restart/1", "Timeout/2", "Restart/2"]
    assert dropped == []


def test_the_longest_matching_part_of_a_tail_is_kept(tmp_path: Path) -> None:
    records = [start(), restart(1), persisted(1), timeout(2), heartbeat_commit(2, "n1", 3),
               apply_entry(2), timeout(3), apply_entry(3), start(), restart(2, "n1")]
    kept, dropped = settle(tmp_path, records)
    assert kept == ["Restart/1", "Timeout/2", "CheckQuorum/2", "ApplyEntry/-", "Restart/2"]
    assert dropped == ["Timeout/3", "ApplyEntry/-"]


def test_persisted_events_are_never_dropped(tmp_path: Path) -> None:
    """A Restart that lost durable state (a destroyed WAL) is left for the spec to reject."""
    kept, dropped = settle(tmp_path, [start(), restart(1), persisted(1), timeout(2),
                                      persisted(2), start(), restart(1), persisted(1)])
    assert kept == ["Restart/1", "Timeout/2", "Restart/1"]
    assert dropped == []


def test_a_tail_the_restart_matches_nowhere_is_kept_whole(tmp_path: Path) -> None:
    kept, dropped = settle(tmp_path, [start(), restart(1), persisted(1), timeout(2),
                                      start(), restart(5, "n3"), persisted(1)])
    assert kept == ["Restart/1", "Timeout/2", "Restart/5"]
    assert dropped == []


def test_the_last_incarnation_keeps_its_tail_and_unmarked_traces_are_untouched(
        tmp_path: Path) -> None:
    kept, dropped = settle(tmp_path, [start(), restart(1), persisted(1), timeout(2)])
    assert kept == ["Restart/1", "Timeout/2"]
    assert dropped == []
    kept, dropped = settle(tmp_path, [restart(1), timeout(2), restart(1)])
    assert kept == ["Restart/1", "Timeout/2", "Restart/1"]
    assert dropped == []


def test_start_markers_tell_the_session_timeout_and_lease_reads(tmp_path: Path) -> None:
    path = tmp_path / "n1.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in [start(), restart(1), persisted(1)]))
    trace = read_trace(path)
    setup: Setup = infer_setup([trace], trace.events, None)
    assert (setup.session_timeout_ticks, setup.lease_reads) == (500, False)
    assert not any("session timeout assumed" in note for note in setup.notes)


@pytest.mark.parametrize(("records", "match"), [
    ([start(), restart(1), persisted(2)], "covers 2 events"),
    ([start(), restart(1), timeout(2), persisted(2), persisted(1)], "covers 1 events"),
    ([persisted(0), start(), restart(1)], "before any Start marker"),
    ([restart(1), start(), restart(1)], "events before the first Start marker"),
    ([start(), restart(1), {**start(), "lease_reads": True}, restart(1)], "options changed"),
    ([start(), restart(1), {"marker": "Synced", "node": "n1"}], "unknown marker"),
    ([{"marker": "Start", "node": "n1"}, restart(1)], "needs session_timeout_ticks"),
])  # fmt: skip
def test_markers_that_lie_are_clear_errors(
        tmp_path: Path, records: list[dict[str, Any]], match: str) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(TraceError, match=match):
        read_trace(path)


def _stamped(name: str, node: str, time_us: int, msg: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    return {"name": name, "node": node, "params": msg or {}, "state": state(1),
              "time_us": time_us}


def test_wall_clock_stamps_order_the_merge_but_never_break_causality(tmp_path: Path) -> None:
    heartbeat = {"type": "HeartbeatRequest", "from": "n1", "to": "n2", "seq": 7, "term": 1,
                 "commit_index": 1, "read_round": 0}
    n1 = [_stamped("Restart", "n1", 10), _stamped("Heartbeat", "n1", 50, heartbeat),
          _stamped("CheckQuorum", "n1", 60)]
    # n2's clock runs behind: it handles the heartbeat "before" n1 sent it.
    n2 = [_stamped("Restart", "n2", 20), _stamped("CheckQuorum", "n2", 30),
          _stamped("HandleHeartbeatRequest", "n2", 40, heartbeat),
          _stamped("CheckQuorum", "n2", 55)]
    paths = []
    for node, records in (("n1", n1), ("n2", n2)):
        path = tmp_path / f"{node}.ndjson"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        paths.append(read_trace(path))
    order = [(e.node, e.name) for e in merge(paths)]
    assert order == [("n1", "Restart"), ("n2", "Restart"), ("n2", "CheckQuorum"),
                     ("n1", "Heartbeat"), ("n2", "HandleHeartbeatRequest"),
                     ("n2", "CheckQuorum"), ("n1", "CheckQuorum")]


def test_a_tail_send_another_node_received_is_never_dropped(tmp_path: Path) -> None:
    """A leader's AppendEntries may leave before its fsync (thesis 10.2.1): a received
    one stays, with the append before it; the Restart may show the entry lost."""
    request = {"type": "AppendEntriesRequest", "from": "n1", "to": "n2", "seq": 9, "term": 1,
               "prev_log_index": 1, "prev_log_term": 1, "entries": [[1, "Normal", 0, ""]],
               "leader_commit": 1}
    leader = state(1, "n1", last=2, role="Leader")
    append = {"name": "ClientRequest", "node": "n1",
              "params": {"index": 2, "term": 1, "cluster_time_ticks": 0}, "state": leader}
    send = {"name": "AppendEntries", "node": "n1", "params": request, "state": leader}
    n1 = tmp_path / "n1.ndjson"
    n1.write_text("".join(json.dumps(r) + "\n" for r in [
        start(), restart(1, "n1"), persisted(1), append, send,
        start(), restart(1, "n1"), persisted(1)]))  # fmt: skip
    n2 = tmp_path / "n2.ndjson"
    handle = {"name": "HandleAppendEntriesRequest", "node": "n2", "params": request,
              "state": {**state(1, "n1", last=2), "leader_id": "n1"}}
    n2.write_text(json.dumps(handle) + "\n")
    traces = [read_trace(n1), read_trace(n2)]
    trace, dropped = settle_crashes(traces[0])
    assert [e.name for e in dropped] == ["ClientRequest", "AppendEntries"]
    trace, dropped = settle_crashes(traces[0], received_keys(traces))
    assert [e.name for e in trace.events] == ["Restart", "ClientRequest", "AppendEntries",
                                              "Restart"]
    assert dropped == ()


def test_traces_settle_once_and_the_merge_takes_them_as_they_are(tmp_path: Path) -> None:
    """`settle_traces` keeps what it dropped; `merge` settles plain traces itself but never
    touches `Settled` ones (here an unsettled trace wrapped by hand keeps its tail)."""
    path = tmp_path / "n1.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in [
        start(), restart(1), persisted(1), timeout(2), start(), restart(1), persisted(1)]))
    trace = read_trace(path)
    settled = settle_traces([trace])
    assert [e.name for e in settled.lost] == ["Timeout"]
    assert [e.name for e in merge(settled)] == ["Restart", "Restart"] == \
        [e.name for e in merge([trace])]
    assert [e.name for e in merge(Settled((trace,), ()))] == ["Restart", "Timeout", "Restart"]


def test_node_verdicts_count_lost_events_even_when_the_merge_fails(tmp_path: Path) -> None:
    """The report's counts come from the one settling, before the merge: a merge error
    (n2 handles a heartbeat nobody sent) is an ERROR that still counts each trace."""
    n1 = tmp_path / "n1.ndjson"
    n1.write_text("".join(json.dumps(r) + "\n" for r in [
        start(), restart(1), persisted(1), timeout(2), start(), restart(1), persisted(1)]))
    heartbeat = {"type": "HeartbeatRequest", "from": "n3", "to": "n2", "seq": 7, "term": 1,
                 "commit_index": 1, "read_round": 0}
    n2 = tmp_path / "n2.ndjson"
    n2.write_text(json.dumps(_stamped("HandleHeartbeatRequest", "n2", 1, heartbeat)) + "\n")
    verdict = validate_node_traces([n1, n2], Options(spec_dir=tmp_path / "no-spec"))
    summary = verdict.summary()
    assert verdict.valid is None
    assert "receives a message never sent" in summary["reason"]
    assert summary["events_per_trace"] == {str(n1): 2, str(n2): 1}
    assert summary["lost_events"] == 1
