"""Trace validation end to end: trace files in, ACCEPTED / REJECTED / ERROR out.

Role: read the trace files, settle crashed incarnations (unless the caller did), merge
node traces by causality, count message deliveries, write TraceData.tla next to copies
of spec/raft.tla and spec/Traceraft.{tla,cfg} in a temporary folder, run TLC, and turn
its report into a `Verdict`. A rejection is followed by a diagnostic run that names the
values the spec disagrees with.

Theory of operation: Traceraft.tla takes one event per step, so TLC's search depth is the
number of events taken plus one. Depth Len + 1 with "Model checking completed" means
every event was taken (ACCEPTED); a smaller depth d means event d was the first the spec
could not take (REJECTED). Anything else TLC says is an ERROR, never a pass.

Speed: the first run is TLC's random simulation of one behaviour, which keeps no set of
seen states, so TLC neither normalises nor hashes the whole, growing spec state at every
event. When it prints Traceraft's `TraceComplete` it took every event, in a behaviour of
the spec (ACCEPTED). A run that stops early is repeated in breadth-first mode,
exhaustively, and only that run's depth rejects: every choice the trace does not log
stays existential.
"""

from __future__ import annotations

import enum
import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from raftcore.validate import tlagen, tlavalue
from raftcore.validate.merge import Settled, delivery_counts, merge, settle_traces
from raftcore.validate.tlc import Outcome, TlcResult, run_tlc
from raftcore.validate.traceio import (
    Event,
    Setup,
    TraceError,
    TraceFile,
    infer_setup,
    read_trace,
)

SPEC_FILES = ("raft.tla", "Traceraft.tla", "Traceraft.cfg")


def default_spec_dir() -> Path:
    """spec/ of the source tree this package lives in."""
    return Path(__file__).resolve().parents[2] / "spec"


class Status(enum.Enum):
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class Mismatch:
    field: str
    spec: object
    trace: object


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    events: int
    setup: Setup | None = None
    failed_index: int | None = None
    """1-based position in the merged trace of the first event the spec could not take."""
    failed_event: Event | None = None
    mismatches: tuple[Mismatch, ...] = ()
    reason: str = ""
    tlc: TlcResult | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def exit_code(self) -> int:
        return {Status.ACCEPTED: 0, Status.REJECTED: 1, Status.ERROR: 2}[self.status]


@dataclass(frozen=True, slots=True)
class Options:
    spec_dir: Path = field(default_factory=default_spec_dir)
    session_timeout_ticks: int | None = None
    lease_reads: bool | None = None
    """Whether the nodes served lease reads (kvserver --lease-reads); None: from the
    simulator header, else off."""
    timeout_s: float | None = None
    diagnose: bool = True
    keep_dir: Path | None = None
    """Write the TLC inputs here (and keep them) instead of a temporary folder."""
    fast_run: bool = True
    """First run TLC's simulation of one behaviour (see the module docstring); False: only the
    exhaustive run (same verdicts, slower; for benchmarks and comparisons)."""


Traces = Sequence[Path | TraceFile] | Settled
"""What `prepare` and `validate` take: trace files, traces already read, or traces already
settled (`merge.settle_traces`, which a caller uses to count the events a crash lost)."""


def prepare(paths: Traces, options: Options) -> tuple[list[Event], list[int], Setup]:
    """Read (unless already read), settle (unless already settled), merge and annotate
    the traces; raises TraceError on bad input."""
    if not isinstance(paths, Settled):
        paths = settle_traces([p if isinstance(p, TraceFile) else read_trace(p) for p in paths])
    if not paths.traces:
        raise TraceError("no trace files given")
    events = merge(paths)
    setup = infer_setup(paths.traces, events, options.session_timeout_ticks,
                        options.lease_reads)  # fmt: skip
    return events, delivery_counts(events), setup


@dataclass(frozen=True, slots=True)
class Prepared:
    """One execution ready for TLC (see `prepare`), for `validate_batch`."""

    name: str
    events: list[Event]
    copies: list[int]
    setup: Setup


