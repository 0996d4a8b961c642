"""Operating errors of the node (kvserver): one documented tree.

    KvServerError
    ├── StorageError                 the data directory cannot be used as it is
    │   ├── CorruptRecord(path, offset, reason)
    │   │                            a checksummed record failed verification somewhere other
    │   │                            than a torn tail; the node refuses to start
    │   └── DataDirMismatch          the data directory belongs to another node id
    ├── ConfigError                  a flag or address that cannot work
    └── RequestFailed(definite)      a client request that did not complete (see below)

Errors the core raises (NotLeader, ConfChangeRejected, ...) come from `raftcore.errors`;
the HTTP layer maps both trees onto status codes and the `definite` flag.
"""

from __future__ import annotations

from pathlib import Path


class KvServerError(Exception):
    """Base of every operating error raised by kvserver itself."""


class StorageError(KvServerError):
    """The data directory cannot be read or written as required."""


class CorruptRecord(StorageError):
    """A record that is not a torn tail failed its checksum or framing."""

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        super().__init__(f"corrupt record in {path} at byte offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class DataDirMismatch(StorageError):
    """The data directory was created by another node."""


class ConfigError(KvServerError):
    """A command-line flag or configuration value that cannot work."""


class RequestFailed(KvServerError):
    """A client request that did not complete; `definite` says it surely did not happen.

        RequestFailed(definite)
        ├── NoLeader               no leader is known; nothing was proposed (definite)
        ├── ProposalDropped        the proposal was refused or lost before it could commit
        │                          (definite: it never will)
        ├── OutcomeUnknown         it may or may not take effect: leadership was lost, the
        │                          wait timed out, or a forwarded request got no answer
        └── Overloaded             too many requests in flight; nothing was proposed
    """

    status = 503
    code = "unavailable"

    def __init__(self, message: str, *, definite: bool) -> None:
        super().__init__(message)
        self.message = message
        self.definite = definite


class NoLeader(RequestFailed):
    code = "no_leader"

    def __init__(self, message: str = "no leader is known; retry later") -> None:
        super().__init__(message, definite=True)


class ProposalDropped(RequestFailed):
    code = "proposal_dropped"

    def __init__(self, message: str) -> None:
        super().__init__(message, definite=True)


class OutcomeUnknown(RequestFailed):
    status = 504
    code = "outcome_unknown"

    def __init__(self, message: str) -> None:
        super().__init__(message, definite=False)


class Overloaded(RequestFailed):
    code = "overloaded"

    def __init__(self, message: str = "too many requests in flight") -> None:
        super().__init__(message, definite=True)
