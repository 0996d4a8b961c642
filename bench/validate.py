"""Trace validation throughput: events per second of `python -m raftcore.validate`, and
TLC's work on the bounded model MCraft.

Run from the repository root:

    .venv/bin/python -m bench.validate [--sizes 1000,10000,100000] [--nodes 3,5]
                                       [--exhaustive-at 10000] [--no-model]

The traces come from the simulator under steady client load, shaped like a Jepsen run's
merged node traces: 8 clients that each keep a request in flight (30% reads), 1% message
loss, duplication and reordering, rare crashes, restarts and partitions, and compaction
every 10,000 applied entries (kvserver's default `--snapshot-entries`), so logs and
session tables grow as they do on real nodes. One long trace per cluster size is cut to
its first N events (a receive whose send is cut off does not exist then, so the cut is a
valid trace).

For each trace the benchmark runs `raftcore.validate.validate` end to end (reading,
merging, writing TraceData, TLC), and separately times the Python part (read, merge,
render the module), then reports events per second excluding the start of the JVM and
TLC on an empty spec, measured the same way, and excluding the validator's whole fixed
cost (the same, end to end, for the trace's first event alone: JVM, SANY parsing
raft.tla, TLC's start). `--exhaustive-at N` also validates the N-event traces with only
the breadth-first run (TLC fingerprinting the whole state at every event, as the
fallback that decides rejections does), the peer to compare with. Validation is timed
once per trace (the larger traces take minutes); the starts are the best of three.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from raftcore.sim import WorldOptions, run
from raftcore.sim.clients import ClientOptions
from raftcore.sim.network import NetworkOptions
from raftcore.validate import tlagen
from raftcore.validate.tlc import find_java, run_tlc
from raftcore.validate.validator import Options, Status, prepare, validate

SPEC_DIR = Path(__file__).resolve().parents[1] / "spec"
EMPTY_SPEC = """---- MODULE Empty ----
EXTENDS Naturals
VARIABLE x
Init == x = 0
Next == x < 1 /\\ x' = x + 1
====
"""


def trace_options(nodes: int) -> WorldOptions:
    return WorldOptions(
        seed=7,
        nodes=nodes,
        election_timeout_ticks=20,
        heartbeat_timeout_ticks=2,
        network=NetworkOptions(1, 3, loss=0.01, duplicate=0.01, reorder=0.01),
        clients=8,
        client=ClientOptions(
            keys=8, request_probability=0.9, timeout_ticks=60, read_fraction=0.3
        ),
        session_timeout_ticks=100_000,
        compact_every_entries=10_000,
        crash_probability=0.0005,
        restart_probability=0.1,
        partition_probability=0.002,
        heal_probability=0.05,
    )


def write_trace(folder: Path, nodes: int, events: int) -> Path:
    """The first `events` events of a steady-load simulator trace of `nodes` nodes."""
    ticks = max(100, events // (6 * nodes))
    while True:
        lines: list[str] = []
        run(7, nodes, ticks, options=trace_options(nodes), trace=lines.append,
            check_history=False)  # fmt: skip
        if len(lines) - 1 >= events:
            path = folder / f"trace-{nodes}-{events}.ndjson"
            path.write_text("\n".join(lines[: events + 1]) + "\n", encoding="utf-8")
            return path
        ticks = ticks * 3 // 2 + 1


def children_cpu_s() -> float:
    """CPU seconds (user + system) of the finished child processes: the JVMs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def jvm_start_s(folder: Path) -> float:
    (folder / "Empty.tla").write_text(EMPTY_SPEC)
    (folder / "Empty.cfg").write_text("INIT Init\nNEXT Next\n")
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        # The validator's first run: JVM flags and simulation mode (a breadth-first run
        # would also allocate TLC's fingerprint set, which that run does not).
        result = run_tlc(folder, "Empty", "Empty.cfg", quick_jit=True, simulate="num=1",
                         extra_args=("-depth", "3", "-seed", "1"))  # fmt: skip
        assert result.exit_code == 0, result.output[-2000:]
        best = min(best, time.perf_counter() - start)
    return best


def spec_start_s(folder: Path, nodes: int) -> float:
    """The validator's fixed cost: validating the first event of a trace, end to end."""
    path = write_trace(folder, nodes, 1)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        verdict = validate([path], Options())
        best = min(best, time.perf_counter() - start)
        assert verdict.status is Status.ACCEPTED, verdict.reason
    path.unlink()
    return best


