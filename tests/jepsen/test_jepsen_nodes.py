"""Node list parsing: ranges, lists, repeated options, nodes files, and the errors."""

from __future__ import annotations

import pytest

from jepsen.nodes import (
    NodeSpecError,
    expand_range,
    parse_node_spec,
    parse_nodes_file_text,
    resolve_nodes,
)


def test_range_expands_inclusively() -> None:
    assert parse_node_spec("n1..n5") == ["n1", "n2", "n3", "n4", "n5"]


def test_range_keeps_zero_padding_and_accepts_a_bare_end_number() -> None:
    assert expand_range("node08..node11") == ["node08", "node09", "node10", "node11"]
    assert parse_node_spec("n3..5") == ["n3", "n4", "n5"]


def test_comma_list_mixes_names_ranges_and_addresses() -> None:
    assert parse_node_spec("db-a.example, n1..n2,192.0.2.7") == [
        "db-a.example", "n1", "n2", "192.0.2.7",
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("n5..n1", "below the start"),
        ("a1..b3", "different prefixes"),
        ("n..n3", "numeric suffix"),
        ("n1,,n2", "empty item"),
        ("", "empty node spec"),
        ("n1;rm -rf /", "invalid node name"),
        ("-n1", "invalid node name"),
        ("n1..n5000", "more than"),
    ],
)
def test_bad_specs_are_rejected_with_the_reason(spec: str, message: str) -> None:
    with pytest.raises(NodeSpecError, match=message):
        parse_node_spec(spec)


def test_nodes_file_skips_comments_and_blank_lines() -> None:
    text = "# cluster A\n\nn1..n2   # first two\nhost-c\n"
    assert parse_nodes_file_text(text) == ["n1", "n2", "host-c"]


def test_nodes_file_error_names_the_line() -> None:
    with pytest.raises(NodeSpecError, match=r"nodes\.txt, line 2"):
        parse_nodes_file_text("n1\nn9..n2\n", "nodes.txt")


def test_empty_nodes_file_is_an_error() -> None:
    with pytest.raises(NodeSpecError, match="names no nodes"):
        parse_nodes_file_text("# nothing here\n")


def test_resolve_combines_all_sources_in_order() -> None:
    nodes = resolve_nodes(["n1..n2", "n3"], ["x", "y"], "z1..z2\n")
    assert nodes == ("n1", "n2", "n3", "x", "y", "z1", "z2")


def test_resolve_with_nothing_given_means_local_hosts() -> None:
    assert resolve_nodes() == ()


def test_a_node_named_twice_is_an_error() -> None:
    with pytest.raises(NodeSpecError, match="'n2' is given more than once"):
        resolve_nodes(["n1..n3"], ["n2"])
