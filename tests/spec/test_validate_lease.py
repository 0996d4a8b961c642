"""Lease reads (kvserver --lease-reads): traces of a small in-process cluster whose nodes
serve reads under the leader lease are ACCEPTED when validated with lease reads on, and
REJECTED with them off (the spec without leases must refuse a read served without a
heartbeat round)."""

from __future__ import annotations

import random
from pathlib import Path

from spec_support import needs_tlc

from raftcore.config import Config
from raftcore.memstorage import MemoryStorage
from raftcore.node import Node
from raftcore.trace import encode_event
from raftcore.types import Message, Role, TraceEvent
from raftcore.validate.validator import Options, Status, validate

NODES = ("n1", "n2", "n3")


def _run_lease_cluster(ticks: int) -> list[str]:
    """Tick three lease-read nodes, deliver every message at once, read and write."""
    lines: list[str] = []

    def tracer(event: TraceEvent) -> None:
        lines.append(encode_event(event))

    storages = {n: MemoryStorage.bootstrap(NODES) for n in NODES}
    nodes = {
        n: Node(Config(id=n, lease_reads=True, check_quorum=True), storages[n],
                random.Random(n), tracer)
        for n in NODES
    }  # fmt: skip
    network: list[Message] = []
    for tick in range(ticks):
        for node in nodes.values():
            node.tick()
        leader = next((n for n in nodes.values() if n.role is Role.LEADER), None)
        if leader is not None and tick % 3 == 0:
            leader.propose(b"")
            leader.read_index(f"read{tick}".encode())
        for _ in range(5):  # drain: Ready, then deliver what it sent
            for name, node in nodes.items():
                while node.has_ready():
                    ready = node.ready()
                    storage = storages[name]
                    if ready.snapshot is not None:
                        storage.apply_snapshot(ready.snapshot)
                    if ready.entries:
                        storage.append(ready.entries)
                    if ready.hard_state is not None:
                        storage.set_hard_state(ready.hard_state)
                    network.extend(ready.messages)
                    node.advance(ready)
            pending, network = network, []
            for msg in pending:
                nodes[msg.to_id].step(msg)
    return lines


@needs_tlc
def test_lease_read_traces_need_the_lease_model(tmp_path: Path) -> None:
    path = tmp_path / "lease.ndjson"
    lines = _run_lease_cluster(120)
    path.write_text("\n".join(lines) + "\n")
    assert sum('"ReadIndexReady"' in line for line in lines) > 5
    accepted = validate([path], Options(lease_reads=True))
    assert accepted.status is Status.ACCEPTED, accepted.reason
    refused = validate([path], Options(lease_reads=False))
    assert refused.status is Status.REJECTED
    assert refused.failed_event is not None
    assert refused.failed_event.name in {"Heartbeat", "ReadIndex", "ReadIndexReady"}
