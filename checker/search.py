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
  legal and never branched on: doing so can only keep a solution reachable;
- for models whose writes only grow the state (Effect.GROW, e.g. appends) a pending read
  that no longer fits (`Model.reachable`) while only growing writes can still precede it
  ends the branch at once, instead of after every ordering of the concurrent writes.
"""

from __future__ import annotations

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


class _Search:
    """One key's operations indexed for the search loop, and the memo tables."""

    def __init__(self, model: Model, ops: Sequence[Operation]) -> None:
        # Index by return time (unknown outcomes last, by call time): the lowest candidate
        # bit is then the operation that returned first, the best one to try first, and the
        # first unlinearized completed operation is the lowest zero bit below m.
        order = sorted(range(len(ops)), key=lambda k: (ops[k].return_time, ops[k].call_time, k))
        self.order = order  # search index -> position in `ops`
        self.ops = [ops[k] for k in order]
        self.model = model
        self.n = n = len(order)
        self.m = sum(1 for op in self.ops if op.return_time != math.inf)
        self.prefix_masks = self._prefix_masks()
        effects = [model.effect(op.input, op.output) for op in self.ops]
        self.read_mask = sum(1 << i for i in range(n) if effects[i] is Effect.READ)
        self.write_mask = ((1 << n) - 1) & ~self.read_mask
        grows = model.reachable is not None
        self.hard_mask = sum(1 << i for i in range(n) if effects[i] is Effect.WRITE
                             or (effects[i] is Effect.GROW and not grows))
        self.twin = self._twins()
        self.states: list[Hashable] = [model.init()]
        self.state_ids: dict[Hashable, int] = {self.states[0]: 0}
        self.trans: list[dict[int, int]] = [{} for _ in range(n)]
        self.fits: list[dict[int, bool]] = [{} for _ in range(n)]

    def _prefix_masks(self) -> list[int]:
        """Per completed op j: the ops called no later than j returns."""
        ops = self.ops
        by_call = sorted(range(self.n), key=lambda i: (ops[i].call_time, i))
        masks: list[int] = []
        mask = 0
        k = 0
        for j in range(self.m):
            ret = ops[j].return_time
            while k < self.n and ops[by_call[k]].call_time <= ret:
                mask |= 1 << by_call[k]
                k += 1
            masks.append(mask)
        return masks

    def _twins(self) -> list[int]:
        """For each unknown-outcome op, the previous identical one (or -1)."""
        twin = [-1] * self.n
        last: dict[Any, int] = {}
        for i in range(self.m, self.n):
            op = self.ops[i]
            try:
                identity = (op.input, op.output)
                hash(identity)
            except TypeError:
                continue
            twin[i] = last.get(identity, -1)
            last[identity] = i
        return twin

    def transition(self, i: int, sid: int) -> int:
        """Op i applied in state sid: the new state's id, or -1 if illegal (memoized)."""
        op = self.ops[i]
        legal, new_state = self.model.step(self.states[sid], op.input, op.output)
        if not legal:
            self.trans[i][sid] = -1
            return -1
        t = self.state_ids.get(new_state)
        if t is None:
            t = len(self.states)
            self.states.append(new_state)
            self.state_ids[new_state] = t
        self.trans[i][sid] = t
        return t

    def close(self, lin: int, sid: int, j: int, path: list[int], path_states: list[int]
              ) -> tuple[int, int]:
        """Linearize every legal read among the candidates; return the new (L, j)."""
        prefix_masks, read_mask, trans, m = self.prefix_masks, self.read_mask, self.trans, self.m
        while j < m:
            reads = prefix_masks[j] & ~lin & read_mask
            added = 0
            while reads:
                low = reads & -reads
                reads ^= low
                i = low.bit_length() - 1
                t = trans[i].get(sid)
                if t is None:
                    t = self.transition(i, sid)
                if t == sid:
                    added |= low
                    path.append(i)
                    path_states.append(sid)
                else:
                    assert t < 0, "an Effect.READ operation changed the state"
            if not added:
                break
            lin |= added
            while j < m and lin >> j & 1:
                j += 1
        return lin, j

    def dead(self, lin: int, sid: int, j: int) -> bool:
        """True if a pending read can no longer fit: only growing writes may precede it."""
        if j >= self.m or self.model.reachable is None:
            return False
        pending = self.prefix_masks[j] & ~lin & self.read_mask
        while pending:
            low = pending & -pending
            pending ^= low
            r = low.bit_length() - 1
            if self.prefix_masks[r] & ~lin & self.hard_mask:
                continue
            fit = self.fits[r].get(sid)
            if fit is None:
                op = self.ops[r]
                fit = self.fits[r][sid] = self.model.reachable(self.states[sid], op.input,
                                                               op.output)
            if not fit:
                return True
        return False


