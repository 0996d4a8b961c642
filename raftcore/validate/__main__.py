"""`python -m raftcore.validate TRACE.ndjson [MORE.ndjson ...]`: validate traces with TLC.

Prints ACCEPTED, or REJECTED with the first event the spec could not take (where it is
in which file, the action, its parameters) and which logged values disagree with the
spec; exit code 0 accepted, 1 rejected, 2 error (bad input, Java or TLC missing, a TLC
error: never read as a pass).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from raftcore.validate.tlc import TlcUnavailable
from raftcore.validate.validator import Options, default_spec_dir, render, validate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m raftcore.validate",
        description="Check raftcore traces against spec/raft.tla with TLC.",
    )
    parser.add_argument("traces", nargs="+", type=Path,
                        help="one global trace, or one trace per node (merged)")
    parser.add_argument("--spec-dir", type=Path, default=default_spec_dir(),
                        help="folder holding raft.tla and Traceraft.tla/.cfg")
    parser.add_argument("--session-timeout-ticks", type=int, default=None,
                        help="the state machine's session timeout (node traces have no header)")
    parser.add_argument("--lease-reads", action="store_true", default=None,
                        help="the nodes ran with --lease-reads")
    parser.add_argument("--keep", type=Path, default=None,
                        help="write the TLC inputs to this folder and keep them")
    parser.add_argument("--timeout", type=float, default=None,
                        help="give up on TLC after this many seconds (an error)")
    parser.add_argument("--no-diagnose", action="store_true",
                        help="skip the second TLC run that explains a rejection")
    return parser  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = Options(
        spec_dir=args.spec_dir,
        session_timeout_ticks=args.session_timeout_ticks,
        lease_reads=args.lease_reads,
        timeout_s=args.timeout,
        diagnose=not args.no_diagnose,
        keep_dir=args.keep,
    )
    try:
        verdict = validate(args.traces, options)
    except TlcUnavailable as exc:
        print(f"ERROR: {exc}")
        return 2
    print(render(verdict))
    return verdict.exit_code


if __name__ == "__main__":
    sys.exit(main())
