"""The node trace: the core's trace events and the crash markers, written to `--trace FILE`.

Role: the file side of a node's trace (docs/trace-format.md, "Node traces"). The core and
the state machine emit events through `record`; the Ready loop (kvserver/node.py) calls
`write` at the points the write rule names. A node without `--trace` holds a trace with no
file, on which every call does nothing.

Rules:
- A `Start` marker opens each incarnation; it carries the options the validator needs.
- A Ready's events are written before its WAL write (and before its early sends), and a
  `Persisted` marker after its fsync and before its other sends. A kill -9 thus never
  leaves durable state the trace lacks, and what it leaves unmarked was never sent, except
  a leader's early AppendEntries and heartbeats (`Ready.messages_before_persist`), which
  the merge keeps when another node received them.
- Each `write` is one write call on an unbuffered file: a crash never leaves half a line.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO

from raftcore import trace as raft_trace
from raftcore.types import NodeId, TraceEvent


def trace_marker(kind: str, node_id: str, **fields: object) -> str:
    """A marker line of a node trace (docs/trace-format.md, "Node traces")."""
    record = {"marker": kind, "node": node_id, **fields}
    return json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"


class NodeTrace:
    """The trace file of one incarnation of a node, or no file (tracing off)."""

    def __init__(self, path: Path | None, node_id: NodeId, *, session_timeout_ticks: int,
                 lease_reads: bool) -> None:
        self.node_id = node_id
        self._file: IO[bytes] | None = None
        self._lines: list[str] = []
        self.count = 0
        """Events this incarnation has emitted (a Persisted marker counts them)."""
        self._persisted = 0
        if path is not None:
            self._file = open(path, "ab", buffering=0)  # noqa: SIM115
            self._lines.append(trace_marker(
                "Start", node_id, session_timeout_ticks=session_timeout_ticks,
                lease_reads=lease_reads))

    @property
    def enabled(self) -> bool:
        return self._file is not None

    def record(self, event: TraceEvent) -> None:
        """Buffer one event (the tracer of the core and the state machine)."""
        stamp: dict[str, object] = {"time_us": time.time_ns() // 1000}  # orders the merge
        self._lines.append(raft_trace.encode_event(event, stamp) + "\n")
        self.count += 1

    def write(self, persisted: int | None = None) -> None:
        """Write the buffered lines, then (if `persisted` is given) a Persisted marker
        saying the incarnation's first `persisted` events are durable, with one write
        call: a crash never leaves half a line. Called before each Ready's WAL write and
        early sends (so durable state and peers are never ahead of the trace) and after
        its fsync, before its other sends (so an event no marker covers was never sent,
        except early sends: `Ready.messages_before_persist`)."""
        if self._file is None:
            return
        if persisted is not None and persisted > self._persisted:
            self._lines.append(trace_marker("Persisted", self.node_id, events=persisted))
            self._persisted = persisted
        if self._lines:
            self._file.write("".join(self._lines).encode("utf-8"))
            self._lines = []

    def close(self) -> None:
        """Write what is buffered and close the file."""
        if self._file is not None:
            self.write()
            self._file.close()
