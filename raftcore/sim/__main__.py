"""Command line of the simulator: run one world (or a range of seeds), or the benchmark.

    python -m raftcore.sim --seed S --nodes 5 --ticks T [--trace FILE] [--bug NAME]
    python -m raftcore.sim --seed S --count K          (seeds S .. S+K-1)
    python -m raftcore.sim --bench                     (needs the repository's bench/)

Exit status: 0 when every run holds, 1 when an invariant is violated (the violated
invariant and the one command that reproduces it are printed), 2 on bad usage.

Rules: this module does the simulator's only I/O (printing, writing the trace file). CPU
timing for `--bench` lives in bench/raftcore_sim.py, imported lazily, because raftcore may
not import `time` (tests/raftcore/test_tidy.py).
"""

from __future__ import annotations

import argparse
import importlib
import random
import sys
from collections.abc import Sequence

from raftcore.bugs import PlantedBug
from raftcore.sim.runner import RunResult, run
from raftcore.sim.scenarios import SCENARIOS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m raftcore.sim", description="Deterministic Raft cluster simulator."
    )
    parser.add_argument("--seed", type=int, help="world seed (default: a random one)")
    parser.add_argument("--nodes", type=int, choices=(1, 3, 5, 7), help="initial voters")
    parser.add_argument("--ticks", type=int, default=2000, help="safety-phase ticks")
    parser.add_argument("--count", type=int, default=1, help="run seeds seed..seed+count-1")
    parser.add_argument("--trace", metavar="FILE", help="write the global NDJSON trace")
    parser.add_argument(
        "--bug",
        choices=[bug.value for bug in PlantedBug],
        help="plant a bug (negative control; the run should fail)",
    )
    parser.add_argument(
        "--scenario", choices=sorted(SCENARIOS), help="run a targeted fault schedule instead"
    )
    parser.add_argument("--bench", action="store_true", help="run the throughput benchmark")
    parser.add_argument("--quiet", action="store_true", help="print failures only")
    return parser


def _summary(result: RunResult) -> str:
    stats = result.stats
    return (
        f"seed={result.seed} nodes={result.nodes} ticks={stats['ticks']} "
        f"delivered={stats['delivered']} lost={stats['lost']} cut={stats['cut']} "
        f"duplicated={stats['duplicated']} commit_index={stats['commit_index']} "
        f"restarts={stats['restarts']} servers={stats['nodes_total']} "
        f"client_ops={stats['client_ops']} ok_ops={stats['client_ops_ok']} "
        f"linearizability={result.linearizability}"
        + (f" scenario={result.scenario} steps={result.steps}" if result.scenario else "")
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.bench:
        try:
            bench = importlib.import_module("bench.raftcore_sim")
        except ImportError:
            print("--bench needs the repository's bench/ directory on the path;", file=sys.stderr)
            print("run it from the repository root", file=sys.stderr)
            return 2
        code: int = bench.main([])
        return code
    if args.count < 1 or args.ticks < 0:
        print("--count must be >= 1 and --ticks >= 0", file=sys.stderr)
        return 2
    if args.trace and args.count != 1:
        print("--trace writes one world; use it with --count 1", file=sys.stderr)
        return 2
    # A fresh, unseeded Random draws the seed from the OS; the seed is printed with the run.
    seed = args.seed if args.seed is not None else random.Random().randrange(1 << 32)
    bug = PlantedBug(args.bug) if args.bug else None
    failed = 0
    for world_seed in range(seed, seed + args.count):
        result = _run_one(world_seed, args, bug)
        if result.ok:
            if not args.quiet:
                print(f"PASSED {_summary(result)}")
            continue
        failed += 1
        assert result.violation is not None
        print(f"FAILED {_summary(result)}")
        print(f"  invariant: {result.violation.invariant}")
        print(f"  detail: {result.violation.detail}")
        print(f"  at tick: {result.violation_tick}")
        print(f"  reproduce: {result.reproduce()}")
    return 1 if failed else 0


def _run_one(seed: int, args: argparse.Namespace, bug: PlantedBug | None) -> RunResult:
    if not args.trace:
        return run(seed, args.nodes, args.ticks, planted_bug=bug, scenario=args.scenario)
    with open(args.trace, "w", encoding="utf-8") as out:

        def write(line: str) -> None:
            out.write(line)
            out.write("\n")

        return run(
            seed, args.nodes, args.ticks, planted_bug=bug, trace=write, scenario=args.scenario
        )


if __name__ == "__main__":
    sys.exit(main())
