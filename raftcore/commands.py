"""Commands of the replicated KV state machine and their codec to and from entry `data`.

Rules:
- A command is a frozen, slotted dataclass. Writes may carry a `SessionHeader` (thesis 6.3):
  `client_id` (the log index of the client's RegisterSession entry), `seq` (the client's
  sequence number for this command) and `ack_seq` (the lowest sequence number whose
  response the client has not yet received; every response below it may be forgotten).
- The codec is deterministic and compact: JSON with sorted keys, no whitespace, ASCII
  only (non-ASCII characters are `\\uXXXX` escapes), encoded as UTF-8. Equal commands give
  equal bytes on every replica and every Python version, so the bytes can live in the log.
- `decode` never trusts its input: anything that is not exactly a command this module
  would have encoded raises `CommandDecodeError` (a definite error; nothing is executed).

Wire shape (docs/trace-format.md shows it next to the ApplyEntry event):

    {"op":"register","nonce":7}
    {"op":"put","key":"k","value":"v","session":[client_id,seq,ack_seq]}
    {"op":"delete","key":"k"}
    {"op":"cas","key":"k","expected":null,"new":"v","session":[3,8,8]}
    {"op":"append","key":"k","value":"x"}
    {"op":"get","key":"k"}

`session` is omitted when the command carries none; `expected` is `null` for "the key must
be absent".
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class CommandDecodeError(ValueError):
    """Entry data is not a well-formed command. Definite: the command was not executed."""


@dataclass(frozen=True, slots=True)
class SessionHeader:
    """The client session a command belongs to (thesis 6.3)."""

    client_id: int
    seq: int
    ack_seq: int

    def __post_init__(self) -> None:
        assert self.client_id >= 1, "a session id is a log index, so at least 1"
        assert self.seq >= 1, "sequence numbers start at 1"
        assert 0 <= self.ack_seq <= self.seq, "ack_seq is the lowest unacknowledged seq"


@dataclass(frozen=True, slots=True)
class RegisterSession:
    """Open a session; its id is the log index of the entry carrying this command.

    `nonce` is opaque to the state machine: it lets a proposer recognise its own
    registration among the applied entries.
    """

    nonce: int = 0


@dataclass(frozen=True, slots=True)
class Put:
    key: str
    value: str
    session: SessionHeader | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    key: str
    session: SessionHeader | None = None


@dataclass(frozen=True, slots=True)
class Cas:
    """Compare-and-set: write `new` if the key holds `expected` (None: the key is absent)."""

    key: str
    expected: str | None
    new: str
    session: SessionHeader | None = None


@dataclass(frozen=True, slots=True)
class Append:
    """Append `value` to the key's string (absent counts as empty)."""

    key: str
    value: str
    session: SessionHeader | None = None


@dataclass(frozen=True, slots=True)
class Get:
    """A read through the log (log reads and tests; ReadIndex serves the fast path)."""

    key: str
    session: SessionHeader | None = None


class Status(enum.Enum):
    """How a command ended. Every status is definite: the command did or did not happen."""

    OK = "ok"
    CAS_MISMATCH = "cas_mismatch"
    """The CAS compared unequal and wrote nothing; `value` is the current value."""
    SESSION_EXPIRED = "session_expired"
    """The session is unknown or expired; the command was not executed."""
    STALE_REQUEST = "stale_request"
    """`seq` lies below the session's acknowledged floor, so its response is gone; the
    command was not executed now (it may have been executed once, long ago)."""
    BAD_COMMAND = "bad_command"
    """The entry data is not a command; nothing was executed."""


@dataclass(frozen=True, slots=True)
class Response:
    """What a command answered: a status and, for reads, CAS and appends, a value."""

    status: Status
    value: str | None = None


SessionCommand = Put | Delete | Cas | Append | Get
Command = RegisterSession | SessionCommand

_OP_NAMES: dict[type, str] = {
    RegisterSession: "register",
    Put: "put",
    Delete: "delete",
    Cas: "cas",
    Append: "append",
    Get: "get",
}

# Field names per op, besides "op" and the optional "session" (required, in any order).
_FIELDS: dict[str, tuple[str, ...]] = {
    "register": ("nonce",),
    "put": ("key", "value"),
    "delete": ("key",),
    "cas": ("key", "expected", "new"),
    "append": ("key", "value"),
    "get": ("key",),
}


