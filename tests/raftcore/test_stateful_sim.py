"""A hypothesis RuleBasedStateMachine over the simulator: hypothesis chooses the schedule.

Every rule is one step of the world (ticks, deliveries in any order, drops, duplicates,
partitions, crashes, restarts, client traffic, membership changes, leadership transfers,
compaction); the simulator's safety checks run inside each step and raise `Violation` at
the first breach, and the clients' history is checked for linearizability at the end.
A failure is shrunk and printed by hypothesis as a replayable program.

The negative controls run the same machine with planted bugs and expect a violation.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from raftcore.bugs import PlantedBug
from raftcore.sim import Violation, World, WorldOptions, linearizability
from raftcore.sim.clients import ClientOptions, ClientRequest
from raftcore.sim.network import NetworkOptions
from raftcore.types import ConfChangeKind, Role


def world_options(bug: PlantedBug | None, pre_vote: bool, nodes: int = 3) -> WorldOptions:
    return WorldOptions(
        seed=7,
        nodes=nodes,
        pre_vote=pre_vote,
        election_timeout_ticks=8,
        heartbeat_timeout_ticks=2,
        network=NetworkOptions(delay_min_ticks=0, delay_max_ticks=0),
        clients=2,
        client=ClientOptions(keys=2, request_probability=0.5, timeout_ticks=12),
        session_timeout_ticks=200,
        compact_every_entries=6,
        planted_bug=bug,
    )


class SimMachine(RuleBasedStateMachine):
    bug: PlantedBug | None = None
    pre_vote: bool = True

    def __init__(self) -> None:
        super().__init__()
        self.world = World(world_options(self.bug, self.pre_vote), manual_network=True)

    @initialize()
    def settle(self) -> None:
        """Start from a live cluster: a leader, and clients with sessions."""
        world = self.world
        for _ in range(300):
            self.run_ticks(1)
            if world.leader() is not None and all(c.client_id for c in world.clients.values()):
                return

    # Time and the network.

    @rule(ticks=st.integers(1, 12))
    def tick(self, ticks: int) -> None:
        for _ in range(ticks):
            self.world.tick()

    @rule(data=st.data(), ticks=st.integers(1, 30))
    def tick_one(self, data: st.DataObject, ticks: int) -> None:
        """One server's clock runs fast (or everyone else's stalls)."""
        world = self.world
        up = world.up()
        if up:
            host = data.draw(st.sampled_from(up))
            for _ in range(ticks):
                if host.node is None:
                    break
                host.node.tick()
                world.drain(host)

    @rule(ticks=st.integers(1, 12))
    def run_ticks(self, ticks: int) -> None:
        """Ticks on a prompt network: after each tick everything in flight is delivered."""
        for _ in range(ticks):
            self.world.tick()
            self.deliver_all()

    @rule(position=st.integers(0, 1 << 16))
    def deliver_one(self, position: int) -> None:
        net = self.world.net
        if len(net):
            taken = net.take(position)
            if taken is not None:
                self.world.deliver(taken[1], taken[2])

    @rule()
    def deliver_all(self) -> None:
        net = self.world.net
        for _ in range(len(net)):
            taken = net.take(0)
            if taken is not None:
                self.world.deliver(taken[1], taken[2])

    @rule(position=st.integers(0, 1 << 16))
    def drop_one(self, position: int) -> None:
        if len(self.world.net):
            self.world.net.drop(position)

    @rule(position=st.integers(0, 1 << 16))
    def duplicate_one(self, position: int) -> None:
        if len(self.world.net):
            self.world.net.duplicate_at(position)

    @rule()
    def replay_client_requests(self) -> None:
        """The network replays the client requests in flight (at most three)."""
        net = self.world.net
        requests = [i for i, (_, _, m) in enumerate(net.pending()) if isinstance(m, ClientRequest)]
        for position in requests[:3]:
            net.duplicate_at(position)

    @rule(data=st.data(), symmetric=st.booleans())
    def partition(self, data: st.DataObject, symmetric: bool) -> None:
        ids = self.world.node_ids
        group = data.draw(st.lists(st.sampled_from(ids), min_size=1, unique=True))
        self.world.net.isolate(group, [n for n in ids if n not in group], symmetric=symmetric)

    @rule()
    def heal(self) -> None:
        self.world.net.heal()

    # Servers.

    @rule(data=st.data(), lose_unsynced=st.booleans())
    def crash(self, data: st.DataObject, lose_unsynced: bool) -> None:
        up = [h.node_id for h in self.world.up()]
        if up:
            self.world.crash(data.draw(st.sampled_from(up)), lose_unsynced=lose_unsynced)

    @rule(lose_unsynced=st.booleans())
    def reboot_last_voter(self, lose_unsynced: bool) -> None:
        """Power-cycle the server that most recently granted a vote."""
        world = self.world
        granted, world.voters_granted = world.voters_granted, []
        if granted and world.hosts[granted[-1]].node is not None:
            world.crash(granted[-1], lose_unsynced=lose_unsynced)
            world.start(granted[-1])

    @rule(data=st.data())
    def restart(self, data: st.DataObject) -> None:
        down = [n for n in self.world.node_ids if self.world.hosts[n].node is None]
        if down:
            self.world.start(data.draw(st.sampled_from(down)))

    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        self.world.compact(data.draw(st.sampled_from(self.world.node_ids)))

    # Operator actions at the leader.

    @rule(data=st.data())
    def membership_change(self, data: st.DataObject) -> None:
        world = self.world
        leader = world.leader()
        if leader is None or leader.node is None:
            return
        membership = leader.node.membership
        kind = data.draw(st.sampled_from(list(ConfChangeKind)))
        if kind is ConfChangeKind.ADD_LEARNER:
            if len(world.node_ids) < 6:
                world.conf_change(kind, world.add_node())
            return
        pool = (
            membership.learners if kind is ConfChangeKind.PROMOTE_LEARNER else membership.members()
        )
        if pool:
            world.conf_change(kind, data.draw(st.sampled_from(sorted(pool))))

    @rule(data=st.data())
    def transfer(self, data: st.DataObject) -> None:
        leader = self.world.leader()
        if leader is not None and leader.node is not None:
            self.world.transfer(data.draw(st.sampled_from(sorted(leader.node.membership.voters))))

    @rule()
    def empty_proposal(self) -> None:
        self.world.propose(b"")

    # Checks beyond the ones that run inside every step.

    @invariant()
    def leaders_hold_their_term(self) -> None:
        for host in self.world.up():
            node = host.node
            assert node is not None
            if node.role is Role.LEADER:
                assert node.voted_for == host.node_id or node.current_term == 0

    def teardown(self) -> None:
        world = self.world
        for client in world.clients.values():
            client.abandon(world.clock + 1)
        verdict = linearizability.check(world.history())
        if verdict.verdict is linearizability.Verdict.ILLEGAL:
            raise Violation("linearizability", f"key {verdict.key}")


SETTINGS = settings(
    max_examples=120,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("pre_vote", [True, False])
def test_simulator_state_machine_holds_every_invariant(pre_vote: bool) -> None:
    machine = type(f"SimMachine_pre_vote_{pre_vote}", (SimMachine,), {"pre_vote": pre_vote})
    run_state_machine_as_test(machine, settings=SETTINGS)


@pytest.mark.parametrize(
    ("bug", "pre_vote", "examples"),
    [
        (PlantedBug.DOUBLE_VOTE, True, 300),
        (PlantedBug.APPLY_DUPLICATE, True, 300),
        (PlantedBug.FORGET_PERSIST_VOTE, False, 300),
    ],
)
def test_state_machine_catches_planted_bug(bug: PlantedBug, pre_vote: bool, examples: int) -> None:
    attributes = {"bug": bug, "pre_vote": pre_vote}
    machine = type(f"SimMachine_{bug.name}", (SimMachine,), attributes)
    # A fixed budget, the same every run: derandomized, no example database, no shrinking
    # (only whether the bug is found matters here).
    budget = settings(
        SETTINGS,
        max_examples=examples,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        print_blob=False,
    )
    with pytest.raises(Violation):
        run_state_machine_as_test(machine, settings=budget)