def search(  # noqa: PLR0915 - one loop over fast locals is the point of this function
    model: Model, ops: Sequence[Operation], budget: Budget
) -> Generator[None, None, Outcome]:
    """Search for a linearization of `ops` (one key); yields every SLICE_STEPS steps."""
    s = _Search(model, ops)
    n, m, prefix_masks, write_mask, twin, trans = (
        s.n, s.m, s.prefix_masks, s.write_mask, s.twin, s.trans)
    transition, close, dead = s.transition, s.close, s.dead
    check_dead = model.reachable is not None
    entry_bytes = ENTRY_BYTES + n // 8
    path: list[int] = []
    path_states: list[int] = []
    best: tuple[list[int], list[int], int, int, int] = ([], [], 0, 0, 0)
    best_score = -(n + 1)
    stack: list[tuple[int, int, int, int, int]] = []
    lin, j = close(0, 0, 0, path, path_states)
    sid = steps = 0
    seen = {lin}
    cands = prefix_masks[j] & ~lin & write_mask if j < m else 0
    if check_dead and dead(lin, sid, j):
        cands = 0
    while j < m and not budget.exceeded:
        steps += 1
        if steps >= SLICE_STEPS:
            steps = 0
            yield
        while cands:
            low = cands & -cands
            cands ^= low
            i = low.bit_length() - 1
            if twin[i] >= 0 and not lin >> twin[i] & 1:
                continue
            t = trans[i].get(sid)
            if t is None:
                t = transition(i, sid)
            lin2 = lin | low
            key = lin2 | t << n
            if t < 0 or key in seen:
                continue
            seen.add(key)
            stack.append((lin, sid, j, cands, len(path)))
            path.append(i)
            path_states.append(t)
            j2 = j
            while j2 < m and lin2 >> j2 & 1:
                j2 += 1
            lin, j = close(lin2, t, j2, path, path_states)
            sid = t
            if lin != lin2:
                seen.add(lin | t << n)
            cands = prefix_masks[j] & ~lin & write_mask if j < m else 0
            if check_dead and dead(lin, sid, j):
                cands = 0
            break
        else:
            if j * (n + 1) - len(path) > best_score:  # furthest in time, then shortest
                best_score = j * (n + 1) - len(path)
                best = (path[:], path_states[:], sid, lin, j)
            if not stack:
                break
            lin, sid, j, cands, plen = stack.pop()
            del path[plen:]
            del path_states[plen:]
            continue
        budget.charge(1, entry_bytes)
    budget.release(len(seen) * entry_bytes)
    return _outcome(s, linearizable=j >= m, path=path, path_states=path_states, best=best,
                    configurations=len(seen), exceeded=budget.exceeded)


def _outcome(
    prep: _Search,
    *,
    linearizable: bool,
    path: list[int],
    path_states: list[int],
    best: tuple[list[int], list[int], int, int, int],
    configurations: int,
    exceeded: bool,
) -> Outcome:
    order = prep.order
    states = prep.states
    if linearizable:
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
    if j < prep.m:
        blocking = order[j]
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
