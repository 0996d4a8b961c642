"""The fast message constructors build exactly what the ordinary constructors build."""

from __future__ import annotations

import dataclasses

import pytest

from raftcore import fastmsg
from raftcore.types import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    HardState,
    HeartbeatRequest,
    HeartbeatResponse,
    ReadState,
    Ready,
    Role,
    SoftState,
)

CASES = [
    (
        fastmsg.append_entries_request,
        AppendEntriesRequest,
        (3, "n1", "n2", 7, 2, (Entry(3, 8, data=b"x"),), 6, 41),
    ),
    (fastmsg.append_entries_response, AppendEntriesResponse, (3, "n2", "n1", False, 0, 7, 2, 5, 9)),
    (fastmsg.heartbeat_request, HeartbeatRequest, (4, "n1", "n3", 6, 2, 12)),
    (fastmsg.heartbeat_response, HeartbeatResponse, (4, "n3", "n1", 2, 13)),
    (fastmsg.hard_state, HardState, (5, "n2", 17)),
    (
        fastmsg.ready,
        Ready,
        (
            SoftState("n1", Role.LEADER),
            HardState(5, "n1", 3),
            (Entry(5, 4),),
            None,
            (HeartbeatResponse(4, "n3", "n1", 2, 13),),
            (Entry(5, 3),),
            (ReadState(3, b"r"),),
            True,
            True,
        ),
    ),
]


@pytest.mark.parametrize(("fast", "cls", "values"), CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_fast_constructor_equals_the_dataclass(fast: object, cls: type, values: tuple) -> None:
    built = fast(*values)  # type: ignore[operator]
    expected = cls(*values)
    assert type(built) is cls
    assert built == expected
    assert hash(built) == hash(expected)
    assert repr(built) == repr(expected)
    assert [getattr(built, f.name) for f in dataclasses.fields(cls)] == list(values)
    first_field = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, first_field, 99)
