"""One simulated run: a safety phase with faults, then a liveness phase on a healed cluster.

Role: the random scheduler (the "nemesis") over `World`, and the verdict of a run, in the
manner of TigerBeetle's VOPR: one seed derives the world's knobs (options.py) and every
fault decision here, so a failing seed replays bit for bit.

Rules:
- Safety phase (`ticks` ticks): partitions (symmetric and one-way) start and heal, servers
  crash (losing unsynced writes) and restart, membership changes and leadership transfers
  are proposed, clients run. Every step is checked (checks.py); the first breach ends the
  run with that violation.
- Liveness phase: heal the network, stop losing, duplicating and reordering messages, restart every
  server, stop the nemesis. Within `liveness_ticks` a leader must emerge, commit an entry
  of its term proposed after the heal, and every member of its configuration must apply
  it. Otherwise the run fails with a `liveness` violation.
- At the end the clients' history must be linearizable (linearizability.py).
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from raftcore.bugs import PlantedBug
from raftcore.sim import linearizability, scenarios
from raftcore.sim.checks import Violation
from raftcore.sim.options import WorldOptions
from raftcore.sim.world import World
from raftcore.types import ConfChangeKind, NodeId, Role


@dataclass(slots=True)
class RunResult:
    seed: int
    nodes: int
    ticks: int
    planted_bug: PlantedBug | None
    violation: Violation | None = None
    violation_tick: int = 0
    linearizability: str = "ok"
    stats: dict[str, int] = field(default_factory=dict)
    scenario: str | None = None
    steps: list[str] = field(default_factory=list)
    """The steps a scenario reached (empty for random runs)."""

    @property
    def ok(self) -> bool:
        return self.violation is None

    def reproduce(self) -> str:
        """The one command that replays this run."""
        command = f"python -m raftcore.sim --seed {self.seed}"
        if self.scenario is not None:
            command += f" --scenario {self.scenario}"
        else:
            command += f" --nodes {self.nodes} --ticks {self.ticks}"
        if self.planted_bug is not None:
            command += f" --bug {self.planted_bug.value}"
        return command


class Nemesis:
    """Random faults and operator actions, at the rates the world's options set."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.rng = world.rng
        self.options = world.options
        self.max_nodes = world.options.nodes + 3
        self.last_leader: tuple[NodeId, int] | None = None
        self.doomed: tuple[NodeId, int, int] | None = None  # (leader, incarnation, tick)

    def act(self) -> None:
        world, rng, options = self.world, self.rng, self.options
        net = world.net
        self._target_leader()
        self._reboot_voters()
        if options.partition_probability and rng.random() < options.partition_probability:
            self._partition()
        if net.blocked and rng.random() < options.heal_probability:
            net.heal()
        for node_id in world.node_ids:
            host = world.hosts[node_id]
            if host.node is not None:
                if options.crash_probability and rng.random() < options.crash_probability:
                    lose = rng.random() < options.unsynced_crash_fraction
                    world.crash(node_id, lose_unsynced=lose)
            elif rng.random() < options.restart_probability:
                world.start(node_id)
        if options.conf_change_probability and rng.random() < options.conf_change_probability:
            # Sometimes a burst: the guard must refuse all but the first until it commits.
            for _ in range(rng.choice((1, 1, 2, 3))):
                self._conf_change()
        if options.transfer_probability and rng.random() < options.transfer_probability:
            leader = world.leader()
            if leader is not None and leader.node is not None:
                voters = sorted(leader.node.membership.voters)
                world.transfer(rng.choice(voters))

    def _reboot_voters(self) -> None:
        """Power-cycle servers right after they granted a vote (a durability probe)."""
        world, rng = self.world, self.rng
        granted, world.voters_granted = world.voters_granted, []
        probability = self.options.crash_after_vote_probability
        if not probability:
            return
        for node_id in granted:
            if world.hosts[node_id].node is not None and rng.random() < probability:
                world.crash(node_id, lose_unsynced=True)
                world.start(node_id)

    def _target_leader(self) -> None:
        """Faults aimed at leaders: crash young leaders, isolate the current one."""
        world, rng, options = self.world, self.rng, self.options
        leader = world.leader()
        if leader is not None and leader.node is not None:
            key = (leader.node_id, leader.node.current_term)
            if key != self.last_leader:
                self.last_leader = key
                if options.conf_change_probability and rng.random() < 0.5:
                    # Operators change membership right after elections too: before the new
                    # leader has committed an entry of its term, the guard must refuse.
                    for _ in range(rng.choice((1, 2))):
                        self._conf_change()
                if rng.random() < options.leader_crash_probability:
                    delay = rng.randint(0, options.election_timeout_ticks // 2)
                    self.doomed = (leader.node_id, leader.incarnation, world.tick_count + delay)
            if rng.random() < options.isolate_leader_probability:
                group = [leader.node_id]
                others = [n for n in world.node_ids if n != leader.node_id]
                if others and rng.random() < 0.5:
                    group.append(others.pop(rng.randrange(len(others))))
                world.net.heal()
                world.net.isolate(group, others, symmetric=True)
        doomed = self.doomed
        if doomed is not None and world.tick_count >= doomed[2]:
            self.doomed = None
            host = world.hosts[doomed[0]]
            if host.node is not None and host.incarnation == doomed[1]:
                world.crash(doomed[0], lose_unsynced=rng.random() < 0.5)

    def _partition(self) -> None:
        world, rng = self.world, self.rng
        ids = list(world.node_ids)
        if len(ids) < 2:
            return
        size = rng.randint(1, len(ids) - 1)
        group = rng.sample(ids, size)
        others = [n for n in ids if n not in group]
        symmetric = rng.random() >= self.options.one_way_fraction
        if rng.random() < 0.5:
            world.net.heal()  # A new partition replaces the old one, or adds to it.
        world.net.isolate(group, others, symmetric=symmetric)

    def _conf_change(self) -> None:
        world, rng = self.world, self.rng
        leader = world.leader()
        if leader is None or leader.node is None:
            return
        membership = leader.node.membership
        voters, learners = sorted(membership.voters), sorted(membership.learners)
        target = self.options.nodes
        choice = rng.random()
        if learners and choice < 0.6:
            world.conf_change(ConfChangeKind.PROMOTE_LEARNER, rng.choice(learners))
        elif learners and choice < 0.7:
            world.conf_change(ConfChangeKind.REMOVE_SERVER, rng.choice(learners))
        elif len(voters) >= target and len(voters) > 1 and choice < 0.85:
            world.conf_change(ConfChangeKind.REMOVE_SERVER, rng.choice(voters))
        elif len(voters) + len(learners) <= target and len(world.node_ids) < self.max_nodes:
            node_id = world.add_node()
            world.conf_change(ConfChangeKind.ADD_LEARNER, node_id)


def run(
    seed: int,
    nodes: int | None = None,
    ticks: int = 2000,
    *,
    planted_bug: PlantedBug | None = None,
    trace: Callable[[str], None] | None = None,
    options: WorldOptions | None = None,
    check_history: bool = True,
    scenario: str | None = None,
    disabled_checks: frozenset[str] = frozenset(),
) -> RunResult:
    """Run one world; never raises for a protocol breach (see `RunResult.violation`)."""
    if options is None:
        options = WorldOptions.from_seed(seed, nodes, planted_bug)
    script = None
    if scenario is not None:
        scenario_nodes, script = scenarios.SCENARIOS[scenario]
        options = scenarios.scenario_options(options, scenario_nodes)
    world = World(options, trace=trace, disabled_checks=disabled_checks)
    result = RunResult(seed, options.nodes, ticks, options.planted_bug, scenario=scenario)
    try:
        if script is not None:
            try:
                result.steps = script(world, random.Random(f"scenario/{seed}"))
            except scenarios.ScenarioStuck as stuck:
                raise Violation("scenario", str(stuck)) from stuck
        else:
            nemesis = Nemesis(world)
            for _ in range(ticks):
                world.tick()
                nemesis.act()
        liveness(world)
        if check_history:
            for client in world.clients.values():
                client.abandon(world.clock + 1)
            verdict = linearizability.check(world.history(), budget_per_key=200_000)
            result.linearizability = verdict.verdict.value
            if verdict.verdict is linearizability.Verdict.ILLEGAL:
                raise Violation(
                    "linearizability", f"the history of key {verdict.key} is not linearizable"
                )
    except Violation as violation:
        result.violation = violation
        result.violation_tick = world.tick_count
    except Exception as error:
        # A broken assertion or a crash inside the core or the simulator is a failure to
        # report with its seed, like any violated invariant.
        name = "assertion" if isinstance(error, AssertionError) else "exception"
        result.violation = Violation(name, f"{error!r} ({_where(error)})")
        result.violation_tick = world.tick_count
    result.stats = stats(world)
    return result


def _where(error: BaseException) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}"


