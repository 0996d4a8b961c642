"""Helpers of the spec tests: TLC availability, simulator traces on disk, trace editing.

Tests that run TLC skip cleanly, with the reason, when Java or the TLC jar is missing
(`tox -e model` installs default-jre-headless first through tests/system-deps.sh).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from raftcore.bugs import PlantedBug
from raftcore.sim.options import WorldOptions
from raftcore.sim.runner import RunResult, run
from raftcore.validate.tlc import tlc_missing

SPEC_DIR = Path(__file__).resolve().parents[2] / "spec"

REPORT: list[str] = []
"""Lines the spec tests want in the terminal summary (the action-coverage table)."""


TLC_MISSING = tlc_missing()
needs_tlc = pytest.mark.skipif(TLC_MISSING is not None, reason=f"TLC unavailable: {TLC_MISSING}")


def write_sim_trace(
    path: Path,
    seed: int,
    *,
    nodes: int | None = None,
    ticks: int = 300,
    bug: PlantedBug | None = None,
    scenario: str | None = None,
    options: WorldOptions | None = None,
) -> RunResult:
    """Run one simulated world in-process and write its global trace to `path`."""
    lines: list[str] = []
    result = run(
        seed, nodes, ticks, planted_bug=bug, trace=lines.append, scenario=scenario,
        options=options, check_history=False,
    )  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return result


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def write_lines(path: Path, records: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in records)
    path.write_text(text, encoding="utf-8")
