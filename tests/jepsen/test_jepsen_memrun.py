"""Whole runs against the in-memory DB: the harness's control flow end to end without SSH.

A run against the linearizable fake comes back valid with every file in its store folder;
the deliberately stale fake, `--unsafe-stale-reads` and `--no-sessions` are caught; a
stored run re-checked with `analyze` gives the same verdict; the command line's exit codes
are Jepsen's. Runs are short (about 1.5 s each) and in-process: no ports, no processes.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from jepsen import __main__ as cli_main
from jepsen import runcmd, schedule, store
from jepsen.core import TestConfig as Config
from jepsen.memdb import MemoryDB

NODES = ("n1", "n2", "n3", "n4", "n5")


def config(workload: str = "register", nemesis: str = "partition,kill,pause", **extra: object
           ) -> Config:
    values: dict[str, object] = {
        "name": f"mem-{workload}", "workload": workload, "nodes": NODES,
        "faults": schedule.parse_faults(nemesis, len(NODES)), "nemesis_spec": nemesis,
        "nemesis_interval_s": 0.25, "concurrency": 10, "rate": 400.0, "time_limit_s": 1.5,
        "ops_per_key": 60, "threads_per_key": 5, "seed": 11, "db_kind": "memory",
        "final_read_timeout_s": 5.0, "recovery_timeout_s": 5.0,
    }
    values.update(extra)
    return Config(**values)  # type: ignore[arg-type]


def run(cfg: Config, db: MemoryDB, root: Path) -> runcmd.RunResult:
    out = io.StringIO()
    result = runcmd.execute(cfg, db, root, show_progress=False, out=out)
    text = out.getvalue()
    assert f"Results: {result.run_dir}/" in text
    assert text.splitlines()[-2].startswith("Verdict: ")
    return result


def test_valid_run_stores_everything_and_tears_down(tmp_path: Path) -> None:
    db = MemoryDB(NODES, seed=3, flaky_probability=0.05)
    result = run(config(nemesis="all"), db, tmp_path)
    assert result.exit_code == runcmd.EXIT_VALID, result.results
    assert result.results is not None
    assert set(result.results["checks"]) == {"linearizable", "liveness", "stats"}
    assert db.events[0] == "setup"
    assert db.events[-1] == "teardown"
    run_dir = result.run_dir
    for name in ("test.json", "history.jsonl", "history.txt", "results.json", "jepsen.log",
                 "linearizability.html", "timeline.html", "latency-raw.png",
                 "latency-quantiles.png", "rate.png", "index.html"):
        assert (run_dir / name).is_file(), name
    for node in NODES:
        assert (run_dir / node / "node.log").is_file()
    assert (tmp_path / "latest").resolve() == run_dir.resolve()
    assert (tmp_path / run_dir.parent.name / "latest").resolve() == run_dir.resolve()
    stats = result.results["checks"]["stats"]
    assert stats["by_f"]["write"].get("info", 0) > 0, "faults and flakiness produce info ops"
    history = (run_dir / "history.jsonl").read_text().splitlines()
    nemesis_fs = {json.loads(line)["f"] for line in history[1:]
                  if json.loads(line)["process"] == "nemesis"}
    assert {"heal", "recovered", "final-reads"} <= nemesis_fs
    assert any(f.startswith("start-") for f in nemesis_fs)
    processes = {json.loads(line)["process"] for line in history[1:]}
    assert any(isinstance(p, int) and p >= 10 for p in processes), "new process after info"


def test_stale_database_is_caught(tmp_path: Path) -> None:
    result = run(config(nemesis="none"), MemoryDB(NODES, seed=3, stale=True), tmp_path)
    assert result.exit_code == runcmd.EXIT_INVALID
    assert result.results is not None
    assert result.results["checks"]["linearizable"]["valid"] is False
    assert result.results["checks"]["linearizable"]["illegal_keys"]


def test_unsafe_stale_reads_are_caught(tmp_path: Path) -> None:
    result = run(config(nemesis="none", unsafe_stale_reads=True), MemoryDB(NODES, seed=3),
                 tmp_path)
    assert result.exit_code == runcmd.EXIT_INVALID


def test_sessions_are_exactly_once_and_no_sessions_is_caught(tmp_path: Path) -> None:
    good = run(config("sessions"), MemoryDB(NODES, seed=4, flaky_probability=0.05), tmp_path)
    assert good.exit_code == runcmd.EXIT_VALID, good.results
    assert good.results is not None
    assert good.results["checks"]["exactly-once"]["acknowledged"] > 50
    bad = run(config("sessions", no_sessions=True),
              MemoryDB(NODES, seed=4, flaky_probability=0.05), tmp_path)
    assert bad.exit_code == runcmd.EXIT_INVALID
    assert bad.results is not None
    assert bad.results["checks"]["exactly-once"]["duplicated"] > 0


def test_membership_workload_removes_and_adds_nodes(tmp_path: Path) -> None:
    cfg = config("membership", nemesis="membership", nemesis_interval_s=0.2)
    result = run(cfg, MemoryDB(NODES, seed=5), tmp_path)
    assert result.exit_code == runcmd.EXIT_VALID, result.results
    history = (result.run_dir / "history.txt").read_text()
    assert "start-membership" in history
    assert '"added":[' in history


def test_analyze_rechecks_a_stored_run_with_the_same_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(config(nemesis="none"), MemoryDB(NODES, seed=3, stale=True), tmp_path)
    before = json.loads((result.run_dir / "results.json").read_text())
    (result.run_dir / "results.json").unlink()
    code = cli_main.main(["analyze", "--store", str(tmp_path), "-1"])
    assert code == runcmd.EXIT_INVALID
    after = json.loads((result.run_dir / "results.json").read_text())
    assert after["valid"] == before["valid"] is False
    assert after["checks"]["linearizable"]["illegal_keys"] == \
        before["checks"]["linearizable"]["illegal_keys"]
    assert "Verdict: INVALID" in capsys.readouterr().out


def test_analyze_refuses_a_corrupt_history(tmp_path: Path) -> None:
    result = run(config(nemesis="none", time_limit_s=0.3), MemoryDB(NODES), tmp_path)
    with (result.run_dir / "history.jsonl").open("a") as handle:
        handle.write("{broken\n")
    code = cli_main.main(["analyze", str(result.run_dir)])
    assert code == cli_main.EXIT_BAD_ARGUMENTS


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--db", "memory", "--concurrency", "x"],
        ["run", "--db", "memory", "--nemesis", "explode"],
        ["run", "--db", "memory", "--workload", "nope"],
        ["run", "--db", "memory", "--time-limit", "-3"],
        ["run", "--db", "memory", "--nodes", "n1..n3,n2"],
        ["run", "--db", "memory", "--no-sessions"],
        ["run", "--db", "memory", "--workload", "membership", "--nodes", "a,b"],
        ["analyze", "--store", "/nonexistent-store"],
    ],
)
def test_bad_arguments_exit_254(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = cli_main.main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    assert code == cli_main.EXIT_BAD_ARGUMENTS
    assert "error" in capsys.readouterr().err


def test_cli_run_in_memory_prints_verdict_and_exits_by_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--db", "memory-stale", "--nemesis", "none", "--time-limit", "1",
            "--rate", "300", "--seed", "2", "--store", str(tmp_path), "--no-progress",
            "--test-count", "2"]
    assert cli_main.main(argv) == runcmd.EXIT_INVALID
    output = capsys.readouterr().out
    assert output.count("Verdict: INVALID") == 2
    assert len(store.list_runs(tmp_path)) == 2
    assert os.path.islink(tmp_path / "latest")