def validate_batch(items: Sequence[Prepared], options: Options | None = None) -> list[Verdict]:
    """Validate many executions with few TLC runs: those of one cluster setup share a
    run, joined by Reset events. A rejected one is reported (without the diagnostic run;
    validate it alone for that) and the run goes on with the ones after it."""
    options = options or Options()
    verdicts: dict[int, Verdict] = {}
    groups: dict[tuple[object, ...], list[int]] = {}
    for number, item in enumerate(items):
        s = item.setup
        key = (s.init_servers, s.pre_vote, s.lease_reads, s.session_timeout_ticks)
        groups.setdefault(key, []).append(number)
    with tempfile.TemporaryDirectory(prefix="raftcore-validate-") as folder:
        for members in groups.values():
            _run_group([items[n] for n in members], members, options, Path(folder), verdicts)
    return [verdicts[n] for n in range(len(items))]


def _run_group(
    group: list[Prepared], numbers: list[int], options: Options, folder: Path,
    verdicts: dict[int, Verdict],
) -> None:  # fmt: skip
    while group:
        servers = tuple(sorted({s for item in group for s in item.setup.servers}))
        setup = Setup(servers, *_setup_rest(group[0].setup))
        module = tlagen.batch_module([(g.events, g.copies) for g in group], setup)
        sizes = [len(g.events) for g in group]
        result = _tlc_exact(folder, options, module, sum(sizes) + len(sizes) - 1)
        if result.outcome is not Outcome.OK or result.depth is None:
            for item, number in zip(group, numbers, strict=True):
                verdicts[number] = Verdict(Status.ERROR, len(item.events), item.setup,
                                           reason=result.describe(), tlc=result)  # fmt: skip
            return
        taken = result.depth - 1  # events and Resets taken
        done = 0
        for position, size in enumerate(sizes):
            start = done + position  # Resets before this trace
            if taken >= start + size:
                verdicts[numbers[position]] = Verdict(
                    Status.ACCEPTED, size, group[position].setup, tlc=result
                )
                done += size
                continue
            local = taken - start + 1
            item = group[position]
            verdicts[numbers[position]] = Verdict(
                Status.REJECTED, size, item.setup, failed_index=local,
                failed_event=item.events[local - 1], tlc=result,
            )  # fmt: skip
            group, numbers = group[position + 1 :], numbers[position + 1 :]
            break
        else:
            return


def _setup_rest(setup: Setup) -> tuple[tuple[str, ...], bool, bool, int]:
    return (setup.init_servers, setup.pre_vote, setup.lease_reads, setup.session_timeout_ticks)


def validate(paths: Traces, options: Options | None = None) -> Verdict:
    """Validate the traces in `paths` (one global trace, or one trace per node; files,
    traces already read, or traces already settled)."""
    options = options or Options()
    try:
        events, copies, setup = prepare(paths, options)
    except TraceError as exc:
        return Verdict(Status.ERROR, 0, reason=str(exc))
    missing = [name for name in SPEC_FILES if not (options.spec_dir / name).is_file()]
    if missing:
        return Verdict(Status.ERROR, len(events), setup,
                       reason=f"spec files missing in {options.spec_dir}: {missing}")  # fmt: skip
    if options.keep_dir is not None:
        options.keep_dir.mkdir(parents=True, exist_ok=True)
        return _run(events, copies, setup, options, options.keep_dir)
    with tempfile.TemporaryDirectory(prefix="raftcore-validate-") as folder:
        return _run(events, copies, setup, options, Path(folder))


