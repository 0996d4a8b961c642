"""Trace rendering: messages as parameters, the spec-visible state image, the JSON line.

Role: turns core values into the plain JSON-ready dicts of docs/trace-format.md and writes
events as one deterministic line each. The node calls these only when a tracer is set, so
a node without a tracer never builds a dict.

Rules: "none" renders as "" (TLC's JSON reader has no null); node sets as sorted lists;
bytes as hex; `encode_event` sorts keys and uses no spaces, so equal events give equal bytes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from raftcore import confchange
from raftcore.errors import InvalidConfChange
from raftcore.types import (
    Entry,
    EntryKind,
    Message,
    Snapshot,
    TraceEvent,
)

if TYPE_CHECKING:
    from raftcore.node import Node

_RENAMED = {"from_id": "from", "to_id": "to"}


def entry_param(entry: Entry) -> list[object]:
    """`[term, kind, cluster_time_ticks, target]` (data omitted)."""
    if entry.kind is EntryKind.NORMAL:
        return [entry.term, "Normal", entry.cluster_time_ticks, ""]
    if entry.kind is EntryKind.NOOP:
        return [entry.term, "NoOp", entry.cluster_time_ticks, ""]
    try:
        change = confchange.decode(entry.data)
    except InvalidConfChange:
        return [entry.term, "ConfChange", entry.cluster_time_ticks, ""]
    return [entry.term, change.kind.value, entry.cluster_time_ticks, change.node_id]


def snapshot_param(snapshot: Snapshot) -> dict[str, object]:
    meta = snapshot.meta
    return {
        "index": meta.index,
        "term": meta.term,
        "voters": sorted(meta.membership.voters),
        "learners": sorted(meta.membership.learners),
        "cluster_time_ticks": meta.cluster_time_ticks,
    }


def message_params(msg: Message) -> dict[str, object]:
    """The message flattened: `type`, then every field (from/to renamed)."""
    params: dict[str, object] = {"type": type(msg).__name__}
    for name in type(msg).__slots__:
        value = getattr(msg, name)
        if name == "entries":
            params[name] = [entry_param(entry) for entry in value]
        elif name == "snapshot":
            params[name] = snapshot_param(value)
        else:
            params[_RENAMED.get(name, name)] = value
    return params


def handler_params(msg: Message, reply: Message | None) -> dict[str, object]:
    params = message_params(msg)
    if reply is not None:
        params["reply"] = message_params(reply)
    return params


def state_image(node: Node) -> dict[str, object]:
    """The node's spec-visible state (see docs/trace-format.md, "State image")."""
    membership = node.membership
    state: dict[str, object] = {
        "current_term": node.current_term,
        "role": node.role.value,
        "voted_for": node.voted_for or "",
        "leader_id": node.leader_id or "",
        "commit_index": node.commit_index,
        "last_index": node.last_index,
        "last_term": node.last_term,
        "snapshot_index": node.snapshot_index,
        "snapshot_term": node.snapshot_term,
        "voters": sorted(membership.voters),
        "learners": sorted(membership.learners),
    }
    match_index = node.match_index
    if match_index is not None:
        state["match_index"] = dict(sorted(match_index.items()))
        state["transfer_target"] = node.transfer_target or ""
    return state


def make_event(node: Node, name: str, params: dict[str, object]) -> TraceEvent:
    return TraceEvent(name=name, node=node.id, params=params, state=state_image(node))


def encode_event(event: TraceEvent, extra: dict[str, object] | None = None) -> str:
    """One JSON line (without the newline); `extra` adds driver keys such as `step`."""
    record: dict[str, object] = {
        "name": event.name,
        "node": event.node,
        "params": event.params,
        "state": event.state,
    }
    if extra:
        for key, value in extra.items():
            assert key not in record, f"extra key {key!r} would overwrite the event"
            record[key] = value
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, frozenset | set):
        return sorted(value)
    raise TypeError(f"cannot render {type(value).__name__} in a trace")
