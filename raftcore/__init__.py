"""raftcore: a pure, deterministic Raft core in the style of etcd's raft.

No I/O, no clocks, no threads, no global randomness: inputs are ticks, messages and
requests; the output is a `Ready` batch the driver persists, sends, applies and
acknowledges. See `raftcore.types` for the contract.
"""
