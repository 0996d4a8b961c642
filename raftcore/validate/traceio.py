"""Reading trace files (format 1 of DESIGN.md, docs/trace-format.md) for validation.

Role: turn NDJSON trace files into checked `Event` values, each remembering where it came
from (file and line), and pull out what the validator needs to know about the cluster:
the initial voters, PreVote, lease reads and the session timeout.

Rules:
- Bad input gets a clear `TraceError` naming the file and line; nothing is guessed. An
  unknown action name, a missing key or a value of the wrong type is an error.
- A simulator trace starts with a header line (it has `format`, no `name`); node traces
  written by kvserver have none. Driver keys the validator does not know are ignored.
- Node traces written by kvserver carry marker lines (they have `marker`, no `name`): a
  `Start` marker opens each incarnation and tells the node's options, a `Persisted` marker
  says how many of the incarnation's events are durable (docs/trace-format.md, "Node
  traces"). They are read into `TraceFile.persisted` and `TraceFile.options`.
- Pure: reads the files it is given (pathlib), nothing else.
"""

from __future__ import annotations

import gzip
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
        "AbortTransfer", "ReadIndex", "ReadIndexReady", "ApplyEntry", "PersistEntries",
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
    time_us: int | None = None
    """The driver's wall-clock stamp (kvserver's `time_us` key), if any: it only orders
    the merge of node traces, never decides a verdict."""

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
    persisted: tuple[bool, ...] | None = None
    """Node traces with markers: for each event, whether a `Persisted` marker of its
    incarnation covers it. None for traces without markers."""
    options: Mapping[str, Any] | None = None
    """Node traces with markers: the options their `Start` markers tell (the same in every
    incarnation)."""


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
    """Read and check one NDJSON trace file (gzip-compressed if its name ends in .gz)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as compressed:
                text = compressed.read()
        else:
            text = path.read_text(encoding="utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise TraceError(f"{path}: cannot read: {exc}") from exc
    header: Mapping[str, Any] | None = None
    events: list[Event] = []
    markers = _Markers(str(path))
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
        if "name" not in record and "marker" in record:
            markers.read(record, number, len(events))
            continue
        events.append(_event(record, str(path), number))
    if not events:
        raise TraceError(f"{path}: no events")
    if not markers.starts:
        return TraceFile(str(path), header, tuple(events))
    if markers.starts[0] != 0:
        raise TraceError(f"{path}: events before the first Start marker")
    return TraceFile(str(path), header, tuple(events), markers.flags(len(events)),
                     markers.options)


NODE_OPTION_KEYS = ("session_timeout_ticks", "lease_reads")


class _Markers:
    """The marker lines of one node trace: where each incarnation starts (as event
    positions) and how many of its events its last Persisted marker covers."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.starts: list[int] = []
        self.covered: list[int] = []
        self.options: dict[str, Any] | None = None

    def read(self, record: Mapping[str, Any], number: int, position: int) -> None:
        where = f"{self.path}:{number}"
        kind = record.get("marker")
        if kind == "Start":
            options = {key: record.get(key) for key in NODE_OPTION_KEYS}
            if not isinstance(options["session_timeout_ticks"], int) or \
                    not isinstance(options["lease_reads"], bool):
                raise TraceError(f"{where}: a Start marker needs session_timeout_ticks "
                                 "(int) and lease_reads (bool)")
            if self.options is not None and self.options != options:
                raise TraceError(f"{where}: the node's options changed between incarnations"
                                 f" ({self.options} then {options})")
            self.options = options
            self.starts.append(position)
            self.covered.append(0)
        elif kind == "Persisted":
            count = record.get("events")
            if not self.starts:
                raise TraceError(f"{where}: a Persisted marker before any Start marker")
            logged = position - self.starts[-1]
            if not isinstance(count, int) or not self.covered[-1] <= count <= logged:
                raise TraceError(f"{where}: Persisted marker covers {count!r} events; the "
                                 f"incarnation has {logged}, {self.covered[-1]} covered before")
            self.covered[-1] = count
        else:
            raise TraceError(f"{where}: unknown marker {kind!r}")

    def flags(self, total: int) -> tuple[bool, ...]:
        out: list[bool] = []
        ends = [*self.starts[1:], total]
        for start, end, covered in zip(self.starts, ends, self.covered, strict=True):
            out += [offset < covered for offset in range(end - start)]
        return tuple(out)


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
    stamp = record.get("time_us")
    event = Event(name, node, params, state, source, number,
                  stamp if isinstance(stamp, int) else None)
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
        told = _node_options(traces)
        lease = bool(told.get("lease_reads", lease))
        timeout = session_timeout_ticks or int(told.get("session_timeout_ticks", 0)) \
            or DEFAULT_SESSION_TIMEOUT_TICKS
        if session_timeout_ticks is None and not told:
            notes.append(f"session timeout assumed {timeout} ticks (--session-timeout-ticks)")
    if lease_reads is not None:
        lease = lease_reads
    return Setup(tuple(sorted(servers)), tuple(sorted(init)), pre_vote, lease, timeout,
                 tuple(notes))  # fmt: skip


def _node_options(traces: list[TraceFile]) -> Mapping[str, Any]:
    """The options the node traces' Start markers tell; all nodes must agree."""
    told = [t for t in traces if t.options is not None]
    for trace in told[1:]:
        if trace.options != told[0].options:
            raise TraceError(f"{trace.path}: node options {trace.options} differ from "
                             f"{told[0].options} of {told[0].path}")
    return told[0].options or {} if told else {}


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
