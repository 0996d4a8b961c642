"""Helpers for tests that build single nodes in a given state and feed them messages."""

from __future__ import annotations

import random
from typing import Any

from raftcore.config import Config
from raftcore.memstorage import MemoryStorage
from raftcore.node import Node
from raftcore.types import (
    Entry,
    HardState,
    Message,
    Ready,
    RequestVoteRequest,
    RequestVoteResponse,
    Role,
)

VOTERS = ("n1", "n2", "n3")


def node_with_log(
    node_id: str = "n1",
    terms: tuple[int, ...] = (),
    term: int = 0,
    voted_for: str | None = None,
    voters: tuple[str, ...] = VOTERS,
    seed: int = 0,
    **config: Any,
) -> tuple[Node, MemoryStorage]:
    """A node whose durable log holds entries of the given terms (index 1, 2, ...)."""
    storage = MemoryStorage.bootstrap(voters)
    storage.append(
        [Entry(term=t, index=i + 1, data=b"e%d" % (i + 1)) for i, t in enumerate(terms)]
    )
    storage.set_hard_state(HardState(current_term=max((term, *terms)), voted_for=voted_for))
    options = {"pre_vote": False, "check_quorum": False, **config}
    node = Node(Config(id=node_id, **options), storage, random.Random(seed))
    return node, storage


def persist(node: Node, storage: MemoryStorage) -> Ready:
    """Hand out one Ready, persist it as a driver would, and advance."""
    ready = node.ready()
    if ready.snapshot is not None:
        storage.apply_snapshot(ready.snapshot)
    storage.append(ready.entries)
    if ready.hard_state is not None:
        storage.set_hard_state(ready.hard_state)
    node.advance(ready)
    return ready


def sent(node: Node, storage: MemoryStorage) -> list[Message]:
    """Messages the node wants to send now (after persisting what they depend on)."""
    messages: list[Message] = []
    while node.has_ready():
        messages.extend(persist(node, storage).messages)
    return messages


def elect(node: Node, storage: MemoryStorage) -> list[Message]:
    """Make `node` leader (ticking until it campaigns, then granting every vote)."""
    while node.role not in (Role.CANDIDATE, Role.LEADER):
        node.tick()
    requests = [m for m in sent(node, storage) if isinstance(m, RequestVoteRequest)]
    for request in requests:
        node.step(
            RequestVoteResponse(
                term=request.term, from_id=request.to_id, to_id=node.id, vote_granted=True
            )
        )
    assert node.role is Role.LEADER
    return sent(node, storage)
