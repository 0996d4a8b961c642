"""Integration: 3 to 4 real node processes on 127.0.0.1 (kernel-chosen ports).

Each test starts its own cluster under tmp_path and kills every process it started.
"""

from __future__ import annotations

import re
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_harness import Cluster, Proc, call, wait_for


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    made = Cluster(tmp_path)
    try:
        yield made
    except BaseException:
        print(made.logs())
        raise
    finally:
        made.stop_all()


def read(proc: object, key: str, consistency: str = "linearizable") -> str | None:
    status, doc = call("GET", proc.url(f"/kv/{key}?consistency={consistency}"))  # type: ignore[attr-defined]
    return doc["value"] if status == 200 else None


def test_elect_write_kill_leader_keep_writing_restart_and_catch_up(cluster: Cluster) -> None:
    cluster.start(3)
    leader = cluster.leader()
    for i in range(10):
        cluster.put(f"k{i}", f"v{i}", via=leader)
    assert all(read(p, "k9") == "v9" for p in cluster.live() if p is leader)
    leader.kill(signal.SIGKILL)
    killed_at = time.monotonic()
    cluster.put("after", "kill")
    unavailable_s = time.monotonic() - killed_at
    for i in range(10, 20):
        cluster.put(f"k{i}", f"v{i}")
    leader.start()
    wait_for(lambda: read(leader, "k19", "stale") == "v19", "restarted node catches up", leader)
    assert read(leader, "after", "stale") == "kill"
    assert cluster.leader() is not None
    print(f"unavailability after kill -9 of the leader: {unavailable_s:.2f} s")
    assert unavailable_s < 5.0


def test_join_a_fourth_node_then_remove_one(cluster: Cluster) -> None:
    cluster.start(3)
    cluster.put("before", "join")
    fourth = cluster.add("n4", join=cluster.nodes["n1"].http)
    wait_for(lambda: "n4" in cluster.voters(), "n4 promoted to voter")
    wait_for(lambda: read(fourth, "before", "stale") == "join", "n4 has the data", fourth)
    def remove_n3() -> bool:
        # n4 counts as a voter once its promotion is appended; until that entry commits, the
        # leader refuses the next change with a definite 503 "busy", which a client retries.
        status, doc = call("POST", cluster.nodes["n2"].url("/cluster/remove"), b'{"id": "n3"}',
                           {"Content-Type": "application/json"})
        assert status == 200 or (status == 503 and doc["definite"]), doc
        return status == 200

    wait_for(remove_n3, "the removal of n3 accepted (it stayed busy)")
    wait_for(lambda: cluster.voters(fourth) == {"n1", "n2", "n4"}, "n3 removed")
    cluster.nodes["n3"].kill()
    cluster.put("after", "remove")
    assert read(fourth, "after") == "remove"


def test_a_node_removed_and_added_back_with_wiped_data_survives_a_full_restart(
        cluster: Cluster) -> None:
    """The Jepsen membership fault: remove n4, wipe it, add it back under its id, then
    SIGKILL and restart everyone. Replaying the log re-applies n4's old removal; that must
    not drop the peer a later entry added back (n4 was cut off, stuck as a pre-candidate)."""
    cluster.start(3)
    first = cluster.nodes["n1"]
    fourth = cluster.add("n4", join=first.http)
    wait_for(lambda: "n4" in cluster.voters(first), "n4 promoted to voter")
    status, doc = call("POST", first.url("/cluster/remove"), b'{"id": "n4"}',
                       {"Content-Type": "application/json"})
    assert status == 200, doc
    fourth.kill()
    shutil.rmtree(fourth.data_dir)
    fourth.start(first.http)
    wait_for(lambda: "n4" in cluster.voters(first), "n4 added back as a voter")
    cluster.put("before", "restart", via=first)
    for proc in cluster.live():
        proc.kill()
    for proc in cluster.nodes.values():
        proc.start(first.http)
    cluster.put("after", "restart", via=first)
    wait_for(lambda: read(fourth, "after", "stale") == "restart", "n4 caught up", fourth)
    time.sleep(3.0)  # several election timeouts: a cut-off n4 would stop hearing the leader
    leader = cluster.leader()
    status, doc = fourth.get("/cluster")
    role = "Leader" if leader.node_id == "n4" else "Follower"  # n4 may win the election
    assert (doc["leader_id"], doc["role"]) == (leader.node_id, role), doc
    assert read(fourth, "before") == "restart"


def test_leadership_transfer(cluster: Cluster) -> None:
    cluster.start(3)
    leader = cluster.leader()
    target = next(p for p in cluster.live() if p is not leader)
    status, doc = call("POST", leader.url("/cluster/transfer-leadership"),
                       f'{{"id": "{target.node_id}"}}'.encode(),
                       {"Content-Type": "application/json"})
    assert status == 200, doc
    assert doc["leader"] == target.node_id
    assert cluster.leader() is target
    cluster.put("k", "v", via=target)


