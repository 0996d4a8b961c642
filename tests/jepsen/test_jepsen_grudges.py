"""Grudges: the shapes Jepsen's nemesis makes, checked as properties over sizes and seeds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jepsen import grudges
from jepsen.grudges import Grudge, is_symmetric, majority, visible

sizes = st.integers(min_value=3, max_value=9)
seeds = st.integers(min_value=0, max_value=2**32)


def nodes_of(count: int) -> list[str]:
    return [f"n{index}" for index in range(1, count + 1)]


def well_formed(grudge: Grudge, nodes: list[str]) -> bool:
    """Names only known nodes, never a node dropping itself, no empty entries."""
    return all(
        node in nodes and dropped and node not in dropped and dropped <= set(nodes)
        for node, dropped in grudge.items()
    )


def components(grudge: Grudge, nodes: list[str]) -> set[frozenset[str]]:
    return {visible(grudge, nodes, node) for node in nodes}


def test_complete_grudge_cuts_exactly_between_components() -> None:
    grudge = grudges.complete_grudge([["n1", "n2"], ["n3"], ["n4", "n5"]])
    assert grudge["n1"] == {"n3", "n4", "n5"}
    assert grudge["n3"] == {"n1", "n2", "n4", "n5"}
    assert grudge["n4"] == {"n1", "n2", "n3"}
    assert is_symmetric(grudge)


def test_isolate_cuts_the_named_node_off() -> None:
    nodes = nodes_of(5)
    grudge = grudges.isolate(nodes, "n4")
    assert visible(grudge, nodes, "n4") == {"n4"}
    others = [node for node in nodes if node != "n4"]
    assert all(visible(grudge, nodes, node) == set(others) for node in others)


@given(sizes, seeds)
def test_isolate_random_leaves_one_node_alone(count: int, seed: int) -> None:
    nodes = nodes_of(count)
    grudge = grudges.isolate_random(nodes, random.Random(seed))
    assert well_formed(grudge, nodes)
    assert sorted(len(part) for part in components(grudge, nodes)) == [1, count - 1]


@given(sizes, seeds)
def test_random_halves_splits_smaller_half_first(count: int, seed: int) -> None:
    nodes = nodes_of(count)
    grudge = grudges.random_halves(nodes, random.Random(seed))
    assert well_formed(grudge, nodes)
    assert is_symmetric(grudge)
    sides = sorted(len(part) for part in components(grudge, nodes))
    assert sides == [count // 2, count - count // 2]


@given(sizes, seeds)
def test_majority_minority_leaves_exactly_one_side_with_a_quorum(count: int, seed: int) -> None:
    nodes = nodes_of(count)
    grudge = grudges.majority_minority(nodes, random.Random(seed))
    assert well_formed(grudge, nodes)
    sides = sorted(len(part) for part in components(grudge, nodes))
    assert len(sides) == 2
    assert sides[0] < majority(count) <= sides[1]


def test_majority_minority_differs_from_halves_on_even_clusters() -> None:
    nodes = nodes_of(4)
    grudge = grudges.majority_minority(nodes, random.Random(1))
    assert sorted(len(part) for part in components(grudge, nodes)) == [1, 3]


@given(sizes, seeds)
def test_majorities_ring_gives_every_node_its_own_majority(count: int, seed: int) -> None:
    nodes = nodes_of(count)
    grudge = grudges.majorities_ring(nodes, random.Random(seed))
    assert well_formed(grudge, nodes)
    views = [visible(grudge, nodes, node) for node in nodes]
    assert all(len(view) == majority(count) for view in views)
    assert all(node in view for node, view in zip(nodes, views, strict=True))
    assert len(set(views)) == count


@given(seeds)
def test_majorities_ring_on_five_nodes_is_symmetric_ring_neighbours(seed: int) -> None:
    nodes = nodes_of(5)
    grudge = grudges.majorities_ring(nodes, random.Random(seed))
    assert is_symmetric(grudge)
    # Symmetric, each node linked to two others, connected: a 5-cycle.
    links = {frozenset((a, b)) for a in nodes for b in visible(grudge, nodes, a) if a != b}
    assert len(links) == 5


def test_negative_control_first_of_window_ring_is_caught_as_asymmetric() -> None:
    """Jepsen's first `majorities-ring` kept the first node of each window; on five nodes
    that makes one-way cuts. The symmetry check must catch it."""
    ring = nodes_of(5)
    universe = frozenset(ring)
    tampered = {
        ring[start]: universe - {ring[(start + k) % 5] for k in range(3)} for start in range(5)
    }
    assert not is_symmetric(tampered)


@given(sizes, seeds)
def test_bridge_joins_two_cut_halves_through_one_node(count: int, seed: int) -> None:
    nodes = nodes_of(count)
    grudge = grudges.bridge(nodes, random.Random(seed))
    assert well_formed(grudge, nodes)
    assert is_symmetric(grudge)
    bridges = [node for node in nodes if visible(grudge, nodes, node) == set(nodes)]
    assert len(bridges) == 1
    others = [node for node in nodes if node != bridges[0]]
    # Every other node sees the bridge, and the rest fall into two halves that cannot meet.
    assert all(bridges[0] in visible(grudge, nodes, node) for node in others)
    halves = {visible(grudge, nodes, node) - {bridges[0]} for node in others}
    assert len(halves) == 2
    first, second = halves
    assert not first & second


@pytest.mark.parametrize("name", sorted(grudges.GRUDGES))
def test_same_seed_same_grudge_and_seeds_vary_the_grudge(name: str) -> None:
    make = grudges.GRUDGES[name]
    nodes = nodes_of(5)
    assert make(nodes, random.Random(7)) == make(list(reversed(nodes)), random.Random(7))
    assert len({grudges.describe(make(nodes, random.Random(seed))) for seed in range(20)}) > 1


def test_describe_is_one_readable_line() -> None:
    assert grudges.describe({}) == "fully connected"
    text = grudges.describe(grudges.isolate(["n1", "n2", "n3"], "n1"))
    assert text == "n1 drops n2,n3; n2 drops n1; n3 drops n1"
