"""Checksummed records, the segmented write-ahead log, and atomically replaced files.

Role: the byte-level layer of a node's data directory. It knows records, segments, fsync
and rename; what the records mean (entries, snapshot marks) is kvserver/diskstorage.py's.

Record format (big-endian), the same in segments, the hard-state file and snapshot files:

    offset 0  u32 length      payload length in bytes (at most MAX_RECORD_BYTES)
    offset 4  u32 crc         zlib.crc32 of the type byte followed by the payload
    offset 8  u8  type        RecordType
    offset 9  u8  0           reserved, must be zero
    offset 10 u16 header_crc  low 16 bits of zlib.crc32 of bytes 0..9
    offset 12 payload

The header has its own check so that a corrupt length field is recognised as corruption
instead of being taken for a record cut short by a crash.

Rules for reading (`scan`):
- Every record is verified. In the final segment only, a torn tail (an incomplete header,
  a record extending past the end of the file, a last record whose checksum fails, or a
  run of zero bytes to the end) is what a crash between write and fsync leaves; it is
  reported so the caller truncates it.
- Any other failure raises `CorruptRecord` naming the file and byte offset: a corrupt
  record is never used and never silently dropped.

Rules for writing:
- A segment is only appended to: `SegmentWriter.write` appends one batch of records in one
  `write` call, and `sync` fsyncs it (group commit: one fsync per batch).
- Files that are replaced whole (hard state, snapshots, a compacted segment) are written to
  a temporary name, fsynced, renamed over the final name, and the directory is fsynced.
"""

from __future__ import annotations

import enum
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from kvserver.errors import CorruptRecord, StorageError

HEADER: Final = struct.Struct(">IIBBH")
HEADER_BYTES: Final = HEADER.size
MAX_RECORD_BYTES: Final = 1 << 30
SEGMENT_SUFFIX: Final = ".wal"
TEMP_SUFFIX: Final = ".tmp"


class RecordType(enum.IntEnum):
    ENTRY = 1
    """A log entry (codec Entry). An entry at index i replaces every entry at index >= i."""
    SNAPSHOT_MARK = 2
    """[index, term]: the log restarts empty after the snapshot with this index and term."""
    HARD_STATE = 3
    """The hard-state file's one record (codec HardState)."""
    SNAPSHOT = 4
    """A snapshot file's one record (codec Snapshot)."""


_RECORD_TYPES: Final = frozenset(int(t) for t in RecordType)


@dataclass(frozen=True, slots=True)
class Record:
    offset: int
    type: RecordType
    payload: bytes


@dataclass(frozen=True, slots=True)
class ScanResult:
    records: list[Record]
    valid_bytes: int
    """Where the verified records end; less than the file size when the tail is torn."""
    torn_reason: str | None


def encode_record(record_type: RecordType, payload: bytes) -> bytes:
    assert len(payload) <= MAX_RECORD_BYTES, "record too large"
    crc = zlib.crc32(payload, zlib.crc32(bytes([record_type])))
    head = struct.pack(">IIBB", len(payload), crc, int(record_type), 0)
    return head + struct.pack(">H", zlib.crc32(head) & 0xFFFF) + payload


def scan(path: Path, data: bytes, *, tail_may_be_torn: bool) -> ScanResult:
    """Verify and split `data` (the contents of `path`) into records."""
    records: list[Record] = []
    offset, size = 0, len(data)
    while offset < size:
        torn, record_end = _check_record(path, data, offset)
        if torn is not None:
            if not tail_may_be_torn:
                raise CorruptRecord(path, offset, f"truncated record ({torn})")
            return ScanResult(records, offset, torn)
        record_type = data[offset + 8]
        payload = data[offset + HEADER_BYTES : record_end]
        records.append(Record(offset, RecordType(record_type), payload))
        offset = record_end
    return ScanResult(records, offset, None)


def _check_record(path: Path, data: bytes, offset: int) -> tuple[str | None, int]:
    """(why the tail is torn here, or None; where this record ends). Raises if corrupt."""
    size = len(data)
    if size - offset < HEADER_BYTES:
        return "incomplete header", size
    length, crc, record_type, reserved, header_crc = HEADER.unpack_from(data, offset)
    header_ok = zlib.crc32(data[offset : offset + 10]) & 0xFFFF == header_crc
    if not header_ok or reserved != 0 or length > MAX_RECORD_BYTES:
        if not data[offset:].strip(b"\x00"):
            return "zero bytes to the end of the file", size
        raise CorruptRecord(path, offset, "bad record header")
    if record_type not in _RECORD_TYPES:
        raise CorruptRecord(path, offset, f"unknown record type {record_type}")
    end = offset + HEADER_BYTES + length
    if end > size:
        return "record extends past the end of the file", size
    actual = zlib.crc32(data[offset + HEADER_BYTES : end], zlib.crc32(bytes([record_type])))
    if actual != crc:
        if end == size:
            return "checksum mismatch in the last record", size
        raise CorruptRecord(path, offset, "checksum mismatch")
    return None, end


# ---------------------------------------------------------------- files


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomically(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Temp file, fsync, rename over `path`, fsync the directory."""
    temp = path.with_name(path.name + TEMP_SUFFIX)
    with open(temp, "wb") as f:
        f.write(data)
        f.flush()
        if sync:
            os.fsync(f.fileno())
    os.replace(temp, path)
    if sync:
        fsync_dir(path.parent)


def read_single_record(path: Path, expected: RecordType) -> bytes:
    """The payload of a file holding exactly one record of type `expected`."""
    data = path.read_bytes()
    result = scan(path, data, tail_may_be_torn=False)
    if len(result.records) != 1:
        raise CorruptRecord(path, 0, f"expected one record, found {len(result.records)}")
    record = result.records[0]
    if record.type != expected:
        raise CorruptRecord(path, 0, f"expected a {expected.name} record, got {record.type.name}")
    return record.payload


def segment_name(seq: int) -> str:
    return f"{seq:020d}{SEGMENT_SUFFIX}"


def list_segments(wal_dir: Path) -> list[tuple[int, Path]]:
    """(sequence number, path) of every segment, in order; stray temp files are removed."""
    found: list[tuple[int, Path]] = []
    for path in wal_dir.iterdir():
        if path.name.endswith(TEMP_SUFFIX):
            path.unlink()
            continue
        stem = path.name.removesuffix(SEGMENT_SUFFIX)
        if path.name.endswith(SEGMENT_SUFFIX) and stem.isdigit():
            found.append((int(stem), path))
        else:
            raise StorageError(f"unexpected file in the WAL directory: {path}")
    return sorted(found)


class SegmentWriter:
    """Appends batches of records to one open segment file."""

    def __init__(self, path: Path, *, fsync: bool) -> None:
        self.path = path
        self._fsync = fsync
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.size_bytes = os.fstat(self._fd).st_size

    def write(self, data: bytes) -> None:
        """Append `data` with one write call (looping only on a short write)."""
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.size_bytes += len(data)

    def sync(self) -> None:
        if self._fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def truncate_file(path: Path, size: int, *, sync: bool) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
