"""Running a test: set up the DB, drive clients and the nemesis, heal, read, record, check.

Role: jepsen-io/jepsen `core.clj` for this harness. `run_test` composes the parts (DB,
Client via the workload, Nemesis, Generator, Checker) and phases:

    setup      db.setup(), wait until the cluster is healthy
    run        one worker thread per client (bound to a node), one nemesis thread, until
               the time limit
    heal       the nemesis's final generator undoes every fault
    recover    wait until every node is a healthy member again (recorded as `recovered`)
    final      every key read through every node, each retried until ok or a deadline
    teardown   logs and traces collected, the DB torn down (always, even after an error)
    check      the history is closed on disk first, then checked (jepsen/analysis.py)

Rules:
- Worker w starts as process w; after an `info` it continues as process w + concurrency
  (and so on), with a fresh client: Jepsen's rule that a crashed process never returns.
- Generators are asked under one lock, so the same seed and call order give the same ops.
- A client that raises is an `info` with the exception as its error (the outcome is
  unknown); an exception anywhere else in the harness ends the run with a traceback in
  jepsen.log and exit code 255, after teardown.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from jepsen import schedule
from jepsen.client import Client, Completion
from jepsen.db import DB
from jepsen.generator import (
    Context,
    IndependentKeys,
    OpSpec,
    final_reads,
    mean_delay_s,
    stagger_delay_s,
)
from jepsen.history import NEMESIS, History
from jepsen.nemesis import Nemesis
from jepsen.workloads import WORKLOADS, Workload, WorkloadOptions

log = logging.getLogger("jepsen")


@dataclass(frozen=True, slots=True)
class TestConfig:
    """Everything that defines a run; stored as test.json beside the history."""

    name: str
    workload: str
    nodes: tuple[str, ...]
    faults: tuple[str, ...] = ()
    nemesis_spec: str = "none"
    nemesis_interval_s: float = 10.0
    concurrency: int = 10
    rate: float = 50.0
    time_limit_s: float = 60.0
    ops_per_key: int = 100
    threads_per_key: int = 5
    seed: int = 0
    unsafe_stale_reads: bool = False
    no_sessions: bool = False
    recovery_timeout_s: float = 60.0
    final_read_timeout_s: float = 30.0
    db_kind: str = "kvserver"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.workload in WORKLOADS, self.workload
        assert self.nodes, "a test needs nodes"
        assert self.concurrency >= 1
        assert self.time_limit_s > 0

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["nodes"] = list(self.nodes)
        doc["faults"] = list(self.faults)
        return doc


@dataclass(slots=True)
class RunState:
    """What the progress display reads while a run goes on."""

    phase: str = "starting"
    started_s: float = field(default_factory=time.monotonic)
    time_limit_s: float = 0.0
    run_started_s: float | None = None
    fault: str = "none"
    history: History | None = None

    def ops_done(self) -> int:
        return 0 if self.history is None else len(self.history) // 2


class _Worker:
    """One client thread: bound to one node, process ids advancing after each info."""

    def __init__(self, thread: int, node: str, runner: _Runner) -> None:
        self.thread = thread
        self.node = node
        self.process = thread
        self.runner = runner
        self.rng = random.Random(runner.rng_seed("worker", thread))
        self.client: Client | None = None

    def _client(self) -> Client:
        if self.client is None:
            runner = self.runner
            api = runner.db.api(self.node, runner.workload.request_timeout_s)
            self.client = runner.workload.client(api, self.rng, runner.options)
        return self.client

    def perform(self, spec: OpSpec) -> Completion:
        history = self.runner.history
        history.invoke(self.process, spec.f, spec.key, spec.value, self.node)
        try:
            completion = self._client().invoke(spec)
        except Exception as error:
            log.warning("client of process %s crashed: %r", self.process, error)
            completion = Completion("info", spec.value, f"client crashed: {error!r}")
        history.complete(self.process, completion.type, completion.value, completion.error)
        if completion.type == "info":
            self.process += self.runner.config.concurrency
            if self.client is not None:
                self.client.close()
            self.client = None
        return completion

    def run_main(self) -> None:
        runner = self.runner
        mean_s = mean_delay_s(runner.config.rate, runner.config.concurrency)
        while not runner.stop_event.is_set():
            with runner.generator_lock:
                spec = runner.generator.next_op(Context(self.thread, runner.elapsed_s()))
            if spec is None:
                return
            if runner.stop_event.wait(stagger_delay_s(self.rng, mean_s)):
                return
            if runner.elapsed_s() >= runner.config.time_limit_s:
                return
            self.perform(spec)

    def run_final(self, reads: list[OpSpec], deadline_s: float) -> None:
        for spec in reads:
            while True:
                completion = self.perform(spec)
                if completion.type == "ok" or time.monotonic() >= deadline_s:
                    break
                time.sleep(0.2)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


class _Runner:
    def __init__(self, config: TestConfig, db: DB, history: History, state: RunState) -> None:
        self.config = config
        self.db = db
        self.history = history
        self.state = state
        self.workload: Workload = WORKLOADS[config.workload]
        self.options = WorkloadOptions(config.concurrency, config.threads_per_key,
                                       config.ops_per_key, config.unsafe_stale_reads,
                                       config.no_sessions)
        self.generator: IndependentKeys = self.workload.generator(
            random.Random(self.rng_seed("generator", 0)), self.options)
        self.generator_lock = threading.Lock()
        self.stop_event = threading.Event()
        self.nemesis = Nemesis(db, random.Random(self.rng_seed("nemesis", 0)))
        self.run_start_s = time.monotonic()

    def rng_seed(self, role: str, number: int) -> int:
        return random.Random(f"{self.config.seed}/{role}/{number}").getrandbits(64)

    def elapsed_s(self) -> float:
        return time.monotonic() - self.run_start_s

    def nemesis_op(self, f: str, value: Any, action: Callable[[], Any]) -> Any:
        self.history.invoke(NEMESIS, f, None, value)
        result = action()
        self.history.complete(NEMESIS, "info", result)
        return result

    def run_nemesis(self, steps: list[schedule.NemesisStep]) -> None:
        for step in steps:
            if self.stop_event.wait(max(0.0, step.at_s - self.elapsed_s())):
                return
            log.info("nemesis: %s %s", step.f, step.value)
            result = self.nemesis_op(step.f, step.value, functools.partial(self.nemesis.invoke,
                                                                          step))
            self.state.fault = self.nemesis.current
            log.info("nemesis: %s -> %s", step.f, result)


def _start(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def main_phase(runner: _Runner, workers: list[_Worker]) -> None:
    config = runner.config
    steps = schedule.nemesis_schedule(
        config.faults, config.nodes, config.nemesis_interval_s, config.time_limit_s,
        random.Random(runner.rng_seed("schedule", 0)))
    runner.history.restart_clock()
    runner.run_start_s = time.monotonic()
    runner.state.run_started_s = runner.run_start_s
    runner.state.phase = "run"
    threads = [_start(w.run_main, f"worker-{w.thread}") for w in workers]
    nemesis_thread = _start(lambda: runner.run_nemesis(steps), "nemesis")
    deadline = runner.run_start_s + config.time_limit_s
    while time.monotonic() < deadline and any(t.is_alive() for t in threads):
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    runner.stop_event.set()
    for thread in [*threads, nemesis_thread]:
        thread.join()


def final_phase(runner: _Runner, workers: list[_Worker]) -> None:
    config = runner.config
    runner.state.phase = "heal"
    runner.nemesis_op("heal", {"fault": "all"}, runner.nemesis.heal)
    runner.state.fault = "none"
    runner.state.phase = "recover"
    started = time.monotonic()
    healthy = runner.db.await_healthy(config.nodes, config.recovery_timeout_s)
    waited_s = round(time.monotonic() - started, 3)
    log.info("recovery: healthy=%s after %.1f s", healthy, waited_s)
    runner.nemesis_op("recovered", None, lambda: {"healthy": healthy, "waited_s": waited_s})
    runner.state.phase = "final reads"
    runner.history.invoke(NEMESIS, "final-reads", None, None)
    by_node: dict[str, list[OpSpec]] = {}
    for node, spec in final_reads(runner.generator.keys_used, config.nodes):
        by_node.setdefault(node, []).append(spec)
    deadline_s = time.monotonic() + config.final_read_timeout_s
    threads = []
    for node, specs in by_node.items():
        worker = next((w for w in workers if w.node == node), None)
        if worker is None:
            worker = _Worker(len(workers), node, runner)
            workers.append(worker)
        threads.append(_start(functools.partial(worker.run_final, specs, deadline_s),
                              f"final-{node}"))
    for thread in threads:
        thread.join()
    runner.history.complete(NEMESIS, "info", {"reads": sum(len(s) for s in by_node.values())})


def run_test(config: TestConfig, db: DB, history: History, state: RunState) -> None:
    """Run every phase; the history is complete (and on disk) when this returns."""
    runner = _Runner(config, db, history, state)
    state.history = history
    state.time_limit_s = config.time_limit_s
    workers = [_Worker(t, config.nodes[t % len(config.nodes)], runner)
               for t in range(config.concurrency)]
    try:
        state.phase = "setup"
        log.info("setting up %s on %s", config.db_kind, ", ".join(config.nodes))
        db.setup()
        if not db.await_healthy(config.nodes, config.recovery_timeout_s):
            raise SetupFailed("the cluster did not become healthy after setup")
        log.info("cluster healthy; running %s for %g s", config.workload, config.time_limit_s)
        main_phase(runner, workers)
        final_phase(runner, workers)
    finally:
        for worker in workers:
            worker.close()
        history.flush()


class SetupFailed(Exception):
    """The database could not be brought up; the run stops before any operation."""
