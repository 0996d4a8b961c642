"""Plots of a run with matplotlib: raw latency, latency quantiles, throughput.

Role: Jepsen's `checker/perf` for this harness. Each plot has time since the test started
on the x axis and shades the periods when a fault was active (from the nemesis events in
the history), labelled with the fault, so a latency spike can be matched to its cause.

    latency-raw.png        one point per completed operation at its invocation time,
                           latency on a log scale, colour by f, marker by outcome
    latency-quantiles.png  per time bucket, the 0.5 / 0.95 / 0.99 / max latency per f
    rate.png               completed operations per second, by f and outcome

Rules: the Agg backend (no display needed); every function takes the history's events and
a path and writes one PNG; an empty history still gives a readable, empty plot.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from jepsen.history import NEMESIS, Op, pairs

_TYPE_MARKERS = {"ok": "o", "fail": "x", "info": "^"}
_QUANTILES = (0.5, 0.95, 0.99, 1.0)


def fault_periods(ops: Sequence[Op]) -> list[tuple[float, float, str]]:
    """(start_s, end_s, label) of each fault, from the history's nemesis events."""
    periods: list[tuple[float, float, str]] = []
    open_since: tuple[float, str] | None = None
    end_s = ops[-1].time_ns / 1e9 if ops else 0.0
    for op in ops:
        if op.process != NEMESIS or op.type != "invoke":
            continue
        at_s = op.time_ns / 1e9
        label = str(op.value.get("fault", op.f)) if isinstance(op.value, dict) else op.f
        if op.f.startswith("start-"):
            open_since = (at_s, label)
        elif (op.f.startswith("stop-") or op.f == "heal") and open_since is not None:
            periods.append((open_since[0], at_s, open_since[1]))
            open_since = None
        elif op.f == "transfer-leadership":
            periods.append((at_s, at_s + 0.05, "transfer"))
    if open_since is not None:
        periods.append((open_since[0], end_s, open_since[1]))
    return periods


def latencies(ops: Sequence[Op]) -> list[tuple[float, float, str, str]]:
    """(invoke_s, latency_ms, f, type) for every completed client operation."""
    points: list[tuple[float, float, str, str]] = []
    for invocation, completion in pairs(op for op in ops if op.process != NEMESIS):
        if completion is None:
            continue
        latency_ms = (completion.time_ns - invocation.time_ns) / 1e6
        points.append((invocation.time_ns / 1e9, max(latency_ms, 0.001), invocation.f,
                       completion.type))
    return points


def _shade(axes: Any, periods: Sequence[tuple[float, float, str]]) -> None:
    colors = plt.get_cmap("Pastel1")
    labels: dict[str, Any] = {}
    for start_s, end_s, label in periods:
        color = labels.setdefault(label, colors(len(labels) % 9))
        axes.axvspan(start_s, end_s, color=color, alpha=0.45, lw=0,
                     label=label if label not in axes.get_legend_handles_labels()[1] else None)


def _finish(figure: Any, axes: Any, path: Path, title: str, ylabel: str) -> None:
    axes.set_title(title)
    axes.set_xlabel("time since the test started (s)")
    axes.set_ylabel(ylabel)
    handles, labels = axes.get_legend_handles_labels()
    if handles:
        axes.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_latency_raw(ops: Sequence[Op], path: Path, title: str) -> None:
    figure, axes = plt.subplots(figsize=(11, 5))
    _shade(axes, fault_periods(ops))
    points = latencies(ops)
    fs = sorted({f for _, _, f, _ in points})
    palette = plt.get_cmap("tab10")
    for number, f in enumerate(fs):
        for kind, marker in _TYPE_MARKERS.items():
            chosen = [(x, y) for x, y, pf, pt in points if pf == f and pt == kind]
            if chosen:
                axes.scatter([x for x, _ in chosen], [y for _, y in chosen], s=6,
                             marker=marker, color=palette(number % 10), label=f"{f} {kind}")
    axes.set_yscale("log")
    _finish(figure, axes, path, f"{title}: latency", "latency (ms)")


def _bucket_s(ops: Sequence[Op]) -> float:
    span_s = ops[-1].time_ns / 1e9 if ops else 1.0
    return max(1.0, span_s / 60)


def plot_latency_quantiles(ops: Sequence[Op], path: Path, title: str) -> None:
    figure, axes = plt.subplots(figsize=(11, 5))
    _shade(axes, fault_periods(ops))
    bucket_s = _bucket_s(ops)
    points = [p for p in latencies(ops) if p[3] == "ok"]
    for f in sorted({p[2] for p in points}):
        buckets: dict[int, list[float]] = {}
        for x, y, pf, _ in points:
            if pf == f:
                buckets.setdefault(int(x // bucket_s), []).append(y)
        for quantile in _QUANTILES:
            xs, ys = [], []
            for bucket, values in sorted(buckets.items()):
                values.sort()
                xs.append((bucket + 0.5) * bucket_s)
                ys.append(values[min(len(values) - 1, int(quantile * (len(values) - 1)))])
            axes.plot(xs, ys, marker=".", lw=1, label=f"{f} p{quantile * 100:g}")
    axes.set_yscale("log")
    _finish(figure, axes, path, f"{title}: latency quantiles (ok operations)", "latency (ms)")


def plot_rate(ops: Sequence[Op], path: Path, title: str) -> None:
    figure, axes = plt.subplots(figsize=(11, 5))
    _shade(axes, fault_periods(ops))
    bucket_s = _bucket_s(ops)
    counts: dict[tuple[str, str], dict[int, int]] = {}
    for op in ops:
        if op.process == NEMESIS or op.type == "invoke":
            continue
        series = counts.setdefault((op.f, op.type), {})
        bucket = int(op.time_ns / 1e9 // bucket_s)
        series[bucket] = series.get(bucket, 0) + 1
    for (f, kind), series in sorted(counts.items()):
        last = max(series)
        xs = [(b + 0.5) * bucket_s for b in range(last + 1)]
        ys = [series.get(b, 0) / bucket_s for b in range(last + 1)]
        axes.plot(xs, ys, lw=1, label=f"{f} {kind}")
    _finish(figure, axes, path, f"{title}: throughput", "operations per second")


def plot_all(ops: Sequence[Op], run_dir: Path, title: str) -> list[str]:
    """Write the three plots; returns their file names."""
    names = ["latency-raw.png", "latency-quantiles.png", "rate.png"]
    plot_latency_raw(ops, run_dir / names[0], title)
    plot_latency_quantiles(ops, run_dir / names[1], title)
    plot_rate(ops, run_dir / names[2], title)
    return names
