"""Run every benchmark: `python -m bench [NAME ...] [--skip NAME ...] [--list]`.

Role: the entry point of `tox -e bench`. A benchmark is a module `bench/<name>.py` whose
name has no underscore (bench.kvserver, bench.checker, ...); modules named
`<name>_<part>.py` are parts of one (bench/kvserver_load.py) and are not run on their own.
Each benchmark runs in its own process as `python -m bench.<name>` with its defaults, one
after the other, so one benchmark's load never overlaps another's. Names given (or
`--only`) choose which run; `--skip` leaves some out.

Exit status: 0 when every benchmark run exited 0, else 1 (the failing ones are named).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent


def benchmarks() -> list[str]:
    """The benchmark modules present, by name, in alphabetical order."""
    return sorted(
        path.stem for path in HERE.glob("*.py")
        if not path.stem.startswith("_") and "_" not in path.stem
    )


def main(argv: Sequence[str] | None = None) -> int:
    present = benchmarks()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="run only these benchmarks")
    parser.add_argument("--skip", action="append", default=[], metavar="NAME",
                        help="do not run this benchmark (repeatable)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only these benchmarks (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    args.only += args.names
    unknown = sorted(set(args.skip + args.only) - set(present))
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)} (present: {', '.join(present)})")
    if args.list:
        print("\n".join(present))
        return 0
    chosen = [n for n in present if (not args.only or n in args.only) and n not in args.skip]
    failed = []
    for name in chosen:
        print(f"==== bench.{name}", flush=True)
        started = time.monotonic()
        code = subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode
        print(f"==== bench.{name}: exit {code} after {time.monotonic() - started:.0f} s",
              flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
