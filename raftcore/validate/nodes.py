"""`validate_node_traces`: the entry point for the traces of a real cluster's nodes.

Role: what a harness calls (jepsen/analysis.py) with one `kvserver --trace` file per node.
It validates them as `python -m raftcore.validate` does (merge by causality, crashed
incarnations settled by their markers, TLC against spec/Traceraft.tla) and returns a
`NodeVerdict`: the validator's `Verdict` plus what a report needs: `valid` (True, False,
or None for an ERROR such as Java missing), the events per trace, the events a crash lost,
the elapsed time, and a JSON-ready summary naming the first rejected event and why.

Rules: never raises for bad traces or a missing Java/TLC; those are an ERROR verdict.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raftcore.validate.merge import settle_traces
from raftcore.validate.tlc import TlcUnavailable
from raftcore.validate.traceio import TraceError, read_trace
from raftcore.validate.validator import Options, Status, Verdict, render, validate

DEFAULT_TIMEOUT_S = 3600.0
"""TLC's budget when the caller gives none: long node traces must not flap to ERROR."""


@dataclass(frozen=True, slots=True)
class NodeVerdict:
    """The verdict on a cluster's node traces."""

    verdict: Verdict
    elapsed_s: float
    events_per_trace: dict[str, int] = field(default_factory=dict)
    lost_events: int = 0
    """Unpersisted events of crashed incarnations that the merge dropped."""

    @property
    def valid(self) -> bool | None:
        return {Status.ACCEPTED: True, Status.REJECTED: False}.get(self.verdict.status)

    @property
    def status(self) -> Status:
        return self.verdict.status

    def summary(self) -> dict[str, Any]:
        """JSON-ready: status, counts, time, and for a rejection the first event the spec
        cannot take with the validator's diagnostics."""
        verdict = self.verdict
        out: dict[str, Any] = {
            "status": verdict.status.value,
            "events": verdict.events,
            "events_per_trace": self.events_per_trace,
            "lost_events": self.lost_events,
            "elapsed_s": round(self.elapsed_s, 3),
        }
        if verdict.reason:
            out["reason"] = verdict.reason
        event = verdict.failed_event
        if event is not None:
            out["first_rejected"] = {
                "index": verdict.failed_index, "where": event.where(), "name": event.name,
                "node": event.node, "params": dict(event.params),
            }  # fmt: skip
            out["disagrees"] = [
                {"field": m.field, "spec": m.spec, "trace": m.trace} for m in verdict.mismatches
            ]
        if verdict.notes:
            out["notes"] = list(verdict.notes)
        return out

    def __str__(self) -> str:
        return render(self.verdict)


def validate_node_traces(paths: Sequence[Path], options: Options | None = None) -> NodeVerdict:
    """Validate one trace file per node of a real cluster against the spec."""
    options = options or Options(timeout_s=DEFAULT_TIMEOUT_S)
    started = time.monotonic()
    per_trace: dict[str, int] = {}
    lost = 0
    try:
        settled = settle_traces([read_trace(Path(path)) for path in paths])
        per_trace = {trace.path: len(trace.events) for trace in settled.traces}
        lost = len(settled.lost)
        verdict = validate(settled, options)  # merges the settled traces as they are
    except (TraceError, TlcUnavailable) as exc:
        verdict = Verdict(Status.ERROR, sum(per_trace.values()), reason=str(exc))
    return NodeVerdict(verdict, time.monotonic() - started, per_trace, lost)
