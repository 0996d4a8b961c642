"""The raftcore benchmarks as one `python -m bench raftcore` entry: the core's per-step cost
(bench/raftcore_core.py), then the simulator's throughput (bench/raftcore_sim.py)."""

from __future__ import annotations

import sys

from bench import raftcore_core, raftcore_sim


def main() -> int:
    print("## core micro-benchmark (python -m bench.raftcore_core)", flush=True)
    raftcore_core.main()
    print("## simulator throughput (python -m bench.raftcore_sim)", flush=True)
    return raftcore_sim.main([])


if __name__ == "__main__":
    sys.exit(main())
