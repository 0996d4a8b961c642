"""The nemesis: carries out the schedule's faults on a DB and undoes them all at the end.

Role: the Nemesis part of a Jepsen test (jepsen-io/jepsen `nemesis.clj`,
`nemesis/combined.clj`). `Nemesis.invoke(step)` performs one `NemesisStep` and returns a
JSON value saying what it did (recorded as the completion of the nemesis's `info` op);
`heal()` is the final generator's work: heal the network, resume paused nodes, restart
killed ones, add removed members back.

Rules:
- The nemesis remembers what it broke, so every stop and the final heal undo exactly that.
- Targets named `leader` are resolved when the fault starts; with no leader known the
  fault falls back to a random node (seeded) and says so.
- A failed fault step is recorded with its error and the run goes on: a nemesis that
  cannot break something is a finding about the harness, not a reason to stop the test.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from jepsen import grudges
from jepsen.db import DB, DBError
from jepsen.schedule import NemesisStep


def on_nodes(
    nodes: Sequence[str], action: Callable[[str], None]
) -> tuple[list[str], dict[str, str]]:
    """Run `action` on every node at once (a kill of all nodes is one moment, not five);
    returns the nodes it worked on and the error per node where it did not."""
    if not nodes:
        return [], {}
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        futures = {node: pool.submit(action, node) for node in nodes}
    done, errors = [], {}
    for node, future in futures.items():
        error = future.exception()
        if error is None:
            done.append(node)
        elif isinstance(error, DBError):
            errors[node] = error.cause
        else:
            raise error
    return sorted(done), errors


@dataclass(slots=True)
class Nemesis:
    db: DB
    rng: random.Random
    killed: set[str] = field(default_factory=set)
    paused: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    partitioned: bool = False
    current: str = "none"

    def _members(self) -> list[str]:
        return [node for node in self.db.nodes if node not in self.removed]

    def _leader_or_random(self) -> tuple[str, bool]:
        leader = self.db.leader()
        if leader is not None and leader in self._members():
            return leader, True
        return self.rng.choice(sorted(self._members())), False

    def _targets(self, value: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        if value.get("targets") == "leader":
            node, found = self._leader_or_random()
            return [node], {"nodes": [node], "leader_known": found}
        nodes = [n for n in value.get("nodes", []) if n in self._members()]
        return nodes, {"nodes": nodes}

    def invoke(self, step: NemesisStep) -> dict[str, Any]:
        """Perform one step; returns what was done (or the error), for the history."""
        try:
            result = self._dispatch(step)
        except DBError as error:
            return {"error": str(error)}
        return result

    def _dispatch(self, step: NemesisStep) -> dict[str, Any]:
        value = step.value
        fault = str(value.get("fault", step.f))
        if step.f.startswith("start-"):
            self.current = fault
        elif step.f.startswith("stop-") or step.f == "heal":
            self.current = "none"
        handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "start-partition": self._start_partition,
            "stop-partition": lambda _v: self._stop_partition(),
            "start-kill": self._start_kill,
            "stop-kill": lambda _v: self._restart_killed(),
            "start-pause": self._start_pause,
            "stop-pause": lambda _v: self._resume_paused(),
            "start-membership": self._start_membership,
            "stop-membership": lambda _v: self._add_back(),
            "start-wal": self._start_wal,
            "stop-wal": lambda _v: self._restart_killed(),
            "transfer-leadership": self._transfer,
            "heal": lambda _v: self.heal(),
        }
        handler = handlers.get(step.f)
        assert handler is not None, f"unknown nemesis step {step.f!r}"
        return handler(value)

    def _start_partition(self, value: dict[str, Any]) -> dict[str, Any]:
        members = self._members()
        if value.get("shape") is None:
            leader, found = self._leader_or_random()
            grudge = grudges.isolate(members, leader)
            extra: dict[str, Any] = {"isolated": leader, "leader_known": found}
        else:
            raw = value.get("grudge", {})
            grudge = {n: frozenset(d) & set(members) for n, d in raw.items() if n in members}
            grudge = {n: d for n, d in grudge.items() if d}
            extra = {}
        self.db.partition(grudge)
        self.partitioned = True
        return {"partition": grudges.describe(grudge), **extra}

    def _stop_partition(self) -> dict[str, Any]:
        self.db.heal_network()
        self.partitioned = False
        return {"healed": "network"}

    def _start_kill(self, value: dict[str, Any]) -> dict[str, Any]:
        nodes, result = self._targets(value)
        done, errors = on_nodes(nodes, self.db.kill)
        self.killed.update(done)
        return {"killed": done, **result, **({"errors": errors} if errors else {})}

    def _restart_killed(self) -> dict[str, Any]:
        started, errors = on_nodes(sorted(self.killed), self.db.start)
        self.killed -= set(started)
        return {"started": started, **({"errors": errors} if errors else {})}

    def _start_pause(self, value: dict[str, Any]) -> dict[str, Any]:
        nodes, result = self._targets(value)
        done, errors = on_nodes(nodes, self.db.pause)
        self.paused.update(done)
        return {"paused": done, **result, **({"errors": errors} if errors else {})}

    def _resume_paused(self) -> dict[str, Any]:
        resumed, errors = on_nodes(sorted(self.paused), self.db.resume)
        self.paused -= set(resumed)
        return {"resumed": resumed, **({"errors": errors} if errors else {})}

    def _start_membership(self, value: dict[str, Any]) -> dict[str, Any]:
        nodes, _ = self._targets(value)
        if not nodes or len(self._members()) <= 3:
            return {"removed": [], "skipped": "too few members to shrink"}
        node = nodes[0]
        self.db.remove_member(node)
        self.removed.add(node)
        return {"removed": [node]}

    def _add_back(self) -> dict[str, Any]:
        added = []
        for node in sorted(self.removed):
            self.db.add_member(node)
            added.append(node)
            self.removed.discard(node)
        return {"added": added}

    def _start_wal(self, value: dict[str, Any]) -> dict[str, Any]:
        nodes, _ = self._targets(value)
        if not nodes:
            return {"skipped": "target is not a member"}
        node = nodes[0]
        self.db.kill(node)
        self.killed.add(node)
        if value.get("fault") == "wal-truncate":
            done = self.db.damage_wal(node, "truncate", int(value.get("drop_bytes", 8)))
        else:
            done = self.db.damage_wal(node, "corrupt", int(value.get("offset", -1)))
        return {"killed": [node], "wal": done}

    def _transfer(self, value: dict[str, Any]) -> dict[str, Any]:
        target = value.get("to")
        to = target if target in self._members() else None
        leader = self.db.transfer_leadership(to)
        return {"leader": leader}

    def heal(self) -> dict[str, Any]:
        """Undo everything: network, pauses, kills, removals (the final generator)."""
        done: dict[str, Any] = {}
        errors: dict[str, str] = {}
        steps: Sequence[tuple[str, Any]] = (
            ("network", self._stop_partition),
            ("resume", self._resume_paused),
            ("restart", self._restart_killed),
            ("add", self._add_back),
        )
        for name, action in steps:
            try:
                done[name] = action()
            except DBError as error:
                errors[name] = str(error)
        if errors:
            done["errors"] = errors
        self.current = "none"
        return done
