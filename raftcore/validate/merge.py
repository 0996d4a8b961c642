"""Merging node traces by send/receive causality, and counting message deliveries.

Role: a real cluster writes one trace per node process (`kvserver --trace FILE`); the
spec checks one global sequence of events. `merge` interleaves node traces so that each
node's events keep their order and every message is received after it was sent, which
is all the spec can observe: events of different nodes touch different state, and only
messages connect them. `delivery_counts` tells the spec how many times each sent message
is received later (0: lost; 2 or more: duplicated by the network), and `delivery_sources`
where each message an event reads (`reads_message`: a handler, or UpdateTerm) was sent
(the spec's network holds messages by that position).

Theory of operation: Kahn's topological sort over the per-node sequences, where a receive
event waits for the send with the same `(from, seq)`. Among the events that may go next,
the one with the earliest wall-clock stamp goes first when every event has one (kvserver
writes `time_us`); otherwise the node that is proportionally least far through its own
trace goes first. Ties go to the lowest node id, so the merge is deterministic. Either way
causality is kept whatever the clocks say; the stamps only bring the merged order close
to the real one, so few messages wait in the spec's network (each waiting message is in
every TLC state until it is received, which makes validation slow).

Rules: a receive whose send never appears, or a send logged twice, is a `TraceError`.

Crashed incarnations (node traces with markers, docs/trace-format.md "Node traces"): a
node writes its events before the Ready that makes them durable, and a `Persisted` marker
after that Ready's fsync and before its other sends. A kill -9 in between leaves a tail
of events that may or may not be durable. `settle_crashes` keeps the longest part of such
a tail whose durable state (term, vote, last index and term, snapshot, configuration) is
the one the next `Restart` shows, and drops the rest; the spec then sees a crash that lost
writes not yet durable, which is what happened. One kind of send may precede the marker:
a leader's AppendEntries and heartbeats of a Ready that changes no term or vote
(`Ready.messages_before_persist`). A tail event whose message another node received
(`received`) is never dropped: the kept part reaches at least to it, and the spec's
`Restart` keeps the leader's log anywhere between its persisted index and its whole log
(the unfinished write). Every other dropped event produced nothing that was sent. If no
part matches, the tail is kept and the spec rejects the `Restart` (durable state the trace
never reached, or lost durable data). `settle_traces` settles every trace once against
what all of them received and keeps the dropped events (`Settled.lost`, which a report
counts); `merge` takes traces settled or not, and settles only the latter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from raftcore.validate.traceio import (
    RECEIVE_ACTIONS,
    SEND_ACTIONS,
    Event,
    TraceError,
    TraceFile,
    message_key,
)


def sent_message(event: Event) -> Mapping[str, Any] | None:
    """The message an event puts on the network: its own send, or a handler's reply."""
    if event.name in SEND_ACTIONS:
        return event.params
    if event.name in RECEIVE_ACTIONS:
        return event.reply()
    return None


def reads_message(event: Event) -> bool:
    """Whether an event reads a received message: a handler, or UpdateTerm (which sees the
    message's term before its handler runs)."""
    return event.name in RECEIVE_ACTIONS or event.name == "UpdateTerm"


DURABLE_KEYS = ("current_term", "voted_for", "last_index", "last_term", "snapshot_index",
                "snapshot_term", "voters", "learners")


def durable_image(event: Event) -> tuple[Any, ...] | None:
    """The durable part of a core event's state image (None for ApplyEntry)."""
    if event.name == "ApplyEntry":
        return None
    return tuple(json_key(event.state.get(key)) for key in DURABLE_KEYS)


def json_key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True, slots=True)
class Settled:
    """Traces whose crashed incarnations are settled (`settle_traces`), ready for `merge`."""

    traces: tuple[TraceFile, ...]
    lost: tuple[Event, ...]
    """The unpersisted events of crashed incarnations that settling dropped."""


def settle_traces(traces: Sequence[TraceFile]) -> Settled:
    """Every trace settled (`settle_crashes`) against the messages any of them received."""
    received = received_keys(traces)
    settled = [settle_crashes(trace, received) for trace in traces]
    return Settled(tuple(t for t, _ in settled), tuple(e for _, lost in settled for e in lost))


def received_keys(traces: Sequence[TraceFile]) -> frozenset[tuple[str, int]]:
    """The `(from, seq)` of every message some trace shows received."""
    return frozenset(
        message_key(e.params) for t in traces for e in t.events if e.name in RECEIVE_ACTIONS
    )


def settle_crashes(
    trace: TraceFile, received: frozenset[tuple[str, int]] = frozenset()
) -> tuple[TraceFile, tuple[Event, ...]]:
    """The trace without the unpersisted events a crash lost (module docstring), and the
    events dropped; `received` are the messages other traces received (never dropped).
    Traces without markers are returned as they are."""
    flags = trace.persisted
    if flags is None:
        return trace, ()
    events = trace.events
    dropped: set[int] = set()
    tail_start: int | None = None
    for position, event in enumerate(events):
        if event.name == "Restart" and tail_start is not None:
            cut = max(
                _tail_cut(events, tail_start, position),
                _last_received(events, tail_start, position, received),
            )
            dropped.update(range(cut, position))
        if flags[position]:
            tail_start = None
        elif tail_start is None:
            tail_start = position
    if not dropped:
        return trace, ()
    kept = tuple(e for n, e in enumerate(events) if n not in dropped)
    lost = tuple(e for n, e in enumerate(events) if n in dropped)
    keep_flags = tuple(f for n, f in enumerate(flags) if n not in dropped)
    return replace(trace, events=kept, persisted=keep_flags), lost


