"""Micro-benchmark of the Raft core alone (no simulator): CPU microseconds per step.

Run from the repository root:

    .venv/bin/python -m bench.raftcore_core

Three or five nodes pass messages in a loop through an ideal network (no loss, no delay),
the driver persisting every Ready into MemoryStorage. Two workloads:

- `replicate`: the leader proposes 4 small entries per round and everyone ticks every
  other round (AppendEntries and their responses dominate);
- `idle`: everyone ticks every round with no proposals (heartbeats dominate).

A "step" is one `Node.step(msg)`; the figure charges each step with its share of the
whole loop (ticks, proposals, ready/advance, storage writes). This is a benchmark, not a
test: it asserts nothing about speed.
"""

from __future__ import annotations

import random
import sys
import time

from raftcore.config import Config
from raftcore.memstorage import MemoryStorage
from raftcore.node import Node
from raftcore.types import Message, Role


def build(count: int) -> tuple[dict[str, Node], dict[str, MemoryStorage]]:
    ids = [f"n{i}" for i in range(1, count + 1)]
    storages = {i: MemoryStorage.bootstrap(ids) for i in ids}
    nodes = {i: Node(Config(id=i), storages[i], random.Random(i)) for i in ids}
    return nodes, storages


def drain(nodes: dict[str, Node], storages: dict[str, MemoryStorage], out: list[Message]) -> None:
    for node_id, node in nodes.items():
        if node.has_ready():
            ready = node.ready()
            storage = storages[node_id]
            storage.append(ready.entries)
            if ready.hard_state is not None:
                storage.set_hard_state(ready.hard_state)
            out.extend(ready.messages)
            node.advance(ready)


def settle(nodes: dict[str, Node], storages: dict[str, MemoryStorage],
           queue: list[Message]) -> int:
    """Drain every Ready and deliver messages until the network is quiet; the steps taken."""
    steps = 0
    drain(nodes, storages, queue)
    while queue:
        batch = queue[:]
        queue.clear()
        for msg in batch:
            nodes[msg.to_id].step(msg)
        steps += len(batch)
        drain(nodes, storages, queue)
    return steps


def run(count: int, rounds: int, proposals: int, tick_every: int) -> tuple[int, float, int]:
    nodes, storages = build(count)
    queue: list[Message] = []
    while not any(n.role is Role.LEADER for n in nodes.values()):
        for node in nodes.values():
            node.tick()
        settle(nodes, storages, queue)
    leader = next(n for n in nodes.values() if n.role is Role.LEADER)
    steps = 0
    start = time.process_time()
    for round_number in range(rounds):
        for _ in range(proposals):
            leader.propose(b"v" * 16)
        if round_number % tick_every == 0:
            for node in nodes.values():
                node.tick()
        steps += settle(nodes, storages, queue)
    elapsed = time.process_time() - start
    return steps, elapsed, leader.commit_index


def main() -> None:
    print(f"python {sys.version.split()[0]}")
    for name, proposals, tick_every, rounds in (("replicate", 4, 2, 5000), ("idle", 0, 1, 8000)):
        for count in (3, 5):
            steps, elapsed, commit = run(count, rounds, proposals, tick_every)
            print(
                f"{name:9} {count} nodes: {steps} steps in {elapsed:.2f} s CPU = "
                f"{elapsed / steps * 1e6:.2f} us/step ({steps / elapsed:,.0f} steps/s),"
                f" commit index {commit}"
            )


if __name__ == "__main__":
    main()
