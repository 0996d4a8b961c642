"""The replicated key-value state machine with client sessions (thesis 6.3).

Rules:
- Pure and deterministic: `apply(entry)` depends only on the state and the entry, so every
  replica that applies the same log holds the same state and answers the same responses.
  The simulator and the real node (kvserver) both run this code.
- Entries are applied in index order, each exactly once per replica incarnation (asserted).
- Cluster time is the maximum `cluster_time_ticks` of the applied entries; sessions expire
  by it (see raftcore.sessions). NOOP and CONF_CHANGE entries advance the applied index and
  the cluster time, and may expire sessions, but change no data.
- Entry data that is not a command answers BAD_COMMAND (definite) on every replica alike.
- `snapshot()` is deterministic bytes: a magic line, a CRC-32 of the body, then canonical
  JSON of data, sessions, applied index and cluster time. `restore` verifies the checksum
  and the shape and raises SnapshotCorrupt rather than use a damaged snapshot.
- The planted bug `PlantedBug.APPLY_DUPLICATE` (test-only, raftcore.bugs) makes dedup
  re-execute duplicates; every other planted bug is the core's and changes nothing here.

Trace: with a tracer, every applied entry emits one `ApplyEntry` event (documented in
docs/trace-format.md): params index, kind, client_id, seq (0 when the entry has no session),
outcome; state applied_index, cluster_time_ticks and sessions as {client_id: highest seq}.
"""

from __future__ import annotations

import enum
import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from raftcore import commands
from raftcore.bugs import PlantedBug
from raftcore.commands import (
    Append,
    Cas,
    Command,
    CommandDecodeError,
    Delete,
    Get,
    Put,
    RegisterSession,
    Response,
    SessionCommand,
    Status,
)
from raftcore.sessions import SessionTable, Verdict
from raftcore.types import Entry, EntryKind, NodeId, TraceEvent

Tracer = Callable[[TraceEvent], None]

_SNAPSHOT_MAGIC = b"raftkv-snapshot/1\n"

# Entry kinds as the trace renders them (docs/trace-format.md); 0 stands for "no session".
_KIND_NAMES = {
    EntryKind.NORMAL: "Normal",
    EntryKind.NOOP: "NoOp",
    EntryKind.CONF_CHANGE: "ConfChange",
}


class SnapshotCorrupt(ValueError):
    """Snapshot bytes fail their checksum or do not have the expected shape."""


