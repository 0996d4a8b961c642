"""The command codec: canonical bytes, exact round trips, and clear errors on bad input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftcore import commands
from raftcore.commands import (
    Append,
    Cas,
    CommandDecodeError,
    Delete,
    Get,
    Put,
    RegisterSession,
    SessionHeader,
)

texts = st.text(max_size=20)


@st.composite
def headers(draw: st.DrawFn) -> SessionHeader:
    seq = draw(st.integers(1, 2**40))
    return SessionHeader(draw(st.integers(1, 2**40)), seq, draw(st.integers(0, seq)))


sessions = st.none() | headers()
all_commands = st.one_of(
    st.builds(RegisterSession, st.integers(0, 2**63)),
    st.builds(Put, texts, texts, sessions),
    st.builds(Delete, texts, sessions),
    st.builds(Cas, texts, st.none() | texts, texts, sessions),
    st.builds(Append, texts, texts, sessions),
    st.builds(Get, texts, sessions),
)


@given(all_commands)
def test_decode_inverts_encode(command: commands.Command) -> None:
    data = commands.encode(command)
    assert commands.decode(data) == command
    assert commands.encode(commands.decode(data)) == data


@given(all_commands)
def test_encoding_is_canonical_ascii_json(command: commands.Command) -> None:
    data = commands.encode(command)
    assert data.isascii()
    canonical = json.dumps(json.loads(data), sort_keys=True, separators=(",", ":"))
    assert data == canonical.encode("ascii")


def test_encoding_of_a_known_command() -> None:
    data = commands.encode(Cas("k", None, "v", SessionHeader(3, 8, 7)))
    assert data == b'{"expected":null,"key":"k","new":"v","op":"cas","session":[3,8,7]}'


@given(st.binary(max_size=64))
def test_decode_of_arbitrary_bytes_is_a_command_or_a_clear_error(data: bytes) -> None:
    try:
        command = commands.decode(data)
    except CommandDecodeError:
        return
    assert commands.decode(commands.encode(command)) == command


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b'{"op":"nope"}',
        b'{"op":"put","key":"k"}',
        b'{"op":"put","key":"k","value":"v","extra":1}',
        b'{"op":"put","key":"k","value":3}',
        b'{"op":"put","key":"k","value":"v","session":[1,2]}',
        b'{"op":"put","key":"k","value":"v","session":[0,2,1]}',
        b'{"op":"put","key":"k","value":"v","session":[1,2,3]}',
        b'{"op":"put","key":"k","value":"v","session":[1,true,0]}',
        b'{"op":"put","key":"k","value":"v","session":[1,0,0]}',
        b'{"op":"register","nonce":-1}',
        b'{"op":"register","nonce":1,"session":[1,1,1]}',
        b'{"op":"get","key":"\xff"}',
    ],
)
def test_malformed_data_raises_command_decode_error(data: bytes) -> None:
    with pytest.raises(CommandDecodeError):
        commands.decode(data)


@given(all_commands)
def test_fast_encoding_equals_the_json_dumps_reference(command: commands.Command) -> None:
    assert commands.encode(command) == commands._encode_reference(command)


@pytest.mark.parametrize(
    "command",
    [
        RegisterSession(nonce=True),
        Put("k", 3, None),  # type: ignore[arg-type]
        Cas("k", 1.5, "v", None),  # type: ignore[arg-type]
        Get("k", SessionHeader(True, 2, 1)),
    ],
)
def test_unusual_field_types_take_the_reference_path(command: commands.Command) -> None:
    assert commands.encode(command) == commands._encode_reference(command)
