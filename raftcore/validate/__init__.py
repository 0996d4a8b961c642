"""raftcore.validate: check a core execution step by step against spec/raft.tla.

Role: trace validation (Cirstea, Kuppe, Loillier, Merz, Ron, 2024). A trace written by
the simulator (`python -m raftcore.sim --trace FILE`) or by real nodes
(`kvserver --trace FILE`, one file per node, merged by send/receive causality) is
rendered as a TLA+ module and checked by TLC against spec/Traceraft.tla: every event
must be an action of the spec, taken with its logged parameters, after which the node's
logged state must equal the spec's. Usage and how to read a rejection:
docs/trace-validation.md.

    python -m raftcore.validate TRACE.ndjson [MORE.ndjson ...]

A harness validates a real cluster's node traces with `validate_node_traces(paths)`
(nodes.py), whose `NodeVerdict.valid` is True, False, or None for an error.

Modules: traceio (reading, checking), merge (settling crashed incarnations, causal
merge, delivery counts), tlagen (the TraceData module), tlc (running TLC: the only module
here that starts a process), tlavalue (reading TLC's printed values), validator (the
verdict), nodes (the entry point for node traces), __main__ (the CLI).
"""

from raftcore.validate.nodes import NodeVerdict, validate_node_traces
from raftcore.validate.traceio import Setup, TraceError
from raftcore.validate.validator import Options, Status, Verdict, validate

__all__ = ["NodeVerdict", "Options", "Setup", "Status", "TraceError", "Verdict", "validate",
           "validate_node_traces"]
