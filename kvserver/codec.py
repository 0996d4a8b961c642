"""Deterministic binary encoding of the core's values: messages, entries, hard state, snapshots.

Role: the one place that turns `raftcore.types` values into bytes and back, for the peer
transport (kvserver/transport.py) and the write-ahead log (kvserver/wal.py).

Rules:
- The encoding is msgpack (`use_bin_type=True`), and it is deterministic: the same value
  always gives the same bytes (sets are written as sorted lists, maps are never used).
- Decoding never trusts its input: anything that is not a well-formed value of the expected
  shape raises `CodecError` (never `KeyError`, `TypeError`, an assertion, ...), so a peer or
  a disk cannot crash the node with bad bytes.

Format (every value is a msgpack array; `bin` is msgpack bin, `str` msgpack str):

    Entry        [term:int, index:int, kind:int, data:bin, cluster_time_ticks:int]
    HardState    [current_term:int, voted_for:str|nil, commit_index:int]
    Membership   [voters:[str...] sorted, learners:[str...] sorted]
    SnapshotMeta [index:int, term:int, Membership, cluster_time_ticks:int]
    Snapshot     [SnapshotMeta, data:bin]
    Message      [tag:int, <the message's fields in declaration order>]

Message tags and field lists (nested `entries` are arrays of Entry, `snapshot` a Snapshot):

    1 RequestVoteRequest     term from_id to_id last_log_index last_log_term pre_vote
                             transfer seq
    2 RequestVoteResponse    term from_id to_id vote_granted pre_vote seq
    3 AppendEntriesRequest   term from_id to_id prev_log_index prev_log_term entries
                             leader_commit seq
    4 AppendEntriesResponse  term from_id to_id success match_index reject_index
                             conflict_term conflict_index seq
    5 InstallSnapshotRequest term from_id to_id snapshot seq
    6 HeartbeatRequest       term from_id to_id commit_index read_round seq
    7 HeartbeatResponse      term from_id to_id read_round seq
    8 TimeoutNow             term from_id to_id seq

Integers are non-negative and below 2**63; node ids are non-empty strings of at most 255
characters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Final

import msgpack  # type: ignore[import-untyped]  # msgpack ships no type hints

from raftcore.types import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    EntryKind,
    HardState,
    HeartbeatRequest,
    HeartbeatResponse,
    InstallSnapshotRequest,
    Membership,
    Message,
    RequestVoteRequest,
    RequestVoteResponse,
    Snapshot,
    SnapshotMeta,
    TimeoutNow,
)

MAX_INT: Final = 2**63 - 1
MAX_NODE_ID_CHARS: Final = 255


class CodecError(ValueError):
    """Bytes that do not decode to a well-formed value of the expected type."""


MESSAGE_TAGS: Final[dict[type[Any], int]] = {
    RequestVoteRequest: 1,
    RequestVoteResponse: 2,
    AppendEntriesRequest: 3,
    AppendEntriesResponse: 4,
    InstallSnapshotRequest: 5,
    HeartbeatRequest: 6,
    HeartbeatResponse: 7,
    TimeoutNow: 8,
}
MESSAGE_TYPES: Final[dict[int, type[Any]]] = {tag: cls for cls, tag in MESSAGE_TAGS.items()}


# ---------------------------------------------------------------- plain values -> lists


def entry_to_list(entry: Entry) -> list[object]:
    return [entry.term, entry.index, int(entry.kind), entry.data, entry.cluster_time_ticks]


def hard_state_to_list(hard_state: HardState) -> list[object]:
    return [hard_state.current_term, hard_state.voted_for, hard_state.commit_index]


def membership_to_list(membership: Membership) -> list[object]:
    return [sorted(membership.voters), sorted(membership.learners)]


def snapshot_meta_to_list(meta: SnapshotMeta) -> list[object]:
    return [meta.index, meta.term, membership_to_list(meta.membership), meta.cluster_time_ticks]


def snapshot_to_list(snapshot: Snapshot) -> list[object]:
    return [snapshot_meta_to_list(snapshot.meta), snapshot.data]


_FIELD_NAMES: Final[dict[type[Any], tuple[str, ...]]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in MESSAGE_TAGS
}


def message_to_list(msg: Message) -> list[object]:
    cls = type(msg)
    out: list[object] = [MESSAGE_TAGS[cls]]
    for name in _FIELD_NAMES[cls]:
        value = getattr(msg, name)
        if name == "entries":
            out.append([[e.term, e.index, int(e.kind), e.data, e.cluster_time_ticks]
                        for e in value])
        elif name == "snapshot":
            out.append(snapshot_to_list(value))
        else:
            out.append(value)
    return out


# ---------------------------------------------------------------- checked readers


def _int(value: object) -> int:
    if type(value) is not int or not 0 <= value <= MAX_INT:
        raise CodecError(f"expected a non-negative integer, got {value!r:.60}")
    return value


def _bool(value: object) -> bool:
    if type(value) is not bool:
        raise CodecError(f"expected a boolean, got {value!r:.60}")
    return value


def _bytes(value: object) -> bytes:
    if type(value) is not bytes:
        raise CodecError(f"expected bytes, got {type(value).__name__}")
    return value


def _node_id(value: object) -> str:
    if type(value) is not str or not 0 < len(value) <= MAX_NODE_ID_CHARS:
        raise CodecError(f"expected a node id, got {value!r:.60}")
    return value


def _optional_node_id(value: object) -> str | None:
    return None if value is None else _node_id(value)


def _list(value: object, length: int | None = None) -> list[object]:
    if type(value) is not list:
        raise CodecError(f"expected an array, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise CodecError(f"expected an array of {length} items, got {len(value)}")
    return value


def entry_from_list(value: object) -> Entry:
    term, index, kind, data, ticks = _list(value, 5)
    kind_int = _int(kind)
    try:
        entry_kind = EntryKind(kind_int)
    except ValueError:
        raise CodecError(f"unknown entry kind {kind_int}") from None
    return Entry(_int(term), _int(index), entry_kind, _bytes(data), _int(ticks))


def hard_state_from_list(value: object) -> HardState:
    term, voted_for, commit = _list(value, 3)
    return HardState(_int(term), _optional_node_id(voted_for), _int(commit))


def membership_from_list(value: object) -> Membership:
    voters, learners = _list(value, 2)
    voter_ids = frozenset(_node_id(v) for v in _list(voters))
    learner_ids = frozenset(_node_id(v) for v in _list(learners))
    if voter_ids & learner_ids:
        raise CodecError("a node is listed both as voter and as learner")
    return Membership(voter_ids, learner_ids)


def snapshot_meta_from_list(value: object) -> SnapshotMeta:
    index, term, membership, ticks = _list(value, 4)
    return SnapshotMeta(_int(index), _int(term), membership_from_list(membership), _int(ticks))


def snapshot_from_list(value: object) -> Snapshot:
    meta, data = _list(value, 2)
    return Snapshot(snapshot_meta_from_list(meta), _bytes(data))


def _entries_from_list(value: object) -> tuple[Entry, ...]:
    return tuple(entry_from_list(e) for e in _list(value))


_FIELD_READERS: Final[dict[str, Callable[[object], object]]] = {
    "from_id": _node_id,
    "to_id": _node_id,
    "entries": _entries_from_list,
    "snapshot": snapshot_from_list,
}


def _reader_for(fld: dataclasses.Field[Any]) -> Callable[[object], object]:
    if fld.name in _FIELD_READERS:
        return _FIELD_READERS[fld.name]
    if fld.type in ("bool", bool):
        return _bool
    assert fld.type in ("int", int), f"no codec for field {fld.name}: {fld.type}"
    return _int


_MESSAGE_READERS: Final[dict[int, list[Callable[[object], object]]]] = {
    tag: [_reader_for(f) for f in dataclasses.fields(cls)] for tag, cls in MESSAGE_TYPES.items()
}


def message_from_list(value: object) -> Message:
    items = _list(value)
    if not items:
        raise CodecError("empty message")
    tag = items[0]
    if type(tag) is not int or tag not in MESSAGE_TYPES:
        raise CodecError(f"unknown message tag {tag!r:.20}")
    readers = _MESSAGE_READERS[tag]
    if len(items) != len(readers) + 1:
        raise CodecError(f"message tag {tag}: expected {len(readers)} fields")
    args = [read(item) for read, item in zip(readers, items[1:], strict=True)]
    msg: Message = MESSAGE_TYPES[tag](*args)
    return msg


# ---------------------------------------------------------------- bytes


def pack(value: object) -> bytes:
    """Deterministic msgpack bytes of lists / ints / bytes / str / bool / None."""
    data = msgpack.packb(value, use_bin_type=True)
    assert isinstance(data, bytes)
    return data


def unpack(data: bytes) -> object:
    """msgpack bytes to plain values; any malformation raises CodecError."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise CodecError(f"malformed msgpack: {exc}") from None
    except (TypeError, OverflowError, RecursionError) as exc:
        raise CodecError(f"malformed msgpack: {exc}") from None


