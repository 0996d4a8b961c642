"""Node list parsing for the harness CLI: pure, no I/O beyond what the caller hands in.

Rules:
- A node spec is a comma-separated list of items; an item is a host name (`n1`,
  `db-3.example`, `192.0.2.7`) or a range `n1..n5` whose ends share a prefix and carry a
  numeric suffix (`node08..node11` keeps the zero padding of its ends).
- `--nodes SPEC` and `--node NAME` may repeat, and `--nodes-file F` adds one spec per line
  (`#` starts a comment, blank lines are skipped). The result keeps the order of first
  mention; a node named twice is an error, because it is always a typing mistake and
  would double that node's share of clients.
- Bad input raises `NodeSpecError` naming the offending item; nothing is guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

MAX_RANGE_NODES = 1024

_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})$")
_RANGE_END_RE = re.compile(r"^(?P<prefix>.*?)(?P<number>[0-9]+)$")


class NodeSpecError(ValueError):
    """A node spec, `--node` value or nodes file cannot be understood."""


def validate_name(name: str) -> str:
    """Return `name` if it can be a host name or an IPv4 address, else raise."""
    if not _NAME_RE.match(name):
        raise NodeSpecError(
            f"invalid node name {name!r}: use letters, digits, '.', '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def expand_range(item: str) -> list[str]:
    """Expand `n1..n5` into `[n1, n2, n3, n4, n5]`."""
    first, sep, last = item.partition("..")
    assert sep == ".."
    first_match = _RANGE_END_RE.match(first.strip())
    last_match = _RANGE_END_RE.match(last.strip())
    if first_match is None or last_match is None:
        raise NodeSpecError(f"invalid node range {item!r}: both ends need a numeric suffix")
    prefix = first_match["prefix"]
    if last_match["prefix"] not in (prefix, ""):
        raise NodeSpecError(f"invalid node range {item!r}: ends have different prefixes")
    low, high = int(first_match["number"]), int(last_match["number"])
    if high < low:
        raise NodeSpecError(f"invalid node range {item!r}: the end is below the start")
    if high - low + 1 > MAX_RANGE_NODES:
        raise NodeSpecError(f"invalid node range {item!r}: more than {MAX_RANGE_NODES} nodes")
    width = len(first_match["number"]) if first_match["number"].startswith("0") else 0
    return [validate_name(f"{prefix}{number:0{width}d}") for number in range(low, high + 1)]


def parse_node_spec(spec: str) -> list[str]:
    """Parse one spec (`n1..n3,db7`) into node names, in order."""
    names: list[str] = []
    items = [item.strip() for item in spec.split(",")]
    if not any(items):
        raise NodeSpecError(f"empty node spec {spec!r}")
    for item in items:
        if not item:
            raise NodeSpecError(f"empty item in node spec {spec!r}")
        if ".." in item:
            names.extend(expand_range(item))
        else:
            names.append(validate_name(item))
    return names


def parse_nodes_file_text(text: str, source: str = "nodes file") -> list[str]:
    """Parse the text of a nodes file: one spec per line, `#` comments, blank lines."""
    names: list[str] = []
    for line_number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            names.extend(parse_node_spec(line))
        except NodeSpecError as error:
            raise NodeSpecError(f"{source}, line {line_number}: {error}") from error
    if not names:
        raise NodeSpecError(f"{source} names no nodes")
    return names


def combine_nodes(groups: Iterable[Sequence[str]]) -> tuple[str, ...]:
    """Join node lists in order, rejecting a node named twice."""
    seen: dict[str, None] = {}
    for group in groups:
        for name in group:
            if name in seen:
                raise NodeSpecError(f"node {name!r} is given more than once")
            seen[name] = None
    return tuple(seen)


def resolve_nodes(
    specs: Sequence[str] = (),
    single_nodes: Sequence[str] = (),
    nodes_file_text: str | None = None,
    nodes_file_name: str = "nodes file",
) -> tuple[str, ...]:
    """The node list from `--nodes` (repeatable), `--node` (repeatable), `--nodes-file`.

    Returns an empty tuple when nothing was given: the caller then uses the local hosts.
    """
    groups: list[Sequence[str]] = [parse_node_spec(spec) for spec in specs]
    groups.append([validate_name(name.strip()) for name in single_nodes])
    if nodes_file_text is not None:
        groups.append(parse_nodes_file_text(nodes_file_text, nodes_file_name))
    return combine_nodes(groups)
