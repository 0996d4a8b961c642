"""The checker's vocabulary: models, operations, events.

Role: the small public types every other module speaks, shaped like Porcupine's API.

Rules:
- A `Model` is a record of pure functions. `step(state, input, output)` returns
  `(legal, new_state)` and must not mutate `state`. States must be hashable and compare by
  value (the search interns them), so use ints, strings, tuples, frozensets.
- An `Operation` whose `return_time` is `math.inf` has an unknown outcome (Jepsen's
  `info`): it may take effect at any point after its call, or never. A model's `step`
  must accept such an operation in every state.
- `effect` is an optional hint that makes the search faster and never changes a verdict if
  it is true: `Effect.NONE` says the operation is legal in every state and changes nothing
  (the checker drops it); `Effect.READ` says it never changes the state (the checker
  linearizes it as soon as it is legal, without branching); `Effect.GROW` says it only
  moves the state upwards in an order the model knows (appends, adds); `Effect.WRITE` is
  anything else.
- `reachable(state, input, output)`, optional, answers for an `Effect.READ` operation
  whether it is legal in `state` or in some state above it (one that `Effect.GROW`
  operations can lead to). When only GROW operations can still come before a pending read
  and it is not reachable, the search abandons that branch at once.
- Operations read from history files carry an `Input` and an `Output` (below); models written
  for other inputs work with `check_operations` and `check_events` directly.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any


class Effect(enum.Enum):
    """What an operation can do to the state (a hint for the search, see module doc)."""

    NONE = "none"
    READ = "read"
    GROW = "grow"
    WRITE = "write"


def _describe_operation(input: Any, output: Any) -> str:
    return f"{input!r} -> {output!r}"


def _describe_state(state: Any) -> str:
    return repr(state)


def _write_effect(input: Any, output: Any) -> Effect:  # noqa: ARG001
    return Effect.WRITE


@dataclass(frozen=True, slots=True)
class Model:
    """A sequential specification, as a record of pure functions (Porcupine's `Model`).

    `partition` maps an operation's input to the key of its independent sub-history
    (P-compositionality: a history is linearizable iff every key's sub-history is);
    None checks the whole history as one object.
    """

    init: Callable[[], Hashable]
    step: Callable[[Any, Any, Any], tuple[bool, Any]]
    partition: Callable[[Any], Hashable] | None = None
    describe_operation: Callable[[Any, Any], str] = _describe_operation
    describe_state: Callable[[Any], str] = _describe_state
    effect: Callable[[Any, Any], Effect] = _write_effect
    reachable: Callable[[Any, Any, Any], bool] | None = None
    name: str = "model"


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation with its real-time interval (Porcupine's `Operation`).

    `return_time` is `math.inf` when the outcome is unknown. Intervals are closed: two
    operations whose call and return times are equal are concurrent.
    """

    client_id: int
    input: Any
    call_time: float
    output: Any
    return_time: float

    def __post_init__(self) -> None:
        assert self.call_time <= self.return_time, "an operation returns after its call"

    @property
    def completed(self) -> bool:
        """True when the operation returned (its outcome is known)."""
        return self.return_time != math.inf


class EventKind(enum.Enum):
    """Whether an event is an operation's call or its return."""

    CALL = "call"
    RETURN = "return"


@dataclass(frozen=True, slots=True)
class Event:
    """One call or return, in history order (Porcupine's `Event`); `id` pairs the two."""

    client_id: int
    kind: EventKind
    value: Any
    id: int


@dataclass(frozen=True, slots=True)
class Input:
    """The input of an operation read from a history file: Jepsen's `f`, key and value."""

    f: str
    key: Hashable
    value: Any


@dataclass(frozen=True, slots=True)
class Output:
    """The outcome of an operation read from a history file.

    `status` is "ok", "fail" (definitely did not happen, unless a model says a failed
    operation observed the state) or "info" (unknown); `value` is the completion's value.
    """

    status: str
    value: Any
    error: str | None = field(default=None, compare=False)


def key_of(input: Any) -> Hashable:
    """The partition function for `Input` records: one sub-history per key."""
    assert isinstance(input, Input)
    return input.key