class Outcome(enum.Enum):
    """What applying an entry did (the `outcome` parameter of ApplyEntry)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    EXPIRED = "expired"
    REGISTERED = "registered"
    NOOP = "noop"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """The result of applying one entry.

    `client_id` is the session the command belongs to; for a registration it is the new
    session's id (the entry's index). `response` is None for NOOP and CONF_CHANGE entries.
    """

    index: int
    outcome: Outcome
    response: Response | None = None
    command: Command | None = None
    client_id: int | None = None
    seq: int | None = None


_new = object.__new__
_AR_SETTERS = tuple(getattr(ApplyResult, name).__set__ for name in ApplyResult.__slots__)
assert ApplyResult.__slots__ == ("index", "outcome", "response", "command", "client_id", "seq")
_set_index, _set_outcome, _set_response, _set_command, _set_client_id, _set_seq = _AR_SETTERS


def _result(  # noqa: PLR0917 (positional in field order, for speed)
    index: int,
    outcome: Outcome,
    response: Response | None,
    command: Command | None,
    client_id: int | None,
    seq: int | None,
) -> ApplyResult:
    """`ApplyResult(index, outcome, response, command, client_id, seq)`, built without the
    frozen dataclass's per-field `object.__setattr__` (it has no `__post_init__`; the same
    trick as raftcore.fastmsg, checked against the constructor in tests/raftcore/test_kv.py)."""
    result: ApplyResult = _new(ApplyResult)
    _set_index(result, index)
    _set_outcome(result, outcome)
    _set_response(result, response)
    _set_command(result, command)
    _set_client_id(result, client_id)
    _set_seq(result, seq)
    return result


_OK = Response(Status.OK)
_SESSION_EXPIRED = Response(Status.SESSION_EXPIRED)
"""Responses are frozen and compared by value, so the plain ones are shared."""


class KVStateMachine:
    """Data, session table, applied index and cluster time of one replica."""

    def __init__(
        self,
        session_timeout_ticks: int,
        *,
        node_id: NodeId = "",
        tracer: Tracer | None = None,
        planted_bug: PlantedBug | None = None,
    ) -> None:
        self.node_id = node_id
        self.tracer = tracer
        self.planted_bug = planted_bug
        self.session_timeout_ticks = session_timeout_ticks
        self.applied_index = 0
        self.cluster_time_ticks = 0
        self.sessions = SessionTable(session_timeout_ticks)
        self._data: dict[str, str] = {}

    @property
    def data(self) -> Mapping[str, str]:
        return self._data

    def read(self, key: str) -> str | None:
        """The current value of `key` (for reads served through ReadIndex)."""
        return self._data.get(key)

    def apply(self, entry: Entry) -> ApplyResult:
        """Apply the next committed entry and return what it answered."""
        assert entry.index == self.applied_index + 1, (
            f"entry {entry.index} applied after {self.applied_index}"
        )
        self.applied_index = entry.index
        self.cluster_time_ticks = max(self.cluster_time_ticks, entry.cluster_time_ticks)
        self.sessions.expire(self.cluster_time_ticks)
        if entry.kind != EntryKind.NORMAL or not entry.data:
            result = ApplyResult(entry.index, Outcome.NOOP)
        else:
            result = self._apply_data(entry)
        if self.tracer is not None:
            self._trace(entry, result)
        return result

    def _apply_data(self, entry: Entry) -> ApplyResult:
        try:
            command = commands.decode(entry.data)
        except CommandDecodeError as exc:
            response = Response(Status.BAD_COMMAND, str(exc))
            return ApplyResult(entry.index, Outcome.REJECTED, response)
        index = entry.index
        if isinstance(command, RegisterSession):
            self.sessions.register(index, self.cluster_time_ticks)
            return _result(index, Outcome.REGISTERED, _OK, command, index, None)
        header = command.session
        if header is None:
            return _result(index, Outcome.APPLIED, self._execute(command), command, None, None)
        sessions = self.sessions
        check = sessions.check(
            header,
            self.cluster_time_ticks,
            dedup=self.planted_bug is not PlantedBug.APPLY_DUPLICATE,
        )
        verdict = check.verdict
        if verdict is Verdict.NEW:
            response = self._execute(command)
            sessions.record(header, response)
            outcome = Outcome.APPLIED
        elif verdict is Verdict.EXPIRED:
            response = _SESSION_EXPIRED
            outcome = Outcome.EXPIRED
        else:
            assert check.cached is not None
            response = check.cached
            outcome = Outcome.DUPLICATE if verdict is Verdict.DUPLICATE else Outcome.REJECTED
        sessions.acknowledge(header)
        return _result(index, outcome, response, command, header.client_id, header.seq)

    def _execute(self, command: SessionCommand) -> Response:
        data = self._data
        key = command.key
        if isinstance(command, Put):
            data[key] = command.value
            return _OK
        if isinstance(command, Delete):
            existed = data.pop(key, None)
            return Response(Status.OK, existed)
        if isinstance(command, Cas):
            current = data.get(key)
            if current != command.expected:
                return Response(Status.CAS_MISMATCH, current)
            data[key] = command.new
            return Response(Status.OK, command.new)
        if isinstance(command, Append):
            data[key] = data.get(key, "") + command.value
            return Response(Status.OK, data[key])
        assert isinstance(command, Get)
        return Response(Status.OK, data.get(key))

    def _trace(self, entry: Entry, result: ApplyResult) -> None:
        assert self.tracer is not None
        event = TraceEvent(
            name="ApplyEntry",
            node=self.node_id,
            params={
                "index": entry.index,
                "kind": _KIND_NAMES[entry.kind],
                "client_id": result.client_id or 0,
                "seq": result.seq or 0,
                "outcome": result.outcome.value,
            },
            state={
                "applied_index": self.applied_index,
                "cluster_time_ticks": self.cluster_time_ticks,
                "sessions": {str(c): s for c, s in self.sessions.highest_seqs().items()},
            },
        )
        self.tracer(event)

    # Snapshots ---------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The whole state as deterministic bytes (equal states give equal bytes)."""
        body = json.dumps(
            {
                "applied_index": self.applied_index,
                "cluster_time_ticks": self.cluster_time_ticks,
                "data": self._data,
                "sessions": self.sessions.to_doc(),
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
        ).encode("ascii")
        return _SNAPSHOT_MAGIC + b"%08x\n" % zlib.crc32(body) + body

    def restore(self, blob: bytes) -> None:
        """Replace the whole state with a snapshot taken by `snapshot()`."""
        doc = _parse_snapshot(blob)
        try:
            data = doc["data"]
            if not isinstance(data, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in data.items()
            ):
                raise TypeError("data must map strings to strings")
            applied_index = _nonneg_int(doc["applied_index"])
            cluster_time_ticks = _nonneg_int(doc["cluster_time_ticks"])
            sessions = SessionTable.from_doc(
                doc["sessions"], self.session_timeout_ticks, cluster_time_ticks
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotCorrupt(f"snapshot has a malformed body: {exc!r}") from exc
        self._data = dict(data)
        self.applied_index = applied_index
        self.cluster_time_ticks = cluster_time_ticks
        self.sessions = sessions


def _parse_snapshot(blob: bytes) -> dict[str, Any]:
    if not blob.startswith(_SNAPSHOT_MAGIC):
        raise SnapshotCorrupt("not a KV snapshot (bad magic)")
    rest = blob[len(_SNAPSHOT_MAGIC) :]
    crc_text, sep, body = rest.partition(b"\n")
    if not sep or len(crc_text) != 8:
        raise SnapshotCorrupt("snapshot checksum line is missing")
    try:
        crc = int(crc_text, 16)
    except ValueError as exc:
        raise SnapshotCorrupt("snapshot checksum is not hexadecimal") from exc
    if zlib.crc32(body) != crc:
        raise SnapshotCorrupt("snapshot checksum mismatch")
    try:
        doc = json.loads(body.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SnapshotCorrupt(f"snapshot body is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise SnapshotCorrupt("snapshot body is not a JSON object")
    return doc


def _nonneg_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"expected a non-negative integer, got {value!r}")
    return value
