"""Checking a history: partition per key, search each key, collect verdicts.

Role: the public entry points `check_operations`, `check_events` and `check_history`.

Theory of operation: the model's `partition` splits the history into independent keys
(P-compositionality). Operations whose effect is `Effect.NONE` are dropped. Each key's
search is a generator; they run interleaved, a slice of steps each in turn, so a small
illegal key is found quickly even beside a large one, and the check stops at the first
illegal key (the others are reported unknown, "not finished"). The time budget is checked
between slices, the memory budget inside the searches; either one spent gives `unknown`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Hashable, Sequence
from pathlib import Path
from typing import Any

from checker.errors import HistoryError, OperationError
from checker.history import History, read_history
from checker.model import Effect, Event, EventKind, Input, Model, Operation, Output
from checker.result import CheckResult, Counterexample, KeyResult, Verdict
from checker.search import Budget, Outcome, search

DEFAULT_MEMORY_BYTES = 1 << 30


class _Task:
    """One key's search in progress."""

    def __init__(self, key: Hashable, positions: list[int], kept: list[int],
                 gen: Generator[None, None, Outcome]) -> None:
        self.key = key
        self.positions = positions
        self.kept = kept
        self.gen = gen


def check_operations(
    model: Model,
    history: Sequence[Operation],
    timeout_s: float | None = None,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
) -> CheckResult:
    """Check a history of operations against `model` (Porcupine's CheckOperations)."""
    started = time.monotonic()
    deadline = math.inf if timeout_s is None else started + timeout_s
    ops = tuple(history)
    budget = Budget(memory_bytes)
    tasks = [_start(model, ops, key, positions, budget)
             for key, positions in _partition(model, ops).items()]
    results: dict[Hashable, KeyResult] = {}
    stop_reason = ""
    active = list(tasks)
    while active and not stop_reason:
        next_round: list[_Task] = []
        for task in active:
            try:
                next(task.gen)
            except StopIteration as done:
                result = _key_result(task, done.value)
                results[task.key] = result
                if result.verdict is Verdict.ILLEGAL:
                    stop_reason = "not finished: the check stopped at the first illegal key"
                    break
                continue
            next_round.append(task)
            if time.monotonic() > deadline:
                stop_reason = f"time budget of {timeout_s} s spent"
                break
        active = next_round
    for task in tasks:
        if task.key not in results:
            task.gen.close()
            results[task.key] = KeyResult(task.key, Verdict.UNKNOWN, tuple(task.positions),
                                          (), (), reason=stop_reason)
    keys = tuple(results[t.key] for t in tasks)
    return CheckResult(_overall(keys), keys, ops, model, time.monotonic() - started)


def _partition(model: Model, ops: Sequence[Operation]) -> dict[Hashable, list[int]]:
    groups: dict[Hashable, list[int]] = {}
    part = model.partition
    for position, op in enumerate(ops):
        key = part(op.input) if part is not None else None
        groups.setdefault(key, []).append(position)
    return groups


def _start(model: Model, ops: Sequence[Operation], key: Hashable, positions: list[int],
           budget: Budget) -> _Task:
    kept = [p for p in positions if model.effect(ops[p].input, ops[p].output) is not Effect.NONE]
    return _Task(key, positions, kept, search(model, [ops[p] for p in kept], budget))


def _key_result(task: _Task, outcome: Outcome) -> KeyResult:
    kept = task.kept
    lin = tuple(kept[i] for i in outcome.linearization)
    ops = tuple(task.positions)
    if outcome.linearizable:
        return KeyResult(task.key, Verdict.OK, ops, lin, outcome.states,
                         configurations=outcome.configurations)
    if outcome.budget_exceeded:
        return KeyResult(task.key, Verdict.UNKNOWN, ops, lin, outcome.states,
                         reason="memory budget spent", configurations=outcome.configurations)
    unplaced = tuple(kept[i] for i in outcome.candidates)
    example = Counterexample(lin, outcome.states, outcome.stuck_state, unplaced,
                             kept[outcome.blocking] if outcome.blocking is not None else None)
    return KeyResult(task.key, Verdict.ILLEGAL, ops, lin, outcome.states, example,
                     configurations=outcome.configurations)


def _overall(keys: Sequence[KeyResult]) -> Verdict:
    if any(k.verdict is Verdict.ILLEGAL for k in keys):
        return Verdict.ILLEGAL
    if any(k.verdict is Verdict.UNKNOWN for k in keys):
        return Verdict.UNKNOWN
    return Verdict.OK


def check_events(
    model: Model,
    events: Sequence[Event],
    timeout_s: float | None = None,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
) -> CheckResult:
    """Check a history of call / return events in real-time order (Porcupine's CheckEvents).

    A call without a return has an unknown outcome; its output is `Output("info", None)`
    when its input is an `Input`, else None (the model must accept it in every state).
    """
    calls: dict[int, tuple[Event, int]] = {}
    ops: list[tuple[int, Operation]] = []
    for position, event in enumerate(events):
        if event.kind is EventKind.CALL:
            assert event.id not in calls, f"event id {event.id} is called twice"
            calls[event.id] = (event, position)
            continue
        assert event.id in calls, f"event id {event.id} returns without a call"
        call, start = calls.pop(event.id)
        ops.append((start, Operation(call.client_id, call.value, start, event.value, position)))
    for call, start in calls.values():
        unknown = Output("info", None) if isinstance(call.value, Input) else None
        ops.append((start, Operation(call.client_id, call.value, start, unknown, math.inf)))
    ops.sort(key=lambda item: item[0])
    return check_operations(model, [op for _, op in ops], timeout_s, memory_bytes)


def check_history(
    model: Model,
    history: History | Path | str,
    timeout_s: float | None = None,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
    format: str | None = None,
) -> CheckResult:
    """Check a history file (or a parsed `History`); bad input raises `CheckerError`."""
    parsed = history if isinstance(history, History) else read_history(history, format)
    validate(model, parsed)
    return check_operations(model, parsed.operations, timeout_s, memory_bytes)


def validate(model: Model, history: History) -> None:
    """Ask the model about every operation once, so bad ones are named by their line."""
    initial: Any = model.init()
    for op, line in zip(history.operations, history.lines, strict=True):
        try:
            model.effect(op.input, op.output)
            model.step(initial, op.input, op.output)
        except OperationError as err:
            raise HistoryError(history.path, line, f"{err} (model {model.name})") from None
