"""Merging node traces by send/receive causality, and counting message deliveries.

Role: a real cluster writes one trace per node process (`kvserver --trace FILE`); the
spec checks one global sequence of events. `merge` interleaves node traces so that each
node's events keep their order and every message is received after it was sent, which
is all the spec can observe: events of different nodes touch different state, and only
messages connect them. `delivery_counts` tells the spec how many times each sent message
is received later (0: lost; 2 or more: duplicated by the network).

Theory of operation: Kahn's topological sort over the per-node sequences, where a receive
event waits for the send with the same `(from, seq)`. Among the events that may go next,
the node that is proportionally least far through its own trace goes first (then the
lowest node id), so nodes advance together, few messages wait in the spec's network, and
the merge is deterministic.

Rules: a receive whose send never appears, or a send logged twice, is a `TraceError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def merge(traces: Sequence[TraceFile]) -> list[Event]:
    """One sequence of all events: per-node order kept, every receive after its send."""
    if len(traces) == 1:
        events = list(traces[0].events)
        check_causality(events)
        return events
    queues = _per_node_queues(traces)
    sent: set[tuple[str, int]] = set()
    heads = dict.fromkeys(queues, 0)
    merged: list[Event] = []
    total = sum(len(q) for q in queues.values())
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
        event = min(ready, key=lambda e: (heads[e.node] / len(queues[e.node]), e.node))
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
    if event.name in RECEIVE_ACTIONS or event.name == "UpdateTerm":
        return message_key(event.params) in sent
    return True


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
    """For each event, how many times the message it sends is received later (0 for an
    event that sends nothing)."""
    received: dict[tuple[str, int], int] = {}
    for event in events:
        if event.name in RECEIVE_ACTIONS:
            key = message_key(event.params)
            received[key] = received.get(key, 0) + 1
    counts: list[int] = []
    for event in events:
        msg = sent_message(event)
        counts.append(0 if msg is None else received.get(message_key(msg), 0))
    return counts
