"""The history a run records: Jepsen's event model, written as the checker reads it.

Role: one `Op` per event (`invoke`, then `ok` / `fail` / `info` from the same process),
kept in memory and streamed to `history.jsonl` (DESIGN.md format 2, what checker/ reads)
and `history.txt` (one aligned line per event, for people) as the run goes, so a crash of
the harness still leaves the history on disk.

Rules:
- `time` is integer nanoseconds of a monotonic clock since the run phase started (after
  the database was set up; `restart_clock`); it is taken
  under the history's lock, so times never decrease in file order.
- A client process has at most one open operation. After an `info` (outcome unknown) the
  process never issues again: the worker continues under a fresh process id.
- Nemesis events use the process `"nemesis"` (the checker skips them); they are recorded
  as an `info` invocation and an `info` completion, as Jepsen does.
- Keys are scalars (ints here); values are JSON values (lists are read back as lists).
- `node` (the node a client talked to) and `error` (an error code) are extra fields the
  checker ignores.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, Literal

OpType = Literal["invoke", "ok", "fail", "info"]
Process = int | str
NEMESIS: Final = "nemesis"
TYPES: tuple[OpType, ...] = ("invoke", "ok", "fail", "info")
HEADER_TYPE = "header"


class HistoryFileError(ValueError):
    """A stored history cannot be read back; names the file and the line."""


@dataclass(frozen=True, slots=True)
class Op:
    """One event of a history."""

    type: OpType
    process: Process
    f: str
    key: Any
    value: Any
    time_ns: int
    node: str | None = None
    error: str | None = None
    index: int = -1

    def __post_init__(self) -> None:
        assert self.type in TYPES, self.type
        assert self.time_ns >= 0, self.time_ns

    @property
    def is_client(self) -> bool:
        return self.process != NEMESIS

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": self.type,
            "process": self.process,
            "f": self.f,
            "key": self.key,
            "value": self.value,
            "time": self.time_ns,
        }
        if self.node is not None:
            doc["node"] = self.node
        if self.error is not None:
            doc["error"] = self.error
        return doc


def op_from_json(doc: dict[str, Any], index: int) -> Op:
    """The `Op` of one decoded JSONL line; raises ValueError on a malformed event."""
    kind = doc.get("type")
    if kind not in TYPES:
        raise ValueError(f"type must be one of {TYPES}, got {kind!r}")
    process = doc.get("process")
    if not (process == NEMESIS or (isinstance(process, int) and not isinstance(process, bool))):
        raise ValueError(f"process must be an integer or 'nemesis', got {process!r}")
    f = doc.get("f")
    if not isinstance(f, str) or not f:
        raise ValueError(f"f must be a non-empty string, got {f!r}")
    time_ns = doc.get("time")
    if not isinstance(time_ns, int) or isinstance(time_ns, bool) or time_ns < 0:
        raise ValueError(f"time must be a non-negative integer, got {time_ns!r}")
    node, error = doc.get("node"), doc.get("error")
    return Op(kind, process, f, doc.get("key"), doc.get("value"), time_ns,
              None if node is None else str(node), None if error is None else str(error),
              index)


def render_value(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def text_line(op: Op) -> str:
    """The history.txt line of an event: time, process, type, f, key, value, node, error."""
    seconds = op.time_ns / 1e9
    key = "" if op.key is None else str(op.key)
    parts = [f"{seconds:10.3f}", f"{op.process!s:>8}", f"{op.type:<6}", f"{op.f:<20}",
             f"{key:>6}", render_value(op.value)]
    if op.node is not None:
        parts.append(f"@{op.node}")
    if op.error is not None:
        parts.append(f"[{op.error}]")
    return " ".join(parts)


class History:
    """The events of a run, in order, optionally streamed to files as they happen.

    Thread-safe: workers and the nemesis append from their own threads.
    """

    def __init__(self, header: dict[str, Any] | None = None, clock_ns: Any = None) -> None:
        self._lock = threading.Lock()
        self._ops: list[Op] = []
        self._open: dict[Process, Op] = {}
        self._crashed: set[Process] = set()
        self._clock_ns = clock_ns or time.monotonic_ns
        self._start_ns = int(self._clock_ns())
        self._jsonl: IO[str] | None = None
        self._text: IO[str] | None = None
        self.header = dict(header or {})

    def open_files(self, jsonl_path: Path, text_path: Path) -> None:
        """Stream every event from now on to these files (the header goes first)."""
        assert not self._ops, "open the files before the first event"
        self._jsonl = jsonl_path.open("w", encoding="utf-8")
        self._text = text_path.open("w", encoding="utf-8")
        self._jsonl.write(json.dumps({"type": HEADER_TYPE, **self.header}) + "\n")

    def close(self) -> None:
        with self._lock:
            for handle in (self._jsonl, self._text):
                if handle is not None:
                    handle.close()
            self._jsonl = self._text = None

    def flush(self) -> None:
        with self._lock:
            for handle in (self._jsonl, self._text):
                if handle is not None:
                    handle.flush()

    def restart_clock(self) -> None:
        """Count time from now (the start of the run phase); only before the first event."""
        with self._lock:
            assert not self._ops, "the clock starts before the first event"
            self._start_ns = int(self._clock_ns())

    def elapsed_ns(self) -> int:
        return max(0, int(self._clock_ns()) - self._start_ns)

    def _append(self, op: Op) -> Op:
        """Stamp `op` with time and index and record it; caller holds the lock."""
        stamped = Op(op.type, op.process, op.f, op.key, op.value, self.elapsed_ns(),
                     op.node, op.error, len(self._ops))
        if self._ops:
            assert stamped.time_ns >= self._ops[-1].time_ns
        self._ops.append(stamped)
        if self._jsonl is not None and self._text is not None:
            self._jsonl.write(json.dumps(stamped.to_json(), separators=(",", ":")) + "\n")
            self._text.write(text_line(stamped) + "\n")
        return stamped

    def invoke(self, process: Process, f: str, key: Any, value: Any,
               node: str | None = None) -> Op:
        with self._lock:
            assert process not in self._open, f"process {process} already has an open op"
            assert process not in self._crashed, f"process {process} crashed (info) before"
            op = self._append(Op("invoke", process, f, key, value, 0, node))
            self._open[process] = op
            return op

    def complete(self, process: Process, type_: OpType, value: Any,
                 error: str | None = None) -> Op:
        assert type_ != "invoke"
        with self._lock:
            invocation = self._open.pop(process)
            op = self._append(Op(type_, process, invocation.f, invocation.key, value, 0,
                                 invocation.node, error))
            if type_ == "info" and process != NEMESIS:
                self._crashed.add(process)
            return op

    def ops(self) -> list[Op]:
        with self._lock:
            return list(self._ops)

    def open_processes(self) -> list[Process]:
        with self._lock:
            return list(self._open)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ops)


def read_jsonl(path: Path) -> tuple[dict[str, Any], list[Op]]:
    """Read a stored history.jsonl back: its header and its events."""
    header: dict[str, Any] = {}
    ops: list[Op] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise HistoryFileError(f"{path}: cannot read: {error}") from error
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            if doc.get("type") == HEADER_TYPE:
                if ops or header:
                    raise ValueError("a header must be the first line")
                header = {k: v for k, v in doc.items() if k != "type"}
                continue
            ops.append(op_from_json(doc, len(ops)))
        except ValueError as error:
            raise HistoryFileError(f"{path}, line {number}: {error}") from error
    return header, ops


def pairs(ops: Iterable[Op]) -> Iterator[tuple[Op, Op | None]]:
    """(invocation, completion) pairs in invocation order; None when never completed."""
    open_ops: dict[Process, int] = {}
    result: list[list[Any]] = []
    for op in ops:
        if op.type == "invoke":
            open_ops[op.process] = len(result)
            result.append([op, None])
        elif op.process in open_ops:
            result[open_ops.pop(op.process)][1] = op
    yield from ((invocation, completion) for invocation, completion in result)
