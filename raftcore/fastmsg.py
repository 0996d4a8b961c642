"""Fast constructors for the messages on the replication hot path.

Role: a frozen dataclass's generated `__init__` calls `object.__setattr__` once per field,
which costs more than the protocol logic of a heartbeat. These functions build the *same*
objects (same class, same field values; equal, hashable and immutable alike) by writing
the slots through their descriptors. The core uses them where it creates a message per
step (AppendEntries, heartbeats and their answers) and for `Ready` and `HardState`, built
on every `ready()`; everything else uses the ordinary constructors.

Rules: one function per class, keyword-free, arguments in the class's field order. These
classes have no `__post_init__`, so nothing is skipped. tests/raftcore/test_fastmsg.py
checks every function against the ordinary constructor, so a change to the contract in
types.py breaks a test rather than the protocol.
"""

from __future__ import annotations

from typing import Any

from raftcore.types import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    HardState,
    HeartbeatRequest,
    HeartbeatResponse,
    Message,
    ReadState,
    Ready,
    Snapshot,
    SoftState,
)

_new = object.__new__


def _setters(cls: type, fields: tuple[str, ...]) -> tuple[Any, ...]:
    assert tuple(cls.__slots__) == fields, f"{cls.__name__} fields changed"  # type: ignore[attr-defined]
    return tuple(getattr(cls, name).__set__ for name in fields)


(_aq_term, _aq_from, _aq_to, _aq_prev_index, _aq_prev_term, _aq_entries, _aq_commit, _aq_seq) = (
    _setters(
        AppendEntriesRequest,
        (
            "term",
            "from_id",
            "to_id",
            "prev_log_index",
            "prev_log_term",
            "entries",
            "leader_commit",
            "seq",
        ),
    )
)


def append_entries_request(  # noqa: PLR0917 (positional in field order, for speed)
    term: int,
    from_id: str,
    to_id: str,
    prev_log_index: int,
    prev_log_term: int,
    entries: tuple[Entry, ...],
    leader_commit: int,
    seq: int,
) -> AppendEntriesRequest:
    msg: AppendEntriesRequest = _new(AppendEntriesRequest)
    _aq_term(msg, term)
    _aq_from(msg, from_id)
    _aq_to(msg, to_id)
    _aq_prev_index(msg, prev_log_index)
    _aq_prev_term(msg, prev_log_term)
    _aq_entries(msg, entries)
    _aq_commit(msg, leader_commit)
    _aq_seq(msg, seq)
    return msg


(
    _ar_term,
    _ar_from,
    _ar_to,
    _ar_success,
    _ar_match,
    _ar_reject,
    _ar_conflict_term,
    _ar_conflict_index,
    _ar_seq,
) = _setters(
    AppendEntriesResponse,
    (
        "term",
        "from_id",
        "to_id",
        "success",
        "match_index",
        "reject_index",
        "conflict_term",
        "conflict_index",
        "seq",
    ),
)


def append_entries_response(  # noqa: PLR0917 (positional in field order, for speed)
    term: int,
    from_id: str,
    to_id: str,
    success: bool,
    match_index: int,
    reject_index: int,
    conflict_term: int,
    conflict_index: int,
    seq: int,
) -> AppendEntriesResponse:
    msg: AppendEntriesResponse = _new(AppendEntriesResponse)
    _ar_term(msg, term)
    _ar_from(msg, from_id)
    _ar_to(msg, to_id)
    _ar_success(msg, success)
    _ar_match(msg, match_index)
    _ar_reject(msg, reject_index)
    _ar_conflict_term(msg, conflict_term)
    _ar_conflict_index(msg, conflict_index)
    _ar_seq(msg, seq)
    return msg


_hq_term, _hq_from, _hq_to, _hq_commit, _hq_round, _hq_seq = _setters(
    HeartbeatRequest, ("term", "from_id", "to_id", "commit_index", "read_round", "seq")
)


def heartbeat_request(  # noqa: PLR0917 (positional in field order, for speed)
    term: int, from_id: str, to_id: str, commit_index: int, read_round: int, seq: int
) -> HeartbeatRequest:
    msg: HeartbeatRequest = _new(HeartbeatRequest)
    _hq_term(msg, term)
    _hq_from(msg, from_id)
    _hq_to(msg, to_id)
    _hq_commit(msg, commit_index)
    _hq_round(msg, read_round)
    _hq_seq(msg, seq)
    return msg


_hr_term, _hr_from, _hr_to, _hr_round, _hr_seq = _setters(
    HeartbeatResponse, ("term", "from_id", "to_id", "read_round", "seq")
)


def heartbeat_response(
    term: int, from_id: str, to_id: str, read_round: int, seq: int
) -> HeartbeatResponse:
    msg: HeartbeatResponse = _new(HeartbeatResponse)
    _hr_term(msg, term)
    _hr_from(msg, from_id)
    _hr_to(msg, to_id)
    _hr_round(msg, read_round)
    _hr_seq(msg, seq)
    return msg


(
    _rd_soft,
    _rd_hard,
    _rd_entries,
    _rd_snapshot,
    _rd_messages,
    _rd_committed,
    _rd_reads,
    _rd_sync,
    _rd_early,
) = _setters(
    Ready,
    (
        "soft_state",
        "hard_state",
        "entries",
        "snapshot",
        "messages",
        "committed_entries",
        "read_states",
        "must_sync",
        "send_before_persist",
    ),
)


def ready(  # noqa: PLR0917 (positional in field order, for speed)
    soft_state: SoftState | None,
    hard_state: HardState | None,
    entries: tuple[Entry, ...],
    snapshot: Snapshot | None,
    messages: tuple[Message, ...],
    committed_entries: tuple[Entry, ...],
    read_states: tuple[ReadState, ...],
    must_sync: bool,
    send_before_persist: bool,
) -> Ready:
    batch: Ready = _new(Ready)
    _rd_soft(batch, soft_state)
    _rd_hard(batch, hard_state)
    _rd_entries(batch, entries)
    _rd_snapshot(batch, snapshot)
    _rd_messages(batch, messages)
    _rd_committed(batch, committed_entries)
    _rd_reads(batch, read_states)
    _rd_sync(batch, must_sync)
    _rd_early(batch, send_before_persist)
    return batch


_hs_term, _hs_vote, _hs_commit = _setters(
    HardState, ("current_term", "voted_for", "commit_index")
)


def hard_state(current_term: int, voted_for: str | None, commit_index: int) -> HardState:
    state: HardState = _new(HardState)
    _hs_term(state, current_term)
    _hs_vote(state, voted_for)
    _hs_commit(state, commit_index)
    return state
