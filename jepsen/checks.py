"""The Checker part: judge a stored history, one verdict per check, merged as Jepsen does.

Role: everything `run` and `analyze` conclude from a history comes from here, and only from
the history (and the node traces), so re-checking a stored run gives the same answer.

Checks:
    linearizable   checker/ (Porcupine-style search) per key with the workload's model;
                   its HTML report is written beside the history
    exactly-once   sessions: no read holds an element twice or one never sent; every
                   acknowledged append is in the final read exactly once; no append that
                   failed definitely is there
    liveness       after the final heal the cluster recovered, and every key was read
                   successfully through every node
    stats          operation counts by f and outcome; unknown when nothing succeeded
    trace          the merged node traces validated by raftcore.validate (real runs only)

Verdicts are `true`, `false` or `"unknown"`; the merge is false if any check is false,
else unknown if any is unknown, else true (Jepsen's `merge-valid`).

History conventions this module relies on (jepsen/core.py writes them): nemesis events
`recovered` (value `{"healthy": bool}`) and `final-reads` mark the final phase; a failed
cas with error `cas_mismatch` observed another value, any other failed cas had no effect
and is left out of the linearizability check (the checker's model reads every failed cas
as a mismatch).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

from checker import Input, Operation, Output, Verdict, check_operations, get_model, render_html
from jepsen.history import NEMESIS, Op, pairs

Valid = bool | str
UNKNOWN = "unknown"
CAS_MISMATCH = "cas_mismatch"
FINAL_READS = "final-reads"
RECOVERED = "recovered"


def merge_valid(verdicts: Sequence[Valid]) -> Valid:
    """Jepsen's merge: false wins, then unknown, else true."""
    if any(v is False for v in verdicts):
        return False
    if any(v is not True for v in verdicts):
        return UNKNOWN
    return True


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def to_operations(ops: Sequence[Op]) -> list[Operation]:
    """The checker's operations for the client events of a history."""
    result: list[Operation] = []
    for invocation, completion in pairs(op for op in ops if op.process != NEMESIS):
        assert isinstance(invocation.process, int)
        input_ = Input(invocation.f, invocation.key, _freeze(invocation.value))
        if completion is None or completion.type == "info":
            output = Output("info", _freeze(invocation.value),
                            None if completion is None else completion.error)
            result.append(Operation(invocation.process, input_, invocation.time_ns, output,
                                    math.inf))
            continue
        if completion.type == "fail" and invocation.f == "cas" \
                and completion.error != CAS_MISMATCH:
            continue
        output = Output(completion.type, _freeze(completion.value), completion.error)
        result.append(Operation(invocation.process, input_, invocation.time_ns, output,
                                completion.time_ns))
    return result


def check_linearizable(ops: Sequence[Op], model_name: str, report_path: Path | None,
                       timeout_s: float | None = None) -> dict[str, Any]:
    model = get_model(model_name)
    result = check_operations(model, to_operations(ops), timeout_s=timeout_s)
    valid: Valid = {Verdict.OK: True, Verdict.ILLEGAL: False}.get(result.verdict, UNKNOWN)
    doc: dict[str, Any] = {
        "valid": valid,
        "model": model_name,
        "summary": result.summary(),
        "keys": len(result.keys),
        "illegal_keys": [_key_name(k.key) for k in result.illegal_keys],
        "unknown_keys": [_key_name(k.key) for k in result.keys
                         if k.verdict is Verdict.UNKNOWN],
    }
    if report_path is not None:
        report_path.write_text(render_html(result, title=f"linearizability: {model_name}"),
                               encoding="utf-8")
        doc["report"] = report_path.name
    return doc


def _key_name(key: Hashable) -> Any:
    return key if isinstance(key, int | str) or key is None else repr(key)


def final_phase_start(ops: Sequence[Op]) -> int | None:
    """The index of the `final-reads` marker, or None if the run never got there."""
    for op in ops:
        if op.process == NEMESIS and op.f == FINAL_READS and op.type == "invoke":
            return op.index
    return None


def client_keys(ops: Sequence[Op], before: int | None = None) -> list[Any]:
    keys = {op.key for op in ops if op.process != NEMESIS and op.key is not None
            and (before is None or op.index < before)}
    return sorted(keys, key=repr)


