"""Analysis of a stored run: every check, the reports and plots, results.json.

Role: what `run` does after the history is on disk, and all that `analyze` does. It reads
only the run folder (test.json, history.jsonl, the node folders), so re-checking a stored
run gives the same verdicts as the run itself did.

results.json:

    {"valid": true | false | "unknown",           merged over the checks below
     "checks": {"linearizable": {"valid": ..., ...}, "exactly-once": {...},
                "liveness": {...}, "stats": {...}, "trace": {...}},
     "workload": ..., "test": ..., "analyzed_at": ..., "files": {...}}

Trace validation: the node traces (<node>/trace.jsonl.gz) are merged and validated against
spec/raft.tla with `raftcore.validate.validate_node_traces`; the check records the status,
events per node, the events a crash lost, the elapsed time, and for a rejection the first
event the spec cannot take and why. It counts like the other checks: false when the spec
rejects the traces, unknown for a validator error (Java missing, malformed traces, no
traces), and unknown when the first event the spec rejects is the Restart of a node whose
durable data the nemesis destroyed (a WAL tail truncated or corrupted, a member's data
wiped when it was added back; the reason names the fault, and nothing after that Restart
is checked). In-memory runs (no Raft at all) have no trace check.
"""

from __future__ import annotations

import importlib
import json
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


WAL_FAULT = "start-wal"
"""The nemesis step that truncates or corrupts a node's WAL tail: it destroys fsynced data,
a fault outside Raft's model."""
MEMBER_ADD = "stop-membership"
"""The nemesis step that adds removed nodes back: each restarts with its data wiped under
its old id, which raft.tla has no action for (its servers never lose durable state)."""


def validate_traces(run_dir: Path, nodes: list[str], ops: list[Op] | None = None
                    ) -> dict[str, Any]:
    """The trace check: merged node traces against the spec, via
    raftcore.validate.validate_node_traces. True if the spec accepts them, false if it
    rejects them (the first rejected event and why are recorded), unknown for a validator
    error (Java missing, a malformed trace), and unknown with the fault named when the
    first rejected event is the Restart of a node whose durable data the nemesis
    destroyed (`data_faults`)."""
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
    names = {str(path): str(path.relative_to(run_dir)) for path in present}
    outcome = entry(present)  # reads .gz itself
    result = _trace_result(outcome, names)
    result.setdefault("elapsed_s", round(time.monotonic() - started, 3))
    rejected = result.get("first_rejected") or {}
    faults = data_faults(ops or []).get(str(rejected.get("node")), [])
    if result["valid"] is False and rejected.get("name") == "Restart" and faults:
        result["valid"] = checks.UNKNOWN
        result["why"] = result.get("reason", "")
        result["reason"] = (
            f"the spec rejects the Restart of {rejected['node']}, whose durable data the "
            f"nemesis destroyed ({'; '.join(faults)}), a fault outside Raft's model: the "
            "rejection (below) is expected, and the events after it are not checked")
    return result


def _trace_result(outcome: Any, names: dict[str, str]) -> dict[str, Any]:
    verdict = getattr(outcome, "valid", outcome)
    valid: checks.Valid = verdict if isinstance(verdict, bool) else checks.UNKNOWN
    summary = outcome.summary() if hasattr(outcome, "summary") else {}
    detail = str(outcome)
    for path, shown in names.items():
        detail = detail.replace(path, shown)
    text = json.dumps(summary, default=str)
    for path, shown in names.items():
        text = text.replace(json.dumps(path)[1:-1], shown)
    result: dict[str, Any] = {"valid": valid, **json.loads(text), "detail": detail[:4000]}
    if valid is checks.UNKNOWN and "reason" in result:
        result["reason"] = f"validator error: {result['reason']}"
    return result


def data_faults(ops: list[Op]) -> dict[str, list[str]]:
    """Per node, the nemesis steps of this run that destroyed its durable data: a WAL tail
    truncated or corrupted, or its data wiped when it was added back as a member."""
    out: dict[str, list[str]] = {}
    for op in ops:
        if op.is_client or op.type == "invoke" or op.f not in (WAL_FAULT, MEMBER_ADD):
            continue
        value = op.value if isinstance(op.value, dict) else {}
        if op.f == WAL_FAULT:
            done = str(value.get("wal", ""))
            if done and not done.startswith(("no WAL", "could not")):
                for node in value.get("killed", []):
                    out.setdefault(str(node), []).append(f"WAL fault: {done}")
        else:
            for node in value.get("added", []):
                out.setdefault(str(node), []).append("data wiped when added back as a member")
    return out


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
        results["trace"] = validate_traces(run_dir, nodes, ops)
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
