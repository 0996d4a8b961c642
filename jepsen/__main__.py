"""Command line of the harness: `python -m jepsen run | analyze | serve | hosts`.

`run`, `analyze` and `serve` are parsed in jepsen/cli.py; `hosts up|down|status` here.

Exit codes, as Jepsen's: 0 success (for `run`: valid), 1 invalid, 2 unknown, 254 the
command cannot run as given (bad arguments, or missing root or tools, with a message that
says how to proceed), 255 internal error.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from jepsen import cli, hosts, runcmd, store
from jepsen.cli import UsageError
from jepsen.core import TestConfig
from jepsen.db import DB

EXIT_OK = 0
EXIT_BAD_ARGUMENTS = 254
EXIT_INTERNAL_ERROR = 255


# Errors that mean "this command cannot run as given here"; each message says how to proceed.
_CANNOT_RUN_AS_GIVEN = (
    hosts.BadConfig,
    hosts.AlreadyUp,
    hosts.NotRoot,
    hosts.MissingTool,
    hosts.SubnetInUse,
    UsageError,
    store.StoreError,
)


class _Parser(argparse.ArgumentParser):
    """argparse, exiting with 254 instead of 2 on a bad command line."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_ARGUMENTS, f"{self.prog}: error: {message}\n")


def _add_hosts_parser(subcommands: argparse._SubParsersAction[_Parser]) -> None:
    parser = subcommands.add_parser(
        "hosts",
        help="local hosts n1..nN as network namespaces with their own sshd (needs root)",
    )
    parser.add_argument(
        "--state-dir", type=Path, default=None,
        help=f"where keys, sshd configs and the host map live (default {hosts.DEFAULT_STATE_DIR}"
        f", or ${hosts.STATE_DIR_ENV})",
    )
    parser.add_argument("--prefix", default="rkj", help="name prefix of namespaces and links")
    parser.add_argument("--subnet", default="10.77.0.0/24", help="private IPv4 subnet")
    actions = parser.add_subparsers(dest="action", required=True, parser_class=_Parser)
    up_parser = actions.add_parser("up", help="make the hosts (idempotent)")
    up_parser.add_argument("--count", type=int, default=5, help="number of hosts (default 5)")
    actions.add_parser("down", help="remove every trace of the hosts (idempotent)")
    status_parser = actions.add_parser("status", help="list the hosts and their health")
    status_parser.add_argument("--json", action="store_true", help="print JSON")


def build_parser() -> _Parser:
    parser = _Parser(
        prog="python -m jepsen",
        description="Jepsen-style test harness for the raftkv cluster.",
    )
    subcommands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    cli.add_run_parser(subcommands)
    cli.add_analyze_parser(subcommands)
    cli.add_serve_parser(subcommands)
    _add_hosts_parser(subcommands)
    return parser


def _hosts_config(args: argparse.Namespace) -> hosts.HostsConfig:
    overrides: dict[str, object] = {"prefix": args.prefix, "subnet": args.subnet}
    if args.state_dir is not None:
        overrides["state_dir"] = args.state_dir.resolve()
    return hosts.config_from_env(**overrides)


def _print_status(config: hosts.HostsConfig, as_json: bool) -> int:
    state = hosts.load_state(config)
    if state is None:
        leftovers = hosts.existing_namespaces(config)
        message = "no local hosts are up"
        if leftovers:
            message += f" (leftover namespaces {', '.join(leftovers)}: run `hosts down`)"
        print(json.dumps({"hosts": [], "leftovers": leftovers}) if as_json else message)
        return EXIT_OK
    statuses = hosts.host_statuses(config, state)
    if as_json:
        rows = [
            {"name": s.host.name, "address": s.host.address, "namespace": s.host.namespace,
             "sshd_pid": s.sshd_pid, "ok": s.ok}
            for s in statuses
        ]
        print(json.dumps({"control_address": state.control_address, "hosts": rows}))
    else:
        print(f"control node {state.control_address}, state in {state.state_dir}")
        for s in statuses:
            health = "up" if s.ok else "DOWN"
            print(f"{s.host.name:<4} {s.host.address:<15} {s.host.namespace:<10} "
                  f"sshd pid {s.sshd_pid or '-':<8} {health}")
    return EXIT_OK if all(s.ok for s in statuses) else 1


def _run_hosts(args: argparse.Namespace) -> int:
    config = _hosts_config(args)
    if args.action == "up":
        state, made = hosts.up(config, args.count)
        verb = "made" if made else "already up:"
        print(f"{verb} {len(state.hosts)} local hosts "
              f"({', '.join(f'{h.name}={h.address}' for h in state.hosts)}); "
              f"SSH key {state.private_key_path}")
        return EXIT_OK
    if args.action == "down":
        removed = hosts.down(config)
        print("removed " + ", ".join(removed) if removed else "no local hosts to remove")
        return EXIT_OK
    hosts.require_root("status")
    return _print_status(config, args.json)


def _run(args: argparse.Namespace) -> int:
    nodes = cli.resolve_run_nodes(args)
    seed = args.seed if args.seed is not None else cli.new_seed()
    if args.db.startswith("memory"):
        nodes = nodes or ("n1", "n2", "n3", "n4", "n5")
        config = cli.build_config(args, nodes, seed)

        def make_db(test: TestConfig, count: int) -> DB:
            return cli.make_memory_db(args.db, test.nodes, seed + count)
    else:
        from jepsen import kvdb  # noqa: PLC0415 - SSH and wheels only for real runs

        target = kvdb.target_from_args(args, nodes)
        config = cli.build_config(args, target.nodes, seed)

        def make_db(test: TestConfig, count: int) -> DB:
            return kvdb.KvDB(target, test, run_number=count)
    cli.note(f"test {config.name}: {config.workload} on {', '.join(config.nodes)}, nemesis "
             f"{config.nemesis_spec}, {config.time_limit_s:g} s, seed {seed}")
    codes = []
    for count in range(args.test_count):
        if count:
            config = cli.build_config(args, config.nodes, seed + count)
        result = runcmd.execute(config, make_db(config, count), args.store,
                                show_progress=not args.no_progress)
        codes.append(result.exit_code)
    return max(codes, key=lambda code: {0: 0, 2: 1, 1: 2}.get(code, 3))


def _analyze(args: argparse.Namespace) -> int:
    from jepsen import analysis  # noqa: PLC0415 - matplotlib only when needed

    run_dir = store.resolve_run(args.store, args.run)
    try:
        results = analysis.analyze(run_dir)
    except analysis.AnalysisError as error:
        raise UsageError(str(error)) from error
    runcmd.print_verdict(sys.stdout, run_dir, results, None)
    return runcmd.exit_code_of(results["valid"])


def _serve(args: argparse.Namespace) -> int:
    from jepsen import serve  # noqa: PLC0415

    return serve.serve_forever(args.store, args.port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "hosts":
            return _run_hosts(args)
        if args.command == "run":
            return _run(args)
        if args.command == "analyze":
            return _analyze(args)
        if args.command == "serve":
            return _serve(args)
        raise UsageError(f"unknown command {args.command!r}")
    except _CANNOT_RUN_AS_GIVEN as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    except hosts.HostsError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    except Exception:
        traceback.print_exc()
        print("error: internal error (traceback above)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
