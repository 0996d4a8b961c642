"""The nemesis schedule: which faults start and stop when, computed purely from a seed.

Role: the nemesis half of the Generator part. `parse_faults` turns the `--nemesis` list
into fault names; `nemesis_schedule` lays them out in time (Jepsen's
`(cycle [(sleep dt) start (sleep dt) stop])`); `final_steps` is the final generator that
heals everything so the run can check liveness. The nemesis (jepsen/nemesis.py) carries
the steps out; targets that depend on the running cluster (the leader) are chosen then,
every other target is chosen here, so the same seed gives the same faults.

Fault names (`--nemesis`, comma separated; `all` is every one, a family name all of its
members, `none` nothing):

    partition:  partition-isolate, partition-halves, partition-majority-minority,
                partition-majorities-ring, partition-bridge, partition-leader
    kill:       kill-one, kill-minority, kill-leader, kill-all        (kill -9, restart)
    pause:      pause-one, pause-minority, pause-leader               (SIGSTOP, SIGCONT)
    membership: membership                        (remove a node, later add it back)
    transfer:   transfer-leadership                 (hand leadership to another node)
    wal:        wal-truncate, wal-corrupt     (kill a node, damage its WAL tail, restart)

A step's `f` is `start-<family>` / `stop-<family>` (`transfer-leadership` has no stop);
its `value` is a JSON object naming the fault and its targets, recorded in the history.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jepsen import grudges

FAMILIES: dict[str, tuple[str, ...]] = {
    "partition": ("partition-isolate", "partition-halves", "partition-majority-minority",
                  "partition-majorities-ring", "partition-bridge", "partition-leader"),
    "kill": ("kill-one", "kill-minority", "kill-leader", "kill-all"),
    "pause": ("pause-one", "pause-minority", "pause-leader"),
    "membership": ("membership",),
    "transfer": ("transfer-leadership",),
    "wal": ("wal-truncate", "wal-corrupt"),
}
ALL_FAULTS: tuple[str, ...] = tuple(name for names in FAMILIES.values() for name in names)
_PARTITION_SHAPES = {
    "partition-isolate": "isolate",
    "partition-halves": "halves",
    "partition-majority-minority": "majority-minority",
    "partition-majorities-ring": "majorities-ring",
    "partition-bridge": "bridge",
}
# Faults that need at least this many nodes to mean anything.
_MIN_NODES = {
    "partition-isolate": 2, "partition-halves": 2, "partition-leader": 2,
    "partition-majority-minority": 3, "partition-majorities-ring": 3, "partition-bridge": 3,
    "kill-minority": 3, "pause-minority": 3, "membership": 3, "transfer-leadership": 2,
}


class FaultSpecError(ValueError):
    """A `--nemesis` list names an unknown fault, or one the node count cannot support."""


@dataclass(frozen=True, slots=True)
class NemesisStep:
    """One nemesis operation at `at_s` seconds into the test."""

    at_s: float
    f: str
    value: dict[str, Any]


def family_of(fault: str) -> str:
    for family, names in FAMILIES.items():
        if fault in names:
            return family
    raise FaultSpecError(f"unknown fault {fault!r}")


def parse_faults(spec: str, node_count: int) -> tuple[str, ...]:
    """The fault names of a `--nemesis` value, in catalogue order, without repeats."""
    chosen: set[str] = set()
    for raw in spec.split(","):
        item = raw.strip()
        if not item or item == "none":
            continue
        if item == "all":
            chosen.update(ALL_FAULTS)
        elif item in FAMILIES:
            chosen.update(FAMILIES[item])
        elif item in ALL_FAULTS:
            chosen.add(item)
        else:
            known = ", ".join(["all", "none", *FAMILIES, *ALL_FAULTS])
            raise FaultSpecError(f"unknown nemesis {item!r} (known: {known})")
    # A family or `all` quietly leaves out what the node count cannot support; a fault
    # named on its own must be possible.
    too_few = {f for f in chosen if node_count < _MIN_NODES.get(f, 1)}
    named = {raw.strip() for raw in spec.split(",")} & set(ALL_FAULTS)
    if too_few & named:
        names = ", ".join(sorted(too_few & named))
        raise FaultSpecError(f"{names}: not possible with {node_count} node(s)")
    chosen -= too_few
    return tuple(f for f in ALL_FAULTS if f in chosen)


def _grudge_json(grudge: grudges.Grudge) -> dict[str, list[str]]:
    return {node: sorted(dropped) for node, dropped in sorted(grudge.items())}


def fault_value(fault: str, nodes: Sequence[str], rng: random.Random) -> dict[str, Any]:
    """The targets of one fault, chosen now (the leader is chosen when the fault starts)."""
    ordered = sorted(nodes)
    if fault in _PARTITION_SHAPES:
        shape = _PARTITION_SHAPES[fault]
        grudge = grudges.GRUDGES[shape](ordered, rng)
        return {"fault": fault, "shape": shape, "grudge": _grudge_json(grudge)}
    target = fault.rsplit("-", 1)[-1]
    if target == "leader":
        return {"fault": fault, "targets": "leader"}
    if target == "one":
        return {"fault": fault, "targets": "one", "nodes": [rng.choice(ordered)]}
    if target == "minority":
        count = (len(ordered) - 1) // 2
        return {"fault": fault, "targets": "minority", "nodes": sorted(rng.sample(ordered, count))}
    if target == "all":
        return {"fault": fault, "targets": "all", "nodes": ordered}
    if fault == "membership":
        return {"fault": fault, "nodes": [rng.choice(ordered)]}
    if fault == "transfer-leadership":
        return {"fault": fault, "to": rng.choice(ordered)}
    if fault == "wal-truncate":
        return {"fault": fault, "nodes": [rng.choice(ordered)], "drop_bytes": rng.randint(1, 64)}
    if fault == "wal-corrupt":
        return {"fault": fault, "nodes": [rng.choice(ordered)], "offset": -rng.randint(1, 64)}
    raise FaultSpecError(f"unknown fault {fault!r}")


def nemesis_schedule(
    faults: Sequence[str],
    nodes: Sequence[str],
    interval_s: float,
    time_limit_s: float,
    rng: random.Random,
) -> list[NemesisStep]:
    """Wait, start a random fault, wait, stop it, ... until `time_limit_s`.

    Every started fault is stopped no later than the time limit, so at most one fault is
    active at a time and the final heal finds a cluster with nothing of its own to undo.
    """
    assert interval_s > 0
    steps: list[NemesisStep] = []
    if not faults:
        return steps
    at_s = interval_s
    while at_s < time_limit_s:
        fault = rng.choice(list(faults))
        family = family_of(fault)
        value = fault_value(fault, nodes, rng)
        if family == "transfer":
            steps.append(NemesisStep(at_s, fault, value))
            at_s += interval_s
            continue
        steps.append(NemesisStep(at_s, f"start-{family}", value))
        stop_s = min(at_s + interval_s, time_limit_s)
        steps.append(NemesisStep(stop_s, f"stop-{family}", {"fault": fault}))
        at_s = stop_s + interval_s
    return steps


def final_steps(time_limit_s: float) -> list[NemesisStep]:
    """The final generator: heal the network, resume, restart, re-add every node."""
    return [NemesisStep(time_limit_s, "heal", {"fault": "all"})]


def active_periods(steps: Sequence[NemesisStep], end_s: float) -> list[tuple[float, float, str]]:
    """(start_s, stop_s, fault) for each started fault, for shading plots and timelines."""
    periods: list[tuple[float, float, str]] = []
    open_fault: tuple[float, str] | None = None
    for step in steps:
        if step.f.startswith("start-"):
            open_fault = (step.at_s, str(step.value.get("fault", step.f)))
        elif step.f.startswith("stop-") and open_fault is not None:
            periods.append((open_fault[0], step.at_s, open_fault[1]))
            open_fault = None
        elif step.f == "transfer-leadership":
            periods.append((step.at_s, step.at_s, step.f))
    if open_fault is not None:
        periods.append((open_fault[0], end_s, open_fault[1]))
    return periods
