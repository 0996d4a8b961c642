"""The run's `trace` check on real node traces, and its negative controls (no root needed).

A stored run folder is built from an in-memory run (its history, linearizable) plus the
traces of a real 3-node kvserver cluster that the test runs itself (real processes on
127.0.0.1: writes, a follower killed with SIGKILL and restarted, more writes). `analyze`
then validates the traces against the spec: the trace check is true and so is the run.
The same folder with one event of one node trace tampered makes the trace check false
(naming the first rejected event and why) and the run invalid; a Restart that forgot its
durable term, on a node whose WAL the history says the nemesis damaged, makes the trace
check unknown with the fault named (while a fault does not excuse any other rejection);
and a validator that cannot run (no Java) makes it unknown, never a pass.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from jepsen import analysis, runcmd, schedule, store
from jepsen.core import TestConfig as Config
from jepsen.memdb import MemoryDB
from raftcore.validate.tlc import tlc_missing
from tests.kvserver.cluster_harness import Cluster, wait_for

NODES = ("n1", "n2", "n3")


pytestmark = pytest.mark.skipif(tlc_missing() is not None, reason="TLC unavailable")


def _real_traces(root: Path) -> dict[str, Path]:
    cluster = Cluster(root, per_node=lambda node: ["--trace", str(root / f"{node}.ndjson")])
    try:
        cluster.start(3)
        leader = cluster.leader()
        for i in range(10):
            cluster.put(f"k{i}", f"v{i}", via=leader)
        follower = next(p for p in cluster.nodes.values() if p is not leader)
        follower.kill(signal.SIGKILL)
        cluster.put("during", "kill", via=leader)
        follower.start()
        wait_for(lambda: follower.get("/health")[0] == 200, "restarted", follower)
        for i in range(10):
            cluster.put(f"after{i}", "v", via=leader)
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop_all(signal.SIGTERM)
    return {node: root / f"{node}.ndjson" for node in NODES}


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder: an in-memory run's files, made a kvserver run with real traces."""
    traces = _real_traces(tmp_path_factory.mktemp("cluster"))
    cfg = Config(
        name="trace-check", workload="register", nodes=NODES,
        faults=schedule.parse_faults("partition", len(NODES)), nemesis_spec="partition",
        nemesis_interval_s=0.25, concurrency=6, rate=200.0, time_limit_s=1.0, ops_per_key=40,
        threads_per_key=3, seed=5, db_kind="memory", final_read_timeout_s=5.0,
        recovery_timeout_s=5.0,
    )  # fmt: skip
    result = runcmd.execute(cfg, MemoryDB(NODES), tmp_path_factory.mktemp("store"),
                            show_progress=False, out=io.StringIO())  # fmt: skip
    run_dir = result.run_dir
    config = json.loads((run_dir / store.TEST).read_text())
    config["db_kind"] = "kvserver"
    (run_dir / store.TEST).write_text(json.dumps(config))
    for node, path in traces.items():
        (run_dir / node).mkdir(exist_ok=True)
        with path.open("rb") as source, gzip.open(run_dir / node / "trace.jsonl.gz", "wb") as out:
            shutil.copyfileobj(source, out)
    return run_dir


def _copy(run_dir: Path, target: Path) -> Path:
    shutil.copytree(run_dir, target)
    return target


def _tamper_last_client_request(run_dir: Path) -> str:
    """Raise the logged last_index of the leader's last ClientRequest by one."""
    for node in NODES:
        path = run_dir / node / "trace.jsonl.gz"
        lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        found = [n for n, line in enumerate(lines) if '"name":"ClientRequest"' in line]
        if not found:
            continue
        record: dict[str, Any] = json.loads(lines[found[-1]])
        record["state"]["last_index"] += 1
        lines[found[-1]] = json.dumps(record, sort_keys=True, separators=(",", ":"))
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
        return f"{node}/trace.jsonl.gz:{found[-1] + 1}"
    raise AssertionError("no ClientRequest in any trace")