def python_part_s(path: Path) -> float:
    start = time.perf_counter()
    events, copies, setup = prepare([path], Options())
    tlagen.trace_module(events, copies, setup)
    return time.perf_counter() - start


def _rate(events: int, seconds: float) -> str:
    """Events per second, or "-" when the time left is within the noise of the start."""
    return f"{events / seconds:,.0f}" if seconds > 0.05 else "-"


def bench_trace(
    path: Path, events: int, starts: tuple[float, float], *, exhaustive: bool
) -> dict[str, object]:
    jvm_s, spec_s = starts
    python_s = python_part_s(path)
    start, cpu_start = time.perf_counter(), children_cpu_s()
    verdict = validate([path], Options(fast_run=not exhaustive))
    total_s, tlc_cpu_s = time.perf_counter() - start, children_cpu_s() - cpu_start
    assert verdict.status is Status.ACCEPTED, verdict.reason
    assert verdict.tlc is not None
    return {
        "events": events, "size_mb": path.stat().st_size / 1e6, "total_s": total_s,
        "python_s": python_s, "rate": _rate(events, total_s - jvm_s),
        "marginal_rate": _rate(events, total_s - spec_s),
        "tlc_cpu_s": tlc_cpu_s, "states": verdict.tlc.generated_states,
    }  # fmt: skip


def bench_model(folder: Path) -> str:
    for source in SPEC_DIR.glob("*.tla"):
        shutil.copyfile(source, folder / source.name)
    shutil.copyfile(SPEC_DIR / "MCraft.cfg", folder / "MCraft.cfg")
    start = time.perf_counter()
    result = run_tlc(folder, "MCraft", "MCraft.cfg")
    elapsed = time.perf_counter() - start
    return (f"MCraft.cfg: {result.describe()}, {result.distinct_states or 0:,} distinct states "
            f"({result.generated_states or 0:,} generated), depth {result.depth}, "
            f"{elapsed:.0f} s")  # fmt: skip


def machine() -> str:
    java = subprocess.run([find_java(), "-version"], capture_output=True, text=True,
                          check=False).stderr.splitlines()  # fmt: skip
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    return (f"{platform.processor() or platform.machine()}, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, "
            f"{java[0] if java else 'java ?'}, load average {' '.join(load)}")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.validate", description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000",
                        help="trace lengths in events, comma-separated")
    parser.add_argument("--nodes", default="3,5", help="cluster sizes, comma-separated")
    parser.add_argument("--exhaustive-at", type=int, default=10_000, metavar="N",
                        help="also validate the N-event traces with the breadth-first "
                             "run alone (0: never)")
    parser.add_argument("--no-model", action="store_true", help="skip model checking MCraft")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"machine: {machine()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as name:
        folder = Path(name)
        jvm_s = jvm_start_s(folder)
        print(f"JVM + TLC start on an empty spec: {jvm_s:.2f} s", flush=True)
        print("| nodes | events | trace MB | mode | validate (s) | Python part (s) "
              "| TLC CPU (s) | TLC states | events/s excluding JVM start "
              "| events/s excluding the fixed cost |")  # fmt: skip
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
        for nodes in [int(n) for n in args.nodes.split(",")]:
            spec_s = spec_start_s(folder, nodes)
            print(f"fixed cost, {nodes} nodes (the first event alone, end to end): "
                  f"{spec_s:.2f} s", flush=True)  # fmt: skip
            for events in sizes:
                path = write_trace(folder, nodes, events)
                modes = [False] + ([True] if events == args.exhaustive_at else [])
                for exhaustive in modes:
                    row = bench_trace(path, events, (jvm_s, spec_s), exhaustive=exhaustive)
                    row.update(nodes=nodes, mode="exhaustive" if exhaustive else "fast")
                    rows.append(row)
                    print(f"| {nodes} | {events:,} | {row['size_mb']:.1f} | {row['mode']} "
                          f"| {row['total_s']:.1f} | {row['python_s']:.1f} "
                          f"| {row['tlc_cpu_s']:.1f} "
                          f"| {row['states'] or 0:,} | {row['rate']} "
                          f"| {row['marginal_rate']} |", flush=True)  # fmt: skip
                path.unlink()
        if not args.no_model:
            model = folder / "model"
            model.mkdir()
            print(bench_model(model), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
