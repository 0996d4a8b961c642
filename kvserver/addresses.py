"""Where the members are: the address book, and how it travels with snapshots and
configuration entries.

Role: pure helpers of kvserver/node.py. Peer addresses travel with the configuration: an
AddLearner's context carries the raft and HTTP addresses, and snapshot data wraps the KV
snapshot with the address book.

Snapshot data format (msgpack): [1, kv_snapshot: bin, [[node_id, raft, http|nil], ...]]
with the address list sorted by node id; empty data means an empty state machine.

Rules: malformed snapshot data raises StorageError (never used); a configuration context
that is not an address record is ignored (None).
"""

from __future__ import annotations

import json
from typing import Any

from kvserver import codec
from kvserver.errors import ConfigError, StorageError
from raftcore.types import NodeId

AddressBook = dict[NodeId, tuple[str, str | None]]
"""node id -> (raft address, HTTP address or None)"""


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"expected HOST:PORT, got {address!r}")
    return host or "127.0.0.1", int(port)


def pack_snapshot_data(kv_blob: bytes, book: AddressBook) -> bytes:
    rows = [[node_id, raft, http] for node_id, (raft, http) in sorted(book.items())]
    return codec.pack([1, kv_blob, rows])


def unpack_snapshot_data(data: bytes) -> tuple[bytes, AddressBook]:
    """(KV snapshot bytes, address book); raises StorageError on malformed data."""
    if not data:
        return b"", {}
    try:
        value: Any = codec.unpack(data)
        version, kv_blob, rows = value
        assert version == 1
        assert isinstance(kv_blob, bytes)
        book: AddressBook = {}
        for node_id, raft, http in rows:
            assert isinstance(node_id, str)
            assert isinstance(raft, str)
            assert http is None or isinstance(http, str)
            book[node_id] = (raft, http)
    except (codec.CodecError, AssertionError, TypeError, ValueError) as exc:
        raise StorageError(f"snapshot data is malformed: {exc!r}") from None
    return kv_blob, book


def conf_context(raft: str, http: str | None) -> bytes:
    return json.dumps({"raft": raft, "http": http}, sort_keys=True).encode()


def addresses_from_context(context: bytes) -> tuple[str, str | None] | None:
    try:
        doc = json.loads(context)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("raft"), str):
        return None
    http = doc.get("http")
    return doc["raft"], http if isinstance(http, str) else None
