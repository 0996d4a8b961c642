"""The linearizability search for one key's sub-history.

Role: decide whether a set of operations on one object has a linearization, and if not,
return the longest linearizable prefix found. Pure: no I/O, no clock (the caller budgets
time by resuming the generator; memory through a shared `Budget`).

Theory of operation. Wing and Gong's depth-first search with Lowe's just-in-time
linearization, as in Porcupine, over a configuration (L, s, j): L the set of linearized
operations as an integer bitset over operations in call order, s the interned model state,
j the first completed operation (in return order) not yet linearized. Only operations
called no later than that operation returns can come next (all earlier returns are in L),
so the candidates are the unlinearized bits of a prefix mask. A cache of visited (L, s)
prunes repeated configurations. On top of Porcupine:
- states are interned to small ints and each operation's transitions are memoized per
  state, so the model runs once per (operation, state) pair;
- the cache key is one int, L | s << n;
- operations whose outcome is unknown (return at +infinity) are optional: the search
  succeeds once every completed operation is linearized;
- of identical unknown-outcome operations only the earliest-called unused one is tried
  (any linearization using a later twin works with the earlier one instead);
- operations that never change the state (Effect.READ) are linearized as soon as they are
  legal and never branched on: doing so can only keep a solution reachable.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Generator, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from checker.model import Effect, Model, Operation

SLICE_STEPS = 2048  # search steps between yields to the caller (which checks the clock)
ENTRY_BYTES = 96  # approximate cost of one cache entry beyond its bitset's own bytes


class Budget:
    """A memory budget shared by the searches of one check (in approximate bytes)."""

    __slots__ = ("exceeded", "limit_bytes", "used_bytes")

    def __init__(self, limit_bytes: int) -> None:
        assert limit_bytes > 0
        self.limit_bytes = limit_bytes
        self.used_bytes = 0
        self.exceeded = False

    def charge(self, entry_count: int, entry_bytes: int) -> bool:
        """Record `entry_count` new cache entries; False once the budget is spent."""
        self.used_bytes += entry_count * entry_bytes
        if self.used_bytes > self.limit_bytes:
            self.exceeded = True
        return not self.exceeded

    def release(self, byte_count: int) -> None:
        """Give back the bytes of a finished search."""
        self.used_bytes -= byte_count


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one search.

    `linearization` lists positions in the given operation sequence in linearization order,
    `states` the state after each. For a linearizable sub-history it is complete (unknown-
    outcome operations left out took no effect); otherwise it is the longest prefix found,
    `stuck_state` the state after it, and `candidates` the operations that could come next,
    none of which could be placed. `budget_exceeded` marks an unknown result.
    """

    linearizable: bool
    linearization: tuple[int, ...]
    states: tuple[Hashable, ...]
    stuck_state: Hashable
    candidates: tuple[int, ...]
    configurations: int
    blocking: int | None = None
    budget_exceeded: bool = False


class _Prepared:
    """Operations of one key reordered and indexed for the search loop."""

    def __init__(self, model: Model, ops: Sequence[Operation]) -> None:
        order = sorted(range(len(ops)), key=lambda k: (ops[k].call_time, k))
        self.order = order  # search index -> position in `ops`
        self.ops = [ops[k] for k in order]
        n = len(order)
        self.n = n
        calls = [op.call_time for op in self.ops]
        completed = [i for i in range(n) if self.ops[i].return_time != math.inf]
        completed.sort(key=lambda i: (self.ops[i].return_time, i))
        self.ret_order = completed
        self.prefix_masks = [
            (1 << bisect.bisect_right(calls, self.ops[i].return_time)) - 1 for i in completed
        ]
        read_mask = 0
        for i, op in enumerate(self.ops):
            if model.effect(op.input, op.output) is Effect.READ:
                read_mask |= 1 << i
        self.read_mask = read_mask
        self.twin = self._twins()

    def _twins(self) -> list[int]:
        """For each unknown-outcome op, the previous identical one (or -1)."""
        twin = [-1] * self.n
        last: dict[Any, int] = {}
        for i, op in enumerate(self.ops):
            if op.return_time != math.inf:
                continue
            try:
                identity = (op.input, op.output)
                hash(identity)
            except TypeError:
                continue
            twin[i] = last.get(identity, -1)
            last[identity] = i
        return twin