def check_exactly_once(ops: Sequence[Op]) -> dict[str, Any]:
    """Sessions: no duplicates, nothing unexpected, nothing acknowledged lost."""
    final_start = final_phase_start(ops)
    sent: dict[Any, set[Any]] = {}
    acked: dict[Any, set[Any]] = {}
    failed: dict[Any, set[Any]] = {}
    final: dict[Any, list[Any]] = {}
    problems: list[str] = []
    for invocation, completion in pairs(op for op in ops if op.process != NEMESIS):
        key = invocation.key
        if invocation.f == "append":
            sent.setdefault(key, set()).add(invocation.value)
            if completion is not None and completion.type == "ok":
                acked.setdefault(key, set()).add(invocation.value)
            if completion is not None and completion.type == "fail":
                failed.setdefault(key, set()).add(invocation.value)
            continue
        if completion is None or completion.type != "ok" or not isinstance(completion.value, list):
            continue
        elements = completion.value
        counts = Counter(elements)
        twice = sorted(v for v, n in counts.items() if n > 1)
        if twice:
            problems.append(f"key {key}: read at {completion.time_ns / 1e9:.3f} s holds "
                            f"{twice[:5]} more than once")
        if final_start is not None and invocation.index > final_start \
                and len(elements) >= len(final.get(key, [])):
            final[key] = elements
    duplicated, lost, unexpected, failed_present = 0, 0, 0, 0
    for key, elements in final.items():
        present = set(elements)
        duplicated += sum(1 for n in Counter(elements).values() if n > 1)
        missing = sorted(acked.get(key, set()) - present)
        never_sent = sorted(present - sent.get(key, set()))
        came_back = sorted(present & failed.get(key, set()))
        lost += len(missing)
        unexpected += len(never_sent)
        failed_present += len(came_back)
        if missing:
            problems.append(f"key {key}: acknowledged appends {missing[:5]} are lost")
        if never_sent:
            problems.append(f"key {key}: {never_sent[:5]} were never sent")
        if came_back:
            problems.append(f"key {key}: appends {came_back[:5]} failed definitely yet "
                            "took effect")
    unread = [key for key in acked if key not in final]
    valid: Valid = False if problems else (UNKNOWN if unread else True)
    return {
        "valid": valid,
        "acknowledged": sum(len(v) for v in acked.values()),
        "duplicated": duplicated,
        "lost": lost,
        "unexpected": unexpected,
        "failed_but_present": failed_present,
        "keys_without_final_read": [_key_name(k) for k in unread],
        "problems": problems[:50],
    }


def check_liveness(ops: Sequence[Op], nodes: Sequence[str]) -> dict[str, Any]:
    """After the final heal: recovered, and every key read ok through every node."""
    final_start = final_phase_start(ops)
    recovered = [op for op in ops if op.process == NEMESIS and op.f == RECOVERED
                 and op.type == "info"]
    if final_start is None or not recovered:
        return {"valid": UNKNOWN, "reason": "the run never reached its final phase"}
    healthy = bool(isinstance(recovered[-1].value, dict) and recovered[-1].value.get("healthy"))
    keys = client_keys(ops, before=final_start)
    served: set[tuple[Any, str | None]] = set()
    for invocation, completion in pairs(op for op in ops if op.process != NEMESIS):
        if invocation.index > final_start and completion is not None \
                and completion.type == "ok" and invocation.f == "read":
            served.add((invocation.key, invocation.node))
    unserved = [f"key {key} via {node}" for key in keys for node in nodes
                if (key, node) not in served]
    valid = healthy and not unserved
    return {
        "valid": valid,
        "recovered": healthy,
        "keys": len(keys),
        "unserved": unserved[:50],
        "unserved_count": len(unserved),
    }


def check_stats(ops: Sequence[Op]) -> dict[str, Any]:
    counts: dict[str, Counter[str]] = {}
    for op in ops:
        if op.process != NEMESIS and op.type != "invoke":
            counts.setdefault(op.f, Counter())[op.type] += 1
    ok = sum(c["ok"] for c in counts.values())
    total = sum(sum(c.values()) for c in counts.values())
    return {
        "valid": True if ok > 0 else UNKNOWN,
        "count": total,
        "ok": ok,
        "by_f": {f: dict(sorted(c.items())) for f, c in sorted(counts.items())},
    }
