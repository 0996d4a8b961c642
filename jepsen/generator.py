"""Generators: what operations and faults a run issues, as pure, seeded objects.

Role: the Generator part of a Jepsen test. A client generator answers `next_op(context)`
with the next `OpSpec` for a worker thread (or None: that thread is done); the nemesis
schedule is a list of timed `NemesisStep`s computed up front. Nothing here does I/O or
reads a clock: time comes in through `Context`, randomness from a `random.Random` seeded
by the caller, so the same seed and the same sequence of calls give the same operations,
and every generator is tested without a cluster.

Pieces (after jepsen-io/jepsen `generator.clj` and `independent.clj`):
- `Mix`: each operation drawn from weighted choices (`gen/mix`).
- `IndependentKeys`: threads in groups of `threads_per_key`; each group works on one key
  until `ops_per_key` operations have gone to it, then moves to a fresh key (Jepsen's
  `independent/concurrent-generator`), so each key's history stays small enough to check.
- `TimeLimit`, `Limit`: stop after a time or a count.
- `stagger_delay_s`: the pause before an operation, uniform in [0, 2 * mean] (`stagger`),
  where the mean follows from `--rate` and the concurrency.
- `nemesis_schedule`: wait an interval, start a fault, wait an interval, stop it, repeat,
  until the time limit; the final phase then heals everything (`final_steps`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class OpSpec:
    """An operation a worker is asked to perform: Jepsen's `{:f f :value v}` plus a key."""

    f: str
    key: Hashable = None
    value: Any = None


@dataclass(frozen=True, slots=True)
class Context:
    """What a generator may look at: the asking thread and the test's elapsed time."""

    thread: int
    time_s: float


class Generator(Protocol):
    def next_op(self, context: Context) -> OpSpec | None:
        """The next operation for `context.thread`, or None when it has nothing more."""
        ...


OpFn = Callable[[random.Random], OpSpec]


@dataclass(slots=True)
class Mix:
    """Each call picks one of `choices` by weight and asks it for an operation."""

    choices: Sequence[tuple[float, OpFn]]
    rng: random.Random

    def __post_init__(self) -> None:
        assert self.choices, "Mix needs at least one choice"
        assert all(weight > 0 for weight, _ in self.choices)

    def next_op(self, context: Context) -> OpSpec | None:  # noqa: ARG002 - protocol
        weights = [weight for weight, _ in self.choices]
        _, choice = self.rng.choices(self.choices, weights=weights)[0]
        return choice(self.rng)


def register_mix(rng: random.Random, value_count: int = 5) -> Mix:
    """read / write v / cas [v, v'] over values 0..value_count-1 (Jepsen's etcd workload)."""
    assert value_count >= 2

    def read(_rng: random.Random) -> OpSpec:
        return OpSpec("read")

    def write(r: random.Random) -> OpSpec:
        return OpSpec("write", value=r.randrange(value_count))

    def cas(r: random.Random) -> OpSpec:
        return OpSpec("cas", value=[r.randrange(value_count), r.randrange(value_count)])

    return Mix([(2.0, read), (1.0, write), (1.0, cas)], rng)


@dataclass(slots=True)
class AppendMix:
    """Appends of values unique within the key (0, 1, 2, ...), with some reads between."""

    rng: random.Random
    read_fraction: float = 0.25
    next_value: int = 0

    def next_op(self, context: Context) -> OpSpec | None:  # noqa: ARG002 - protocol
        if self.next_value > 0 and self.rng.random() < self.read_fraction:
            return OpSpec("read")
        value = self.next_value
        self.next_value += 1
        return OpSpec("append", value=value)


@dataclass(slots=True)
class _Group:
    key: int
    generator: Generator
    issued: int = 0


@dataclass(slots=True)
class IndependentKeys:
    """Per-key sub-generators for groups of threads (Jepsen's concurrent-generator).

    Thread t belongs to group t // threads_per_key. A group keeps its key until
    `ops_per_key` operations went to it; then it takes the next unused key (keys are
    0, 1, 2, ... across groups) and a fresh sub-generator from `factory(key, rng)`.
    """

    factory: Callable[[int, random.Random], Generator]
    threads_per_key: int
    ops_per_key: int
    rng: random.Random
    groups: dict[int, _Group] = field(default_factory=dict)
    next_key: int = 0
    keys_used: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert self.threads_per_key >= 1
        assert self.ops_per_key >= 1

    def _fresh(self) -> _Group:
        key = self.next_key
        self.next_key += 1
        self.keys_used.append(key)
        sub_rng = random.Random(self.rng.getrandbits(64))
        return _Group(key, self.factory(key, sub_rng))

    def next_op(self, context: Context) -> OpSpec | None:
        number = context.thread // self.threads_per_key
        group = self.groups.get(number)
        if group is None or group.issued >= self.ops_per_key:
            group = self.groups[number] = self._fresh()
        spec = group.generator.next_op(context)
        if spec is None:
            group.issued = self.ops_per_key
            return self.next_op(context)
        group.issued += 1
        return OpSpec(spec.f, group.key, spec.value)


@dataclass(slots=True)
class TimeLimit:
    """Stops (None) once the context's time reaches `limit_s` (Jepsen's `time-limit`)."""

    limit_s: float
    inner: Generator

    def next_op(self, context: Context) -> OpSpec | None:
        if context.time_s >= self.limit_s:
            return None
        return self.inner.next_op(context)


@dataclass(slots=True)
class Limit:
    """At most `count` operations in total (Jepsen's `limit`)."""

    count: int
    inner: Generator

    def next_op(self, context: Context) -> OpSpec | None:
        if self.count <= 0:
            return None
        spec = self.inner.next_op(context)
        if spec is not None:
            self.count -= 1
        return spec


def stagger_delay_s(rng: random.Random, mean_s: float) -> float:
    """A pause uniform in [0, 2 * mean_s], so the mean rate holds without lock-step."""
    assert mean_s >= 0
    return rng.uniform(0.0, 2.0 * mean_s)


def mean_delay_s(rate_per_s: float, concurrency: int) -> float:
    """Each thread's mean pause so that all threads together aim at `rate_per_s`."""
    assert concurrency >= 1
    if rate_per_s <= 0:
        return 0.0
    return concurrency / rate_per_s


def final_reads(keys: Sequence[int], nodes: Sequence[str]) -> list[tuple[str, OpSpec]]:
    """The final phase's reads: every key, each through every node (liveness)."""
    return [(node, OpSpec("read", key)) for key in keys for node in nodes]
