"""Targeted fault schedules: Figure 8, the July 2015 membership bug, and more.

Role: random worlds find most bugs; these two need a precise sequence of elections,
partitions and crashes that random faults reach only rarely. A scenario drives a `World`
(the same mechanism, checks and trace as every run) with partitions, crashes and stalled
clocks (`World.frozen`, which decides who times out first), then hands the world back to the
runner for the liveness phase and the history check.

Rules:
- A scenario raises `Violation` when the checks catch something (that is the point of
  running one with a planted bug), and `ScenarioStuck` when a setup step does not happen
  within its tick budget, so a scenario that no longer reaches its critical state fails
  loudly instead of passing vacuously. It returns the names of the steps it reached.
- The seed still matters: it decides which nodes play which role and the election jitter.
- Worlds for scenarios are calm (no loss, one-tick delays, no random faults, no clients)
  and replicate one entry per message, the setting in which Figure 8 can happen.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from raftcore.node import Node
from raftcore.sim.options import WorldOptions
from raftcore.sim.world import World
from raftcore.types import ConfChangeKind, NodeId, Role


class ScenarioStuck(Exception):
    """A scenario step did not happen in time (the scenario proves nothing then)."""


def scenario_options(options: WorldOptions, nodes: int) -> WorldOptions:
    """Calm the world's knobs for a scripted scenario (keeps seed and planted bug)."""
    assert options.network is not None
    options.nodes = nodes
    options.network.delay_min_ticks = options.network.delay_max_ticks = 1
    options.network.loss = options.network.duplicate = options.network.reorder = 0.0
    options.clients = 0
    options.check_quorum = False  # Stalled clocks would otherwise keep leader leases alive.
    options.max_entries_per_msg = 1
    options.compact_every_entries = 0
    options.partition_probability = options.crash_probability = 0.0
    options.leader_crash_probability = options.isolate_leader_probability = 0.0
    options.conf_change_probability = options.transfer_probability = 0.0
    return options


def _wait(world: World, step: str, done: Callable[[], bool], budget_ticks: int = 400) -> None:
    for _ in range(budget_ticks):
        if done():
            return
        world.tick()
    if not done():
        raise ScenarioStuck(f"scenario step {step!r} did not happen in {budget_ticks} ticks")


def _only_ticking(world: World, *node_ids: NodeId) -> None:
    world.frozen = set(world.node_ids) - set(node_ids)


def _connect(world: World, *groups: list[NodeId]) -> None:
    """Partition the nodes into `groups` (nodes in no group are cut from everyone)."""
    world.net.heal()
    home = {node_id: i for i, group in enumerate(groups) for node_id in group}
    for a in world.node_ids:
        for b in world.node_ids:
            if a != b and (a not in home or home.get(a) != home.get(b)):
                world.net.block(a, b, symmetric=True)


def _is_leader(world: World, node_id: NodeId) -> bool:
    node = world.hosts[node_id].node
    return node is not None and node.role is Role.LEADER


def _node(world: World, node_id: NodeId) -> Node:
    node = world.hosts[node_id].node
    assert node is not None, f"{node_id} is down"
    return node


