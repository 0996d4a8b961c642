"""Round trips and hostile input for kvserver.codec."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvserver import codec
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
    RequestVoteRequest,
    RequestVoteResponse,
    Snapshot,
    SnapshotMeta,
    TimeoutNow,
)

ints = st.integers(min_value=0, max_value=2**63 - 1)
small = st.integers(min_value=0, max_value=1000)
node_ids = st.text(min_size=1, max_size=8)
entries = st.builds(Entry, ints, ints, st.sampled_from(EntryKind), st.binary(max_size=64), ints)
hard_states = st.builds(HardState, ints, st.none() | node_ids, ints)


@st.composite
def memberships(draw: st.DrawFn) -> Membership:
    ids = draw(st.lists(node_ids, unique=True, max_size=7))
    cut = draw(st.integers(min_value=0, max_value=len(ids)))
    return Membership(frozenset(ids[:cut]), frozenset(ids[cut:]))


metas = st.builds(SnapshotMeta, ints, ints, memberships(), ints)
snapshots = st.builds(Snapshot, metas, st.binary(max_size=64))
messages = st.one_of(
    st.builds(RequestVoteRequest, small, node_ids, node_ids, ints, ints, st.booleans(),
              st.booleans(), ints),
    st.builds(RequestVoteResponse, small, node_ids, node_ids, st.booleans(), st.booleans(), ints),
    st.builds(AppendEntriesRequest, small, node_ids, node_ids, ints, ints,
              st.lists(entries, max_size=4).map(tuple), ints, ints),
    st.builds(AppendEntriesResponse, small, node_ids, node_ids, st.booleans(), ints, ints, ints,
              ints, ints),
    st.builds(InstallSnapshotRequest, small, node_ids, node_ids, snapshots, ints),
    st.builds(HeartbeatRequest, small, node_ids, node_ids, ints, ints, ints),
    st.builds(HeartbeatResponse, small, node_ids, node_ids, ints, ints),
    st.builds(TimeoutNow, small, node_ids, node_ids, ints),
)


@settings(deadline=None)
@given(messages)
def test_message_round_trip_is_identity_and_deterministic(msg: codec.Message) -> None:
    data = codec.encode_message(msg)
    assert codec.decode_message(data) == msg
    assert codec.encode_message(codec.decode_message(data)) == data


@settings(deadline=None)
@given(entries)
def test_entry_round_trip(entry: Entry) -> None:
    assert codec.decode_entry(codec.encode_entry(entry)) == entry


@settings(deadline=None)
@given(hard_states)
def test_hard_state_round_trip(hard_state: HardState) -> None:
    assert codec.decode_hard_state(codec.encode_hard_state(hard_state)) == hard_state


@settings(deadline=None)
@given(snapshots)
def test_snapshot_round_trip(snapshot: Snapshot) -> None:
    assert codec.decode_snapshot(codec.encode_snapshot(snapshot)) == snapshot
    assert codec.decode_snapshot_meta(codec.encode_snapshot_meta(snapshot.meta)) == snapshot.meta


def test_membership_encoding_does_not_depend_on_set_order() -> None:
    a = Membership(frozenset(["n3", "n1", "n2"]), frozenset(["n9", "n4"]))
    b = Membership(frozenset(["n2", "n3", "n1"]), frozenset(["n4", "n9"]))
    meta_a, meta_b = SnapshotMeta(1, 1, a), SnapshotMeta(1, 1, b)
    assert codec.encode_snapshot_meta(meta_a) == codec.encode_snapshot_meta(meta_b)


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_decode_to_a_message_or_codec_error(data: bytes) -> None:
    try:
        msg = codec.decode_message(data)
    except codec.CodecError:
        return
    assert type(msg) in codec.MESSAGE_TAGS


plain = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.binary(max_size=8) | st.text(max_size=8) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=10),
    max_leaves=30,
)


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=12), st.lists(plain, max_size=12))
def test_well_formed_msgpack_of_wrong_shape_is_rejected(tag: int, rest: list[object]) -> None:
    data = msgpack.packb([tag, *rest], use_bin_type=True)
    try:
        msg = codec.decode_message(data)
    except codec.CodecError:
        return
    assert codec.encode_message(msg) == data


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ([3, 1, "a", "b", 0, 0, [[1, 1, 7, b"", 0]], 0, 0], "unknown entry kind"),
        ([1, 1, "", "b", 0, 0, False, False, 0], "empty node id"),
        ([1, -1, "a", "b", 0, 0, False, False, 0], "negative term"),
        ([1, 1, "a", "b", 0, 0, 1, False, 0], "int for bool"),
        ([2, 1, "a", "b", True, False], "missing field"),
        ([99], "unknown tag"),
        ([], "empty"),
        ([5, 1, "a", "b", [[1, 1, [["x"], ["x"]], 0], b""], 0], "voter and learner"),
    ],
)
def test_specific_malformations_raise_codec_error(value: list[object], why: str) -> None:
    with pytest.raises(codec.CodecError):
        codec.decode_message(msgpack.packb(value, use_bin_type=True))


def test_trailing_bytes_are_rejected() -> None:
    data = codec.encode_message(TimeoutNow(1, "a", "b"))
    with pytest.raises(codec.CodecError):
        codec.decode_message(data + b"\x00")