def liveness(world: World) -> None:
    """Heal everything; a leader must commit a fresh entry everywhere in bounded time."""
    world.net.heal()
    world.net.options.loss = 0.0
    world.net.options.duplicate = 0.0
    world.net.options.reorder = 0.0
    for node_id in world.node_ids:
        if world.hosts[node_id].node is None:
            world.start(node_id)
    start_commit = max(h.node.commit_index for h in world.up() if h.node is not None)
    goal = start_commit + 1
    budget = world.options.liveness_ticks
    interval = world.options.election_timeout_ticks
    for elapsed in range(budget):
        world.tick()
        if elapsed % interval == 0:
            world.propose(b"")  # An empty entry: the state machine treats it as a no-op.
        if _converged(world, goal):
            return
    leader = world.leader()
    raise Violation(
        "liveness",
        f"no leader committed and spread index {goal} within {budget} ticks after healing "
        f"(leader: {leader.node_id if leader else 'none'})",
    )


def _converged(world: World, goal: int) -> bool:
    leader = world.leader()
    if leader is None or leader.node is None or leader.node.commit_index < goal:
        return False
    members: list[NodeId] = sorted(leader.node.membership.members())
    for node_id in members:
        host = world.hosts.get(node_id)
        if host is None or host.node is None or host.sm is None:
            return False
        if host.sm.applied_index < goal:
            return False
    return leader.node.role is Role.LEADER


def stats(world: World) -> dict[str, int]:
    net = world.net.stats
    commit = max((h.node.commit_index for h in world.up() if h.node is not None), default=0)
    return {
        "ticks": world.tick_count,
        "delivered": net.delivered,
        "sent": net.sent,
        "lost": net.lost,
        "cut": net.cut,
        "duplicated": net.duplicated,
        "commit_index": commit,
        "applied_entries": world.applied_entries,
        "client_ops": sum(len(c.history) for c in world.clients.values()),
        "client_ops_ok": sum(c.completed for c in world.clients.values()),
        "nodes_total": len(world.node_ids),
        "restarts": sum(h.incarnation - 1 for h in world.hosts.values()),
    }
