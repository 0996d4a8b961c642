"""Reading trace files (format 1 of DESIGN.md, docs/trace-format.md) for validation.

Role: turn NDJSON trace files into checked `Event` values, each remembering where it came
from (file and line), and pull out what the validator needs to know about the cluster:
the initial voters, PreVote, lease reads and the session timeout.

Rules:
- Bad input gets a clear `TraceError` naming the file and line; nothing is guessed. An
  unknown action name, a missing key or a value of the wrong type is an error.
- A simulator trace starts with a header line (it has `format`, no `name`); node traces
  written by kvserver have none. Driver keys the validator does not know are ignored.
- Pure: reads the files it is given (pathlib), nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Every action of spec/raft.tla that a trace may name (docs/trace-format.md).
ACTIONS = frozenset(
    {
        "Restart", "Timeout", "BecomeCandidate", "RequestVote", "HandleRequestVoteRequest",
        "HandleRequestVoteResponse", "UpdateTerm", "BecomeLeader", "ClientRequest",
        "AppendEntries", "HandleAppendEntriesRequest", "HandleAppendEntriesResponse",
        "Heartbeat", "HandleHeartbeatRequest", "HandleHeartbeatResponse",
        "AdvanceCommitIndex", "CheckQuorum", "CompactLog", "InstallSnapshot",
        "HandleInstallSnapshotRequest", "AddLearner", "PromoteLearner", "RemoveServer",
        "StepDownRemoved", "TransferLeadership", "TimeoutNow", "HandleTimeoutNow",
        "AbortTransfer", "ReadIndex", "ReadIndexReady", "ApplyEntry",
    }
)  # fmt: skip

# Events whose params are the message the node sent.
SEND_ACTIONS = frozenset(
    {"RequestVote", "AppendEntries", "Heartbeat", "InstallSnapshot", "TimeoutNow"}
)
# Events whose params are a message the node received (UpdateTerm precedes a handler of
# the same message and does not consume it).
RECEIVE_ACTIONS = frozenset(
    {
        "HandleRequestVoteRequest", "HandleRequestVoteResponse", "HandleAppendEntriesRequest",
        "HandleAppendEntriesResponse", "HandleHeartbeatRequest", "HandleHeartbeatResponse",
        "HandleInstallSnapshotRequest", "HandleTimeoutNow",
    }
)  # fmt: skip
MESSAGE_ACTIONS = SEND_ACTIONS | RECEIVE_ACTIONS | {"UpdateTerm"}

DEFAULT_SESSION_TIMEOUT_TICKS = 1000
"""raftcore.sim's default; node traces carry no header, so --session-timeout-ticks may be
needed for them."""


class TraceError(ValueError):
    """A trace file is malformed or inconsistent; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Event:
    """One traced action, with where it was read from."""

    name: str
    node: str
    params: Mapping[str, Any]
    state: Mapping[str, Any]
    source: str
    line: int

    def where(self) -> str:
        return f"{self.source}:{self.line}"

    def message(self) -> Mapping[str, Any]:
        """The message a send or receive event is about."""
        assert self.name in MESSAGE_ACTIONS, f"{self.name} carries no message"
        return self.params

    def reply(self) -> Mapping[str, Any] | None:
        value = self.params.get("reply")
        return value if isinstance(value, Mapping) else None


@dataclass(frozen=True, slots=True)
class TraceFile:
    """The events of one file, in file order, and its header if it has one."""

    path: str
    header: Mapping[str, Any] | None
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class Setup:
    """What the spec needs to know besides the events (Traceraft's constants)."""

    servers: tuple[str, ...]
    init_servers: tuple[str, ...]
    pre_vote: bool
    lease_reads: bool
    session_timeout_ticks: int
    notes: tuple[str, ...] = field(default=())


