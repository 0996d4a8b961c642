"""`--trace FILE`: real nodes write NDJSON trace events in the format of docs/trace-format.md.

One 3-node cluster (real processes on 127.0.0.1) runs with a trace file per node through
elections, joins, writes (with and without a session), a linearizable read and a leader
kill and restart; then every line of every file is checked against the documented
format, and every message a node handled is matched to the send another node recorded.
The checker is shown to catch tampered traces (negative controls).
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest
from cluster_harness import Cluster, call, wait_for

DOC = Path(__file__).resolve().parents[2] / "docs" / "trace-format.md"
STATE_KEYS = {"current_term", "role", "voted_for", "leader_id", "commit_index", "last_index",
              "last_term", "snapshot_index", "snapshot_term", "voters", "learners"}
APPLY_STATE_KEYS = {"applied_index", "cluster_time_ticks", "sessions"}
ROLES = {"Follower", "PreCandidate", "Candidate", "Leader"}
MARKERS = {"Start", "Persisted"}
SENDS = {"RequestVote", "AppendEntries", "Heartbeat", "InstallSnapshot", "TimeoutNow"}


class TraceError(AssertionError):
    pass


def documented_actions() -> set[str]:
    text = DOC.read_text()
    actions = text.split("## Actions", 1)[1].split("Rules a validator", 1)[0]
    return set(re.findall(r"^\| `(\w+)` \|", actions, re.MULTILINE)) | {"ApplyEntry"}


def check_traces(traces: dict[str, list[str]]) -> int:
    """Check every line; raise TraceError on the first problem; the number of events."""
    actions = documented_actions()
    sent: set[tuple[str, int]] = set()
    received: list[tuple[str, str, int]] = []
    count = 0
    for node, lines in traces.items():
        applied = 0
        first = True
        for number, line in enumerate(lines, 1):
            where = f"{node} line {number}"
            try:
                event = json.loads(line)
            except ValueError:
                raise TraceError(f"{where}: not JSON: {line[:80]!r}") from None
            if not isinstance(event, dict) or event.get("node") != node:
                raise TraceError(f"{where}: not an event of {node}")
            if event.get("marker") in MARKERS and "name" not in event:
                if number == 1 and event["marker"] != "Start":
                    raise TraceError(f"{where}: a trace starts with a Start marker")
                continue
            name, params, state = event.get("name"), event.get("params"), event.get("state")
            if name not in actions or not isinstance(params, dict) or not isinstance(state, dict):
                raise TraceError(f"{where}: unknown action or shape: {name!r}")
            if first and name != "Restart":
                raise TraceError(f"{where}: a node's first event is Restart")
            first = False
            if name == "Restart":
                applied = 0
            if name == "ApplyEntry":
                if set(state) != APPLY_STATE_KEYS or state["applied_index"] != params["index"]:
                    raise TraceError(f"{where}: bad ApplyEntry state")
                if applied and params["index"] != applied + 1:
                    raise TraceError(f"{where}: applied {params['index']} after {applied}")
                applied = params["index"]
            elif not set(state) >= STATE_KEYS or state["role"] not in ROLES:
                raise TraceError(f"{where}: bad state image")
            if name in SENDS:
                sent.add((params["from"], params["seq"]))
            elif name.startswith("Handle") and "seq" in params:
                received.append((where, params["from"], params["seq"]))
                reply = params.get("reply")
                if isinstance(reply, dict):
                    sent.add((reply["from"], reply["seq"]))
            count += 1
    for where, sender, seq in received:
        if (sender, seq) not in sent:
            raise TraceError(f"{where}: handled message ({sender}, {seq}) was never sent")
    return count


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    root = tmp_path_factory.mktemp("traced")
    cluster = Cluster(root, per_node=lambda node: ["--trace", str(root / f"{node}.ndjson")])
    try:
        cluster.start(3)
        leader = cluster.leader()
        status, doc = call("POST", leader.url("/sessions"))
        assert status == 201, doc
        headers = {"Client-Id": str(doc["client_id"]), "Request-Seq": "1"}
        assert call("PUT", leader.url("/kv/s"), b"1", headers)[0] == 200
        for i in range(20):
            cluster.put(f"k{i}", f"v{i}", via=leader)
        assert call("GET", leader.url("/kv/k3"))[0] == 200
        leader.kill(signal.SIGKILL)
        cluster.put("after", "kill")
        leader.start()
        wait_for(lambda: call("GET", leader.url("/kv/after?consistency=stale"))[0] == 200,
                 "the restarted node catches up", leader)
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop_all(signal.SIGTERM)
    return {node: (root / f"{node}.ndjson").read_text().splitlines()
            for node in cluster.nodes}


def test_every_node_writes_valid_events_and_every_receive_has_its_send(
        traces: dict[str, list[str]]) -> None:
    assert check_traces(traces) > 100
    names = {json.loads(line).get("name") for lines in traces.values() for line in lines}
    assert {"Restart", "BecomeLeader", "ClientRequest", "AppendEntries",
            "HandleAppendEntriesRequest", "AddLearner", "PromoteLearner", "ReadIndex",
            "ReadIndexReady", "ApplyEntry"} <= names
    outcomes = {json.loads(line)["params"].get("outcome")
                for lines in traces.values() for line in lines
                if json.loads(line).get("name") == "ApplyEntry"}
    assert {"registered", "applied", "noop"} <= outcomes
    restarts = sum(json.loads(line).get("name") == "Restart"
                   for lines in traces.values() for line in lines)
    assert restarts >= 4  # three first starts and the killed leader's restart


def test_negative_control_a_dropped_send_is_caught(traces: dict[str, list[str]]) -> None:
    tampered = {node: list(lines) for node, lines in traces.items()}
    received = {(event["params"]["from"], event["params"]["seq"])
                for lines in traces.values() for event in map(json.loads, lines)
                if event.get("name") == "HandleAppendEntriesRequest"}
    for lines in tampered.values():
        for i, line in enumerate(lines):
            event = json.loads(line)
            # A send nobody received (lost on the way, or sent before a peer was up) may
            # go unnoticed: remove one that was received.
            if event.get("name") == "AppendEntries" and (
                    event["params"]["from"], event["params"]["seq"]) in received:
                del lines[i]
                with pytest.raises(TraceError, match="never sent"):
                    check_traces(tampered)
                return
    pytest.fail("no AppendEntries event to remove")


def test_negative_control_a_cut_line_and_an_unknown_action_are_caught(
        traces: dict[str, list[str]]) -> None:
    node = next(iter(traces))
    cut = {**traces, node: [*traces[node][:-1], traces[node][-1][:40]]}
    with pytest.raises(TraceError, match="not JSON"):
        check_traces(cut)
    renamed = {**traces, node: [traces[node][1].replace('"Restart"', '"Reboot"')]}
    with pytest.raises(TraceError, match="unknown action"):
        check_traces(renamed)
