"""Client sessions for exactly-once commands (Ongaro's thesis, section 6.3).

Rules:
- Pure and deterministic: every replica applying the same entries holds the same table.
  Time is the cluster time carried by log entries (`Entry.cluster_time_ticks`), never a
  local clock, so replicas expire the same sessions at the same log position.
- A session is registered through the log; its id is the index of that entry.
- Dedup happens at apply time. A command whose `seq` has a cached response gets that
  response again (failed CAS results included). The client's `ack_seq` (its lowest
  unacknowledged sequence number) lets the table forget every response below it; a
  command below that floor gets STALE_REQUEST, never a second execution.
- A session idle for more than `session_timeout_ticks` expires as soon as an entry with a
  later cluster time is applied; unknown and expired sessions answer SESSION_EXPIRED.

Theory of operation: the state machine calls `expire(now)` for every entry it applies,
then `check(header, now)` before executing a session command. `check` answers NEW (execute
it, then `record` the response), DUPLICATE (answer the cached response), STALE or EXPIRED.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from raftcore.commands import Response, SessionHeader, Status


class Verdict(enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    STALE = "stale"
    EXPIRED = "expired"


@dataclass(slots=True)
class Session:
    """One client's session: its activity clock and the responses it may still ask for."""

    client_id: int
    last_active_ticks: int
    ack_seq: int = 0
    """Every response below this sequence number has been acknowledged and dropped."""
    highest_seq: int = 0
    """The highest sequence number executed so far (0: none)."""
    responses: dict[int, Response] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Check:
    verdict: Verdict
    cached: Response | None = None


# Verdicts without a cached response are shared (frozen, compared by value).
_CHECK_NEW = Check(Verdict.NEW)
_CHECK_EXPIRED = Check(Verdict.EXPIRED)
_CHECK_STALE = Check(Verdict.STALE, Response(Status.STALE_REQUEST))


class SessionTable:
    """The replicated session table. Iteration orders are sorted, so snapshots are stable."""

    __slots__ = (
        "_earliest_active_ticks",
        "_last_expiry_ticks",
        "_sessions",
        "session_timeout_ticks",
    )

    def __init__(self, session_timeout_ticks: int) -> None:
        assert session_timeout_ticks > 0, "sessions need a positive timeout"
        self.session_timeout_ticks = session_timeout_ticks
        self._sessions: dict[int, Session] = {}
        self._last_expiry_ticks = -1
        self._earliest_active_ticks = 0
        """A lower bound of every session's `last_active_ticks` (activity only moves
        forward), so `expire` rescans the table only when a session may have expired."""

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, client_id: object) -> bool:
        return client_id in self._sessions

    def get(self, client_id: int) -> Session | None:
        return self._sessions.get(client_id)

    def register(self, client_id: int, now_ticks: int) -> None:
        assert client_id not in self._sessions, "a session id is a unique log index"
        self._sessions[client_id] = Session(client_id, last_active_ticks=now_ticks)
        self._earliest_active_ticks = min(self._earliest_active_ticks, now_ticks)

    def expire(self, now_ticks: int) -> list[int]:
        """Drop sessions idle for more than the timeout at cluster time `now_ticks`."""
        if now_ticks <= self._last_expiry_ticks:
            return []  # Nothing can newly expire unless cluster time moved forward.
        self._last_expiry_ticks = now_ticks
        deadline = now_ticks - self.session_timeout_ticks
        if deadline <= self._earliest_active_ticks:
            return []  # Every session was active at or after the deadline.
        sessions = self._sessions
        expired = sorted(cid for cid, s in sessions.items() if s.last_active_ticks < deadline)
        for client_id in expired:
            del sessions[client_id]
        self._earliest_active_ticks = min(
            (s.last_active_ticks for s in sessions.values()), default=now_ticks
        )
        return expired

    def check(self, header: SessionHeader, now_ticks: int, *, dedup: bool = True) -> Check:
        """Classify a session command; a live session counts as active at `now_ticks`.

        `dedup=False` is the planted APPLY_DUPLICATE bug: duplicates look NEW.
        """
        session = self._sessions.get(header.client_id)
        if session is None:
            return _CHECK_EXPIRED
        session.last_active_ticks = max(session.last_active_ticks, now_ticks)
        cached = session.responses.get(header.seq)
        if cached is not None and dedup:
            return Check(Verdict.DUPLICATE, cached)
        if header.seq < session.ack_seq:
            return _CHECK_STALE
        return _CHECK_NEW

    def record(self, header: SessionHeader, response: Response) -> None:
        """Cache the response of a newly executed command."""
        session = self._sessions[header.client_id]
        session.responses[header.seq] = response
        session.highest_seq = max(session.highest_seq, header.seq)

    def acknowledge(self, header: SessionHeader) -> None:
        """Forget responses below the client's lowest unacknowledged sequence number."""
        session = self._sessions.get(header.client_id)
        if session is None or header.ack_seq <= session.ack_seq:
            return
        ack_seq = session.ack_seq = header.ack_seq
        responses = session.responses
        for seq in [s for s in responses if s < ack_seq]:
            del responses[seq]

    def highest_seqs(self) -> dict[int, int]:
        """{client_id: highest executed seq}, sorted by client id (the trace's view)."""
        return {cid: self._sessions[cid].highest_seq for cid in sorted(self._sessions)}

    def to_doc(self) -> list[dict[str, Any]]:
        """A JSON-ready, canonically ordered rendering (for snapshots)."""
        return [
            {
                "client_id": s.client_id,
                "last_active_ticks": s.last_active_ticks,
                "ack_seq": s.ack_seq,
                "highest_seq": s.highest_seq,
                "responses": [
                    [seq, s.responses[seq].status.value, s.responses[seq].value]
                    for seq in sorted(s.responses)
                ],
            }
            for s in (self._sessions[cid] for cid in sorted(self._sessions))
        ]

    @classmethod
    def from_doc(
        cls, doc: list[dict[str, Any]], session_timeout_ticks: int, last_expiry_ticks: int
    ) -> SessionTable:
        """Rebuild a table from `to_doc` output. Raises KeyError/TypeError/ValueError on a
        malformed document (the caller turns those into one typed error)."""
        table = cls(session_timeout_ticks)
        table._last_expiry_ticks = last_expiry_ticks
        for raw in doc:
            session = Session(
                client_id=_as_int(raw["client_id"]),
                last_active_ticks=_as_int(raw["last_active_ticks"]),
                ack_seq=_as_int(raw["ack_seq"]),
                highest_seq=_as_int(raw["highest_seq"]),
            )
            for seq, status, value in raw["responses"]:
                if value is not None and not isinstance(value, str):
                    raise TypeError(f"response value must be a string, got {value!r}")
                session.responses[_as_int(seq)] = Response(Status(status), value)
            if session.client_id in table._sessions:
                raise ValueError(f"session {session.client_id} appears twice")
            table._sessions[session.client_id] = session
        table._earliest_active_ticks = min(
            (s.last_active_ticks for s in table._sessions.values()), default=0
        )
        return table


def _as_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value
