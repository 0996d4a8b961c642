"""Ground truth: every history in ../shared/histories gets the manifest's verdict.

Also the negative control on real data: linearizable corpus histories with one read
changed to a value never written must be caught.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from checker_gen import CORPUS, corpus_entries

from checker import Output, Verdict, check_history, check_operations, get_model, read_history

ENTRIES = corpus_entries()


@pytest.mark.skipif(not ENTRIES, reason=f"corpus not present at {CORPUS}")
@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_expected_verdict(entry: dict[str, Any]) -> None:
    history = read_history(CORPUS / entry["file"])
    assert len(history.operations) == entry["ops"]
    result = check_history(get_model(entry["model"]), history)
    expected = Verdict.OK if entry["expected_linearizable"] else Verdict.ILLEGAL
    assert result.verdict is expected, result.summary()
    if expected is Verdict.ILLEGAL:
        key = result.illegal_keys[0]
        assert key.counterexample is not None
        assert key.counterexample.unplaced, "an illegal key names what could not be placed"
    else:
        for key in result.keys:  # a linearization covers every completed kept operation
            completed = [p for p in key.operations if history.operations[p].completed]
            kept = set(key.linearization)
            model = get_model(entry["model"])
            assert all(p in kept or model.effect(history.operations[p].input,
                                                 history.operations[p].output).value == "none"
                       for p in completed)


OK_NAMES = [e["name"] for e in ENTRIES if e["expected_linearizable"]]


@pytest.mark.skipif(not ENTRIES, reason=f"corpus not present at {CORPUS}")
@pytest.mark.parametrize("name", OK_NAMES)
def test_planted_stale_read_is_caught(name: str) -> None:
    entry = next(e for e in ENTRIES if e["name"] == name)
    history = read_history(CORPUS / entry["file"])
    ops = list(history.operations)
    reads = [i for i, op in enumerate(ops)
             if op.input.f in ("read", "get") and op.output.status == "ok"]
    assert reads
    bogus = 12345 if entry["model"] == "cas-register" else "never written"
    i = reads[len(reads) // 2]
    ops[i] = dataclasses.replace(ops[i], output=Output("ok", bogus))
    result = check_operations(get_model(entry["model"]), ops)
    assert result.verdict is Verdict.ILLEGAL

