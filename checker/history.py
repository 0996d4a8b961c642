"""Reading histories: the project's JSONL, Jepsen `history.edn`, Porcupine's test logs.

Role: turn a history file into `Operation`s with `Input` / `Output` records, or refuse it
with a `HistoryError` that names the line and what is wrong. Nothing is guessed: a
completion without an invocation, a process with two operations open, a process that
issues again after an `info`, a time running backwards, are all errors.

Formats (docs/history-format.md has the full semantics):
  jsonl      one JSON object per line: type (invoke|ok|fail|info), process, f, key, value,
             time, optional error; an optional first line {"type": "header", "model": M}
  edn        Jepsen's history.edn: one EDN map per line (or one EDN vector of maps), read
             with the edn_format library; events whose process is not an integer (the
             nemesis) are skipped
  porcupine  Porcupine's test data: Jepsen log lines
             "INFO  jepsen.util - P<TAB>:type<TAB>:f<TAB>value", or EDN maps per line

Times: an event's `time` if every event has one (ties are concurrent: intervals are
closed), else its position in the file. An invocation never completed is `info`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import edn_format  # type: ignore[import-untyped]

from checker.errors import HistoryError
from checker.model import Input, Operation, Output

FORMATS = ("jsonl", "edn", "porcupine")
TYPES = ("invoke", "ok", "fail", "info")
_LOG_LINE = re.compile(r"^\s*INFO\s+jepsen\.util\s+-\s+(\S+)\t(\S+)\t(\S+)\t?(.*)$")


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One line of a history, before pairing."""

    line: int
    process: int
    type: str
    f: str
    key: Hashable
    value: Any
    time: float | None
    error: str | None


@dataclass(frozen=True, slots=True)
class History:
    """A parsed history: operations in invocation order, each with its source line."""

    path: str
    format: str
    operations: tuple[Operation, ...]
    lines: tuple[int, ...]
    model_name: str | None = None


def detect_format(path: Path, first_line: str) -> str:
    """The format named by the file's suffix, else by its first non-blank line."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix == ".edn":
        return "edn"
    if suffix == ".log":
        return "porcupine"
    text = first_line.lstrip()
    if text.startswith("{\""):
        return "jsonl"
    if text.startswith(("{:", "[")):
        return "edn"
    if text.startswith("INFO"):
        return "porcupine"
    raise HistoryError(str(path), 0, "cannot tell the format; pass --format jsonl|edn|porcupine")


def read_history(path: Path | str, format: str | None = None) -> History:
    """Read and validate a history file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise HistoryError(str(path), 0, f"cannot read: {err}") from None
    return parse_history(text, str(path), format)


