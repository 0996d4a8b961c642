"""What the HTTP layer asks of the node: the `Service` protocol and its result values.

Role: the seam between kvserver/http.py (requests, status codes, forwarding) and
kvserver/node.py (the core, the log, the state machine). The HTTP layer never touches the
core; tests drive it with a fake Service.

Rules: a method that cannot serve a request raises `raftcore.errors.NotLeader` (the HTTP
layer then forwards or redirects), a `kvserver.errors.RequestFailed` (which carries whether
the failure is definite), or a `raftcore.errors.RaftError` refusing a membership change.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import Protocol

from raftcore.commands import Response, SessionCommand
from raftcore.types import NodeId


class Consistency(enum.Enum):
    LINEARIZABLE = "linearizable"
    """ReadIndex: the leader confirms its leadership with a heartbeat round first."""
    LEASE = "lease"
    """The leader serves from its lease (no round trip); relies on bounded clock drift."""
    STALE = "stale"
    """Served from this node's applied state, which may lag; says by how much."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    response: Response
    index: int
    """The log index of the entry that carried the command."""


@dataclass(frozen=True, slots=True)
class Staleness:
    """How far behind a stale read may be."""

    applied_index: int
    commit_index: int
    leader_id: NodeId | None
    last_leader_contact_ms: float | None
    """Milliseconds since this node last heard from a leader (None: this is the leader)."""


@dataclass(frozen=True, slots=True)
class ReadResult:
    value: str | None
    index: int
    """The applied index the read was served at."""
    staleness: Staleness | None = None


@dataclass(frozen=True, slots=True)
class Member:
    node_id: NodeId
    role: str
    """"voter" or "learner"."""
    raft_address: str | None
    http_address: str | None
    match_index: int | None = None


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    node_id: NodeId
    role: str
    leader_id: NodeId | None
    leader_http: str | None
    term: int
    commit_index: int
    applied_index: int
    members: tuple[Member, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)


class Service(Protocol):
    node_id: NodeId
    raft_address: str
    http_address: str

    def status(self) -> ClusterStatus: ...

    async def write(self, command: SessionCommand) -> WriteResult: ...

    def start_write(self, command: SessionCommand) -> asyncio.Future[WriteResult]:
        """`write` in two halves, for the HTTP front: the synchronous part now (a refusal
        such as NotLeader raises here, before anything happened), the outcome later."""
        ...

    def start_read(self, key: str, consistency: Consistency) -> asyncio.Future[ReadResult]:
        """`read` in two halves, as `start_write`; the future may fail with NotLeader when
        leadership is lost before the read is confirmed."""
        ...

    async def register_session(self) -> int: ...

    async def read(self, key: str, consistency: Consistency) -> ReadResult: ...

    async def join(
        self, node_id: NodeId, raft_address: str, http_address: str | None
    ) -> dict[NodeId, tuple[str, str | None]]:
        """Add `node_id` as a learner (the leader promotes it once it has caught up);
        answers the address book (raft, http) of the cluster so the newcomer can reply."""
        ...

    async def remove(self, node_id: NodeId) -> None: ...

    async def transfer_leadership(self, target: NodeId | None) -> NodeId:
        """Hand leadership to `target` (or the most caught-up voter); the new leader."""
        ...

    def metrics_text(self) -> str: ...
