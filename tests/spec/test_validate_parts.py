"""The parts of raftcore.validate: reading traces (bad input is a clear error), merging
node traces by causality, delivery counts, TLC output parsing, the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from spec_support import needs_tlc, read_lines, write_lines, write_sim_trace

from raftcore.validate import tlagen, tlavalue
from raftcore.validate.merge import check_causality, delivery_counts, merge
from raftcore.validate.tlc import Outcome, parse_output
from raftcore.validate.traceio import TraceError, read_trace
from raftcore.validate.validator import Options, Status, validate


@pytest.fixture(scope="module")
def sim_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sim") / "world.ndjson"
    write_sim_trace(path, 11, nodes=3, ticks=200)
    return path


def _split_by_node(path: Path, folder: Path) -> list[Path]:
    """What real nodes write: one file per node, no header, no driver keys."""
    per_node: dict[str, list[dict[str, Any]]] = {}
    for record in read_lines(path)[1:]:
        clean = {k: record[k] for k in ("name", "node", "params", "state")}
        per_node.setdefault(str(record["node"]), []).append(clean)
    paths = []
    for node, records in sorted(per_node.items()):
        out = folder / f"{node}.ndjson"
        write_lines(out, records)
        paths.append(out)
    return paths


def test_bad_lines_are_clear_errors(tmp_path: Path) -> None:
    cases = {
        "not json": "nope\n",
        "unknown action": json.dumps(
            {"name": "Explode", "node": "n1", "params": {}, "state": {}}
        ) + "\n",
        "missing node": json.dumps({"name": "Restart", "params": {}, "state": {}}) + "\n",
        "wrong sender": json.dumps({"name": "Heartbeat", "node": "n1", "state": {},
                                    "params": {"type": "HeartbeatRequest", "from": "n2",
                                               "to": "n3", "seq": 1, "term": 1}}) + "\n",
        "empty": "\n",
    }
    for what, text in cases.items():
        path = tmp_path / "bad.ndjson"
        path.write_text(text)
        with pytest.raises(TraceError, match=r"bad\.ndjson"):
            read_trace(path)
        del what


def test_a_receive_before_its_send_is_an_error(sim_trace: Path, tmp_path: Path) -> None:
    records = read_lines(sim_trace)
    first_receive = next(n for n, r in enumerate(records) if r.get("name") == "UpdateTerm")
    moved = [records[0], records[first_receive], *records[1:first_receive],
             *records[first_receive + 1 :]]  # fmt: skip
    path = tmp_path / "reordered.ndjson"
    write_lines(path, moved)
    with pytest.raises(TraceError, match="before its send"):
        check_causality(list(read_trace(path).events))
    verdict = validate([path])
    assert verdict.status is Status.ERROR  # bad input is never REJECTED or ACCEPTED


def test_node_traces_merge_causally_and_keep_each_nodes_order(
    sim_trace: Path, tmp_path: Path
) -> None:
    paths = _split_by_node(sim_trace, tmp_path)
    traces = [read_trace(p) for p in paths]
    merged = merge(traces)
    assert len(merged) == sum(len(t.events) for t in traces)
    check_causality(merged)
    for trace in traces:
        mine = [e for e in merged if e.node == trace.events[0].node]
        assert mine == list(trace.events)


def test_a_receive_whose_send_is_missing_cannot_merge(sim_trace: Path, tmp_path: Path) -> None:
    paths = _split_by_node(sim_trace, tmp_path)
    for path in paths:  # drop the sends of the node that campaigned first
        records = read_lines(path)
        if any(r["name"] == "RequestVote" for r in records):
            write_lines(path, [r for r in records if r["name"] != "RequestVote"])
            break
    with pytest.raises(TraceError, match="never sent"):
        merge([read_trace(p) for p in paths])


def test_delivery_counts_add_up_to_the_receives(sim_trace: Path) -> None:
    events = list(read_trace(sim_trace).events)
    counts = delivery_counts(events)
    assert sum(counts) == sum(1 for e in events if e.name.startswith("Handle"))


@needs_tlc
def test_merged_node_traces_are_accepted(sim_trace: Path, tmp_path: Path) -> None:
    paths = _split_by_node(sim_trace, tmp_path)
    verdict = validate(paths)
    assert verdict.status is Status.ACCEPTED, verdict.reason
    assert "initial voters" in " ".join(verdict.notes)


@needs_tlc
def test_unpacked_events_and_the_exhaustive_run_accept_too(
    sim_trace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events whose numbers would not fit TLC's integers are written unpacked, and the
    exhaustive run (breadth-first, the one that decides rejections) takes every event too."""
    monkeypatch.setattr(tlagen, "_INT_MAX", 0)  # nothing fits: every event unpacked
    verdict = validate([sim_trace], Options(fast_run=False, keep_dir=tmp_path))
    assert verdict.status is Status.ACCEPTED, verdict.reason
    assert verdict.tlc is not None
    assert verdict.tlc.depth == verdict.events + 1
    module = (tmp_path / "TraceData.tla").read_text(encoding="utf-8")
    raw = module.split("TraceRaw == <<", 1)[1].split("\n>>", 1)[0].strip().splitlines()
    assert len(raw) == verdict.events
    lengths = {len(line.strip(",<>").split(",")) for line in raw}
    assert lengths <= {5, 6, 7}
    assert 7 in lengths  # a receive, with its send's position


def test_tlc_output_is_classified_by_exit_code_and_completion() -> None:
    done = "Model checking completed. No error has been found.\n" \
        "10 states generated, 9 distinct states found, 0 states left on queue.\n" \
        "The depth of the complete state graph search is 5.\n"
    ok = parse_output(0, done)
    assert ok.outcome is Outcome.OK
    assert (ok.depth, ok.distinct_states) == (5, 9)
    assert parse_output(0, "no completion line").outcome is Outcome.ERROR
    assert parse_output(12, "Error: Invariant Foo is violated.").violated == "Foo"
    for code in (150, 151, 152, 153, 255, 75, 1):
        assert parse_output(code, done).outcome is Outcome.ERROR


def test_printed_tla_values_parse() -> None:
    text = '<<"diag-after", "n1", [role |-> "Leader", voters |-> {"n2", "n1"}, ' \
        'match_index |-> ("n2" :> 3 @@ "n3" :> -1), log |-> <<>>, ok |-> TRUE]>>'
    values = tlavalue.printed_tuples("noise\n" + text + "\nmore", "diag-after")
    assert values == [["diag-after", "n1", {"role": "Leader", "voters": ["n1", "n2"],
                                            "match_index": {"n2": 3, "n3": -1}, "log": [],
                                            "ok": True}]]  # fmt: skip


@needs_tlc
def test_command_line_exit_codes(sim_trace: Path, tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "raftcore.validate", *args],
            capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip

    accepted = cli(str(sim_trace))
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert accepted.stdout.startswith("ACCEPTED")
    records = read_lines(sim_trace)
    target = next(n for n, r in enumerate(records) if r.get("name") == "AdvanceCommitIndex")
    records[target]["params"]["commit_index"] += 1
    tampered = tmp_path / "tampered.ndjson"
    write_lines(tampered, records)
    rejected = cli(str(tampered))
    assert rejected.returncode == 1, rejected.stdout + rejected.stderr
    assert rejected.stdout.startswith("REJECTED")
    assert "AdvanceCommitIndex" in rejected.stdout
    missing = cli(str(tmp_path / "missing.ndjson"))
    assert missing.returncode == 2
    assert missing.stdout.startswith("ERROR")
