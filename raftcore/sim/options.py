"""World options: every knob of a simulated world, derived from one seed (swarm testing).

Rules:
- `WorldOptions.from_seed(seed, nodes)` is the only place knobs are drawn; it uses its own
  `random.Random(seed)`, so the same seed gives the same world on every machine. As in
  TigerBeetle's VOPR, each seed draws different fault rates (some worlds lossy, some
  crash-heavy, some calm), which finds more than one fixed mix would.
- Probabilities are per tick (faults) or per message (network); durations are in ticks.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from raftcore.bugs import PlantedBug
from raftcore.sim.clients import ClientOptions
from raftcore.sim.network import NetworkOptions


@dataclass(slots=True)
class WorldOptions:
    seed: int
    nodes: int = 3
    election_timeout_ticks: int = 10
    heartbeat_timeout_ticks: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    max_entries_per_msg: int = 64
    max_inflight_msgs: int = 256
    network: NetworkOptions | None = None
    clients: int = 2
    client: ClientOptions | None = None
    session_timeout_ticks: int = 1000
    partition_probability: float = 0.0
    heal_probability: float = 0.05
    one_way_fraction: float = 0.3
    crash_probability: float = 0.0
    restart_probability: float = 0.05
    unsynced_crash_fraction: float = 0.5
    """How often a crash hits while a write is unsynced, when one is pending."""
    leader_crash_probability: float = 0.0
    """Chance that a newly elected leader is crashed within half an election timeout
    (leaders that die young leave entries on a minority: the paper's Figure 8)."""
    crash_after_vote_probability: float = 0.0
    """Chance that a server that just granted a vote loses power at once and reboots (the
    vote must have been made durable before the grant left)."""
    isolate_leader_probability: float = 0.0
    """Per tick: cut the leader (alone, or with one follower) off from the others."""
    conf_change_probability: float = 0.0
    transfer_probability: float = 0.0
    compact_every_entries: int = 0
    """Snapshot and compact a node's log once it applied this many entries since its last
    snapshot (0: never)."""
    liveness_ticks: int = 0
    planted_bug: PlantedBug | None = None
    fsync_delay_ticks: int = 0
    """How long a leader's persist takes after its early sends left (thesis 10.2.1): its
    Ready is synced and completed at its first drain this many ticks later (0: the next
    drain). A crash in between loses the entries."""

    @classmethod
    def from_seed(
        cls, seed: int, nodes: int | None = None, planted_bug: PlantedBug | None = None
    ) -> WorldOptions:
        rng = random.Random(seed)
        drawn_nodes = rng.choice((3, 3, 5, 5, 7))  # Drawn always, so knobs do not shift.
        nodes = drawn_nodes if nodes is None else nodes
        assert nodes >= 1
        delay_min = rng.randint(0, 2)
        delay_max = delay_min + rng.randint(0, 6)
        # An election timeout below a round trip makes a world that can never settle.
        election = rng.randint(max(6, 2 * delay_max + 2), 2 * delay_max + 16)
        network = NetworkOptions(
            delay_min_ticks=delay_min,
            delay_max_ticks=delay_max,
            loss=rng.choice((0.0, 0.01, 0.05, 0.1, 0.2)),
            duplicate=rng.choice((0.0, 0.01, 0.05, 0.1)),
            reorder=rng.choice((0.0, 0.01, 0.1, 0.5)),
        )
        client = ClientOptions(
            keys=rng.randint(1, 3),
            request_probability=rng.choice((0.1, 0.3, 0.6)),
            timeout_ticks=rng.randint(election, 4 * election),
            read_fraction=rng.choice((0.0, 0.2, 0.4)),
        )
        return cls(
            seed=seed,
            nodes=nodes,
            election_timeout_ticks=election,
            heartbeat_timeout_ticks=rng.randint(1, max(1, election // 4)),
            pre_vote=rng.random() < 0.8,
            check_quorum=rng.random() < 0.8,
            max_entries_per_msg=rng.choice((1, 2, 8, 64)),
            max_inflight_msgs=rng.choice((1, 4, 256)),
            network=network,
            clients=rng.randint(1, 4),
            client=client,
            session_timeout_ticks=rng.choice((100, 400, 100_000)),
            partition_probability=rng.choice((0.0, 0.005, 0.02, 0.05)),
            heal_probability=rng.choice((0.02, 0.05, 0.2)),
            one_way_fraction=rng.choice((0.0, 0.3, 0.6)),
            crash_probability=rng.choice((0.0, 0.001, 0.005, 0.02)),
            restart_probability=rng.choice((0.02, 0.1, 0.3)),
            unsynced_crash_fraction=rng.choice((0.0, 0.5, 1.0)),
            leader_crash_probability=rng.choice((0.0, 0.0, 0.2, 0.5)),
            isolate_leader_probability=rng.choice((0.0, 0.0, 0.005, 0.02)),
            crash_after_vote_probability=rng.choice((0.0, 0.0, 0.3, 1.0)),
            conf_change_probability=rng.choice((0.0, 0.005, 0.02)),
            transfer_probability=rng.choice((0.0, 0.002, 0.01)),
            compact_every_entries=rng.choice((0, 5, 20, 100)),
            liveness_ticks=60 * election,
            planted_bug=planted_bug,
            # Drawn last, so that the knobs above stay what they were for each seed.
            fsync_delay_ticks=rng.choice((0, 0, 1, 2, 4)),
        )

    def describe(self) -> dict[str, object]:
        """The knobs as a JSON-ready dict (for the trace header and the summary)."""
        doc = asdict(self)
        doc["planted_bug"] = None if self.planted_bug is None else self.planted_bug.value
        return doc
