"""Safety invariants the simulator checks after every step, incrementally.

Rules:
- Each check is fed by the world as things happen (a Ready persisted, an entry applied, a
  role observed), keeps only what it needs across the whole run (all incarnations of all
  nodes), and raises `Violation(invariant, detail)` at the first breach.
- The invariants are the paper's (Figure 3) plus what the sessions promise:
  election safety (one leader per term), one vote per server per term (what makes election
  safety hold; a forgotten vote breaks it), log matching (an (index, term) pair names one
  entry and one predecessor term, across all logs and all time), leader completeness (a new
  leader of term T holds every entry committed in terms before T), leader append-only,
  state machine safety (one entry, and one state-machine snapshot, per applied index),
  commit index monotonic per incarnation, and at-most-once execution per (client, seq).
"""

from __future__ import annotations

from raftcore.types import Entry, NodeId


class Violation(Exception):
    """A safety invariant does not hold."""

    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant
        self.detail = detail


class SafetyChecker:
    """The invariants' memory, shared by every node and incarnation of one world."""

    OPTIONAL = frozenset({"vote safety", "at-most-once"})
    """Checks a negative-control test may switch off, to show that the remaining
    invariants (election safety, linearizability) catch a planted bug on their own."""

    def __init__(self, disabled: frozenset[str] = frozenset()) -> None:
        assert disabled <= self.OPTIONAL, f"unknown checks {sorted(disabled - self.OPTIONAL)}"
        self.check_votes = "vote safety" not in disabled
        self.check_executions = "at-most-once" not in disabled
        self.leader_of_term: dict[int, NodeId] = {}
        self.votes: dict[tuple[NodeId, int], NodeId] = {}
        self.entry_ids: dict[tuple[int, int], tuple[Entry, int]] = {}
        self.applied: dict[int, Entry] = {}
        self.snapshot_digest: dict[int, bytes] = {}
        self.executed: dict[tuple[int, int], int] = {}
        self.commit_by_term: dict[int, tuple[int, int]] = {}
        """term -> (highest index known committed while some node was in it, its term)."""

    def on_role(
        self, node_id: NodeId, term: int, is_leader: bool, voted_for: NodeId | None
    ) -> bool:
        """Observe a node's term, vote and role (after every batch it produced). True when
        the node is the first leader seen for `term`."""
        if voted_for is not None and self.check_votes:
            key = (node_id, term)
            previous = self.votes.get(key)
            if previous is None:
                self.votes[key] = voted_for
            elif previous != voted_for:
                raise Violation(
                    "vote safety",
                    f"{node_id} voted for {previous} and then {voted_for} in term {term}",
                )
        if is_leader:
            leader = self.leader_of_term.get(term)
            if leader is None:
                self.leader_of_term[term] = node_id
                return True
            if leader != node_id:
                raise Violation(
                    "election safety", f"{leader} and {node_id} are both leaders of term {term}"
                )
        return False

    def required_for_leader(self, term: int) -> tuple[int, int] | None:
        """(index, entry term) a new leader of `term` must hold: the highest entry known
        committed in an earlier term (leader completeness)."""
        best: tuple[int, int] | None = None
        for t, (index, entry_term) in self.commit_by_term.items():
            if t < term and (best is None or index > best[0]):
                best = (index, entry_term)
        return best

    def on_commit(self, term: int, commit_index: int, entry_term: int) -> None:
        """Some node in `term` knows `commit_index` (holding `entry_term`) is committed."""
        known = self.commit_by_term.get(term)
        if known is None or commit_index > known[0]:
            self.commit_by_term[term] = (commit_index, entry_term)

    def on_persist(
        self,
        node_id: NodeId,
        entries: tuple[Entry, ...],
        prev_term: int,
        is_leader: bool,
        last_stored: int,
    ) -> None:
        """A node persisted `entries`; `prev_term` is its term at `entries[0].index - 1`.
        (The world calls `ready()` after every input, so a leader's batch is its own.)"""
        first = entries[0]
        if is_leader and first.index <= last_stored:
            raise Violation(
                "leader append-only",
                f"leader {node_id} overwrote its log from index {first.index} "
                f"(last stored {last_stored})",
            )
        ids = self.entry_ids
        for entry in entries:
            key = (entry.index, entry.term)
            known = ids.get(key)
            if known is None:
                ids[key] = (entry, prev_term)
            elif known[1] != prev_term or (known[0] is not entry and known[0] != entry):
                raise Violation(
                    "log matching",
                    f"{node_id} holds a different entry or predecessor at index "
                    f"{entry.index} term {entry.term}",
                )
            prev_term = entry.term

    def on_apply(self, node_id: NodeId, entry: Entry) -> None:
        known = self.applied.get(entry.index)
        if known is None:
            self.applied[entry.index] = entry
        elif known is not entry and known != entry:  # The same object is equal: no compare.
            raise Violation(
                "state machine safety",
                f"{node_id} applied term {entry.term} at index {entry.index}, "
                f"another node applied term {known.term}",
            )

    def on_snapshot(self, node_id: NodeId, index: int, digest: bytes) -> None:
        known = self.snapshot_digest.get(index)
        if known is None:
            self.snapshot_digest[index] = digest
        elif known != digest:
            raise Violation(
                "state machine safety",
                f"{node_id}'s state machine at index {index} differs from another node's",
            )

    def on_execute(self, node_id: NodeId, client_id: int, seq: int, index: int) -> None:
        if not self.check_executions:
            return
        key = (client_id, seq)
        known = self.executed.get(key)
        if known is None:
            self.executed[key] = index
        elif known != index:
            raise Violation(
                "at-most-once",
                f"{node_id} executed client {client_id} seq {seq} at index {index}, "
                f"already executed at index {known}",
            )