def _run(
    events: list[Event], copies: list[int], setup: Setup, options: Options, folder: Path
) -> Verdict:
    try:
        module = tlagen.trace_module(events, copies, setup)
    except TraceError as exc:
        return Verdict(Status.ERROR, len(events), setup, reason=str(exc))
    result = _tlc_exact(folder, options, module, len(events))
    verdict = _classify(events, setup, result)
    if verdict.status is Status.REJECTED and options.diagnose:
        assert verdict.failed_index is not None
        diag_module = tlagen.trace_module(events, copies, setup, verdict.failed_index)
        diag = _tlc(folder, options, diag_module, tlagen_cfg(options, diag=True))
        verdict = _diagnose(verdict, diag)
    return verdict


def tlagen_cfg(options: Options, *, diag: bool) -> str:
    text = (options.spec_dir / "Traceraft.cfg").read_text(encoding="utf-8")
    return text + ("\nCONSTRAINTS\n    DiagBefore\n    DiagAfter\n" if diag else "")


TRACE_COMPLETE = '"trace complete: every event taken"'
"""What Traceraft.tla's TraceComplete prints when the last event is taken."""


def _tlc_exact(folder: Path, options: Options, module: str, steps: int) -> TlcResult:
    """TLC over `module` (`steps` events and Resets): the fast simulation run, and when it
    does not take every event, the exhaustive run, whose result counts."""
    cfg = tlagen_cfg(options, diag=False)
    if options.fast_run:
        fast = _tlc(folder, options, module, cfg, simulate_depth=steps + 2)
        if fast.outcome is not Outcome.OK:
            return fast
        if TRACE_COMPLETE in fast.output:
            return replace(fast, depth=steps + 1)
    return _tlc(folder, options, module, cfg)


def _tlc(
    folder: Path, options: Options, module: str, cfg: str, simulate_depth: int | None = None
) -> TlcResult:
    """One TLC run; `simulate_depth`: TLC's random simulation of one behaviour of at most
    that many states (seeded, so runs repeat) instead of breadth-first search."""
    for name in ("raft.tla", "Traceraft.tla"):
        shutil.copyfile(options.spec_dir / name, folder / name)
    (folder / "TraceData.tla").write_text(module, encoding="utf-8")
    (folder / "Traceraft.cfg").write_text(cfg, encoding="utf-8")
    # -checkpoint 0: no checkpoints (a validation run is never resumed).
    extra: tuple[str, ...] = ("-checkpoint", "0")
    if simulate_depth is not None:
        extra += ("-depth", str(simulate_depth), "-seed", "1")
    return run_tlc(folder, "Traceraft", "Traceraft.cfg", extra_args=extra,
                   timeout_s=options.timeout_s,
                   simulate=None if simulate_depth is None else "num=1",
                   quick_jit=True)  # fmt: skip


def _classify(events: list[Event], setup: Setup, result: TlcResult) -> Verdict:
    total = len(events)
    if result.outcome is not Outcome.OK or result.depth is None:
        return Verdict(Status.ERROR, total, setup, reason=result.describe(), tlc=result,
                       notes=setup.notes)  # fmt: skip
    if result.depth == total + 1:
        return Verdict(Status.ACCEPTED, total, setup, tlc=result, notes=setup.notes)
    if not 1 <= result.depth <= total:
        return Verdict(Status.ERROR, total, setup, tlc=result,
                       reason=f"TLC reached depth {result.depth} of {total + 1}")  # fmt: skip
    failed = events[result.depth - 1]
    return Verdict(Status.REJECTED, total, setup, failed_index=result.depth,
                   failed_event=failed, tlc=result, notes=setup.notes)  # fmt: skip


def render(verdict: Verdict) -> str:
    """The human-readable report."""
    lines = [f"{verdict.status.value}: {verdict.events} events"]
    tlc = verdict.tlc
    states = None if tlc is None else (tlc.distinct_states or tlc.depth)
    if states is not None:
        lines[0] += f" ({states} spec states)"
    if verdict.status is Status.ERROR:
        lines.append(f"  error: {verdict.reason}")
    event = verdict.failed_event
    if event is not None:
        lines.append(f"  first event the spec cannot take: #{verdict.failed_index} "
                     f"at {event.where()}")  # fmt: skip
        lines.append(f"  action: {event.name} by {event.node}")
        params = json.dumps(dict(event.params), sort_keys=True, separators=(",", ":"))
        lines.append(f"  params: {params}")
        if verdict.reason:
            lines.append(f"  why: {verdict.reason}")
        for mismatch in verdict.mismatches:
            lines.append(f"  disagrees: {mismatch.field}: spec {mismatch.spec!r}, "
                         f"trace {mismatch.trace!r}")  # fmt: skip
    lines += [f"  note: {note}" for note in verdict.notes]
    return "\n".join(lines)


