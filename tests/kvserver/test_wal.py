"""Record framing of kvserver.wal: verification, torn tails, corruption."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvserver import wal
from kvserver.errors import CorruptRecord

PATH = Path("segment.wal")


def records(*payloads: bytes) -> bytes:
    return b"".join(wal.encode_record(wal.RecordType.ENTRY, p) for p in payloads)


def test_records_round_trip_with_offsets() -> None:
    data = records(b"a", b"", b"ccc")
    result = wal.scan(PATH, data, tail_may_be_torn=False)
    assert [r.payload for r in result.records] == [b"a", b"", b"ccc"]
    assert [r.offset for r in result.records] == [0, 13, 25]
    assert result.valid_bytes == len(data)
    assert result.torn_reason is None


def test_cut_at_every_byte_of_the_last_record_is_a_torn_tail() -> None:
    head = records(b"first", b"second")
    full = head + records(b"the last record")
    for cut in range(len(head), len(full)):
        result = wal.scan(PATH, full[:cut], tail_may_be_torn=True)
        assert [r.payload for r in result.records] == [b"first", b"second"]
        assert result.valid_bytes == len(head)
        assert (result.torn_reason is None) == (cut == len(head))


def test_a_cut_record_where_no_tail_may_be_torn_is_corrupt() -> None:
    data = records(b"first", b"second")[:-1]
    with pytest.raises(CorruptRecord) as caught:
        wal.scan(PATH, data, tail_may_be_torn=False)
    assert caught.value.offset == 17
    assert "segment.wal" in str(caught.value)


@pytest.mark.parametrize("flip_at", [12, 14, 0, 3, 4, 9])
def test_damage_to_a_middle_record_stops_with_file_and_offset(flip_at: int) -> None:
    """Payload (12, 14), length (0, 3), crc (4) or reserved byte (9) of record 2 of 3."""
    first = records(b"first")
    data = bytearray(first + records(b"second", b"third"))
    data[len(first) + flip_at] ^= 0x40
    with pytest.raises(CorruptRecord) as caught:
        wal.scan(PATH, bytes(data), tail_may_be_torn=True)
    assert caught.value.offset == len(first)
    assert f"offset {len(first)}" in str(caught.value)


def test_a_bad_checksum_in_the_last_record_is_a_torn_tail() -> None:
    first = records(b"first")
    data = bytearray(first + records(b"last"))
    data[-1] ^= 0x01
    result = wal.scan(PATH, bytes(data), tail_may_be_torn=True)
    assert [r.payload for r in result.records] == [b"first"]
    assert result.torn_reason == "checksum mismatch in the last record"


def test_zero_bytes_to_the_end_are_a_torn_tail_but_zeros_then_data_are_not() -> None:
    first = records(b"first")
    result = wal.scan(PATH, first + bytes(40), tail_may_be_torn=True)
    assert result.valid_bytes == len(first)
    with pytest.raises(CorruptRecord):
        wal.scan(PATH, first + bytes(20) + records(b"x"), tail_may_be_torn=True)


def test_unknown_record_type_with_valid_checksums_is_corrupt() -> None:
    head = struct.pack(">IIBB", 0, zlib.crc32(bytes([99])), 99, 0)
    data = head + struct.pack(">H", zlib.crc32(head) & 0xFFFF)
    with pytest.raises(CorruptRecord, match="unknown record type"):
        wal.scan(PATH, data, tail_may_be_torn=True)


@settings(deadline=None)
@given(st.lists(st.binary(max_size=30), min_size=1, max_size=5), st.data())
def test_any_single_byte_change_is_detected_or_is_a_torn_tail(
    payloads: list[bytes], data: st.DataObject
) -> None:
    clean = records(*payloads)
    position = data.draw(st.integers(min_value=0, max_value=len(clean) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    damaged = bytearray(clean)
    damaged[position] ^= flip
    try:
        result = wal.scan(PATH, bytes(damaged), tail_may_be_torn=True)
    except CorruptRecord:
        return
    # Only damage to the last record may pass, as a torn tail that drops that record.
    assert result.torn_reason is not None
    assert [r.payload for r in result.records] == payloads[: len(result.records)]
    assert len(result.records) == len(payloads) - 1


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "state"
    wal.write_file_atomically(target, b"one")
    wal.write_file_atomically(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]


def test_segment_listing_orders_by_sequence_and_removes_temp_files(tmp_path: Path) -> None:
    for seq in (10, 2, 1):
        (tmp_path / wal.segment_name(seq)).write_bytes(b"")
    (tmp_path / (wal.segment_name(11) + wal.TEMP_SUFFIX)).write_bytes(b"partial")
    assert [seq for seq, _ in wal.list_segments(tmp_path)] == [1, 2, 10]
    assert not list(tmp_path.glob("*.tmp"))