def parse_history(text: str, path: str = "<history>", format: str | None = None) -> History:
    """Parse history text; `format` None detects it from `path` and the first line."""
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    fmt = format or detect_format(Path(path), first)
    if fmt not in FORMATS:
        raise HistoryError(path, 0, f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    header: dict[str, Any] = {}
    if fmt == "jsonl":
        events = list(_jsonl_events(lines, path, header))
    elif fmt == "edn":
        events = list(_edn_events(text, lines, path))
    else:
        events = list(_porcupine_events(lines, path))
    ops, op_lines = _pair(events, path)
    model = header.get("model")
    model_name = model if isinstance(model, str) else None
    return History(path, fmt, tuple(ops), tuple(op_lines), model_name)


def _jsonl_events(lines: list[str], path: str, header: dict[str, Any]) -> Iterator[RawEvent]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise HistoryError(path, number, f"not valid JSON: {err.msg}") from None
        if not isinstance(obj, dict):
            raise HistoryError(path, number, f"expected a JSON object, got {type(obj).__name__}")
        if obj.get("type") == "header":
            if number != _first_nonblank(lines):
                raise HistoryError(path, number, "a header line must be the first line")
            header.update(obj)
            continue
        event = _event_from_map(obj, number, path)
        if event is not None:
            yield event


def _first_nonblank(lines: list[str]) -> int:
    return next(i for i, line in enumerate(lines, start=1) if line.strip())


def _event_from_map(obj: dict[str, Any], number: int, path: str) -> RawEvent | None:
    """Validate one event given as a mapping with plain-string keys and values."""
    kind = obj.get("type")
    if kind not in TYPES:
        raise HistoryError(path, number, f"field 'type' must be one of {TYPES}, got {kind!r}")
    process = obj.get("process")
    if process == "nemesis":
        return None
    if not isinstance(process, int) or isinstance(process, bool):
        raise HistoryError(path, number, f"field 'process' must be an integer, got {process!r}")
    f = obj.get("f")
    if not isinstance(f, str) or not f:
        raise HistoryError(path, number, f"field 'f' must be a non-empty string, got {f!r}")
    time = obj.get("time")
    if time is not None and (isinstance(time, bool) or not isinstance(time, int | float)):
        raise HistoryError(path, number, f"field 'time' must be a number, got {time!r}")
    error = obj.get("error")
    key = _freeze(obj.get("key"))
    try:
        hash(key)
    except TypeError:
        raise HistoryError(path, number, f"field 'key' must be a scalar, got {key!r}") from None
    return RawEvent(
        number, process, kind, f, key, _freeze(obj.get("value")), time,
        None if error is None else str(error),
    )


def _freeze(value: Any) -> Any:
    """Lists become tuples (recursively) so values can be compared and hashed."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _pair(events: Iterable[RawEvent], path: str) -> tuple[list[Operation], list[int]]:
    """Pair invocations with completions; check per-process order and time."""
    pairer = _Pairer(path)
    timed: bool | None = None
    last_time = -math.inf
    for position, event in enumerate(events):
        if timed is None:
            timed = event.time is not None
        if timed != (event.time is not None):
            raise HistoryError(path, event.line, "missing 'time' (other events carry one)"
                               if timed else "'time' given here but not on earlier events")
        now = float(event.time) if event.time is not None else float(position)
        if now < last_time:
            raise HistoryError(path, event.line, f"time {event.time} is earlier than the "
                               f"previous event's time {last_time:g}")
        last_time = now
        pairer.add(event, now)
    return pairer.finish()


class _Pairer:
    """Open invocations per process, and the operations completed so far."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.open_ops: dict[int, tuple[RawEvent, float]] = {}
        self.crashed: dict[int, int] = {}
        self.done: list[tuple[RawEvent, float, Output, float]] = []

    def add(self, event: RawEvent, now: float) -> None:
        path, process = self.path, event.process
        if process in self.crashed:
            raise HistoryError(path, event.line, f"process {process} issues an event after "
                               f"its 'info' on line {self.crashed[process]} (a process never "
                               "issues again after info)")
        if event.type == "invoke":
            if process in self.open_ops:
                raise HistoryError(path, event.line, f"process {process} invokes while its "
                                   f"operation from line {self.open_ops[process][0].line} is "
                                   "still open")
            self.open_ops[process] = (event, now)
            return
        if process not in self.open_ops:
            raise HistoryError(path, event.line, f"'{event.type}' for process {process}, "
                               "which has no open invocation")
        invoke, call = self.open_ops.pop(process)
        if event.f != invoke.f:
            raise HistoryError(path, event.line, f"completion f {event.f!r} does not match "
                               f"the invocation's f {invoke.f!r} on line {invoke.line}")
        if event.key is not None and event.key != invoke.key:
            raise HistoryError(path, event.line, f"completion key {event.key!r} does not "
                               f"match the invocation's key {invoke.key!r} on line "
                               f"{invoke.line}")
        if event.type == "info":
            self.crashed[process] = event.line
            self.done.append((invoke, call, Output("info", event.value, event.error), math.inf))
        else:
            self.done.append((invoke, call, Output(event.type, event.value, event.error), now))

    def finish(self) -> tuple[list[Operation], list[int]]:
        """Operations in invocation order (never-completed ones as info), with lines."""
        done = list(self.done)
        for invoke, call in self.open_ops.values():
            done.append((invoke, call, Output("info", None, "never completed"), math.inf))
        done.sort(key=lambda item: (item[1], item[0].line))
        ops = [
            Operation(inv.process, Input(inv.f, inv.key, inv.value), call, out, ret)
            for inv, call, out, ret in done
        ]
        return ops, [inv.line for inv, _, _, _ in done]


def _edn_events(text: str, lines: list[str], path: str) -> Iterator[RawEvent]:
    stripped = text.lstrip()
    if stripped.startswith(("[", "(")):
        try:
            items = edn_format.loads(text)
        except (edn_format.EDNDecodeError, ValueError) as err:
            raise HistoryError(path, 0, f"not valid EDN: {err}") from None
        if not isinstance(items, Sequence) or isinstance(items, str):
            raise HistoryError(path, 1, "expected a vector of event maps")
        for number, item in enumerate(items, start=1):
            yield from _edn_event(item, number, path, "element")
        return
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield from _edn_event(_edn_line(line, number, path), number, path, "line")


def _edn_line(line: str, number: int, path: str) -> Any:
    try:
        return edn_format.loads(line)
    except (edn_format.EDNDecodeError, ValueError) as err:
        raise HistoryError(path, number, f"not valid EDN: {err}") from None


def _edn_event(item: Any, number: int, path: str, unit: str) -> Iterator[RawEvent]:
    if not isinstance(item, Mapping):
        raise HistoryError(path, number, f"expected an EDN map on this {unit}, got {item!r}")
    obj = {_plain(k): _plain(v) for k, v in item.items()}
    if unit == "element":
        obj.pop("line", None)
    event = _event_from_map(obj, number, path)
    if event is not None:
        yield event


def _plain(value: Any) -> Any:
    """EDN keywords become their names; vectors, lists and sets become tuples."""
    if isinstance(value, edn_format.Keyword):
        return value.name
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return tuple(_plain(v) for v in value)
    if isinstance(value, frozenset | set):
        return tuple(sorted((_plain(v) for v in value), key=repr))
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def _porcupine_events(lines: list[str], path: str) -> Iterator[RawEvent]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            yield from _edn_event(_edn_line(line, number, path), number, path, "line")
            continue
        match = _LOG_LINE.match(line)
        if match is None:
            raise HistoryError(path, number, "expected 'INFO  jepsen.util - PROCESS<TAB>:type"
                               "<TAB>:f<TAB>value' or an EDN map")
        process, kind, f, value_text = match.groups()
        value = _edn_line(value_text or "nil", number, path)
        error = None
        if isinstance(value, edn_format.Keyword):
            error, value = value.name, None
        obj = {
            "process": int(process) if process.lstrip("-").isdigit() else process,
            "type": kind.lstrip(":"),
            "f": f.lstrip(":"),
            "value": _plain(value),
            "error": error,
        }
        event = _event_from_map(obj, number, path)
        if event is not None:
            yield event
