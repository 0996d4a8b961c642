"""Grudges: which node drops packets from which, computed purely from a seeded random.

A *grudge* (Jepsen's word, see jepsen-io/jepsen `nemesis.clj`) maps a node to the set of
nodes it refuses to hear from. `jepsen.net` turns a grudge into iptables rules; this module
only computes grudges, so every partition shape is tested without a cluster.

Rules:
- Pure functions of their arguments. Randomness comes only from the `random.Random`
  handed in; the same seed and node list give the same grudge.
- A grudge never names a node outside the node list, never makes a node drop itself, and
  omits nodes that drop nobody.
- Shapes, as in Jepsen: `isolate` (one node alone), `random_halves` (shuffle, then split
  with the smaller half first), `majority_minority` (a strict minority of
  floor((n - 1) / 2) nodes against the rest, which differs from halves when n is even),
  `majorities_ring` (each node sees a majority, no two nodes the same one) and `bridge`
  (two halves that only one node in the middle still joins).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

Grudge = Mapping[str, frozenset[str]]


def majority(node_count: int) -> int:
    """The smallest number of nodes that is more than half of `node_count`."""
    assert node_count >= 1
    return node_count // 2 + 1


def _check_nodes(nodes: Sequence[str], minimum: int) -> None:
    assert len(set(nodes)) == len(nodes), f"duplicate nodes in {nodes!r}"
    assert len(nodes) >= minimum, f"need at least {minimum} nodes, got {len(nodes)}"


def complete_grudge(components: Iterable[Iterable[str]]) -> dict[str, frozenset[str]]:
    """Every node drops every node outside its own component."""
    parts = [frozenset(component) for component in components]
    universe = frozenset().union(*parts)
    assert sum(len(part) for part in parts) == len(universe), "components overlap"
    grudge: dict[str, frozenset[str]] = {}
    for part in parts:
        for node in sorted(part):
            others = universe - part
            if others:
                grudge[node] = others
    return grudge


def bisect(nodes: Sequence[str]) -> tuple[list[str], list[str]]:
    """Cut a list in two, the smaller half first (Jepsen's `bisect`)."""
    middle = len(nodes) // 2
    return list(nodes[:middle]), list(nodes[middle:])


def shuffled(nodes: Sequence[str], rng: random.Random) -> list[str]:
    """A shuffled copy; the input order is sorted first so callers' order does not matter."""
    order = sorted(nodes)
    rng.shuffle(order)
    return order


def isolate(nodes: Sequence[str], loner: str) -> dict[str, frozenset[str]]:
    """Cut `loner` off from every other node (used for 'isolate the leader')."""
    _check_nodes(nodes, 2)
    assert loner in nodes, f"{loner!r} is not one of {nodes!r}"
    return complete_grudge([[loner], [node for node in nodes if node != loner]])


def isolate_random(nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    """Cut one node, chosen by `rng`, off from the rest."""
    _check_nodes(nodes, 2)
    return isolate(nodes, rng.choice(sorted(nodes)))


def random_halves(nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    """Shuffle, then cut into halves, the smaller half first."""
    _check_nodes(nodes, 2)
    return complete_grudge(bisect(shuffled(nodes, rng)))


def majority_minority(nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    """A random strict minority against a random majority (n=4: 1 against 3)."""
    _check_nodes(nodes, 3)
    order = shuffled(nodes, rng)
    minority_size = (len(nodes) - 1) // 2
    return complete_grudge([order[:minority_size], order[minority_size:]])


def majorities_ring(nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    """Each node sees a majority (itself included), and no two nodes see the same one.

    Nodes are shuffled onto a ring; window i holds `majority(n)` consecutive ring nodes,
    and the node in the middle of window i keeps that window and drops the rest. With
    five nodes every node then sees exactly its two ring neighbours, so the grudge is
    symmetric; Jepsen's `majorities-ring-perfect` makes the same choice of the middle node.
    """
    _check_nodes(nodes, 3)
    ring = shuffled(nodes, rng)
    universe = frozenset(ring)
    size = majority(len(ring))
    grudge: dict[str, frozenset[str]] = {}
    for start in range(len(ring)):
        window = [ring[(start + offset) % len(ring)] for offset in range(size)]
        keeper = window[size // 2]
        grudge[keeper] = universe - frozenset(window)
    assert len(grudge) == len(ring)
    return {node: dropped for node, dropped in grudge.items() if dropped}


def bridge(nodes: Sequence[str], rng: random.Random) -> dict[str, frozenset[str]]:
    """Two halves joined only through one bridge node that both halves still see."""
    _check_nodes(nodes, 3)
    first, second = bisect(shuffled(nodes, rng))
    bridge_node = second[0]
    grudge = complete_grudge([first, second])
    return {
        node: dropped - {bridge_node}
        for node, dropped in grudge.items()
        if node != bridge_node and dropped - {bridge_node}
    }


def visible(grudge: Grudge, nodes: Sequence[str], node: str) -> frozenset[str]:
    """The nodes `node` still hears from (itself included) under `grudge`."""
    return frozenset(nodes) - grudge.get(node, frozenset())


def is_symmetric(grudge: Grudge) -> bool:
    """True when every dropped link is dropped on both of its ends."""
    return all(
        node in grudge.get(other, frozenset())
        for node, dropped in grudge.items()
        for other in dropped
    )


def describe(grudge: Grudge) -> str:
    """One line for logs and the history: `n1 drops n3,n4; n2 drops n3,n4`."""
    if not grudge:
        return "fully connected"
    return "; ".join(
        f"{node} drops {','.join(sorted(grudge[node]))}" for node in sorted(grudge)
    )


GRUDGES = {
    "isolate": isolate_random,
    "halves": random_halves,
    "majority-minority": majority_minority,
    "majorities-ring": majorities_ring,
    "bridge": bridge,
}
