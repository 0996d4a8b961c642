"""The simulated network: delays, drops, duplicates, reorders and partitions messages.

Rules:
- Deterministic: every choice comes from the `random.Random` handed in; messages due at the
  same tick are delivered in the order they were sent (a counter breaks ties), so equal
  seeds give equal deliveries.
- Links are FIFO, as TCP streams between peers are, except that a message is reordered
  with probability `reorder`: it then takes an independent random delay and may overtake
  or be overtaken. Duplication re-sends the same message with its own independent delay
  (a replay); loss drops a message when it is sent.
- Partitions are a set of blocked directed links `(from, to)`. A symmetric partition blocks
  both directions, a one-way partition one. A message is checked against the links when it
  is delivered, so a partition that starts while a message is in flight cuts it too.
- Clients are endpoints like nodes; the world decides which links the faults touch.
- `manual` mode holds every message until the caller delivers or drops it by position
  (the hypothesis state machine chooses the schedule itself).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(slots=True)
class NetworkOptions:
    """Fault rates of the network (probabilities per message; delays in ticks)."""

    delay_min_ticks: int = 1
    delay_max_ticks: int = 3
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0

    def __post_init__(self) -> None:
        assert 0 <= self.delay_min_ticks <= self.delay_max_ticks
        assert 0.0 <= self.loss <= 1.0
        assert 0.0 <= self.duplicate <= 1.0
        assert 0.0 <= self.reorder <= 1.0


@dataclass(slots=True)
class NetworkStats:
    sent: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    cut: int = 0
    """Messages dropped at delivery because their link was partitioned."""


class Network:
    """Messages in flight between endpoints, with a fault model.

    Outside manual mode, messages wait in per-tick buckets (due tick -> messages in send
    order), which is the (due tick, send order) order of a priority queue without its
    cost; manual mode keeps one list in send order for the caller to pick from."""

    __slots__ = (
        "_buckets",
        "_counter",
        "_manual",
        "_queue",
        "_tails",
        "blocked",
        "options",
        "rng",
        "stats",
    )

    def __init__(self, rng: random.Random, options: NetworkOptions, *, manual: bool = False):
        self.rng = rng
        self.options = options
        self._manual = manual
        self.blocked: set[tuple[str, str]] = set()
        self.stats = NetworkStats()
        self._queue: list[tuple[int, int, str, str, object]] = []
        """Manual mode: (due tick, send counter, src, dst, payload) in send order."""
        self._buckets: dict[int, list[tuple[str, str, object]]] = {}
        """Otherwise: due tick -> (src, dst, payload) in send order."""
        self._counter = 0
        self._tails: dict[tuple[str, str], int] = {}
        """Per link: the latest delivery tick of an in-order message."""

    @property
    def manual(self) -> bool:
        return self._manual

    @manual.setter
    def manual(self, manual: bool) -> None:
        assert not len(self), "switch modes only while nothing is in flight"
        self._manual = manual

    def __len__(self) -> int:
        return len(self._queue) + sum(len(bucket) for bucket in self._buckets.values())

    def send(self, now: int, src: str, dst: str, payload: object) -> None:
        """Put a message in flight (or lose it, or also send a duplicate)."""
        stats = self.stats
        stats.sent += 1
        rng = self.rng
        options = self.options
        manual = self._manual
        if options.loss and not manual and rng.random() < options.loss:
            stats.lost += 1
            return
        low = options.delay_min_ticks
        span = options.delay_max_ticks - low + 1
        at = now + low
        if span > 1:
            at += int(rng.random() * span)  # Cheaper than randint, equally uniform.
        if not (options.reorder and rng.random() < options.reorder):
            link = (src, dst)
            tails = self._tails
            tail = tails.get(link, 0)
            at = max(at, tail)
            tails[link] = at
        if manual:
            self._counter += 1
            self._queue.append((at, self._counter, src, dst, payload))
        else:
            bucket = self._buckets.get(at)
            if bucket is None:
                self._buckets[at] = [(src, dst, payload)]
            else:
                bucket.append((src, dst, payload))
        if options.duplicate and rng.random() < options.duplicate:
            stats.duplicated += 1
            at = now + low + (int(rng.random() * span) if span > 1 else 0)
            self._enqueue(at, src, dst, payload)  # A replay: its own delay, not in order.

    def _enqueue(self, at: int, src: str, dst: str, payload: object) -> None:
        if self._manual:
            self._counter += 1
            self._queue.append((at, self._counter, src, dst, payload))
        else:
            self._buckets.setdefault(at, []).append((src, dst, payload))

    def due(self, now: int) -> list[tuple[str, str, object]]:
        """Every message due by `now` whose link is open, in (due tick, send order)."""
        assert not self._manual, "manual networks deliver by position"
        buckets = self._buckets
        ticks = [at for at in buckets if at <= now]
        if not ticks:
            return []
        ticks.sort()
        blocked = self.blocked
        out: list[tuple[str, str, object]] = []
        for at in ticks:
            bucket = buckets.pop(at)
            if not blocked:
                out.extend(bucket)
                continue
            for item in bucket:
                if (item[0], item[1]) in blocked:
                    self.stats.cut += 1
                else:
                    out.append(item)
        self.stats.delivered += len(out)
        return out

    # Partitions.

    def heal(self) -> None:
        self.blocked.clear()

    def block(self, src: str, dst: str, *, symmetric: bool) -> None:
        self.blocked.add((src, dst))
        if symmetric:
            self.blocked.add((dst, src))

    def isolate(self, group: Iterable[str], others: Iterable[str], *, symmetric: bool) -> None:
        """Cut every link from `group` to `others` (and back when symmetric)."""
        rest = list(others)
        for a in group:
            for b in rest:
                if a != b:
                    self.block(a, b, symmetric=symmetric)

    # Manual mode (the hypothesis machine picks what happens to each message).

    def pending(self) -> list[tuple[str, str, object]]:
        return [(src, dst, payload) for _, _, src, dst, payload in self._queue]

    def take(self, position: int) -> tuple[str, str, object] | None:
        """Remove the message at `position` (modulo the queue length); None if blocked."""
        assert self.manual, "only manual networks deliver by position"
        assert self._queue, "no message in flight"
        _, _, src, dst, payload = self._queue.pop(position % len(self._queue))
        if (src, dst) in self.blocked:
            self.stats.cut += 1
            return None
        self.stats.delivered += 1
        return src, dst, payload

    def drop(self, position: int) -> None:
        assert self._queue, "no message in flight"
        self._queue.pop(position % len(self._queue))
        self.stats.lost += 1

    def duplicate_at(self, position: int) -> None:
        assert self._queue, "no message in flight"
        item = self._queue[position % len(self._queue)]
        self._counter += 1
        self._queue.append((item[0], self._counter, item[2], item[3], item[4]))
        self.stats.duplicated += 1
