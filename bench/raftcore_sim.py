"""Throughput of the deterministic simulator: delivered messages and committed entries per
CPU second, for 3 and 5 nodes, with every safety check on.

Run from the repository root (either form):

    .venv/bin/python -m raftcore.sim --bench
    .venv/bin/python -m bench.raftcore_sim [--ticks 5000] [--repeat 3]

Two kinds of world:

- `steady`: no faults; one-or-two-tick delays, heartbeats every tick, 8 clients each keeping
  one operation in flight (20% ReadIndex reads), compaction every 200 entries. This is the
  throughput figure: messages delivered (Raft messages plus client requests and replies)
  and entries committed per CPU second of the whole simulator (core, simulated disk and
  network, state machine, clients, invariant checks).
- `swarm`: random fault worlds (seeds 0..19 of the seed sweep) with their liveness phase
  and linearizability check; a realistic mix, slower per message because of elections,
  snapshots and restarts.

CPU time is `time.process_time()` (this module may use `time`; raftcore may not). The best
of `--repeat` runs is reported, as timing noise only ever adds time. A benchmark, not a
test: nothing is asserted about speed.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Sequence

from raftcore.sim import World, WorldOptions, run
from raftcore.sim.clients import ClientOptions
from raftcore.sim.network import NetworkOptions


def steady_options(nodes: int) -> WorldOptions:
    return WorldOptions(
        seed=1,
        nodes=nodes,
        election_timeout_ticks=10,
        heartbeat_timeout_ticks=1,
        network=NetworkOptions(delay_min_ticks=1, delay_max_ticks=2),
        clients=8,
        client=ClientOptions(keys=4, request_probability=1.0, timeout_ticks=50, read_fraction=0.2),
        compact_every_entries=200,
    )


def steady(nodes: int, ticks: int) -> dict[str, float]:
    world = World(steady_options(nodes))
    start = time.process_time()
    for _ in range(ticks):
        world.tick()
    cpu_s = time.process_time() - start
    stats = world.net.stats
    committed = max(h.node.commit_index for h in world.up() if h.node is not None)
    return {
        "cpu_s": cpu_s,
        "delivered": stats.delivered,
        "raft_delivered": stats.delivered - world.client_messages,
        "committed": committed,
        "client_ops": sum(c.completed for c in world.clients.values()),
    }


def swarm(nodes: int, worlds: int, ticks: int) -> dict[str, float]:
    start = time.process_time()
    delivered = committed = 0
    for seed in range(worlds):
        result = run(seed, nodes, ticks)
        assert result.ok, f"seed {seed}: {result.violation}"
        delivered += result.stats["delivered"]
        committed += result.stats["commit_index"]
    return {
        "cpu_s": time.process_time() - start,
        "delivered": delivered,
        "committed": committed,
    }


def _best(samples: list[dict[str, float]]) -> dict[str, float]:
    return min(samples, key=lambda sample: sample["cpu_s"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.raftcore_sim")
    parser.add_argument("--ticks", type=int, default=5000, help="ticks per steady world")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best kept)")
    parser.add_argument("--worlds", type=int, default=20, help="swarm worlds per node count")
    args = parser.parse_args(argv)
    print(f"# raftcore.sim benchmark: Python {platform.python_version()} on {platform.machine()}")
    print(f"# processor: {platform.processor() or 'unknown'}; one core, CPU time")
    print(
        f"{'world':<8} {'nodes':>5} {'cpu_s':>7} {'msgs/cpu_s':>11} {'raft msgs/cpu_s':>16} "
        f"{'entries/cpu_s':>14}"
    )
    for nodes in (3, 5):
        best = _best([steady(nodes, args.ticks) for _ in range(args.repeat)])
        cpu_s = best["cpu_s"]
        print(
            f"{'steady':<8} {nodes:>5} {cpu_s:>7.2f} {best['delivered'] / cpu_s:>11,.0f} "
            f"{best['raft_delivered'] / cpu_s:>16,.0f} {best['committed'] / cpu_s:>14,.0f}"
        )
    for nodes in (3, 5):
        best = _best([swarm(nodes, args.worlds, 1000) for _ in range(args.repeat)])
        cpu_s = best["cpu_s"]
        print(
            f"{'swarm':<8} {nodes:>5} {cpu_s:>7.2f} {best['delivered'] / cpu_s:>11,.0f} "
            f"{'':>16} {best['committed'] / cpu_s:>14,.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
