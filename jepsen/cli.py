"""The `run`, `analyze` and `serve` subcommands of `python -m jepsen`.

Role: parse and check their arguments (every bad value is a `UsageError`, exit 254, before
anything is started), build the test from them and hand it to jepsen/runcmd.py, jepsen/
analysis.py or jepsen/serve.py.

    run      [--nodes SPEC | --node X ... | --nodes-file F] [SSH options] --workload W
             --nemesis a,b|all|none --nemesis-interval S --concurrency N|Nn --rate R
             --time-limit S --test-count N --ops-per-key N --seed S
             [--unsafe-stale-reads] [--no-sessions] [--store DIR] [--db kvserver|memory]
    analyze  [PATH | -N]    re-check a stored run (-1, the default, is the latest)
    serve    [--port P]     browse the store at http://127.0.0.1:P/

With no nodes, `run` uses the local hosts n1..n5, making them first if needed (root).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path
from typing import Any

from jepsen import nodes as node_specs
from jepsen import schedule, store
from jepsen.core import TestConfig
from jepsen.db import DB
from jepsen.workloads import WORKLOADS

DB_KINDS = ("kvserver", "memory", "memory-stale")


class UsageError(Exception):
    """The command line cannot be acted on as given."""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def _positive_int(text: str) -> int:
    if not re.fullmatch(r"\d+", text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1: {text!r}")
    return int(text)


def parse_concurrency(text: str, node_count: int) -> int:
    """`10` is ten workers; `2n` is two per node."""
    match = re.fullmatch(r"(\d+)(n?)", text.strip())
    if match is None or int(match[1]) < 1:
        raise UsageError(f"--concurrency must be N or Nn (N per node), got {text!r}")
    return int(match[1]) * (node_count if match[2] else 1)


def add_run_parser(subcommands: Any) -> None:
    parser = subcommands.add_parser("run", help="run a test and check it")
    where = parser.add_argument_group("nodes (none given: the local hosts n1..n5)")
    where.add_argument("--nodes", action="append", default=[], metavar="SPEC",
                       help="n1..n5, or a,b,c (repeatable)")
    where.add_argument("--node", action="append", default=[], metavar="NAME",
                       help="one node (repeatable)")
    where.add_argument("--nodes-file", type=Path, help="one node spec per line")
    where.add_argument("--hosts-prefix", default="rkj",
                       help="local hosts: namespace prefix (as `hosts --prefix`)")
    where.add_argument("--hosts-subnet", default="10.77.0.0/24",
                       help="local hosts: subnet (as `hosts --subnet`)")
    where.add_argument("--hosts-state-dir", type=Path, default=None,
                       help="local hosts: state directory (as `hosts --state-dir`)")
    ssh = parser.add_argument_group("SSH (real hosts)")
    ssh.add_argument("--username", default="root")
    ssh.add_argument("--ssh-private-key", type=Path)
    ssh.add_argument("--ssh-port", type=int, default=22)
    ssh.add_argument("--strict-host-key-checking", action="store_true")
    test = parser.add_argument_group("test")
    test.add_argument("--workload", choices=sorted(WORKLOADS), default="register")
    test.add_argument("--nemesis", default="partition,kill",
                      help="comma list of faults or families, 'all' or 'none' "
                           "(default partition,kill)")
    test.add_argument("--nemesis-interval", type=_positive_float, default=10.0, metavar="S",
                      help="seconds between fault changes (default 10)")
    test.add_argument("--concurrency", default="2n", help="workers: N, or Nn per node (2n)")
    test.add_argument("--rate", type=_positive_float, default=50.0,
                      help="target operations per second, all workers together (50)")
    test.add_argument("--time-limit", type=_positive_float, default=60.0, metavar="S")
    test.add_argument("--test-count", type=_positive_int, default=1)
    test.add_argument("--ops-per-key", type=_positive_int, default=100)
    test.add_argument("--threads-per-key", type=_positive_int, default=None,
                      help="workers sharing one key (default: the node count)")
    test.add_argument("--seed", type=int, default=None, help="seed (default: random, printed)")
    test.add_argument("--unsafe-stale-reads", action="store_true",
                      help="negative control: read with consistency=stale")
    test.add_argument("--no-sessions", action="store_true",
                      help="negative control: sessions workload retries without sessions")
    test.add_argument("--recovery-timeout", type=_positive_float, default=60.0, metavar="S")
    test.add_argument("--name", help="test name (default: <workload>-<nemesis>)")
    test.add_argument("--store", type=Path, default=store.DEFAULT_STORE)
    test.add_argument("--db", choices=DB_KINDS, default="kvserver",
                      help="kvserver over SSH, or the harness's own in-memory fakes")
    test.add_argument("--no-progress", action="store_true")
    test.add_argument("--keep-cluster-files", action="store_true",
                      help="leave the nodes' test folders in place after teardown")


def add_analyze_parser(subcommands: Any) -> None:
    parser = subcommands.add_parser("analyze", help="re-check a stored run")
    parser.add_argument("run", nargs="?", default=None, metavar="PATH|-N",
                        help="a run folder, or -N for the Nth newest run (default -1)")
    parser.add_argument("--store", type=Path, default=store.DEFAULT_STORE)


def add_serve_parser(subcommands: Any) -> None:
    parser = subcommands.add_parser("serve", help="browse the store on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--store", type=Path, default=store.DEFAULT_STORE)


def resolve_run_nodes(args: argparse.Namespace) -> tuple[str, ...]:
    text = None
    if args.nodes_file is not None:
        try:
            text = args.nodes_file.read_text(encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot read --nodes-file {args.nodes_file}: {error}") from error
    try:
        return node_specs.resolve_nodes(args.nodes, args.node, text, str(args.nodes_file))
    except node_specs.NodeSpecError as error:
        raise UsageError(str(error)) from error


def build_config(args: argparse.Namespace, nodes: tuple[str, ...], seed: int) -> TestConfig:
    workload = WORKLOADS[args.workload]
    try:
        faults = schedule.parse_faults(args.nemesis, len(nodes))
    except schedule.FaultSpecError as error:
        raise UsageError(str(error)) from error
    for required in workload.required_faults:
        if required not in faults:
            if len(nodes) < 3:
                raise UsageError(f"the {workload.name} workload needs at least 3 nodes")
            faults = (*faults, required)
    if args.no_sessions and args.workload != "sessions":
        raise UsageError("--no-sessions only applies to --workload sessions")
    concurrency = parse_concurrency(args.concurrency, len(nodes))
    nemesis = ",".join(sorted({f for f in args.nemesis.split(",") if f.strip()})) or "none"
    name = args.name or f"{args.workload}-{nemesis}"
    if args.unsafe_stale_reads:
        name += "-stale-reads"
    if args.no_sessions:
        name += "-no-sessions"
    return TestConfig(
        name=store.safe_name(name), workload=args.workload, nodes=nodes, faults=faults,
        nemesis_spec=args.nemesis, nemesis_interval_s=args.nemesis_interval,
        concurrency=concurrency, rate=args.rate, time_limit_s=args.time_limit,
        ops_per_key=args.ops_per_key,
        threads_per_key=min(concurrency, args.threads_per_key or len(nodes)),
        seed=seed, unsafe_stale_reads=args.unsafe_stale_reads, no_sessions=args.no_sessions,
        recovery_timeout_s=args.recovery_timeout,
        db_kind="memory" if args.db.startswith("memory") else "kvserver",
        extra={"db": args.db, "keep_cluster_files": args.keep_cluster_files},
    )


def make_memory_db(kind: str, nodes: tuple[str, ...], seed: int) -> DB:
    from jepsen.memdb import MemoryDB  # noqa: PLC0415 - only the fakes need it

    return MemoryDB(nodes, seed, stale=kind == "memory-stale", flaky_probability=0.02)


def new_seed() -> int:
    return random.SystemRandom().randrange(1, 2**31)


def note(text: str) -> None:
    print(text, file=sys.stderr)
