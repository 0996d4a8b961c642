"""Helpers for the checker's tests: the corpus path, random histories, a brute-force oracle.

Role: generate small concurrent histories (any model built on Input / Output), histories
that come from a sequential execution (linearizable by construction), and decide
linearizability the slow, obvious way: try every ordering of every allowed subset.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from checker import Input, Model, Operation, Output, get_model

VALUES = (1, 2, 3)
CORPUS = Path(__file__).parents[2].parent / "shared" / "histories"


def corpus_entries() -> list[dict[str, Any]]:
    """The manifest's entries of ../shared/histories, or none when it is absent."""
    manifest = CORPUS / "manifest.json"
    if not manifest.is_file():
        return []
    entries: list[dict[str, Any]] = json.loads(manifest.read_text())["histories"]
    return entries


def random_input(model_name: str, rng: random.Random, key: Any = None) -> Input:
    """One random operation input for the named model."""
    if model_name == "cas-register":
        f = rng.choice(("read", "write", "cas"))
        value = {"read": None, "write": rng.choice(VALUES),
                 "cas": (rng.choice((None, *VALUES)), rng.choice(VALUES))}[f]
        return Input(f, key, value)
    if model_name == "kv-get-put-append":
        f = rng.choice(("get", "put", "append", "append"))
        return Input(f, key, None if f == "get" else rng.choice("abc"))
    if model_name in ("append-list", "set"):
        f = rng.choice(("read", "append" if model_name == "append-list" else "add"))
        return Input(f, key, None if f == "read" else rng.choice(VALUES))
    assert model_name == "counter"
    f = rng.choice(("read", "add"))
    return Input(f, key, None if f == "read" else rng.choice((1, 2)))


def is_read(inp: Input) -> bool:
    return inp.f in ("read", "get")


def read_value(model_name: str, state: Any) -> Any:
    """What a read returns in `state` (as a history file would record it)."""
    if model_name == "set":
        return tuple(sorted(state))
    return state


def sequential_history(model_name: str, rng: random.Random, count: int,
                       info_share: float = 0.15) -> list[Operation]:
    """A history from a sequential execution: each op takes effect inside its interval.

    Some writes get an unknown outcome (info): they may or may not take effect; reads
    always complete. Intervals overlap at random around the linearization points.
    """
    model = get_model(model_name)
    state = model.init()
    ops: list[Operation] = []
    for point in range(count):
        t = point * 10.0
        inp = random_input(model_name, rng)
        call = t - rng.uniform(0, 25)
        ret = t + rng.uniform(0, 25)
        if is_read(inp):
            out = Output("ok", read_value(model_name, state))
        elif rng.random() < info_share:
            out = Output("info", None)
            ret = math.inf
            if rng.random() < 0.5:  # it did take effect, at its point
                _, state = model.step(state, inp, out)
        else:
            ok, new_state = model.step(state, inp, Output("ok", inp.value))
            out = Output("ok" if ok else "fail", inp.value)
            if ok:
                state = new_state
        ops.append(Operation(point, inp, call, out, ret))
    return ops


def random_history(model_name: str, rng: random.Random, count: int) -> list[Operation]:
    """An arbitrary small concurrent history (outputs random, often not linearizable)."""
    ops = []
    for i in range(count):
        inp = random_input(model_name, rng)
        call = rng.uniform(0, 10)
        status = rng.choice(("ok", "ok", "ok", "fail", "info"))
        if is_read(inp):
            status = "ok" if status == "info" else status
            if model_name == "kv-get-put-append":
                value = rng.choice(("", "a", "ab", "b", "ba", "c"))
            elif model_name == "append-list":
                value = rng.choice(((), (1,), (1, 2), (2,), (2, 1)))
            elif model_name == "set":
                value = rng.choice(((), (1,), (1, 2), (2,)))
            elif model_name == "counter":
                value = rng.choice((0, 1, 2, 3))
            else:
                value = rng.choice((None, *VALUES))
            out = Output(status, value)
        else:
            out = Output(status, inp.value)
        ret = math.inf if status == "info" else call + rng.uniform(0, 5)
        ops.append(Operation(i, inp, call, out, ret))
    return ops


def brute_force(model: Model, ops: Sequence[Operation]) -> bool:
    """Linearizable iff some ordering of all completed ops plus some unknown ones is legal.

    Uses nothing but `model.step` on whole histories (no partition: callers give one key).
    """
    completed = [op for op in ops if op.return_time != math.inf]
    unknown = [op for op in ops if op.return_time == math.inf]
    for size in range(len(unknown) + 1):
        for extra in itertools.combinations(unknown, size):
            for order in itertools.permutations([*completed, *extra]):
                if _legal(model, order):
                    return True
    return False


def _legal(model: Model, order: Sequence[Operation]) -> bool:
    for a, b in itertools.combinations(range(len(order)), 2):
        if order[b].return_time < order[a].call_time:  # b returned before a was called
            return False
    state = model.init()
    for op in order:
        ok, state = model.step(state, op.input, op.output)
        if not ok:
            return False
    return True
