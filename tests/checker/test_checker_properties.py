"""Property tests: the fast search against constructions and against a brute-force oracle."""

from __future__ import annotations

import random

import pytest
from checker_gen import brute_force, is_read, random_history, sequential_history
from hypothesis import given, settings
from hypothesis import strategies as st

from checker import Operation, Output, Verdict, check_operations, get_model

MODELS = ("cas-register", "kv-get-put-append", "append-list", "counter", "set")
NEVER_WRITTEN = {"cas-register": 999, "kv-get-put-append": "zzz", "append-list": (999,),
                 "counter": -999, "set": (999,)}


@pytest.mark.parametrize("model_name", MODELS)
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 60))
def test_sequential_histories_are_linearizable(model_name: str, seed: int, count: int) -> None:
    ops = sequential_history(model_name, random.Random(seed), count)
    result = check_operations(get_model(model_name), ops)
    assert result.verdict is Verdict.OK, result.summary()
    assert len(result.keys[0].linearization) >= sum(o.completed for o in ops)


@pytest.mark.parametrize("model_name", MODELS)
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 60), pick=st.integers(0, 10**6))
def test_a_read_of_a_never_written_value_is_caught(model_name: str, seed: int, count: int,
                                                   pick: int) -> None:
    ops = sequential_history(model_name, random.Random(seed), count)
    reads = [i for i, op in enumerate(ops) if is_read(op.input)]
    if not reads:
        return
    i = reads[pick % len(reads)]
    op = ops[i]
    ops[i] = Operation(op.client_id, op.input, op.call_time,
                       Output("ok", NEVER_WRITTEN[model_name]), op.return_time)
    result = check_operations(get_model(model_name), ops)
    assert result.verdict is Verdict.ILLEGAL
    example = result.keys[0].counterexample
    assert example is not None
    assert i in example.unplaced or i not in result.keys[0].linearization


@pytest.mark.parametrize("model_name", MODELS)
def test_search_agrees_with_brute_force(model_name: str) -> None:
    """Thousands of random small histories (with fail and info ops) in all: same verdict."""
    rng = random.Random(f"brute-{model_name}")
    model = get_model(model_name)
    verdicts = {True: 0, False: 0}
    for _ in range(800):
        ops = random_history(model_name, rng, rng.randint(1, 6))
        expected = brute_force(model, ops)
        got = check_operations(model, ops).verdict
        assert got is (Verdict.OK if expected else Verdict.ILLEGAL), ops
        verdicts[expected] += 1
    assert verdicts[True] > 50  # both answers occur, so the agreement means something
    assert verdicts[False] > 50
