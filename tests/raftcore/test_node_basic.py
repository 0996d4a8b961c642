"""Smoke tests of the Node API: election, replication, restart, through the harness."""

from __future__ import annotations

from raftcore_harness import Cluster

from raftcore.types import ConfChange, ConfChangeKind, Role


def test_three_nodes_elect_one_leader_and_replicate() -> None:
    cluster = Cluster(["n1", "n2", "n3"])
    leader = cluster.elect("n1")
    assert leader.current_term == 1
    assert [n.role for n in cluster.nodes.values()].count(Role.LEADER) == 1
    for k in range(20):
        leader.propose(b"cmd%d" % k)
    cluster.stabilize()
    cluster.tick_all(2)
    expected = [b"cmd%d" % k for k in range(20)]
    for node_id in cluster.nodes:
        assert cluster.applied_data(node_id) == expected
        assert cluster.nodes[node_id].commit_index == 21


def test_restart_recovers_term_vote_and_log() -> None:
    cluster = Cluster(["n1", "n2", "n3"])
    leader = cluster.elect("n2")
    leader.propose(b"a")
    cluster.stabilize()
    before = cluster.nodes["n3"]
    node = cluster.restart("n3")
    assert node.current_term == before.current_term
    assert node.voted_for == before.voted_for
    assert node.last_index == before.last_index
    assert node.commit_index >= 1
    assert node.role is Role.FOLLOWER


def test_ticks_alone_elect_a_leader() -> None:
    cluster = Cluster(["n1", "n2", "n3", "n4", "n5"], seed=7)
    cluster.tick_all(40)
    leaders = [n for n in cluster.nodes.values() if n.role is Role.LEADER]
    assert len(leaders) == 1
    assert all(n.leader_id == leaders[0].id for n in cluster.nodes.values())


def test_restart_with_configuration_entries_in_the_log() -> None:
    cluster = Cluster(["n1", "n2", "n3"])
    leader = cluster.elect("n1")
    cluster.add_node("n4")
    leader.propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, "n4"))
    cluster.stabilize()
    node = cluster.restart("n2")
    assert node.membership.learners == {"n4"}
    assert node.pending_conf_index == 2


def test_cluster_clock_starts_at_the_last_entry_and_advances_per_leader_tick() -> None:
    cluster = Cluster(["n1", "n2", "n3"])
    leader = cluster.elect("n1")
    cluster.tick_all(5)
    index = leader.propose(b"a")
    cluster.stabilize()
    first = cluster.storages["n1"].entries(index, index + 1)[0].cluster_time_ticks
    assert first == 5
    # A new leader continues from the last entry's time, never below it.
    cluster.down.add("n1")
    cluster.tick_all(40)
    new_leader = cluster.leader()
    assert new_leader.id != "n1"
    later = new_leader.propose(b"b")
    cluster.stabilize()
    entries = cluster.storages[new_leader.id].entries(1, later + 1)
    times = [entry.cluster_time_ticks for entry in entries]
    assert times == sorted(times)
    assert times[-1] >= first
