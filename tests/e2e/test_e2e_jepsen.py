"""End to end, as root: five local hosts, real kvserver nodes over SSH, real faults.

`hosts up`; a 60-second register run with partitions and kills that comes back valid (its
node traces accepted by the spec); a sessions run that comes back valid; the two negative
controls (`--unsafe-stale-reads`, `--no-sessions`) caught; `hosts down`; and nothing left
behind (no namespace, link, process, firewall chain or state file). Every run goes through
the command line a person would type, and its store folder is checked for what a person
would open.

The hosts use a prefix, subnet and state directory of their own, so these tests never
touch local hosts a person has up. Every run also validates its node traces against the
spec with TLC (the `trace` check, which the valid runs require ACCEPTED). Runtime: about
15 to 20 minutes on two cores, most of it TLC.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jepsen import hosts

REPO = Path(__file__).resolve().parents[2]
PREFIX, SUBNET = "rke", "10.77.203.0/24"
MISSING = hosts.missing_tools()

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, sshd)"),
    pytest.mark.skipif(bool(MISSING), reason=f"missing {', '.join(MISSING)}"),
    pytest.mark.timeout(1500),
]


@dataclass(frozen=True)
class Hosts:
    state_dir: Path
    store: Path

    def args(self) -> list[str]:
        return ["--prefix", PREFIX, "--subnet", SUBNET, "--state-dir", str(self.state_dir)]

    def run_args(self) -> list[str]:
        return ["--hosts-prefix", PREFIX, "--hosts-subnet", SUBNET,
                "--hosts-state-dir", str(self.state_dir), "--store", str(self.store)]


def jepsen(*argv: str, timeout_s: float = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jepsen", *argv], cwd=REPO, text=True,
                          capture_output=True, timeout=timeout_s, check=False)


@pytest.fixture(scope="module")
def local_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    base = tmp_path_factory.mktemp("e2e")
    made = Hosts(base / "hosts", base / "store")
    config = hosts.HostsConfig(prefix=PREFIX, subnet=SUBNET, state_dir=made.state_dir)
    try:
        up = jepsen("hosts", *made.args(), "up", "--count", "5", timeout_s=120)
        assert up.returncode == 0, up.stderr
        assert "made 5 local hosts" in up.stdout
        yield made
    finally:
        down = jepsen("hosts", *made.args(), "down", timeout_s=120)
        assert down.returncode == 0, down.stderr
    assert hosts.leftovers(config) == []


def run(local_hosts: Hosts, *argv: str) -> tuple[int, dict[str, Any], Path, str]:
    done = jepsen("run", *local_hosts.run_args(), "--no-progress", *argv)
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    assert lines[-2].startswith("Verdict: "), done.stdout + done.stderr
    assert lines[-1].startswith("Results: "), done.stdout
    run_dir = Path(lines[-1].split()[1].rstrip("/"))
    results = json.loads((run_dir / "results.json").read_text())
    return done.returncode, results, run_dir, done.stdout + done.stderr


def history_checks_valid(results: dict[str, Any]) -> None:
    """Every check valid, the trace check included: the spec accepted the merged node
    traces. So the run is valid."""
    for name, check in results["checks"].items():
        assert check["valid"] is True, (name, check)
    trace = results["checks"]["trace"]
    assert trace["status"] == "ACCEPTED", trace
    assert trace["events"] > 1000, trace
    assert results["valid"] is True


def expected_code(results: dict[str, Any]) -> int:
    return {True: 0, False: 1}.get(results["valid"], 2)


def test_register_with_partitions_and_kills_is_valid(local_hosts: Hosts) -> None:
    code, results, run_dir, output = run(
        local_hosts, "--workload", "register", "--nemesis", "partition,kill",
        "--nemesis-interval", "8", "--time-limit", "60", "--seed", "1")
    history_checks_valid(results)
    assert code == expected_code(results), output
    stats = results["checks"]["stats"]
    assert stats["ok"] > 500, stats
    for name in ("history.jsonl", "history.txt", "jepsen.log", "timeline.html",
                 "linearizability.html", "latency-raw.png", "latency-quantiles.png",
                 "rate.png", "index.html"):
        assert (run_dir / name).stat().st_size > 0, name
    for node in ("n1", "n2", "n3", "n4", "n5"):
        assert (run_dir / node / "node.log").stat().st_size > 0
        assert (run_dir / node / "trace.jsonl.gz").stat().st_size > 0
    history = (run_dir / "history.txt").read_text()
    assert "start-partition" in history
    assert "start-kill" in history
    assert results["checks"]["liveness"]["recovered"] is True


def test_unsafe_stale_reads_are_caught(local_hosts: Hosts) -> None:
    code, results, _, output = run(
        local_hosts, "--workload", "register", "--nemesis", "partition",
        "--nemesis-interval", "4", "--time-limit", "30", "--unsafe-stale-reads",
        "--seed", "2")
    assert code == 1, output
    assert results["checks"]["linearizable"]["valid"] is False
    assert results["checks"]["linearizable"]["illegal_keys"]


def test_sessions_are_exactly_once(local_hosts: Hosts) -> None:
    code, results, _, output = run(
        local_hosts, "--workload", "sessions", "--nemesis", "partition,kill",
        "--nemesis-interval", "6", "--time-limit", "30", "--seed", "3")
    history_checks_valid(results)
    assert code == expected_code(results), output
    assert results["checks"]["exactly-once"]["acknowledged"] > 100


def test_no_sessions_duplicates_are_caught(local_hosts: Hosts) -> None:
    code, results, _, output = run(
        local_hosts, "--workload", "sessions", "--no-sessions", "--nemesis", "partition",
        "--nemesis-interval", "6", "--time-limit", "20", "--seed", "4")
    assert code == 1, output
    assert results["checks"]["exactly-once"]["duplicated"] > 0