def test_real_traces_make_the_trace_check_and_the_run_valid(stored_run: Path) -> None:
    document = analysis.analyze(stored_run)
    trace = document["checks"]["trace"]
    assert trace["valid"] is True, trace
    assert trace["status"] == "ACCEPTED"
    assert trace["events"] == sum(trace["events_per_trace"].values()) > 100
    assert set(trace["events_per_trace"]) == {f"{n}/trace.jsonl.gz" for n in NODES}
    assert trace["elapsed_s"] > 0
    assert document["valid"] is True
    saved = json.loads((stored_run / store.RESULTS).read_text())
    assert saved["checks"]["trace"]["status"] == "ACCEPTED"


def test_negative_control_a_tampered_trace_makes_the_run_invalid(
        stored_run: Path, tmp_path: Path) -> None:
    run_dir = _copy(stored_run, tmp_path / "run")
    where = _tamper_last_client_request(run_dir)
    document = analysis.analyze(run_dir)
    trace = document["checks"]["trace"]
    assert trace["valid"] is False, trace
    assert trace["status"] == "REJECTED"
    assert trace["first_rejected"]["where"] == where
    assert trace["first_rejected"]["name"] == "ClientRequest"
    assert any(d["field"] == "last_index" for d in trace["disagrees"]), trace
    assert where in trace["detail"]
    assert document["valid"] is False


def _erase_a_restart_vote(run_dir: Path) -> str:
    """Make the restarted follower's Restart forget its durable term, as a destroyed WAL
    does; returns its node."""
    for node in NODES:
        path = run_dir / node / "trace.jsonl.gz"
        lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        restarts = [n for n, line in enumerate(lines) if '"name":"Restart"' in line]
        if len(restarts) < 2:
            continue
        record: dict[str, Any] = json.loads(lines[restarts[1]])
        record["state"]["current_term"] = 0
        lines[restarts[1]] = json.dumps(record, sort_keys=True, separators=(",", ":"))
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
        return node
    raise AssertionError("no node restarted")


def _add_wal_fault(run_dir: Path, node: str) -> None:
    fault = {"type": "info", "process": "nemesis", "f": "start-wal", "key": None,
             "value": {"killed": [node], "wal": "truncated 00000001.wal to 4000 bytes"},
             "time": 1}
    with (run_dir / store.HISTORY).open("a") as history:
        history.write(json.dumps(fault) + "\n")


def test_a_rejected_restart_of_a_node_whose_wal_was_damaged_is_unknown(
        stored_run: Path, tmp_path: Path) -> None:
    run_dir = _copy(stored_run, tmp_path / "run")
    node = _erase_a_restart_vote(run_dir)
    _add_wal_fault(run_dir, node)
    document = analysis.analyze(run_dir)
    trace = document["checks"]["trace"]
    assert trace["valid"] == "unknown", trace
    assert trace["first_rejected"]["name"] == "Restart"
    assert f"Restart of {node}" in trace["reason"]
    assert "WAL fault: truncated 00000001.wal" in trace["reason"]
    assert trace["why"].startswith("the action can be taken"), trace
    assert document["valid"] == "unknown"


def test_a_wal_fault_does_not_excuse_a_rejection_elsewhere(
        stored_run: Path, tmp_path: Path) -> None:
    """A fault on one node excuses only that node's Restart, not a tampered event."""
    run_dir = _copy(stored_run, tmp_path / "run")
    where = _tamper_last_client_request(run_dir)
    _add_wal_fault(run_dir, where.split("/")[0])
    trace = analysis.analyze(run_dir)["checks"]["trace"]
    assert trace["valid"] is False, trace
    assert trace["first_rejected"]["name"] == "ClientRequest"


def test_without_java_the_trace_check_is_unknown_never_a_pass(
        stored_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = _copy(stored_run, tmp_path / "run")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert os.environ["PATH"] == str(tmp_path / "empty")
    document = analysis.analyze(run_dir)
    trace = document["checks"]["trace"]
    assert trace["valid"] == "unknown", trace
    assert trace["reason"].startswith("validator error:")
    assert document["valid"] == "unknown"
