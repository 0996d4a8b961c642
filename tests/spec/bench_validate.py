"""Benchmark: trace events validated per second, and TLC's work on MCraft.

Run from the repository root (not collected by pytest; a benchmark, not a test):

    .venv/bin/python tests/spec/bench_validate.py [--no-model]

For 3- and 5-node simulator traces cut to 1,000 and 10,000 events it times
`raftcore.validate.validate` end to end and subtracts the cost of starting the JVM and
TLC on an empty spec, giving events per second excluding JVM start. Then it model-checks
spec/MCraft.cfg and reports distinct states and time. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spec_support import SPEC_DIR, read_lines, write_lines, write_sim_trace

from raftcore.validate.tlc import run_tlc
from raftcore.validate.validator import Status, validate

EMPTY_SPEC = """---- MODULE Empty ----
EXTENDS Naturals
VARIABLE x
Init == x = 0
Next == x < 1 /\\ x' = x + 1
====
"""


def jvm_start_s(folder: Path) -> float:
    (folder / "Empty.tla").write_text(EMPTY_SPEC)
    (folder / "Empty.cfg").write_text("INIT Init\nNEXT Next\n")
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        run_tlc(folder, "Empty", "Empty.cfg")
        best = min(best, time.perf_counter() - start)
    return best


def trace_of(folder: Path, nodes: int, events: int) -> Path:
    """A simulator trace of `nodes` nodes cut to its first `events` events."""
    seed, ticks = 1000 + nodes, 400
    while True:
        path = folder / f"world-{nodes}-{ticks}.ndjson"
        write_sim_trace(path, seed, nodes=nodes, ticks=ticks)
        records = read_lines(path)
        if len(records) - 1 >= events:
            cut = folder / f"trace-{nodes}-{events}.ndjson"
            write_lines(cut, records[: events + 1])
            return cut
        ticks *= 2


def bench_traces(folder: Path, jvm_s: float) -> list[str]:
    rows = []
    for nodes in (3, 5):
        for events in (1_000, 10_000):
            path = trace_of(folder, nodes, events)
            best = float("inf")
            for _ in range(2):
                start = time.perf_counter()
                verdict = validate([path])
                best = min(best, time.perf_counter() - start)
                assert verdict.status is Status.ACCEPTED, verdict.reason
            rate = events / max(best - jvm_s, 1e-9)
            rows.append(f"| {nodes} | {events:,} | {best:.2f} | {rate:,.0f} |")
    return rows


def bench_model(folder: Path) -> str:
    for source in SPEC_DIR.glob("*.tla"):
        shutil.copyfile(source, folder / source.name)
    shutil.copyfile(SPEC_DIR / "MCraft.cfg", folder / "MCraft.cfg")
    start = time.perf_counter()
    result = run_tlc(folder, "MCraft", "MCraft.cfg")
    elapsed = time.perf_counter() - start
    return (f"MCraft.cfg: {result.describe()}, {result.distinct_states:,} distinct states "
            f"({result.generated_states:,} generated), depth {result.depth}, {elapsed:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-model", action="store_true", help="skip model checking MCraft")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        jvm_s = jvm_start_s(folder)
        print(f"JVM + TLC start on an empty spec: {jvm_s:.2f} s")
        print("| nodes | events | validate (s) | events/s excluding JVM start |")
        print("| --- | --- | --- | --- |")
        for row in bench_traces(folder, jvm_s):
            print(row)
        if not args.no_model:
            model = folder / "model"
            model.mkdir()
            print(bench_model(model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
