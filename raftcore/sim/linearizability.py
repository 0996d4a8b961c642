"""A small Wing-Gong-Lowe linearizability checker for the simulator's KV histories.

Role: judge what the simulated clients saw. It is deliberately small (the checker/ package
is the project's full checker); it partitions by key (a KV store is linearizable iff each
key's sub-history is, by P-compositionality) and searches each key with Lowe's
memoized backtracking (the algorithm of porcupine's `checkSingle`).

Rules:
- Times are the simulator's global event counters, strictly increasing, so no two events
  tie. An operation whose outcome is unknown (`ret is None`) returns at +infinity and
  accepts any result: it may take effect at any point after its call, or never.
- Results are judged by a pure model of one key: its value is `str | None`.
- The search has a step budget; running out gives UNKNOWN, never a guess.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from raftcore.commands import Status

KeyState = str | None


class Verdict(enum.Enum):
    OK = "ok"
    ILLEGAL = "illegal"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Operation:
    """One client operation on one key.

    `f` is one of put, get, delete, cas, append. `value` is the argument (the new value for
    cas), `expected` the cas comparand. `status` and `output` are what the client saw;
    both are None when the outcome is unknown (`ret is None`).
    """

    process: int
    f: str
    key: str
    call: int
    ret: int | None
    value: str | None = None
    expected: str | None = None
    status: Status | None = None
    output: str | None = None


@dataclass(frozen=True, slots=True)
class Result:
    verdict: Verdict
    key: str | None = None
    """The first key whose history is not linearizable (or timed out)."""


def step(state: KeyState, op: Operation) -> tuple[bool, KeyState]:
    """The model: can `op` take effect in `state` with the result it saw, and then what?"""
    unknown = op.ret is None
    if op.f == "put":
        return unknown or op.status is Status.OK, op.value
    if op.f == "get":
        return unknown or (op.status is Status.OK and op.output == state), state
    if op.f == "delete":
        return unknown or (op.status is Status.OK and op.output == state), None
    if op.f == "append":
        new = (state or "") + (op.value or "")
        return unknown or (op.status is Status.OK and op.output == new), new
    assert op.f == "cas", f"unknown operation {op.f}"
    if state == op.expected:
        return unknown or op.status is Status.OK, op.value
    return unknown or (op.status is Status.CAS_MISMATCH and op.output == state), state


class _Node:
    __slots__ = ("is_call", "match", "next", "op_id", "prev", "time")

    def __init__(self, op_id: int, is_call: bool, time: float) -> None:
        self.op_id = op_id
        self.is_call = is_call
        self.time = time
        self.match: _Node | None = None
        self.prev: _Node | None = None
        self.next: _Node | None = None


def _build_list(ops: list[Operation]) -> _Node:
    events: list[tuple[float, int, int, bool]] = []
    for op_id, op in enumerate(ops):
        ret = float("inf") if op.ret is None else float(op.ret)
        assert op.ret is None or op.call < op.ret, "an operation returns after its call"
        events.append((float(op.call), 0, op_id, True))
        events.append((ret, 1, op_id, False))
    events.sort()
    head = _Node(-1, False, float("-inf"))
    calls: dict[int, _Node] = {}
    tail = head
    for time, _, op_id, is_call in events:
        node = _Node(op_id, is_call, time)
        if is_call:
            calls[op_id] = node
        else:
            calls[op_id].match = node
        node.prev = tail
        tail.next = node
        tail = node
    return head


def _lift(call: _Node) -> None:
    assert call.prev is not None
    assert call.match is not None
    call.prev.next = call.next
    if call.next is not None:
        call.next.prev = call.prev
    ret = call.match
    assert ret.prev is not None
    ret.prev.next = ret.next
    if ret.next is not None:
        ret.next.prev = ret.prev


def _unlift(call: _Node) -> None:
    ret = call.match
    assert ret is not None
    assert ret.prev is not None
    ret.prev.next = ret
    if ret.next is not None:
        ret.next.prev = ret
    assert call.prev is not None
    call.prev.next = call
    if call.next is not None:
        call.next.prev = call


def check_key(ops: list[Operation], budget: int = 1_000_000) -> Verdict:
    """Is this single-key history linearizable (from an absent key)?"""
    head = _build_list(ops)
    state: KeyState = None
    linearized = 0
    cache: set[tuple[int, KeyState]] = set()
    stack: list[tuple[_Node, KeyState]] = []
    entry = head.next
    steps = 0
    while head.next is not None:
        steps += 1
        if steps > budget:
            return Verdict.UNKNOWN
        assert entry is not None
        if entry.is_call:
            ok, new_state = step(state, ops[entry.op_id])
            if ok:
                new_linearized = linearized | (1 << entry.op_id)
                if (new_linearized, new_state) not in cache:
                    cache.add((new_linearized, new_state))
                    stack.append((entry, state))
                    state, linearized = new_state, new_linearized
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if not stack:
                return Verdict.ILLEGAL
            entry, state = stack.pop()
            linearized &= ~(1 << entry.op_id)
            _unlift(entry)
            entry = entry.next
    return Verdict.OK


def check(ops: Iterable[Operation], budget_per_key: int = 1_000_000) -> Result:
    """Check a whole history, key by key, in sorted key order."""
    by_key: dict[str, list[Operation]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    unknown: str | None = None
    for key in sorted(by_key):
        verdict = check_key(by_key[key], budget_per_key)
        if verdict is Verdict.ILLEGAL:
            return Result(Verdict.ILLEGAL, key)
        if verdict is Verdict.UNKNOWN and unknown is None:
            unknown = key
    if unknown is not None:
        return Result(Verdict.UNKNOWN, unknown)
    return Result(Verdict.OK)