def _decode(data: bytes, reader: Callable[[object], Any]) -> Any:
    try:
        return reader(unpack(data))
    except CodecError:
        raise
    except (TypeError, ValueError, AssertionError, RecursionError) as exc:
        # Unpacking a list of the wrong length, or a dataclass rejecting its fields.
        raise CodecError(f"malformed value: {exc}") from None


def encode_message(msg: Message) -> bytes:
    return pack(message_to_list(msg))


def decode_message(data: bytes) -> Message:
    msg: Message = _decode(data, message_from_list)
    return msg


def encode_entry(entry: Entry) -> bytes:
    return pack(entry_to_list(entry))


def decode_entry(data: bytes) -> Entry:
    entry: Entry = _decode(data, entry_from_list)
    return entry


def encode_hard_state(hard_state: HardState) -> bytes:
    return pack(hard_state_to_list(hard_state))


def decode_hard_state(data: bytes) -> HardState:
    hard_state: HardState = _decode(data, hard_state_from_list)
    return hard_state


def encode_snapshot(snapshot: Snapshot) -> bytes:
    return pack(snapshot_to_list(snapshot))


def decode_snapshot(data: bytes) -> Snapshot:
    snapshot: Snapshot = _decode(data, snapshot_from_list)
    return snapshot


def encode_snapshot_meta(meta: SnapshotMeta) -> bytes:
    return pack(snapshot_meta_to_list(meta))


def decode_snapshot_meta(data: bytes) -> SnapshotMeta:
    meta: SnapshotMeta = _decode(data, snapshot_meta_from_list)
    return meta