def figure8(world: World, rng: random.Random) -> list[str]:
    """Figure 8: an entry of an old term, replicated on a majority by a later leader, must
    not count as committed, or a leader with a conflicting entry of a higher term can win
    and overwrite it. Three nodes a, b, c (a random assignment of n1..n3)."""
    a, b, c = rng.sample(sorted(world.node_ids), 3)
    steps: list[str] = []
    _only_ticking(world, a)
    _wait(world, "a leads", lambda: _is_leader(world, a) and _node(world, a).commit_index >= 1)
    _wait(
        world,
        "all caught up",
        lambda: all(
            world.hosts[n].node is not None and _node(world, n).commit_index >= 1 for n in (b, c)
        ),
    )
    steps.append("a leads")
    _connect(world, [a], [b, c])
    assert world.propose(b""), "a is leader"
    k1 = _node(world, a).last_index  # a's entry of its term, held by a alone
    steps.append("a appended alone")
    _only_ticking(world, b)
    _wait(world, "b leads", lambda: _is_leader(world, b))
    _connect(world, [a], [b], [c])  # b's entry at k1 (a later term) stays on b alone.
    b_term = _node(world, b).current_term
    if _node(world, b).last_index != k1:
        raise ScenarioStuck("b's first entry is not at the index of a's entry")
    steps.append("b appended alone")
    _only_ticking(world, a)
    _connect(world, [a, c], [b])
    _wait(world, "a leads again", lambda: _is_leader(world, a), budget_ticks=800)
    steps.append("a leads again")
    # Cut a off the moment it commits anything, before its new-term entry reaches c.
    _wait(world, "a commits", lambda: _node(world, a).commit_index >= k1)
    _connect(world, [a], [b], [c])
    world.crash(a, lose_unsynced=False)
    steps.append("a committed and crashed")
    _only_ticking(world, b)
    _connect(world, [b, c])
    for _ in range(300):  # b may or may not win: only a planted bug lets it.
        world.tick()
        if _is_leader(world, b) and _node(world, b).current_term > b_term:
            steps.append("b leads again")
            break
    world.frozen = set()
    return steps


def july2015(world: World, rng: random.Random) -> list[str]:
    """The single-server membership bug reported on raft-dev in July 2015: a new leader
    that changes the configuration before committing an entry of its term can let two
    configurations with disjoint quorums both make decisions. Four voters s1..s4 and a
    caught-up learner s5 (a random assignment of n1..n5)."""
    s1, s2, s3, s4, s5 = rng.sample(sorted(world.node_ids), 5)
    steps: list[str] = []
    _only_ticking(world, s1)
    _wait(world, "s1 leads", lambda: _is_leader(world, s1) and _node(world, s1).commit_index >= 1)
    plan = (
        (ConfChangeKind.REMOVE_SERVER, (s1, s2, s3, s4)),
        (ConfChangeKind.ADD_LEARNER, (s1, s2, s3, s4, s5)),
    )
    for change, members in plan:

        def accepted(kind: ConfChangeKind = change) -> bool:
            return world.conf_change(kind, s5)

        _wait(world, "change accepted", accepted)
        index = _node(world, s1).last_index

        def committed(members: tuple[NodeId, ...] = members, index: int = index) -> bool:
            return all(_node(world, n).commit_index >= index for n in members)

        _wait(world, "change committed", committed)
    steps.append("four voters and a learner")
    # C1 = C0 + s5, known to s1 and s5 only.
    _connect(world, [s1, s5], [s2, s3, s4])
    _wait(world, "promote s5", lambda: world.conf_change(ConfChangeKind.PROMOTE_LEARNER, s5))
    steps.append("s1 promoted s5 on a minority")
    # s2 wins under C0 with s3 and s4; its first entries reach s3 only.
    _only_ticking(world, s2)
    _wait(world, "s2 leads", lambda: _is_leader(world, s2), budget_ticks=800)
    _connect(world, [s1, s5], [s2, s3], [s4])
    changed = world.conf_change(ConfChangeKind.REMOVE_SERVER, s1)
    if changed:
        removal = _node(world, s2).last_index
        steps.append("s2 removed s1 before committing an entry of its term")
        _wait(world, "s2 commits the removal", lambda: _node(world, s2).commit_index >= removal)
        steps.append("s2 committed under the new configuration")
    # s1 campaigns under C1 with s4 and s5.
    _only_ticking(world, s1)
    _connect(world, [s1, s4, s5], [s2, s3])
    for _ in range(800):
        world.tick()
        if _is_leader(world, s1) and _node(world, s1).current_term > 2:
            steps.append("s1 leads under the old configuration")
            break
    world.frozen = set()
    return steps


