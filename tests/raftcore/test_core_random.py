"""Random schedules over the in-process harness, with Raft's safety properties checked
after every step. A small, independent cousin of the simulator (raftcore/sim): no fault
model beyond loss, duplication, reordering, restarts, membership changes and transfers,
but it runs in the core's own test suite and shrinks nothing, it only reports the seed.
"""

from __future__ import annotations

import contextlib
import random

import pytest
from raftcore_harness import Cluster

from raftcore.bugs import PlantedBug
from raftcore.config import Config
from raftcore.errors import RaftError
from raftcore.types import ConfChange, ConfChangeKind, Role


class Checker:
    """Election safety, log matching, leader completeness, state machine safety,
    commit index monotonicity, and a cluster clock that never goes backwards."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.leaders: dict[int, str] = {}
        self.committed: dict[int, tuple[int, bytes, int]] = {}
        self.commit_seen: dict[str, int] = {}
        self.restarted: set[str] = set()

    def check(self) -> None:
        nodes = self.cluster.nodes
        for node_id, node in nodes.items():
            if node.role is Role.LEADER:
                previous = self.leaders.setdefault(node.current_term, node_id)
                assert previous == node_id, f"two leaders in term {node.current_term}"
            self._check_committed(node_id)
        self._check_log_matching()
        self._check_cluster_clock()

    def _check_cluster_clock(self) -> None:
        """The cluster time carried by entries never goes backwards along a log."""
        for node_id, node in self.cluster.nodes.items():
            entries = node._log.entries(node.first_index, node.last_index + 1)
            times = [entry.cluster_time_ticks for entry in entries]
            assert times == sorted(times), f"cluster time goes backwards in {node_id}'s log"

    def _entries(self, node_id: str) -> dict[int, tuple[int, bytes, int]]:
        node = self.cluster.nodes[node_id]
        entries = node._log.entries(node.first_index, node.last_index + 1)
        return {e.index: (e.term, e.data, int(e.kind)) for e in entries}

    def _check_committed(self, node_id: str) -> None:
        node = self.cluster.nodes[node_id]
        entries = self._entries(node_id)
        # The harness persists every Ready, so a restart keeps the commit index.
        assert node.commit_index >= self.commit_seen.get(node_id, 0) or node_id in self.restarted
        self.commit_seen[node_id] = node.commit_index
        for index in range(node.first_index, node.commit_index + 1):
            entry = entries[index]
            known = self.committed.setdefault(index, entry)
            assert known == entry, f"state machine safety: {node_id} index {index}"
        if node.role is Role.LEADER:
            for index, entry in self.committed.items():
                assert entries.get(index, entry) == entry, f"leader completeness at {index}"
                assert index in entries or index < node.first_index, (
                    f"leader {node_id} lacks committed entry {index}"
                )

    def _check_log_matching(self) -> None:
        logs = {node_id: self._entries(node_id) for node_id in self.cluster.nodes}
        ids = sorted(logs)
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                common = sorted(set(logs[a]) & set(logs[b]), reverse=True)
                for index in common:
                    if logs[a][index][0] == logs[b][index][0]:
                        for earlier in common:
                            if earlier < index:
                                assert logs[a][earlier] == logs[b][earlier], (
                                    f"log matching {a}/{b} at {earlier} below {index}"
                                )
                        break



def step(cluster: Cluster, rng: random.Random, spare: list[str]) -> None:
    nodes = cluster.nodes
    roll = rng.random()
    if roll < 0.30:
        cluster.tick(rng.choice(sorted(nodes)))
    elif roll < 0.62 and cluster.network:
        msg = cluster.network.pop(rng.randrange(len(cluster.network)))
        if rng.random() < 0.1:
            cluster.network.append(msg)  # Duplicate.
        if msg.to_id in nodes:
            nodes[msg.to_id].step(msg)
    elif roll < 0.66 and cluster.network:
        cluster.network.pop(rng.randrange(len(cluster.network)))
    elif roll < 0.85:
        for node_id in sorted(nodes):
            cluster.process_ready(node_id)
    elif roll < 0.93:
        leaders = [n for n in nodes.values() if n.role is Role.LEADER]
        if leaders:
            with contextlib.suppress(RaftError):
                leaders[0].propose(b"v%d" % rng.randrange(1000))
    elif roll < 0.94:
        cluster.restart(rng.choice(sorted(nodes)))
    else:
        membership_change(cluster, rng, spare)


def membership_change(cluster: Cluster, rng: random.Random, spare: list[str]) -> None:
    leaders = [n for n in cluster.nodes.values() if n.role is Role.LEADER]
    if not leaders:
        return
    leader = leaders[0]
    membership = leader.membership
    try:
        choice = rng.random()
        if choice < 0.3 and spare:
            node_id = spare[-1]
            if node_id not in cluster.nodes:
                cluster.add_node(node_id)
            leader.propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, node_id))
            spare.pop()
        elif choice < 0.6 and membership.learners:
            target = rng.choice(sorted(membership.learners))
            leader.propose_conf_change(ConfChange(ConfChangeKind.PROMOTE_LEARNER, target))
        elif choice < 0.8 and len(membership.voters) > 3:
            target = rng.choice(sorted(membership.voters))
            leader.propose_conf_change(ConfChange(ConfChangeKind.REMOVE_SERVER, target))
        else:
            target = rng.choice(sorted(membership.voters))
            leader.transfer_leadership(target)
    except RaftError:
        pass


def random_run(seed: int, bug: PlantedBug | None = None) -> tuple[Cluster, Checker]:
    """3,000 random steps from `seed`, checking safety after each (raises on a breach)."""
    rng = random.Random(seed)
    options = {
        "pre_vote": rng.random() < 0.7,
        "check_quorum": rng.random() < 0.7,
        "max_entries_per_msg": rng.choice([1, 2, 64]),
        "max_inflight_msgs": rng.choice([1, 4, 256]),
        "election_timeout_ticks": rng.choice([3, 5, 10]),
    }
    cluster = Cluster(
        ["n1", "n2", "n3"],
        seed=seed,
        config=lambda i: Config(id=i, planted_bug=bug, **options),
    )
    checker = Checker(cluster)
    spare = ["n6", "n5", "n4"]
    for _ in range(3000):
        before = {n: id(node) for n, node in cluster.nodes.items()}
        step(cluster, rng, spare)
        checker.restarted = {n for n, node in cluster.nodes.items() if before.get(n) != id(node)}
        checker.check()
    return cluster, checker


def test_negative_control_double_vote_is_caught() -> None:
    # The same schedules with a planted bug (two votes in one term) must breach safety.
    for seed in range(16):
        with contextlib.suppress(AssertionError):
            random_run(seed, PlantedBug.DOUBLE_VOTE)
            continue
        return
    raise AssertionError("DOUBLE_VOTE went unnoticed in 16 random schedules")


@pytest.mark.parametrize("seed", range(24))
def test_random_schedule_keeps_raft_safe(seed: int) -> None:
    cluster, checker = random_run(seed)
    # Liveness on a calm network: a leader commits a fresh entry everywhere.
    cluster.network.clear()
    proposed = False
    for _ in range(600):
        cluster.tick_all(1)
        leaders = [n for n in cluster.nodes.values() if n.role is Role.LEADER]
        if not leaders:
            continue
        leader = leaders[0]
        if not proposed:
            try:
                leader.propose(b"final")
                proposed = True
            except RaftError:
                continue
        members = leader.membership.members()
        if all(b"final" in cluster.applied_data(m) for m in members):
            break
    else:
        raise AssertionError(f"seed {seed}: no leader committed a fresh entry everywhere")
    checker.check()
