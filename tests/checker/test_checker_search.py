"""The search and the check driver: semantics of unknown outcomes, budgets, user models."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from checker import (
    Event,
    EventKind,
    Input,
    Model,
    Operation,
    Output,
    Verdict,
    check_events,
    check_operations,
    get_model,
)

CAS = get_model("cas-register")
INF = math.inf


def op(f: str, value: object, out: object, call: float, ret: float, status: str = "ok",
       key: object = None) -> Operation:
    return Operation(0, Input(f, key, value), call, Output(status, out), ret)


def test_two_identical_unknown_writes_can_both_take_effect() -> None:
    ops = [
        op("write", 1, None, 0, INF, "info"),
        op("write", 1, None, 0, INF, "info"),
        op("read", None, 1, 1, 2),
        op("write", 2, 2, 3, 4),
        op("read", None, 2, 5, 6),
        op("read", None, 1, 7, 8),
    ]
    assert check_operations(CAS, ops).verdict is Verdict.OK
    assert check_operations(CAS, ops[1:]).verdict is Verdict.ILLEGAL


def test_an_unknown_write_may_never_take_effect() -> None:
    ops = [op("write", 1, 1, 0, 1), op("write", 2, None, 2, INF, "info"),
           op("read", None, 1, 3, 4)]
    assert check_operations(CAS, ops).verdict is Verdict.OK


def test_an_unknown_write_cannot_take_effect_before_its_call() -> None:
    ops = [op("read", None, 5, 0, 1), op("write", 5, None, 2, INF, "info")]
    assert check_operations(CAS, ops).verdict is Verdict.ILLEGAL


def test_a_failed_cas_observed_a_different_value() -> None:
    ops = [op("write", 1, 1, 0, 1), op("cas", (1, 2), (1, 2), 2, 3, "fail")]
    assert check_operations(CAS, ops).verdict is Verdict.ILLEGAL
    ops[1] = op("cas", (3, 2), (3, 2), 2, 3, "fail")
    assert check_operations(CAS, ops).verdict is Verdict.OK


def test_touching_intervals_are_concurrent() -> None:
    ops = [op("read", None, 1, 0, 5), op("write", 1, 1, 5, 6)]
    assert check_operations(CAS, ops).verdict is Verdict.OK
    ops[1] = op("write", 1, 1, 5.5, 6)
    assert check_operations(CAS, ops).verdict is Verdict.ILLEGAL


def test_counterexample_names_the_stale_read() -> None:
    ops = [op("write", 1, 1, 0, 1), op("write", 2, 2, 2, 3), op("read", None, 1, 4, 5)]
    result = check_operations(CAS, ops)
    key = result.illegal_keys[0]
    example = key.counterexample
    assert example is not None
    assert example.prefix == (0, 1)
    assert example.state == 2
    assert example.unplaced == (2,)
    assert example.blocking == 2


def test_keys_are_independent_and_the_check_stops_at_the_first_illegal_key() -> None:
    kv = get_model("kv")
    good = [op("put", i, i, 2 * i, 2 * i + 1, key=f"k{i}") for i in range(5)]
    bad = [op("put", 1, 1, 0, 1, key="bad"), op("get", None, 7, 2, 3, key="bad")]
    result = check_operations(kv, good)
    assert result.verdict is Verdict.OK
    assert len(result.keys) == 5
    result = check_operations(kv, [*good, *bad])
    assert result.verdict is Verdict.ILLEGAL
    assert [k.key for k in result.illegal_keys] == ["bad"]


def test_time_budget_gives_unknown() -> None:
    # Many concurrent unknown writes and a read no order satisfies: a large search space.
    ops = [op("write", i, None, 0, INF, "info") for i in range(40)]
    ops += [op("read", None, 100 + i, 1, 2 + i) for i in range(3)]
    ops += [op("write", 7, 7, 1, 50)]
    result = check_operations(CAS, ops, timeout_s=0.0)
    assert result.verdict is Verdict.UNKNOWN
    assert "time budget" in result.keys[0].reason


def test_memory_budget_gives_unknown() -> None:
    ops = [op("write", i, i, 0, 100) for i in range(12)]
    ops += [op("read", None, 99, 0, 100)]
    result = check_operations(CAS, ops, memory_bytes=10_000)
    assert result.verdict is Verdict.UNKNOWN
    assert result.keys[0].reason == "memory budget spent"


def test_check_events_in_porcupine_style() -> None:
    events = [
        Event(0, EventKind.CALL, Input("write", None, 1), 0),
        Event(1, EventKind.CALL, Input("read", None, None), 1),
        Event(1, EventKind.RETURN, Output("ok", 1), 1),
        Event(0, EventKind.RETURN, Output("ok", 1), 0),
        Event(2, EventKind.CALL, Input("read", None, None), 2),
        Event(2, EventKind.RETURN, Output("ok", None), 2),
    ]
    assert check_events(CAS, events).verdict is Verdict.ILLEGAL
    assert check_events(CAS, events[:4]).verdict is Verdict.OK
    pending = [*events[:4], Event(3, EventKind.CALL, Input("write", None, 5), 3)]
    assert check_events(CAS, pending).verdict is Verdict.OK


def test_a_user_model_in_a_few_lines() -> None:
    # A register with plain tuples for input and output, as in Porcupine's README.
    def step(state: int, inp: tuple[str, int], out: int) -> tuple[bool, int]:
        return (True, inp[1]) if inp[0] == "put" else (out == state, state)

    model = Model(init=lambda: 0, step=step)
    ops = [Operation(0, ("put", 3), 0, 0, 10), Operation(1, ("get", 0), 1, 3, 2)]
    assert check_operations(model, ops).verdict is Verdict.OK
    ops.append(Operation(1, ("get", 0), 11, 0, 12))
    result = check_operations(model, ops)
    assert result.verdict is Verdict.ILLEGAL
    assert result.keys[0].counterexample is not None


@pytest.mark.parametrize("model_name", ["append-list", "set", "counter", "kv-get-put-append"])
def test_growing_models_catch_a_lost_write(model_name: str) -> None:
    f = "add" if model_name in ("set", "counter") else "append"
    value = "a" if model_name == "kv-get-put-append" else 1
    read = "get" if model_name == "kv-get-put-append" else "read"
    empty = {"append-list": (), "set": (), "counter": 0, "kv-get-put-append": ""}[model_name]
    ops = [op(f, value, value, 0, 1), op(read, None, empty, 2, 3)]
    assert check_operations(get_model(model_name), ops).verdict is Verdict.ILLEGAL
    ops[1] = replace(ops[1], call_time=0.5)
    assert check_operations(get_model(model_name), ops).verdict is Verdict.OK
