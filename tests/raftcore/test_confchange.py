"""Configuration changes: validation, application, deterministic encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftcore import confchange
from raftcore.errors import InvalidConfChange
from raftcore.types import ConfChange, ConfChangeKind, Membership

BASE = Membership(voters=frozenset({"n1", "n2"}), learners=frozenset({"n3"}))


def test_apply_each_kind() -> None:
    add = confchange.apply(BASE, ConfChange(ConfChangeKind.ADD_LEARNER, "n4"))
    assert add.learners == {"n3", "n4"}
    promote = confchange.apply(BASE, ConfChange(ConfChangeKind.PROMOTE_LEARNER, "n3"))
    assert promote == Membership(frozenset({"n1", "n2", "n3"}), frozenset())
    remove = confchange.apply(BASE, ConfChange(ConfChangeKind.REMOVE_SERVER, "n2"))
    assert remove == Membership(frozenset({"n1"}), frozenset({"n3"}))
    remove_learner = confchange.apply(BASE, ConfChange(ConfChangeKind.REMOVE_SERVER, "n3"))
    assert remove_learner.learners == frozenset()


@pytest.mark.parametrize(
    "change",
    [
        ConfChange(ConfChangeKind.ADD_LEARNER, "n1"),
        ConfChange(ConfChangeKind.ADD_LEARNER, "n3"),
        ConfChange(ConfChangeKind.PROMOTE_LEARNER, "n1"),
        ConfChange(ConfChangeKind.PROMOTE_LEARNER, "n9"),
        ConfChange(ConfChangeKind.REMOVE_SERVER, "n9"),
        ConfChange(ConfChangeKind.ADD_LEARNER, ""),
    ],
)
def test_invalid_changes_are_refused_and_apply_ignores_them(change: ConfChange) -> None:
    with pytest.raises(InvalidConfChange):
        confchange.validate(BASE, change)
    assert confchange.apply(BASE, change) == BASE


def test_cannot_remove_the_last_voter() -> None:
    single = Membership(voters=frozenset({"n1"}))
    with pytest.raises(InvalidConfChange):
        confchange.validate(single, ConfChange(ConfChangeKind.REMOVE_SERVER, "n1"))


def test_encoding_is_stable() -> None:
    change = ConfChange(ConfChangeKind.PROMOTE_LEARNER, "n4", b"10.0.0.4:7000")
    assert confchange.encode(change) == b"\x01\x02\x00\x02n410.0.0.4:7000"


@given(
    st.sampled_from(list(ConfChangeKind)),
    st.text(min_size=1, max_size=20),
    st.binary(max_size=40),
)
def test_encode_decode_round_trip(kind: ConfChangeKind, node_id: str, context: bytes) -> None:
    change = ConfChange(kind, node_id, context)
    assert confchange.decode(confchange.encode(change)) == change


@pytest.mark.parametrize(
    "data",
    [b"", b"\x02\x01\x00\x01a", b"\x01\x09\x00\x01a", b"\x01\x01\x00\x05ab", b"\x01\x01\x00\x00"],
)
def test_corrupt_payloads_are_detected(data: bytes) -> None:
    with pytest.raises(InvalidConfChange):
        confchange.decode(data)