def encode(command: Command) -> bytes:
    """The canonical bytes of `command` (deterministic; see the module docstring).

    Built directly in sorted-key order from the json module's own ASCII string escaper,
    so the bytes equal `json.dumps(doc, sort_keys=True, separators=(",", ":"))` of the
    wire document (`_encode_reference`, which tests compare against); fields of any other
    type than `str` / `int` take the reference path."""
    cls = type(command)
    if cls is RegisterSession:
        nonce = command.nonce  # type: ignore[union-attr]
        if type(nonce) is int:
            return f'{{"nonce":{nonce},"op":"register"}}'.encode("ascii")
        return _encode_reference(command)
    key = command.key  # type: ignore[union-attr]
    header = command.session  # type: ignore[union-attr]
    if type(key) is not str or (header is not None and type(header) is not SessionHeader):
        return _encode_reference(command)
    if header is None:
        tail = "}"
    else:
        client_id, seq, ack_seq = header.client_id, header.seq, header.ack_seq
        if type(client_id) is not int or type(seq) is not int or type(ack_seq) is not int:
            return _encode_reference(command)
        tail = f',"session":[{client_id},{seq},{ack_seq}]}}'
    esc = _escape
    if cls is Put or cls is Append:
        value = command.value  # type: ignore[union-attr]
        if type(value) is not str:
            return _encode_reference(command)
        op = "put" if cls is Put else "append"
        if header is None:
            text = f'{{"key":{esc(key)},"op":"{op}","value":{esc(value)}}}'
        else:
            text = f'{{"key":{esc(key)},"op":"{op}"{tail[:-1]},"value":{esc(value)}}}'
    elif cls is Cas:
        expected, new = command.expected, command.new  # type: ignore[union-attr]
        if type(new) is not str or (expected is not None and type(expected) is not str):
            return _encode_reference(command)
        old = "null" if expected is None else esc(expected)
        text = f'{{"expected":{old},"key":{esc(key)},"new":{esc(new)},"op":"cas"{tail}'
    elif cls is Delete or cls is Get:
        text = f'{{"key":{esc(key)},"op":"{_OP_NAMES[cls]}"{tail}'
    else:
        return _encode_reference(command)
    return text.encode("ascii")


_escape: Callable[[str], str] = json.encoder.encode_basestring_ascii
"""The json module's `ensure_ascii` string form (its C accelerator when available)."""


def _encode_reference(command: Command) -> bytes:
    """The definition of the canonical bytes: the wire document through `json.dumps`."""
    doc: dict[str, Any] = {"op": _OP_NAMES[type(command)]}
    if isinstance(command, RegisterSession):
        doc["nonce"] = command.nonce
    else:
        doc["key"] = command.key
        if isinstance(command, Put | Append):
            doc["value"] = command.value
        elif isinstance(command, Cas):
            doc["expected"] = command.expected
            doc["new"] = command.new
        if command.session is not None:
            header = command.session
            doc["session"] = [header.client_id, header.seq, header.ack_seq]
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii")


# Field names per op including "op" (required), and the allowed set (plus "session").
_REQUIRED: dict[str, frozenset[str]] = {op: frozenset(("op", *f)) for op, f in _FIELDS.items()}
_ALLOWED: dict[str, frozenset[str]] = {
    op: req if op == "register" else req | {"session"} for op, req in _REQUIRED.items()
}


@functools.lru_cache(maxsize=4096)
def decode(data: bytes) -> Command:
    """Parse entry data into a command; raises CommandDecodeError on anything malformed.

    Every replica decodes the same entry bytes, so recent results are memoized (commands
    are immutable; a pure function's cache changes nothing but speed; errors are not
    cached, so malformed data raises every time)."""
    try:
        doc = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CommandDecodeError(f"entry data is not ASCII JSON: {exc}") from exc
    if type(doc) is not dict:
        raise CommandDecodeError("entry data is not a JSON object")
    op = doc.get("op")
    if type(op) is not str or op not in _FIELDS:
        raise CommandDecodeError(f"unknown op {op!r}")
    required = _REQUIRED[op]
    keys = doc.keys()
    if not (keys >= required and keys <= _ALLOWED[op]):
        raise CommandDecodeError(f"op {op!r} needs fields {sorted(required)}, got {sorted(keys)}")
    if op == "register":
        return RegisterSession(nonce=_int(doc["nonce"], "nonce", minimum=0))
    raw = doc.get("session")
    session = None if raw is None and "session" not in doc else _session(raw)
    key = _str(doc, "key")
    if op == "put":
        return Put(key, _str(doc, "value"), session)
    if op == "append":
        return Append(key, _str(doc, "value"), session)
    if op == "cas":
        expected = None if doc["expected"] is None else _str(doc, "expected")
        return Cas(key, expected, _str(doc, "new"), session)
    if op == "delete":
        return Delete(key, session)
    return Get(key, session)


def _str(doc: dict[str, Any], name: str) -> str:
    value = doc[name]
    if not isinstance(value, str):
        raise CommandDecodeError(f"field {name!r} must be a string, got {value!r}")
    return value


def _int(value: object, name: str, minimum: int) -> int:
    if type(value) is not int or value < minimum:  # bool is an int subclass: refused
        raise CommandDecodeError(f"field {name!r} must be an integer >= {minimum}")
    return value


def _session(raw: object) -> SessionHeader:
    if type(raw) is not list or len(raw) != 3:
        raise CommandDecodeError("session must be [client_id, seq, ack_seq]")
    client_id = _int(raw[0], "client_id", minimum=1)
    seq = _int(raw[1], "seq", minimum=1)
    ack_seq = _int(raw[2], "ack_seq", minimum=0)
    if ack_seq > seq:
        raise CommandDecodeError(f"ack_seq {ack_seq} exceeds seq {seq}")
    return SessionHeader(client_id, seq, ack_seq)