def _tail_cut(events: Sequence[Event], start: int, restart: int) -> int:
    """Where the unpersisted tail `events[start:restart]` ends up cut: after its longest
    prefix whose durable image is the Restart's (all of it if none is)."""
    wanted = durable_image(events[restart])
    image = None
    for position in range(start - 1, -1, -1):
        image = durable_image(events[position])
        if image is not None:
            break
    cut = start if image == wanted else None
    for position in range(start, restart):
        image = durable_image(events[position]) or image
        if image == wanted:
            cut = position + 1
    return restart if cut is None else cut


def _last_received(
    events: Sequence[Event], start: int, restart: int, received: frozenset[tuple[str, int]]
) -> int:
    """Just past the last event of `events[start:restart]` whose message someone received
    (`start` if none was)."""
    for position in range(restart - 1, start - 1, -1):
        msg = sent_message(events[position])
        if msg is not None and message_key(msg) in received:
            return position + 1
    return start


def merge(settled: Settled | Sequence[TraceFile]) -> list[Event]:
    """One sequence of all events: per-node order kept, every receive after its send.
    Crashed incarnations' unpersisted tails are settled first (`settle_traces`) unless
    the traces come `Settled`."""
    if not isinstance(settled, Settled):
        settled = settle_traces(settled)
    traces = settled.traces
    if len(traces) == 1:
        events = list(traces[0].events)
        check_causality(events)
        return events
    queues = _per_node_queues(traces)
    sent: set[tuple[str, int]] = set()
    heads = dict.fromkeys(queues, 0)
    merged: list[Event] = []
    total = sum(len(q) for q in queues.values())
    stamped = all(e.time_us is not None for q in queues.values() for e in q)

    def order(event: Event) -> tuple[float, str]:
        if stamped:
            assert event.time_us is not None
            return (event.time_us, event.node)
        return (heads[event.node] / len(queues[event.node]), event.node)

    while len(merged) < total:
        ready = [
            queue[heads[node]]
            for node, queue in sorted(queues.items())
            if heads[node] < len(queue) and _can_go(queue[heads[node]], sent)
        ]
        if not ready:
            blocked = [q[heads[n]] for n, q in queues.items() if heads[n] < len(q)]
            first = min(blocked, key=lambda e: (e.source, e.line))
            raise TraceError(f"{first.where()}: {first.name} receives a message never sent")
        event = min(ready, key=order)
        heads[event.node] += 1
        _note_send(event, sent)
        merged.append(event)
    return merged


def _per_node_queues(traces: Sequence[TraceFile]) -> dict[str, list[Event]]:
    queues: dict[str, list[Event]] = {}
    owner: dict[str, str] = {}
    for trace in traces:
        for event in trace.events:
            if owner.setdefault(event.node, trace.path) != trace.path:
                raise TraceError(
                    f"{event.where()}: node {event.node} also has events in {owner[event.node]}"
                )
            queues.setdefault(event.node, []).append(event)
    return queues


def _can_go(event: Event, sent: set[tuple[str, int]]) -> bool:
    return not reads_message(event) or message_key(event.params) in sent


def _note_send(event: Event, sent: set[tuple[str, int]]) -> None:
    msg = sent_message(event)
    if msg is None:
        return
    key = message_key(msg)
    if key in sent:
        raise TraceError(f"{event.where()}: message {key} is sent twice")
    sent.add(key)


def check_causality(events: Sequence[Event]) -> None:
    """Every receive comes after its send; no message is sent twice."""
    sent: set[tuple[str, int]] = set()
    for event in events:
        if not _can_go(event, sent):
            key = message_key(event.params)
            raise TraceError(f"{event.where()}: {event.name} of message {key} before its send")
        _note_send(event, sent)


def delivery_counts(events: Sequence[Event]) -> list[int]:
    """For each event, how many times the message it sends is received (0 for an event
    that sends nothing). A message sent twice counts at its first send only; `merge`
    rejects such traces."""
    counts = [0] * len(events)
    sent_at = _sent_positions(events)
    for event in events:
        if event.name in RECEIVE_ACTIONS:
            position = sent_at.get(message_key(event.params), 0)
            if position:
                counts[position - 1] += 1
    return counts


def delivery_sources(events: Sequence[Event]) -> list[int]:
    """For each event that reads a received message (`reads_message`), the 1-based
    position in `events` of the event that sent it; 0 for other events and for a message
    no event sent (the spec then finds nothing in flight and rejects)."""
    sent_at = _sent_positions(events)
    return [sent_at.get(message_key(e.params), 0) if reads_message(e) else 0 for e in events]


def _sent_positions(events: Sequence[Event]) -> dict[tuple[str, int], int]:
    """The 1-based position in `events` of the first event that sends each message."""
    sent_at: dict[tuple[str, int], int] = {}
    for position, event in enumerate(events, start=1):
        msg = sent_message(event)
        if msg is not None:
            sent_at.setdefault(message_key(msg), position)
    return sent_at
