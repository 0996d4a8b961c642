"""Real nodes killed with SIGKILL under load: their traces still validate against the spec.

A 3-node cluster (real processes on 127.0.0.1, one `--trace` file each) takes writes from a
background client while nodes are killed with SIGKILL at random moments and restarted,
several times. Each incarnation's trace starts with a Start marker and its Restart, and
Persisted markers only grow. Then `raftcore.validate.validate_node_traces` checks the
merged traces with TLC: ACCEPTED, which needs the Persisted-marker rule (a kill between a
Ready's fsync and its trace write used to leave durable state the trace never reached,
REJECTED at the next Restart). As a negative control, the same traces with one durable
vote erased from a Restart are REJECTED at that Restart.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cluster_harness import Cluster, call, wait_for

from raftcore.validate import Status, validate_node_traces
from raftcore.validate.tlc import tlc_missing

TLC_MISSING = tlc_missing()
pytestmark = pytest.mark.skipif(TLC_MISSING is not None, reason=f"TLC: {TLC_MISSING}")
KILLS = 5


@pytest.fixture(scope="module")
def crashed_traces(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("crashed")
    cluster = Cluster(root, per_node=lambda node: ["--trace", str(root / f"{node}.ndjson")])
    done = threading.Event()

    def load() -> None:
        number = 0
        while not done.is_set():
            for proc in cluster.live():
                call("PUT", proc.url(f"/kv/k{number % 5}"), str(number).encode(), timeout_s=1.0)
                number += 1

    writer = threading.Thread(target=load, daemon=True)
    try:
        cluster.start(3)
        writer.start()
        rng = random.Random(7)
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.2, 0.8))
            victim = rng.choice(list(cluster.nodes.values()))
            victim.kill(signal.SIGKILL)
            time.sleep(rng.uniform(0.1, 0.4))
            victim.start()
            wait_for(lambda v=victim: v.get("/health")[0] == 200, "restarted", victim)
        cluster.put("last", "write")
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        done.set()
        writer.join(timeout=10)
        cluster.stop_all(signal.SIGKILL)
    return sorted(root.glob("n*.ndjson"))


def test_every_incarnation_is_opened_by_a_start_marker_and_persisted_counts_grow(
        crashed_traces: list[Path]) -> None:
    restarts = 0
    for path in crashed_traces:
        records = [json.loads(line) for line in path.read_text().splitlines()]
        assert records[0]["marker"] == "Start"
        covered = events = 0
        for before, record in zip([None, *records], records, strict=False):
            if record.get("marker") == "Start":
                covered = events = 0
            elif record.get("marker") == "Persisted":
                assert events >= record["events"] > covered, (path, record)
                covered = record["events"]
            else:
                if events == 0:
                    assert before is not None
                    assert before.get("marker") == "Start"
                    assert record["name"] == "Restart"
                    restarts += 1
                events += 1
    assert restarts >= 3 + KILLS


def test_sigkilled_nodes_traces_are_accepted(crashed_traces: list[Path]) -> None:
    verdict = validate_node_traces(crashed_traces)
    assert verdict.status is Status.ACCEPTED, str(verdict)
    assert verdict.valid is True
    assert verdict.verdict.events == sum(verdict.events_per_trace.values()) > 1000


def _term_vote(record: dict[str, Any]) -> tuple[int, str]:
    return record["state"]["current_term"], record["state"]["voted_for"]


def _erasable_vote(lines: list[str]) -> int | None:
    """A line whose Restart shows a vote that the crashed incarnation before it persisted
    and never changed after (so settling its tail cannot explain the vote away)."""
    mine: list[dict[str, Any]] = []  # the current incarnation's core events, with positions
    covered = 0
    for number, line in enumerate(lines):
        record = json.loads(line)
        if record.get("marker") == "Start":
            previous, previous_covered, mine, covered = mine, covered, [], 0
        elif record.get("marker") == "Persisted":
            covered = record["events"]
        elif record["name"] == "Restart" and previous:
            wanted = _term_vote(record)
            durable = [r for r in previous[:previous_covered] if r["name"] != "ApplyEntry"]
            tail = {_term_vote(r) for r in previous[previous_covered:]
                    if r["name"] != "ApplyEntry"}
            if wanted[1] and durable and _term_vote(durable[-1]) == wanted and \
                    tail <= {wanted}:
                return number
        if "name" in record:
            mine.append(record)
    return None


def test_negative_control_a_restart_that_forgot_its_vote_is_rejected(
        crashed_traces: list[Path], tmp_path: Path) -> None:
    paths = []
    tampered = None
    for path in crashed_traces:
        lines = path.read_text().splitlines()
        number = _erasable_vote(lines) if tampered is None else None
        if number is not None:
            record = json.loads(lines[number])
            record["state"]["voted_for"] = ""
            lines[number] = json.dumps(record, sort_keys=True, separators=(",", ":"))
            tampered = f"{path.name}:{number + 1}"
        out = tmp_path / path.name
        out.write_text("\n".join(lines) + "\n")
        paths.append(out)
    assert tampered is not None, "no restart of a node that had persisted a vote"
    verdict = validate_node_traces(paths)
    assert verdict.valid is False, str(verdict)
    assert verdict.verdict.failed_event is not None
    assert verdict.verdict.failed_event.where().endswith(tampered)
    summary = verdict.summary()
    assert summary["first_rejected"]["name"] == "Restart"
    assert any(d["field"] == "voted_for" and d["trace"] == "" for d in summary["disagrees"])
