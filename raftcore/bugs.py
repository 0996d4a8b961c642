"""Planted bugs: a test-only switch that breaks the protocol on purpose (negative controls).

Role: every verification layer must show it has teeth. `Config.planted_bug` selects one of
these; the simulator, the hypothesis machine and the unit tests show each one is caught.

Rules:
- Never set in production code paths: `Config.planted_bug` defaults to None, and with None
  every code path behaves exactly as if this module did not exist.
- Each check in the core is a single identity comparison (`bug is PlantedBug.X`), placed
  at the one decision the bug corrupts.
"""

from __future__ import annotations

import enum


class PlantedBug(enum.Enum):
    COMMIT_OLD_TERM = "commit_old_term"
    """The leader commits an entry of an earlier term by counting replicas (Figure 8)."""

    DOUBLE_VOTE = "double_vote"
    """A server grants a second vote in the same term to a different candidate."""

    SKIP_CONF_GUARD = "skip_conf_guard"
    """The leader appends a configuration entry while another is uncommitted, or before
    it has committed an entry of its term (the July 2015 single-server bug)."""

    FORGET_PERSIST_VOTE = "forget_persist_vote"
    """The vote is not handed out in `Ready.hard_state`, so a restart forgets it."""

    APPLY_DUPLICATE = "apply_duplicate"
    """The session state machine applies a duplicate command again (implemented by the
    session layer, not the core)."""

    COUNT_UNPERSISTED_SELF = "count_unpersisted_self"
    """The leader counts its own entries toward commit as soon as it appends them, not
    once they are persisted, while it sends them before its own fsync (thesis 10.2.1)."""

    APPLY_UNCOMMITTED_EARLY = "apply_uncommitted_early"
    """While a leader's write is in flight, `Node.durable_committed_entries` hands out
    every durable entry, not only committed ones, so the driver applies entries that no
    majority holds yet (kvserver's early apply with its commit bound dropped)."""
