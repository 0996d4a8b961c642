"""Results of a check: a verdict per key and, for an illegal key, a counterexample.

Role: plain frozen records, shared by the checker, the HTML report and the CLI.

Rules: positions are indices into `CheckResult.operations` (the history's operations in
invocation order); states are the model's own values (render them with
`model.describe_state`). The overall verdict is `illegal` if any key is, else `unknown` if
any key is, else `ok`.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from checker.model import Model, Operation


class Verdict(enum.Enum):
    """Porcupine's three answers."""

    OK = "ok"
    ILLEGAL = "illegal"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Counterexample:
    """Why a key is not linearizable.

    `prefix` is the longest linearizable prefix the search found (operations in
    linearization order, `prefix_states` the state after each), `state` the state after
    it, and `unplaced` the operations that could come next there, none of which leads to
    a linearization (each is illegal in `state` or leads only to dead ends). `blocking` is
    the operation that returns first among those not yet linearized: it must come next or
    after one of `unplaced`.
    """

    prefix: tuple[int, ...]
    prefix_states: tuple[Any, ...]
    state: Any
    unplaced: tuple[int, ...]
    blocking: int | None


@dataclass(frozen=True, slots=True)
class KeyResult:
    """The verdict for one key's sub-history.

    `operations` are all the key's operations, `linearization` / `states` a linearization
    (complete when ok; the counterexample's prefix when illegal). `reason` explains an
    unknown verdict. `configurations` counts the search's distinct (linearized, state)
    configurations.
    """

    key: Hashable
    verdict: Verdict
    operations: tuple[int, ...]
    linearization: tuple[int, ...]
    states: tuple[Any, ...]
    counterexample: Counterexample | None = None
    reason: str = ""
    configurations: int = 0


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The result of checking one history against one model."""

    verdict: Verdict
    keys: tuple[KeyResult, ...]
    operations: tuple[Operation, ...]
    model: Model
    elapsed_s: float

    @property
    def ok(self) -> bool:
        """True when the history is linearizable."""
        return self.verdict is Verdict.OK

    @property
    def illegal_keys(self) -> tuple[KeyResult, ...]:
        """The keys whose sub-histories are not linearizable."""
        return tuple(k for k in self.keys if k.verdict is Verdict.ILLEGAL)

    def summary(self) -> str:
        """One line: the verdict and the key counts."""
        counts = {v: sum(1 for k in self.keys if k.verdict is v) for v in Verdict}
        parts = ", ".join(f"{counts[v]} {v.value}" for v in Verdict if counts[v])
        return (f"{self.verdict.value}: {len(self.operations)} operations, "
                f"{len(self.keys)} keys ({parts or 'none'}), {self.elapsed_s:.3f} s")
