"""The peer frame decoder (sans-I/O): authentication, framing, hostile byte streams."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvserver import codec
from kvserver.transport import (
    MAC_BYTES,
    NONCE_BYTES,
    FrameDecoder,
    FrameError,
    encode_frame,
)
from raftcore.types import AppendEntriesRequest, Entry, HeartbeatRequest, Message, TimeoutNow

SECRET = b"cluster secret"
NONCE = bytes(range(NONCE_BYTES))
MESSAGES: list[Message] = [
    HeartbeatRequest(3, "n1", "n2", commit_index=7, read_round=2, seq=1),
    AppendEntriesRequest(3, "n1", "n2", 7, 3, (Entry(3, 8, data=b"x" * 100),), 7, seq=2),
    TimeoutNow(3, "n1", "n2", seq=3),
]


def stream(messages: list[Message], secret: bytes = SECRET, nonce: bytes = NONCE) -> bytes:
    return b"".join(
        encode_frame(secret, nonce, number, codec.encode_message(msg))
        for number, msg in enumerate(messages)
    )


@settings(deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=400), max_size=8))
def test_frames_decode_whatever_the_chunking(cuts: list[int]) -> None:
    data = stream(MESSAGES)
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    decoder = FrameDecoder(SECRET, NONCE)
    received: list[Message] = []
    for lo, hi in itertools.pairwise(points):
        received += decoder.feed(data[lo:hi])
    assert received == MESSAGES


def test_a_frame_made_without_the_secret_is_rejected() -> None:
    decoder = FrameDecoder(SECRET, NONCE)
    with pytest.raises(FrameError, match="bad MAC"):
        decoder.feed(stream(MESSAGES[:1], secret=b"guess"))


def test_a_frame_recorded_on_another_connection_is_rejected() -> None:
    decoder = FrameDecoder(SECRET, NONCE)
    with pytest.raises(FrameError, match="bad MAC"):
        decoder.feed(stream(MESSAGES[:1], nonce=bytes(NONCE_BYTES)))


def test_a_replayed_frame_on_the_same_connection_is_rejected() -> None:
    first = stream(MESSAGES[:1])
    decoder = FrameDecoder(SECRET, NONCE)
    assert decoder.feed(first) == MESSAGES[:1]
    with pytest.raises(FrameError, match="bad MAC on frame 1"):
        decoder.feed(first)


def test_an_oversized_length_is_rejected_before_its_body_arrives() -> None:
    decoder = FrameDecoder(SECRET, NONCE, max_frame_bytes=1000)
    with pytest.raises(FrameError, match="out of range"):
        decoder.feed((1001).to_bytes(4, "big"))
    with pytest.raises(FrameError, match="already failed"):
        decoder.feed(stream(MESSAGES))


def test_an_authenticated_frame_that_does_not_decode_is_rejected() -> None:
    decoder = FrameDecoder(SECRET, NONCE)
    with pytest.raises(FrameError, match="does not decode"):
        decoder.feed(encode_frame(SECRET, NONCE, 0, b"\x93\x01\x02"))


def test_a_length_shorter_than_a_mac_is_rejected() -> None:
    decoder = FrameDecoder(SECRET, NONCE)
    with pytest.raises(FrameError):
        decoder.feed((MAC_BYTES - 1).to_bytes(4, "big") + bytes(MAC_BYTES))


@settings(deadline=None)
@given(st.binary(max_size=600), st.booleans())
def test_random_byte_streams_never_raise_anything_but_frame_error(
    junk: bytes, valid_prefix: bool
) -> None:
    decoder = FrameDecoder(SECRET, NONCE, max_frame_bytes=4096)
    prefix = stream(MESSAGES[:1]) if valid_prefix else b""
    try:
        received = decoder.feed(prefix + junk)
    except FrameError:
        return
    # Junk that passes as frames would need a forged MAC: only the valid prefix decodes.
    assert received == (MESSAGES[:1] if valid_prefix else [])


@settings(deadline=None)
@given(st.binary(min_size=1, max_size=64), st.integers(min_value=0, max_value=300))
def test_flipped_bytes_in_a_valid_stream_are_caught(flip: bytes, position: int) -> None:
    data = bytearray(stream(MESSAGES))
    position %= len(data)
    data[position] ^= flip[0] or 1
    decoder = FrameDecoder(SECRET, NONCE)
    try:
        received = decoder.feed(bytes(data))
    except FrameError:
        return
    # A flip in a length field may leave the decoder waiting for more bytes, never
    # returning a tampered message.
    assert received == MESSAGES[: len(received)]
    assert len(received) < len(MESSAGES)