def promoted_learner(world: World, rng: random.Random) -> list[str]:
    """Liveness: a learner promoted in entries it has not received yet must still vote.

    Voters a, b and learner l. The leader a promotes l (committed with b), then removes b
    (on a alone), and reboots, which deposes it. Now a's configuration is
    {a, l} and only l can elect it, while l still believes it is a learner; b's
    configuration {a, b, l} needs a or l, and a refuses b (a's log is longer). If l refuses
    to vote because it thinks it is a learner, no leader can ever be elected again.
    """
    a, b, c = rng.sample(sorted(world.node_ids), 3)
    steps: list[str] = []
    _only_ticking(world, a)
    _wait(world, "a leads", lambda: _is_leader(world, a) and _node(world, a).commit_index >= 1)
    _wait(world, "remove c", lambda: world.conf_change(ConfChangeKind.REMOVE_SERVER, c))
    learner = world.add_node()
    _wait(world, "add learner", lambda: world.conf_change(ConfChangeKind.ADD_LEARNER, learner))
    index = _node(world, a).last_index
    _wait(world, "learner caught up", lambda: _node(world, learner).commit_index >= index)
    steps.append("two voters and a learner")
    _connect(world, [a, b], [learner])
    _wait(world, "promote", lambda: world.conf_change(ConfChangeKind.PROMOTE_LEARNER, learner))
    index = _node(world, a).last_index
    _wait(world, "promotion committed", lambda: _node(world, a).commit_index >= index)
    _connect(world, [a], [b], [learner])
    _wait(world, "remove b", lambda: world.conf_change(ConfChangeKind.REMOVE_SERVER, b))
    steps.append("a alone holds the configuration {a, learner}")
    world.crash(a, lose_unsynced=False)  # A reboot deposes a; its log keeps {a, learner}.
    world.start(a)
    world.frozen = set()
    steps.append("a deposed")
    return steps


def unpersisted_self(world: World, rng: random.Random) -> list[str]:
    """A leader sends its entry before its own fsync (thesis 10.2.1) and crashes before
    the fsync: it must not have counted that entry as its own. Three nodes a, b, c: a's
    entry reaches b alone, b's acknowledgment reaches a while a's write is still
    unsynced, then a loses power; a and c (both without the entry) can elect a leader.
    Only a leader that counts its unpersisted entries (COUNT_UNPERSISTED_SELF) has
    called it committed by then."""
    a, b, c = rng.sample(sorted(world.node_ids), 3)
    steps: list[str] = []
    world.options.fsync_delay_ticks = 20  # Far longer than a round trip.
    _only_ticking(world, a)
    _wait(world, "a leads", lambda: _is_leader(world, a) and _node(world, a).commit_index >= 1)
    _wait(world, "all caught up", lambda: all(_node(world, n).commit_index >= 1 for n in (b, c)))
    _wait(world, "a's disk idle", lambda: world.hosts[a].unpersisted is None)
    steps.append("a leads")
    _connect(world, [a, b], [c])
    assert world.propose(b""), "a is leader"
    index = _node(world, a).last_index
    if world.hosts[a].unpersisted is None:
        raise ScenarioStuck("a's entry did not leave before its persist")
    _wait(world, "b acknowledged", lambda: _node(world, a).progress[b].match_index >= index, 10)
    if world.hosts[a].unpersisted is None:
        raise ScenarioStuck("a's persist finished before b's acknowledgment arrived")
    steps.append("b acknowledged a's unpersisted entry")
    world.crash(a, lose_unsynced=True)
    steps.append("a lost its unsynced entry")
    world.options.fsync_delay_ticks = 0
    _connect(world, [a, c], [b])
    world.start(a)
    _only_ticking(world, c)
    _wait(world, "c leads", lambda: _is_leader(world, c), budget_ticks=800)
    steps.append("c leads without the entry")
    world.frozen = set()
    return steps


SCENARIOS: dict[str, tuple[int, Callable[[World, random.Random], list[str]]]] = {
    "figure8": (3, figure8),
    "july2015": (5, july2015),
    "promoted_learner": (3, promoted_learner),
    "unpersisted_self": (3, unpersisted_self),
}
"""name -> (nodes, scenario)"""