def _diagnose(verdict: Verdict, diag: TlcResult) -> Verdict:
    event = verdict.failed_event
    assert event is not None
    try:
        before = tlavalue.printed_tuples(diag.output, "diag-before")
        sent = tlavalue.printed_tuples(diag.output, "diag-sent")
        after = tlavalue.printed_tuples(diag.output, "diag-after")
    except ValueError as exc:
        return _with(verdict, reason=f"(diagnostics unreadable: {exc})")
    mismatches = _message_mismatches(event, sent[0][1] if sent else None)
    if after:
        node_image, sm_image = after[0][2], after[0][3]
        spec_image = sm_image if event.name == "ApplyEntry" else node_image
        assert isinstance(spec_image, dict)
        mismatches += compare_images(spec_image, event.state)
        return _with(
            verdict,
            mismatches=tuple(mismatches),
            reason="the action can be taken, but what it sends or the state after it "
            "differs from the spec's",
        )
    reason = "the spec cannot take this action here (a precondition fails in the spec state)"
    if before and before[0][3] is False:
        reason = "the message it handles is not in the spec's network (never sent, or " \
            "already received as many times as it was sent)"
    if before and isinstance(before[0][2], dict):
        shown = ", ".join(f"{k}={v}" for k, v in sorted(before[0][2].items()))
        reason += f"; spec state of {event.node} before it: {shown}"
    return _with(verdict, reason=reason, mismatches=tuple(mismatches))


def _message_mismatches(event: Event, spec_sent: object) -> list[Mismatch]:
    """Fields of the logged sent message (or reply) that differ from the spec's."""
    logged = event.reply() if "reply" in event.params else event.params
    if logged is None or not isinstance(spec_sent, list):
        return []
    if not spec_sent:
        return [Mismatch("message", "(none sent)", dict(logged))]
    spec = spec_sent[0]
    if not isinstance(spec, dict):
        return []
    out = []
    for name, value in sorted(spec.items()):
        if name == "entries" and isinstance(value, list):
            mine = [[e["term"], e["kind"], e["ctime"], e["target"]] for e in value
                    if isinstance(e, dict)]  # fmt: skip
            if mine != logged.get("entries"):
                out.append(Mismatch("message.entries", mine, logged.get("entries")))
        elif name in logged and not isinstance(value, dict) and value != logged[name]:
            out.append(Mismatch(f"message.{name}", value, logged[name]))
    return out


def _with(verdict: Verdict, **changes: Any) -> Verdict:
    fields = {name: getattr(verdict, name) for name in Verdict.__slots__}
    fields.update(changes)
    return Verdict(**fields)


def compare_images(spec: Mapping[Any, Any], logged: Mapping[str, Any]) -> list[Mismatch]:
    """The logged fields whose values differ from the spec's image."""
    out: list[Mismatch] = []
    for name in sorted(logged):
        if name not in spec:
            if name in ("match_index", "transfer_target"):
                out.append(Mismatch(name, "(not a leader)", logged[name]))
            continue
        if _normal(spec[name]) != _normal(logged[name]):
            out.append(Mismatch(name, spec[name], logged[name]))
    for name in ("match_index", "transfer_target"):
        if name in spec and name not in logged:
            out.append(Mismatch(name, spec[name], "(not a leader)"))
    return out


def _normal(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return {} if not value else [_normal(v) for v in value]
    return value
