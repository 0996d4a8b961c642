"""raftcore.sim: a deterministic cluster simulator for the Raft core (TigerBeetle VOPR style).

One seed derives every knob and every fault of a world: real `raftcore.Node`s on simulated
disks that lose unsynced writes on a crash, a network that delays, drops, duplicates,
reorders and partitions, membership changes, leadership transfers, log compaction, and
clients with sessions that retry. Safety invariants are checked after every step; a run
ends with a liveness phase on a healed cluster and a linearizability check of what the
clients saw. `python -m raftcore.sim --seed S` runs one world.

Modules: options (knobs from a seed), network, storage (simulated disk), clients, checks
(invariants), linearizability (a small Wing-Gong checker), world (the mechanism), runner
(the nemesis and the phases), __main__ (the CLI).
"""

from raftcore.sim.checks import Violation
from raftcore.sim.options import WorldOptions
from raftcore.sim.runner import RunResult, run
from raftcore.sim.world import World

__all__ = ["RunResult", "Violation", "World", "WorldOptions", "run"]