def test_a_follower_catches_up_by_snapshot(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, extra=["--snapshot-entries", "20"])
    try:
        cluster.start(3)
        leader = cluster.leader()
        lagging = next(p for p in cluster.live() if p is not leader)
        lagging.kill()
        for i in range(80):
            cluster.put(f"k{i}", f"v{i}", via=leader)
        assert leader.get("/cluster")[1]["snapshot_index"] > 0
        lagging.start()
        wait_for(lambda: read(lagging, "k79", "stale") == "v79", "caught up", lagging)
        assert read(lagging, "k0", "stale") == "v0"
        assert lagging.get("/cluster")[1]["snapshot_index"] > 0
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop_all()


def acknowledged_writes_lost_after_sigkill_all(cluster: Cluster) -> tuple[list[str], int]:
    """Write from 8 threads until 200 writes are acknowledged, SIGKILL every node, restart
    them all, and read back: (keys whose acknowledged value is gone, writes acknowledged)."""
    acked: dict[str, str] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(worker: int) -> None:
        i = 0
        while not stop.is_set():
            key, value = f"w{worker}-{i}", f"{worker}:{i}"
            for proc in list(cluster.nodes.values()):
                status, _ = call("PUT", proc.url(f"/kv/{key}"), value.encode(), timeout_s=2)
                if status == 200:
                    with lock:
                        acked[key] = value
                    break
            i += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(acked) >= 200, "200 acknowledged writes", timeout_s=30)
    for proc in cluster.nodes.values():
        proc.kill(signal.SIGKILL)
    stop.set()
    for thread in threads:
        thread.join()
    with lock:
        snapshot = dict(acked)
    for proc in cluster.nodes.values():
        proc.start()
    leader = cluster.leader()
    return [k for k, v in snapshot.items() if read(leader, k) != v], len(snapshot)


def test_sigkill_all_during_writes_loses_no_acknowledged_write(cluster: Cluster) -> None:
    cluster.start(3)
    missing, acked = acknowledged_writes_lost_after_sigkill_all(cluster)
    assert acked >= 200
    assert not missing, f"{len(missing)} of {acked} acknowledged writes lost"


def test_negative_control_acknowledging_before_persisting_is_caught(tmp_path: Path) -> None:
    """The same check against nodes with a planted bug that acknowledges entries before
    they reach the WAL file: it must find acknowledged writes missing."""
    cluster = Cluster(tmp_path, extra=["--planted-bug", "ack-before-persist"])
    try:
        cluster.start(3)
        missing, acked = acknowledged_writes_lost_after_sigkill_all(cluster)
    finally:
        cluster.stop_all()
    assert acked >= 200
    assert missing, "the durability check did not notice acknowledged writes being lost"


def test_fsync_batch_mode_syncs_on_the_timer_and_survives_a_process_crash(
        tmp_path: Path) -> None:
    """--fsync batch: a Ready is written at once and fsynced by the ticker, so many writes
    share an fsync; a process crash (the OS keeps what was written) loses nothing."""
    cluster = Cluster(tmp_path, extra=["--fsync", "batch"])
    try:
        cluster.start(3)
        leader = cluster.leader()
        before = wal_fsyncs(leader)
        for i in range(60):
            cluster.put(f"b{i}", f"v{i}", via=leader)
        synced = wal_fsyncs(leader) - before
        assert synced < 30, f"{synced} fsyncs for 60 sequential writes"
        cluster.stop_all(signal.SIGKILL)
        for proc in cluster.nodes.values():
            proc.start()
        new_leader = cluster.leader()
        assert [read(new_leader, f"b{i}") for i in range(60)] == [f"v{i}" for i in range(60)]
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop_all()


def wal_fsyncs(proc: Proc) -> int:
    status, text = proc.get("/metrics")
    assert status == 200
    match = re.search(r"^raftkv_wal_fsyncs (\d+)", text, re.MULTILINE)
    assert match is not None, text
    return int(match.group(1))


def test_one_node_with_the_aiohttp_server_alone_and_the_asyncio_loop(tmp_path: Path) -> None:
    """The alternatives to the defaults (HTTP front, uvloop when installed) still serve."""
    cluster = Cluster(tmp_path, extra=["--http-server", "aiohttp", "--event-loop", "asyncio"])
    try:
        cluster.start(1)
        node = cluster.nodes["n1"]
        assert cluster.put("k", "v", via=node) > 0
        assert read(node, "k") == "v"
        status, _ = call("GET", node.url("/kv/absent"))
        assert status == 404
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop_all()
