"""Coalescing of one Ready's outgoing messages before they are encoded and sent.

Role: the core emits one AppendEntries per proposal and one heartbeat per ReadIndex
request (raftcore/replication.py); under load one Ready holds dozens of each for the same
follower. Encoding, authenticating, stepping and answering each of them costs more than
the entries themselves, so the node merges them here, per recipient, before sending.

Rules (each merge is indistinguishable, to the receiver, from a legal delivery of the
original messages):
- Two AppendEntries requests to the same peer merge when they are of the same term and
  the second continues the first (its `prev_log_index` is the first's last index): the
  result is the same as delivering both in order, answered once (the leader frees
  in-flight messages by index, raftcore/progress.py). One exception, never unsafe: when
  the first is a resend that starts below the follower's commit index, the follower
  answers with its commit index and ignores the whole merged request (the core's
  receiver rule), where it would have appended the second part; the leader sends that
  part again. tests/kvserver/test_batching.py checks both halves of this.
- Heartbeat requests to the same peer of the same term collapse into one carrying the
  highest commit index and read round (both only grow within a term): the earlier ones
  are as good as lost, which Raft tolerates, and the survivor confirms every read round
  they would have confirmed.
- Every other message keeps its place, and the relative order of the non-heartbeat
  messages to one peer is kept; the merged heartbeat goes after them.
- Nothing is merged when the node writes a trace: trace merging pairs every send with its
  receive by `seq` (docs/trace-format.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from raftcore.log import entry_size
from raftcore.types import AppendEntriesRequest, HeartbeatRequest, Message, NodeId

DEFAULT_MAX_BATCH_BYTES = 1 << 20


def coalesce(messages: Iterable[Message], max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
             ) -> list[Message]:
    """The messages of one Ready, merged per peer as the module docstring says."""
    out: list[Message] = []
    last_append: dict[NodeId, int] = {}
    """Position in `out` of the last non-heartbeat message to each peer, if an append."""
    batch_bytes: dict[NodeId, int] = {}
    heartbeat: dict[NodeId, HeartbeatRequest] = {}
    for msg in messages:
        to = msg.to_id
        if type(msg) is HeartbeatRequest:
            earlier = heartbeat.get(to)
            heartbeat[to] = msg if earlier is None else _merge_heartbeats(earlier, msg)
            continue
        if type(msg) is AppendEntriesRequest:
            size = sum(entry_size(e) for e in msg.entries)
            position = last_append.get(to)
            if position is not None:
                previous = out[position]
                assert type(previous) is AppendEntriesRequest
                if _continues(previous, msg) and batch_bytes[to] + size <= max_batch_bytes:
                    out[position] = _merge_appends(previous, msg)
                    batch_bytes[to] += size
                    continue
            last_append[to] = len(out)
            batch_bytes[to] = size
        else:
            last_append.pop(to, None)
        out.append(msg)
    out.extend(heartbeat.values())
    return out


def _continues(first: AppendEntriesRequest, second: AppendEntriesRequest) -> bool:
    return (
        first.term == second.term
        and first.from_id == second.from_id
        and second.prev_log_index == first.prev_log_index + len(first.entries)
    )


def _merge_appends(first: AppendEntriesRequest, second: AppendEntriesRequest
                   ) -> AppendEntriesRequest:
    return AppendEntriesRequest(
        term=first.term,
        from_id=first.from_id,
        to_id=first.to_id,
        prev_log_index=first.prev_log_index,
        prev_log_term=first.prev_log_term,
        entries=first.entries + second.entries,
        leader_commit=max(first.leader_commit, second.leader_commit),
        seq=second.seq,
    )


def _merge_heartbeats(first: HeartbeatRequest, second: HeartbeatRequest) -> HeartbeatRequest:
    if first.term != second.term or first.from_id != second.from_id:
        return second  # A newer term supersedes; the stale one would be ignored anyway.
    return HeartbeatRequest(
        term=second.term,
        from_id=second.from_id,
        to_id=second.to_id,
        commit_index=max(first.commit_index, second.commit_index),
        read_round=max(first.read_round, second.read_round),
        seq=second.seq,
    )
