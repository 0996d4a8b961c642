"""Prometheus text exposition (format 0.0.4) of counters, gauges and histograms.

Role: the node records what it does here and `GET /metrics` renders it. No dependency on
a client library: the format is a few lines of text per metric.

Rules: metric names are `raftkv_<what>_<unit>`; a metric is registered once; labels are a
fixed tuple of names per metric; histogram buckets are cumulative upper bounds in seconds.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import Final

LATENCY_BUCKETS_S: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
)

Labels = tuple[str, ...]


def _label_text(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    escaped = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for v in values)
    return "{" + ",".join(f'{n}="{v}"' for n, v in zip(names, escaped, strict=True)) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, label_names: Labels = ()) -> None:
        self.name = name
        self.help_text = help_text
        self.label_names = label_names

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} {self.kind}"]

    def render(self) -> list[str]:
        raise NotImplementedError


class Counter(Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, label_names: Labels = ()) -> None:
        super().__init__(name, help_text, label_names)
        self.values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, labels: Labels = ()) -> None:
        assert amount >= 0, "counters only go up"
        assert len(labels) == len(self.label_names)
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def render(self) -> list[str]:
        lines = self.header()
        for labels, value in sorted(self.values.items()):
            lines.append(f"{self.name}{_label_text(self.label_names, labels)} {_number(value)}")
        return lines


class Gauge(Metric):
    """A value read when rendered (from a callback), or set explicitly."""

    kind = "gauge"

    def __init__(
        self, name: str, help_text: str, read: Callable[[], float] | None = None
    ) -> None:
        super().__init__(name, help_text)
        self._read = read
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = value

    def render(self) -> list[str]:
        value = self._read() if self._read is not None else self.value
        return [*self.header(), f"{self.name} {_number(value)}"]


class Histogram(Metric):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: Labels = (),
        buckets: Sequence[float] = LATENCY_BUCKETS_S,
    ) -> None:
        super().__init__(name, help_text, label_names)
        self.buckets = tuple(sorted(buckets))
        self._counts: dict[Labels, list[int]] = {}
        self._sums: dict[Labels, float] = {}

    def observe(self, value: float, labels: Labels = ()) -> None:
        assert len(labels) == len(self.label_names)
        counts = self._counts.setdefault(labels, [0] * (len(self.buckets) + 1))
        counts[bisect.bisect_left(self.buckets, value)] += 1
        self._sums[labels] = self._sums.get(labels, 0.0) + value

    def count(self, labels: Labels = ()) -> int:
        return sum(self._counts.get(labels, []))

    def render(self) -> list[str]:
        lines = self.header()
        names = (*self.label_names, "le")
        for labels, counts in sorted(self._counts.items()):
            running = 0
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                running += count
                label_text = _label_text(names, (*labels, _number(bound)))
                lines.append(f"{self.name}_bucket{label_text} {running}")
            plain = _label_text(self.label_names, labels)
            lines.append(f"{self.name}_sum{plain} {_number(self._sums[labels])}")
            lines.append(f"{self.name}_count{plain} {running}")
        return lines


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}

    def add(self, metric: Metric) -> None:
        assert metric.name not in self._metrics, f"metric {metric.name} registered twice"
        self._metrics[metric.name] = metric

    def counter(self, name: str, help_text: str, label_names: Labels = ()) -> Counter:
        metric = Counter(name, help_text, label_names)
        self.add(metric)
        return metric

    def gauge(self, name: str, help_text: str, read: Callable[[], float] | None = None) -> Gauge:
        metric = Gauge(name, help_text, read)
        self.add(metric)
        return metric

    def histogram(self, name: str, help_text: str, label_names: Labels = ()) -> Histogram:
        metric = Histogram(name, help_text, label_names)
        self.add(metric)
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for name in sorted(self._metrics):
            lines.extend(self._metrics[name].render())
        return "\n".join(lines) + "\n"
