"""The metrics a node exports at `GET /metrics` (kvserver/metrics.py renders them).

Role: the node's metric set in one place: gauges that read the node's parts (core, state
machine, pending requests, transport counters, storage) when `/metrics` is rendered, and
the counters and histogram the node bumps as it works (kvserver/node.py).

Rules: gauges only read, at render time, so no code path keeps them up to date; names
follow kvserver/metrics.py (`raftkv_<what>_<unit>`).
"""

from __future__ import annotations

from collections.abc import Callable

from kvserver.diskstorage import DiskStorage
from kvserver.metrics import Histogram, Registry
from kvserver.pending import Pending
from kvserver.transport import TransportCounters
from raftcore.kv import KVStateMachine
from raftcore.node import Node
from raftcore.types import Role


class NodeMetrics:
    """One node's registry, with the counters and the histogram it records into."""

    def __init__(self, core: Node, sm: KVStateMachine, pending: Pending,
                 counters: TransportCounters, storage: DiskStorage) -> None:
        registry = self.registry = Registry()
        gauges: list[tuple[str, str, Callable[[], float]]] = [
            ("raftkv_term", "current term", lambda: core.current_term),
            ("raftkv_is_leader", "1 if this node is the leader",
             lambda: float(core.role is Role.LEADER)),
            ("raftkv_commit_index", "commit index", lambda: core.commit_index),
            ("raftkv_applied_index", "applied index", lambda: sm.applied_index),
            ("raftkv_last_index", "last log index", lambda: core.last_index),
            ("raftkv_snapshot_index", "index of the latest snapshot",
             lambda: core.snapshot_index),
            ("raftkv_pending_requests", "proposals and reads waiting",
             lambda: len(pending)),
            ("raftkv_peer_messages_sent", "messages handed to peer connections",
             lambda: counters.sent),
            ("raftkv_peer_messages_received", "authenticated messages received",
             lambda: counters.received),
            ("raftkv_peer_messages_dropped", "messages dropped (full queue, no address, ...)",
             lambda: counters.dropped_queue_full + counters.dropped_unknown_peer
             + counters.dropped_disconnected),
            ("raftkv_peer_bad_frames", "connections closed for a bad frame",
             lambda: counters.bad_frames),
            ("raftkv_wal_fsyncs", "fsync calls on WAL segments since the node started",
             lambda: storage.wal_fsyncs),
        ]
        for name, help_text, read in gauges:
            registry.gauge(name, help_text, read)
        self.proposals = registry.counter("raftkv_proposals_total", "proposals made")
        self.leader_changes = registry.counter(
            "raftkv_leader_changes_total", "role or leader changes seen")
        self.persist_seconds = Histogram(
            "raftkv_persist_duration_seconds", "time to persist one Ready (write + fsync)")
        registry.add(self.persist_seconds)

    def render(self) -> str:
        return self.registry.render()
