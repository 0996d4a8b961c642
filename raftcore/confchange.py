"""Single-server membership changes: validation, application, and their byte encoding.

Role: pure functions over `Membership` and `ConfChange` (thesis chapter 4, with learners).
The node decides *when* a change may be appended (the guard of the July 2015 fix lives in
node.py); this module decides *whether* a change makes sense against a configuration and
*what* configuration results.

Rules:
- `validate` raises `InvalidConfChange` for a change that makes no sense: adding a node that
  is already a member, promoting a node that is not a learner, removing a non-member, or
  removing the last voter.
- `apply` is total: every replica applies every configuration entry in its log, so it must
  never fail. A change `validate` would reject leaves the configuration unchanged (the
  leader validated it against the same configuration, so this only matters for garbage).
- `encode` is deterministic and `decode(encode(c)) == c`. Layout: a format byte (1), a kind
  byte, the node id's length (2 bytes, big endian) and UTF-8 bytes, then the context bytes.
  A malformed payload raises `InvalidConfChange` (a corrupt entry is detected, never used).
"""

from __future__ import annotations

from raftcore.errors import InvalidConfChange
from raftcore.types import ConfChange, ConfChangeKind, Membership

_FORMAT = 1
_KIND_CODES = {
    ConfChangeKind.ADD_LEARNER: 1,
    ConfChangeKind.PROMOTE_LEARNER: 2,
    ConfChangeKind.REMOVE_SERVER: 3,
}
_CODE_KINDS = {code: kind for kind, code in _KIND_CODES.items()}


def encode(change: ConfChange) -> bytes:
    """The bytes stored in a CONF_CHANGE entry's `data`."""
    node = change.node_id.encode("utf-8")
    assert node, "a configuration change names a node"
    assert len(node) < 1 << 16, "node id too long"
    header = bytes((_FORMAT, _KIND_CODES[change.kind])) + len(node).to_bytes(2, "big")
    return header + node + change.context


def decode(data: bytes) -> ConfChange:
    """Inverse of `encode`; raises `InvalidConfChange` on malformed bytes."""
    if len(data) < 4 or data[0] != _FORMAT:
        raise InvalidConfChange(f"not an encoded configuration change: {data[:8]!r}")
    kind = _CODE_KINDS.get(data[1])
    if kind is None:
        raise InvalidConfChange(f"unknown configuration change kind {data[1]}")
    length = int.from_bytes(data[2:4], "big")
    if length == 0 or len(data) < 4 + length:
        raise InvalidConfChange("truncated configuration change")
    try:
        node_id = data[4 : 4 + length].decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidConfChange("node id is not UTF-8") from error
    return ConfChange(kind=kind, node_id=node_id, context=data[4 + length :])


def validate(membership: Membership, change: ConfChange) -> None:
    """Raise `InvalidConfChange` unless `change` makes sense against `membership`."""
    node = change.node_id
    if not node:
        raise InvalidConfChange("a configuration change must name a node")
    if change.kind is ConfChangeKind.ADD_LEARNER:
        if node in membership.voters or node in membership.learners:
            raise InvalidConfChange(f"{node} is already a member")
    elif change.kind is ConfChangeKind.PROMOTE_LEARNER:
        if node not in membership.learners:
            raise InvalidConfChange(f"{node} is not a learner")
    elif node not in membership.voters and node not in membership.learners:
        raise InvalidConfChange(f"{node} is not a member")
    elif membership.voters == frozenset((node,)):
        raise InvalidConfChange(f"cannot remove {node}, the last voter")


def apply(membership: Membership, change: ConfChange) -> Membership:
    """The configuration after `change` (unchanged if the change is invalid)."""
    try:
        validate(membership, change)
    except InvalidConfChange:
        return membership
    node = change.node_id
    voters, learners = membership.voters, membership.learners
    if change.kind is ConfChangeKind.ADD_LEARNER:
        return Membership(voters=voters, learners=learners | {node})
    if change.kind is ConfChangeKind.PROMOTE_LEARNER:
        return Membership(voters=voters | {node}, learners=learners - {node})
    return Membership(voters=voters - {node}, learners=learners - {node})