def search(
    model: Model, ops: Sequence[Operation], budget: Budget
) -> Generator[None, None, Outcome]:
    """Search for a linearization of `ops` (one key); yields every SLICE_STEPS steps."""
    prep = _Prepared(model, ops)
    states: list[Hashable] = [model.init()]
    state_ids: dict[Hashable, int] = {states[0]: 0}
    step = model.step
    inputs = [op.input for op in prep.ops]
    outputs = [op.output for op in prep.ops]
    trans: list[dict[int, int]] = [{} for _ in range(prep.n)]

    def transition(i: int, sid: int) -> int:
        legal, new_state = step(states[sid], inputs[i], outputs[i])
        if not legal:
            trans[i][sid] = -1
            return -1
        t = state_ids.get(new_state)
        if t is None:
            t = len(states)
            states.append(new_state)
            state_ids[new_state] = t
        trans[i][sid] = t
        return t

    n = prep.n
    ret_order = prep.ret_order
    m = len(ret_order)
    prefix_masks = prep.prefix_masks
    read_mask = prep.read_mask
    write_mask = ((1 << n) - 1) & ~read_mask
    twin = prep.twin
    entry_bytes = ENTRY_BYTES + n // 8
    seen: set[int] = set()
    path: list[int] = []
    path_states: list[int] = []
    best: tuple[list[int], list[int], int, int, int] = ([], [], 0, 0, 0)
    best_len = -1
    stack: list[tuple[int, int, int, int, int]] = []
    steps = 0

    def close(lin: int, sid: int, j: int) -> tuple[int, int]:
        """Linearize every legal read among the candidates; return (L, j)."""
        while True:
            reads = prefix_masks[j] & ~lin & read_mask if j < m else 0
            added = 0
            while reads:
                low = reads & -reads
                reads ^= low
                i = low.bit_length() - 1
                t = trans[i].get(sid)
                if t is None:
                    t = transition(i, sid)
                if t == sid:
                    added |= low
                    path.append(i)
                    path_states.append(sid)
                else:
                    assert t < 0, "an Effect.READ operation changed the state"
            if not added:
                return lin, j
            lin |= added
            while j < m and lin >> ret_order[j] & 1:
                j += 1

    lin, j = close(0, 0, 0)
    sid = 0
    seen.add(lin)
    cands = prefix_masks[j] & ~lin & write_mask if j < m else 0
    while j < m:
        steps += 1
        if steps >= SLICE_STEPS:
            steps = 0
            if budget.exceeded:
                break
            yield
        moved = False
        while cands:
            low = cands & -cands
            cands ^= low
            i = low.bit_length() - 1
            tw = twin[i]
            if tw >= 0 and not lin >> tw & 1:
                continue
            t = trans[i].get(sid)
            if t is None:
                t = transition(i, sid)
            if t < 0:
                continue
            lin2 = lin | low
            key = lin2 | t << n
            if key in seen:
                continue
            seen.add(key)
            if not budget.charge(1, entry_bytes):
                break
            stack.append((lin, sid, j, cands, len(path)))
            path.append(i)
            path_states.append(t)
            j2 = j
            while j2 < m and lin2 >> ret_order[j2] & 1:
                j2 += 1
            lin, j = close(lin2, t, j2)
            sid = t
            if lin != lin2:
                seen.add(lin | t << n)
            cands = prefix_masks[j] & ~lin & write_mask if j < m else 0
            moved = True
            break
        if moved or budget.exceeded:
            if budget.exceeded:
                break
            continue
        if len(path) > best_len:
            best_len = len(path)
            best = (path[:], path_states[:], sid, lin, j)
        if not stack:
            break
        lin, sid, j, cands, plen = stack.pop()
        del path[plen:]
        del path_states[plen:]
    budget.release(len(seen) * entry_bytes)
    return _outcome(prep, states, j >= m, path, path_states, best, len(seen), budget.exceeded)


def _outcome(
    prep: _Prepared,
    states: list[Hashable],
    linearizable: bool,
    path: list[int],
    path_states: list[int],
    best: tuple[list[int], list[int], int, int, int],
    configurations: int,
    exceeded: bool,
) -> Outcome:
    order = prep.order
    if linearizable and not exceeded:
        return Outcome(
            linearizable=True,
            linearization=tuple(order[i] for i in path),
            states=tuple(states[s] for s in path_states),
            stuck_state=states[path_states[-1]] if path_states else states[0],
            candidates=(),
            configurations=configurations,
        )
    best_path, best_states, sid, lin, j = best
    candidates: list[int] = []
    blocking = None
    if j < len(prep.ret_order):
        blocking = order[prep.ret_order[j]]
        mask = prep.prefix_masks[j] & ~lin
        while mask:
            low = mask & -mask
            mask ^= low
            candidates.append(order[low.bit_length() - 1])
    return Outcome(
        linearizable=False,
        linearization=tuple(order[i] for i in best_path),
        states=tuple(states[s] for s in best_states),
        stuck_state=states[sid],
        candidates=tuple(candidates),
        configurations=configurations,
        blocking=blocking,
        budget_exceeded=exceeded,
    )
