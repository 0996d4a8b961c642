"""Analysis of a stored run: every check, the reports and plots, results.json.

Role: what `run` does after the history is on disk, and all that `analyze` does. It reads
only the run folder (test.json, history.jsonl, the node folders), so re-checking a stored
run gives the same verdicts as the run itself did.

results.json:

    {"valid": true | false | "unknown",           merged over the checks below
     "checks": {"linearizable": {"valid": ..., ...}, "exactly-once": {...},
                "liveness": {...}, "stats": {...}, "trace": {...}},
     "workload": ..., "test": ..., "analyzed_at": ..., "files": {...}}

Trace validation: the node traces (<node>/trace.jsonl.gz) are merged and validated with
`raftcore.validate` when that module exists; when it does not, or the run has no traces
(the in-memory DB), the check says so and counts as unknown (real runs) or is left out
(in-memory runs, which have no Raft at all).
"""

from __future__ import annotations

import gzip
import importlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from jepsen import checks, plots, store
from jepsen.history import Op, read_jsonl
from jepsen.pages import render_run_page
from jepsen.timeline import render_timeline
from jepsen.workloads import WORKLOADS

TRACE_FILE = "trace.jsonl"


class AnalysisError(Exception):
    """A stored run cannot be analysed (missing or corrupt files); names the file."""


def load_run(run_dir: Path) -> tuple[dict[str, Any], list[Op]]:
    config_path = run_dir / store.TEST
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise AnalysisError(f"{config_path}: cannot read the test definition: {error}") from error
    if not isinstance(config, dict) or config.get("workload") not in WORKLOADS:
        raise AnalysisError(f"{config_path}: not a test definition of a known workload")
    try:
        _, ops = read_jsonl(run_dir / store.HISTORY)
    except ValueError as error:
        raise AnalysisError(str(error)) from error
    return config, ops


def validate_traces(run_dir: Path, nodes: list[str]) -> dict[str, Any]:
    """The trace check: merged node traces against the spec, via raftcore.validate."""
    present = [path for node in nodes for path in (run_dir / node / TRACE_FILE,
                                                   run_dir / node / f"{TRACE_FILE}.gz")
               if path.is_file() and path.stat().st_size > 0]
    if not present:
        return {"valid": checks.UNKNOWN, "reason": "no node traces were collected"}
    try:
        validate = importlib.import_module("raftcore.validate")
    except ImportError:
        return {"valid": checks.UNKNOWN, "reason": "validator missing: raftcore.validate is "
                "not available in this installation", "traces": len(present)}
    entry = getattr(validate, "validate_node_traces", None)
    if entry is None:
        return {"valid": checks.UNKNOWN, "reason": "validator missing: raftcore.validate has "
                "no validate_node_traces", "traces": len(present)}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="traces-") as scratch:
        plain = []
        for path in present:
            if path.suffix != ".gz":
                plain.append(path)
                continue
            target = Path(scratch) / f"{path.parent.name}-{TRACE_FILE}"
            with gzip.open(path, "rb") as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink)
            plain.append(target)
        outcome = entry(plain)
    verdict = getattr(outcome, "valid", outcome)
    valid: checks.Valid = verdict if isinstance(verdict, bool) else checks.UNKNOWN
    return {"valid": valid, "detail": str(outcome)[:2000],
            "elapsed_s": round(time.monotonic() - started, 3)}


def analyze(run_dir: Path, checker_timeout_s: float | None = 300.0) -> dict[str, Any]:
    """Check a stored run and write results.json and the reports beside its history."""
    config, ops = load_run(run_dir)
    workload = WORKLOADS[config["workload"]]
    nodes = [str(n) for n in config.get("nodes", [])]
    results: dict[str, Any] = {}
    for name in workload.checks:
        if name == "linearizable":
            results[name] = checks.check_linearizable(
                ops, workload.model, run_dir / "linearizability.html", checker_timeout_s)
        elif name == "exactly-once":
            results[name] = checks.check_exactly_once(ops)
        elif name == "liveness":
            results[name] = checks.check_liveness(ops, nodes)
        elif name == "stats":
            results[name] = checks.check_stats(ops)
    if config.get("db_kind", "kvserver") != "memory":
        results["trace"] = validate_traces(run_dir, nodes)
    valid = checks.merge_valid([check["valid"] for check in results.values()])
    title = f"{config.get('name', run_dir.parent.name)} {run_dir.name}"
    (run_dir / "timeline.html").write_text(render_timeline(ops, title), encoding="utf-8")
    images = plots.plot_all(ops, run_dir, title)
    document = {
        "valid": valid,
        "test": config.get("name"),
        "workload": config["workload"],
        "checks": results,
        "analyzed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "files": {"history": store.HISTORY, "timeline": "timeline.html", "plots": images},
    }
    (run_dir / store.RESULTS).write_text(json.dumps(document, indent=2, default=str) + "\n",
                                         encoding="utf-8")
    (run_dir / "index.html").write_text(render_run_page(run_dir, config, document, ""),
                                        encoding="utf-8")
    return document
