"""One stored run from start to verdict: store folder, log, history, run, teardown, check.

Role: the glue `python -m jepsen run` calls for each of its `--test-count` runs; tests
call it with the in-memory DB. Order matters and is Jepsen's: the history is written to
disk as it happens and closed before any check runs; the DB is torn down (after its logs
and traces are collected) whatever happened; then the stored run is analysed exactly as
`analyze` would.

Exit codes: 0 valid, 1 invalid, 2 unknown; a run the harness could not carry out (setup
failed, an internal error) is 255 with its traceback in jepsen.log. The last lines printed
say the verdict and where the results are.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from jepsen import analysis, store
from jepsen.core import RunState, SetupFailed, TestConfig, run_test
from jepsen.db import DB, DBError
from jepsen.history import History
from jepsen.pages import valid_text
from jepsen.progress import Progress
from jepsen.remote import RemoteError
from jepsen.wheels import WheelBuildError
from jepsen.workloads import WORKLOADS

EXIT_VALID, EXIT_INVALID, EXIT_UNKNOWN, EXIT_INTERNAL = 0, 1, 2, 255
log = logging.getLogger("jepsen")


@dataclass(frozen=True, slots=True)
class RunResult:
    exit_code: int
    run_dir: Path
    results: dict[str, Any] | None
    error: str | None = None


def exit_code_of(valid: Any) -> int:
    if valid is True:
        return EXIT_VALID
    if valid is False:
        return EXIT_INVALID
    return EXIT_UNKNOWN


def _attach_log(run_dir: Path, console: bool) -> list[logging.Handler]:
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: "
                                  "%(message)s")
    file_handler = logging.FileHandler(run_dir / "jepsen.log", encoding="utf-8")
    file_handler.setFormatter(formatter)
    handlers: list[logging.Handler] = [file_handler]
    if console:
        stream_handler = logging.StreamHandler(sys.stderr)
        stream_handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        stream_handler.setLevel(logging.WARNING)
        handlers.append(stream_handler)
    log.setLevel(logging.INFO)
    for handler in handlers:
        log.addHandler(handler)
    return handlers


def _teardown(db: DB, run_dir: Path, state: RunState) -> None:
    state.phase = "teardown"
    try:
        db.collect(run_dir)
    except Exception:
        log.exception("collecting node logs and traces failed")
    try:
        db.teardown()
    except Exception:
        log.exception("teardown failed")


def execute(config: TestConfig, db: DB, store_root: Path, *, show_progress: bool = True,
            out: TextIO | None = None) -> RunResult:
    """Run one test against `db`, store it, check it, print the verdict."""
    out = out or sys.stdout
    run_dir = store.new_run_dir(store_root, config.name)
    (run_dir / store.TEST).write_text(json.dumps(config.to_json(), indent=2) + "\n",
                                      encoding="utf-8")
    handlers = _attach_log(run_dir, console=show_progress)
    workload = WORKLOADS[config.workload]
    history = History({"model": workload.model, "test": config.name,
                       "workload": config.workload, "time_unit": "ns"})
    history.open_files(run_dir / store.HISTORY, run_dir / "history.txt")
    state = RunState()
    progress = Progress(state) if show_progress else None
    error: str | None = None
    try:
        if progress is not None:
            progress.start()
        log.info("test %s: %s, nodes %s, nemesis %s, seed %d", config.name,
                 workload.description(), ",".join(config.nodes), config.nemesis_spec,
                 config.seed)
        run_test(config, db, history, state)
    except (SetupFailed, DBError, RemoteError, WheelBuildError) as failure:
        # Operating errors: an unreachable host, a refused login, a node that would not
        # start, a wheel that would not build. The message names the host and the cause.
        error = f"{state.phase} failed: {failure}"
        log.error("%s", error)
    except Exception:
        error = "internal error: " + traceback.format_exc(limit=8).strip().splitlines()[-1]
        log.exception("the run stopped on an internal error")
    finally:
        _teardown(db, run_dir, state)
        history.close()
        if progress is not None:
            progress.stop()
    results: dict[str, Any] | None = None
    try:
        state.phase = "check"
        results = analysis.analyze(run_dir)
    except Exception:
        log.exception("checking the run failed")
        error = error or "internal error while checking (see jepsen.log)"
    finally:
        for handler in handlers:
            log.removeHandler(handler)
            handler.close()
    code = EXIT_INTERNAL if error is not None else exit_code_of(results and results["valid"])
    print_verdict(out, run_dir, results, error)
    return RunResult(code, run_dir, results, error)


def print_verdict(out: TextIO, run_dir: Path, results: dict[str, Any] | None,
                   error: str | None) -> None:
    if results is not None:
        for name, check in results.get("checks", {}).items():
            out.write(f"  {name:<13} {valid_text(check.get('valid'))}"
                      f"{'  ' + str(check['reason']) if check.get('reason') else ''}\n")
    if error is not None:
        out.write(f"The run did not complete: {error}\n")
    valid = None if results is None else results.get("valid")
    if valid is True:
        out.write("Everything looks good!\n")
    elif valid is False:
        out.write("Analysis invalid!\n")
    else:
        out.write("Errors occurred during analysis, but no anomalies found.\n"
                  if error is None else "")
    out.write(f"Verdict: {valid_text(valid)}\n")
    out.write(f"Results: {run_dir}/ (open {run_dir / 'index.html'})\n")
    out.flush()
