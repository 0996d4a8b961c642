"""Where the members are: the address book, and how it travels with snapshots and
configuration entries.

Role: the address book of kvserver/node.py (`PeerBook`, which keeps the transport's peers
in step with it) and pure helpers. Peer addresses travel with the configuration: an
AddLearner's context carries the raft and HTTP addresses, and snapshot data wraps the KV
snapshot with the address book.

Snapshot data format (msgpack): [1, kv_snapshot: bin, [[node_id, raft, http|nil], ...]]
with the address list sorted by node id; empty data means an empty state machine.

Rules:
- Malformed snapshot data raises StorageError (never used); a configuration context that
  is not an address record is ignored (None).
- The book may hold the node's own entry (snapshots carry it), but the node never becomes
  its own transport peer.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from kvserver import codec
from kvserver.errors import ConfigError, StorageError
from raftcore import confchange
from raftcore.errors import InvalidConfChange
from raftcore.types import ConfChangeKind, Entry, EntryKind, NodeId

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


class PeerLinks(Protocol):
    """What the book drives: the transport's peer connections."""

    def set_peer(self, peer_id: NodeId, host: str, port: int) -> None: ...

    def remove_peer(self, peer_id: NodeId) -> None: ...


class PeerBook:
    """A node's address book, kept in step with its transport's peers."""

    def __init__(self, node_id: NodeId, own: tuple[str, str | None], links: PeerLinks) -> None:
        self.node_id = node_id
        self.own = own
        """This node's own (raft, HTTP) addresses."""
        self._links = links
        self._book: AddressBook = {}

    def lookup(self, node_id: NodeId) -> tuple[str | None, str | None]:
        """The book's entry for `node_id`, or (None, None)."""
        return self._book.get(node_id, (None, None))

    def addresses_of(self, node_id: NodeId) -> tuple[str | None, str | None]:
        """Like `lookup`, but this node's own addresses for itself."""
        return self.own if node_id == self.node_id else self.lookup(node_id)

    def with_own(self) -> AddressBook:
        """The book with this node's own entry (what snapshots and joiners get)."""
        return {**self._book, self.node_id: self.own}

    def update(self, book: AddressBook) -> None:
        """Take the entries of `book` (a snapshot's), without touching the transport."""
        self._book.update(book)

    def learn(self, book: AddressBook) -> None:
        """Addresses handed over by the cluster this node joined: keep what is known."""
        for node_id, addresses in book.items():
            self._book.setdefault(node_id, addresses)
        self.sync()

    def sync(self) -> None:
        """Point the transport at every peer in the book."""
        for node_id, (raft, _) in self._book.items():
            if node_id != self.node_id:
                self._links.set_peer(node_id, *split_address(raft))

    def learn_entry(self, entry: Entry) -> None:
        """Take the addresses an AddLearner entry carries (other entries are ignored)."""
        if entry.kind is not EntryKind.CONF_CHANGE:
            return
        try:
            change = confchange.decode(entry.data)
        except InvalidConfChange:
            return
        if change.kind is ConfChangeKind.ADD_LEARNER:
            addresses = addresses_from_context(change.context)
            if addresses is not None and change.node_id != self.node_id:
                self._book[change.node_id] = addresses
                self._links.set_peer(change.node_id, *split_address(addresses[0]))

    def forget(self, node_id: NodeId) -> None:
        """A removed member: drop its connection and its entry."""
        self._links.remove_peer(node_id)
        self._book.pop(node_id, None)
