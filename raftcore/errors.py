"""Operating errors of the Raft core: one documented tree.

    RaftError
    ├── NotLeader(leader_hint)        this node cannot serve the request; try leader_hint
    ├── TransferInProgress            a leadership transfer is under way; proposals fail fast
    ├── ConfChangeRejected            a membership change cannot be appended now
    │   ├── ConfChangePending         another configuration change is not yet committed
    │   └── LeaderNotReady            the leader has not committed an entry of its term
    ├── InvalidConfChange             the change makes no sense (unknown node, not a learner, ...)
    ├── InvalidTransfer               the transfer target is not a voter of the configuration
    └── Compacted / Unavailable       storage cannot serve the requested log range

Programmer errors (calling `advance` with a Ready that was not handed out, a snapshot
beyond the applied index) are assertions, not exceptions from this tree.
"""

from __future__ import annotations


class RaftError(Exception):
    """Base of every operating error the core raises."""


class NotLeader(RaftError):
    def __init__(self, leader_hint: str | None) -> None:
        super().__init__(f"not the leader (leader hint: {leader_hint or 'unknown'})")
        self.leader_hint = leader_hint


class TransferInProgress(RaftError):
    def __init__(self, target: str) -> None:
        super().__init__(f"leadership transfer to {target} in progress; proposal dropped")
        self.target = target


class ConfChangeRejected(RaftError):
    """A membership change cannot be appended now; it definitely did not happen."""


class ConfChangePending(ConfChangeRejected):
    def __init__(self, pending_index: int) -> None:
        super().__init__(
            f"configuration change at index {pending_index} is not yet committed"
        )
        self.pending_index = pending_index


class LeaderNotReady(ConfChangeRejected):
    def __init__(self) -> None:
        super().__init__("leader has not yet committed an entry of its current term")


class InvalidConfChange(RaftError):
    """The change is not valid against the current configuration."""


class InvalidTransfer(RaftError):
    """Leadership cannot be transferred to that node (not a voter in the configuration)."""

    def __init__(self, target: str) -> None:
        super().__init__(f"cannot transfer leadership to {target}: not a voter")
        self.target = target


class Compacted(RaftError):
    """The requested index lies before the first index storage still holds."""


class Unavailable(RaftError):
    """The requested index lies beyond the last index storage holds."""
