"""Operating errors of the node (kvserver): one documented tree.

    KvServerError
    ├── StorageError                 the data directory cannot be used as it is
    │   ├── CorruptRecord(path, offset, reason)
    │   │                            a checksummed record failed verification somewhere other
    │   │                            than a torn tail; the node refuses to start
    │   └── DataDirMismatch          the data directory belongs to another node id
    └── ConfigError                  a flag or address that cannot work

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
