"""Workloads: a generator, a client and the checks that judge what the clients saw.

Role: the pairing of Generator, Client and Checker parts per `--workload`
(jepsen-io/jepsen tests compose these per workload the same way):

    register    read / write / cas of small integers on independent keys; each key checked
                for linearizability with the checker's cas-register model
    sessions    exactly-once appends through client sessions, with deliberate retries;
                checked with the checker's append-list model and directly: every
                acknowledged append is in the final reads exactly once, nothing is there
                twice, nothing is there that was never sent
    membership  the register workload while the nemesis removes and re-adds nodes

Negative controls: `unsafe_stale_reads` makes reads ask for `consistency=stale`;
`no_sessions` makes the sessions client retry without a session.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from jepsen.api import KvApi
from jepsen.client import Client, RegisterClient, SessionsClient
from jepsen.generator import AppendMix, Generator, IndependentKeys, register_mix


@dataclass(frozen=True, slots=True)
class WorkloadOptions:
    concurrency: int
    threads_per_key: int
    ops_per_key: int
    unsafe_stale_reads: bool = False
    no_sessions: bool = False


@dataclass(frozen=True, slots=True)
class Workload:
    """How one workload generates, performs and is judged."""

    name: str
    model: str
    checks: tuple[str, ...]
    generator: Callable[[random.Random, WorkloadOptions], IndependentKeys]
    client: Callable[[KvApi, random.Random, WorkloadOptions], Client]
    required_faults: tuple[str, ...] = ()
    request_timeout_s: float = 5.0

    def description(self) -> str:
        return f"{self.name} (model {self.model}; checks {', '.join(self.checks)})"


def _register_generator(rng: random.Random, options: WorkloadOptions) -> IndependentKeys:
    def factory(_key: int, key_rng: random.Random) -> Generator:
        return register_mix(key_rng)

    return IndependentKeys(factory, options.threads_per_key, options.ops_per_key, rng)


def _append_generator(rng: random.Random, options: WorkloadOptions) -> IndependentKeys:
    def factory(_key: int, key_rng: random.Random) -> Generator:
        return AppendMix(key_rng)

    return IndependentKeys(factory, options.threads_per_key, options.ops_per_key, rng)


def _consistency(options: WorkloadOptions) -> str:
    return "stale" if options.unsafe_stale_reads else "linearizable"


def _register_client(api: KvApi, _rng: random.Random, options: WorkloadOptions) -> Client:
    return RegisterClient(api, _consistency(options))


def _sessions_client(api: KvApi, rng: random.Random, options: WorkloadOptions) -> Client:
    return SessionsClient(api, rng, use_sessions=not options.no_sessions,
                          consistency=_consistency(options))


WORKLOADS: dict[str, Workload] = {
    "register": Workload(
        "register", "cas-register", ("linearizable", "liveness", "stats"),
        _register_generator, _register_client,
    ),
    "sessions": Workload(
        "sessions", "append-list", ("linearizable", "exactly-once", "liveness", "stats"),
        _append_generator, _sessions_client, request_timeout_s=2.0,
    ),
    "membership": Workload(
        "membership", "cas-register", ("linearizable", "liveness", "stats"),
        _register_generator, _register_client, required_faults=("membership",),
    ),
}