def read_trace(path: Path) -> TraceFile:
    """Read and check one NDJSON trace file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"{path}: cannot read: {exc}") from exc
    header: Mapping[str, Any] | None = None
    events: list[Event] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError as exc:
            raise TraceError(f"{path}:{number}: not JSON: {exc}") from exc
        if not isinstance(record, dict):
            raise TraceError(f"{path}:{number}: a trace line must be a JSON object")
        if "name" not in record and "format" in record:
            if header is not None or events:
                raise TraceError(f"{path}:{number}: a header must be the first line")
            header = record
            continue
        events.append(_event(record, str(path), number))
    if not events:
        raise TraceError(f"{path}: no events")
    return TraceFile(str(path), header, tuple(events))


def _event(record: Mapping[str, Any], source: str, number: int) -> Event:
    where = f"{source}:{number}"
    name, node = record.get("name"), record.get("node")
    params, state = record.get("params"), record.get("state")
    if not isinstance(name, str) or name not in ACTIONS:
        raise TraceError(f"{where}: unknown action {name!r}")
    if not isinstance(node, str) or not node:
        raise TraceError(f"{where}: `node` must be a non-empty string")
    if not isinstance(params, dict) or not isinstance(state, dict):
        raise TraceError(f"{where}: `params` and `state` must be objects")
    event = Event(name, node, params, state, source, number)
    if name in MESSAGE_ACTIONS:
        _check_message(event, params, where)
    return event


def _check_message(event: Event, msg: Mapping[str, Any], where: str) -> None:
    for key, kind in (("type", str), ("from", str), ("to", str), ("seq", int), ("term", int)):
        if not isinstance(msg.get(key), kind):
            raise TraceError(f"{where}: message field {key!r} missing or not a {kind.__name__}")
    sender = msg["from"] if event.name in SEND_ACTIONS else msg["to"]
    if sender != event.node:
        raise TraceError(f"{where}: {event.name} by {event.node} names a message of {sender}")
    reply = event.reply()
    if reply is not None and reply.get("from") != event.node:
        raise TraceError(f"{where}: the reply must come from {event.node}")


def message_key(msg: Mapping[str, Any]) -> tuple[str, int]:
    """`(from, seq)`: unique per message in a run, across restarts."""
    return (str(msg["from"]), int(msg["seq"]))


def infer_setup(
    traces: Iterable[TraceFile],
    events: Iterable[Event],
    session_timeout_ticks: int | None,
    lease_reads: bool | None = None,
) -> Setup:
    """The cluster the trace comes from: from a simulator header if there is one, else
    from the events (initial voters from each node's first state image)."""
    traces = list(traces)
    events = list(events)
    notes: list[str] = []
    headers = [t.header for t in traces if t.header is not None]
    servers: set[str] = set()
    for event in events:
        servers.add(event.node)
        if event.name in MESSAGE_ACTIONS:
            servers.update((str(event.params["from"]), str(event.params["to"])))
    if headers:
        header = headers[0]
        options = header.get("options", {})
        init = _str_list(header.get("voters"), "header voters")
        servers.update(_str_list(header.get("nodes", []), "header nodes"))
        pre_vote = bool(options.get("pre_vote", True))
        lease = bool(options.get("lease_reads", False))
        timeout = session_timeout_ticks or int(
            options.get("session_timeout_ticks", DEFAULT_SESSION_TIMEOUT_TICKS)
        )
    else:
        init, pre_vote, lease = _infer_from_events(events, notes)
        timeout = session_timeout_ticks or DEFAULT_SESSION_TIMEOUT_TICKS
        if session_timeout_ticks is None:
            notes.append(f"session timeout assumed {timeout} ticks (--session-timeout-ticks)")
    if lease_reads is not None:
        lease = lease_reads
    return Setup(tuple(sorted(servers)), tuple(sorted(init)), pre_vote, lease, timeout,
                 tuple(notes))  # fmt: skip


def _infer_from_events(events: list[Event], notes: list[str]) -> tuple[list[str], bool, bool]:
    first: dict[str, Event] = {}
    pre_votes: set[bool] = set()
    for event in events:
        first.setdefault(event.node, event)
        if event.name == "Timeout":
            pre_votes.add(bool(event.params.get("pre_vote")))
    init: set[str] = set()
    for event in first.values():
        init.update(_str_list(event.state.get("voters", []), f"{event.where()} voters"))
    if len(pre_votes) > 1:
        raise TraceError("Timeout events disagree on pre_vote")
    pre_vote = pre_votes.pop() if pre_votes else True
    notes.append("no header: initial voters taken from each node's first state")
    return sorted(init), pre_vote, False


def _str_list(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TraceError(f"{what} must be a list of node ids")
    return list(value)
