"""kvserver: the node, only I/O around the pure core of `raftcore`.

Timers call `tick`, sockets call `step`, a write-ahead log persists what `Ready` says, and an
HTTP layer turns requests into proposals and waits for them to apply. Nothing here decides
what Raft or the state machine decides; see DESIGN.md.

Modules: codec (bytes of the core's values), wal (segmented write-ahead log, hard state and
snapshot files), diskstorage (the core's Storage over the WAL), transport (authenticated
peer TCP), node (the Ready loop), http (the client API), __main__ (the CLI).
"""
