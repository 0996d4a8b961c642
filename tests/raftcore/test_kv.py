"""The KV state machine with client sessions: register, dedup, ack trimming, expiry, snapshots."""

from __future__ import annotations

import zlib

import pytest

from raftcore import commands
from raftcore.bugs import PlantedBug
from raftcore.commands import (
    Append,
    Cas,
    Command,
    Delete,
    Get,
    Put,
    RegisterSession,
    Response,
    SessionHeader,
    Status,
)
from raftcore.kv import ApplyResult, KVStateMachine, Outcome, SnapshotCorrupt, _result
from raftcore.types import Entry, EntryKind, TraceEvent

TIMEOUT = 10


class Log:
    """Feeds entries with consecutive indexes to a state machine."""

    def __init__(self, sm: KVStateMachine | None = None) -> None:
        self.sm = sm or KVStateMachine(TIMEOUT)
        self.now = 0

    def apply(self, command: Command, now: int | None = None):  # type: ignore[no-untyped-def]
        if now is not None:
            self.now = now
        entry = Entry(
            term=1,
            index=self.sm.applied_index + 1,
            data=commands.encode(command),
            cluster_time_ticks=self.now,
        )
        return self.sm.apply(entry)

    def noop(self, now: int, kind: EntryKind = EntryKind.NOOP):  # type: ignore[no-untyped-def]
        self.now = now
        entry = Entry(1, self.sm.applied_index + 1, kind, b"", now)
        return self.sm.apply(entry)

    def register(self) -> int:
        result = self.apply(RegisterSession())
        assert result.outcome is Outcome.REGISTERED
        assert result.client_id is not None
        return result.client_id


def h(client: int, seq: int, ack: int | None = None) -> SessionHeader:
    return SessionHeader(client, seq, seq if ack is None else ack)


def test_a_session_id_is_the_index_of_its_register_entry() -> None:
    log = Log()
    log.apply(Put("a", "1"))
    log.noop(0)
    result = log.apply(RegisterSession(nonce=42))
    assert result.index == 3
    assert result.client_id == 3
    assert result.response == Response(Status.OK)
    assert 3 in log.sm.sessions


def test_commands_without_a_session_execute_every_time() -> None:
    log = Log()
    assert log.apply(Append("k", "x")).response == Response(Status.OK, "x")
    assert log.apply(Append("k", "x")).response == Response(Status.OK, "xx")
    assert log.apply(Get("k")).response == Response(Status.OK, "xx")
    assert log.apply(Delete("k")).response == Response(Status.OK, "xx")
    assert log.apply(Get("k")).response == Response(Status.OK, None)
    assert log.apply(Cas("k", None, "v")).response == Response(Status.OK, "v")
    assert log.apply(Cas("k", None, "w")).response == Response(Status.CAS_MISMATCH, "v")
    assert dict(log.sm.data) == {"k": "v"}


def test_a_duplicate_gets_the_cached_response_and_is_not_executed_again() -> None:
    log = Log()
    cid = log.register()
    first = log.apply(Append("k", "x", h(cid, 1)))
    again = log.apply(Append("k", "x", h(cid, 1)))
    assert first.outcome is Outcome.APPLIED
    assert again.outcome is Outcome.DUPLICATE
    assert again.response == first.response == Response(Status.OK, "x")
    assert log.sm.read("k") == "x"


def test_a_failed_cas_is_cached_like_any_response() -> None:
    log = Log()
    cid = log.register()
    failed = log.apply(Cas("k", "old", "new", h(cid, 1)))
    assert failed.response == Response(Status.CAS_MISMATCH, None)
    log.apply(Put("k", "old"))  # Now the CAS would succeed if it ran again.
    retry = log.apply(Cas("k", "old", "new", h(cid, 1)))
    assert retry.outcome is Outcome.DUPLICATE
    assert retry.response == Response(Status.CAS_MISMATCH, None)
    assert log.sm.read("k") == "old"


def test_responses_below_ack_seq_are_dropped_and_their_retries_rejected() -> None:
    log = Log()
    cid = log.register()
    log.apply(Append("k", "a", h(cid, 1, 1)))
    log.apply(Append("k", "b", h(cid, 2, 1)))
    session = log.sm.sessions.get(cid)
    assert session is not None
    assert sorted(session.responses) == [1, 2]
    log.apply(Append("k", "c", h(cid, 3, 3)))  # The client has seen the answers to 1 and 2.
    assert sorted(session.responses) == [3]
    late = log.apply(Append("k", "a", h(cid, 1, 1)))
    assert late.outcome is Outcome.REJECTED
    assert late.response == Response(Status.STALE_REQUEST)
    assert log.sm.read("k") == "abc"


def test_ack_seq_never_moves_backwards() -> None:
    log = Log()
    cid = log.register()
    log.apply(Append("k", "a", h(cid, 1, 1)))
    log.apply(Append("k", "b", h(cid, 2, 2)))
    log.apply(Append("k", "c", h(cid, 3, 1)))  # A stale ack from a reordered retry.
    assert log.apply(Append("k", "a", h(cid, 1, 1))).response == Response(Status.STALE_REQUEST)
    assert log.sm.read("k") == "abc"


def test_commands_out_of_order_each_execute_once() -> None:
    log = Log()
    cid = log.register()
    log.apply(Append("k", "3", h(cid, 3, 1)))
    log.apply(Append("k", "1", h(cid, 1, 1)))
    log.apply(Append("k", "3", h(cid, 3, 1)))
    log.apply(Append("k", "2", h(cid, 2, 1)))
    assert log.sm.read("k") == "312"
    assert log.sm.sessions.highest_seqs() == {cid: 3}


def test_an_idle_session_expires_only_after_more_than_the_timeout() -> None:
    log = Log()
    cid = log.register()  # Active at cluster time 0.
    log.noop(TIMEOUT)
    assert cid in log.sm.sessions  # Idle for exactly the timeout: still alive.
    log.noop(TIMEOUT + 1)
    assert cid not in log.sm.sessions
    result = log.apply(Put("k", "v", h(cid, 1)))
    assert result.outcome is Outcome.EXPIRED
    assert result.response == Response(Status.SESSION_EXPIRED)
    assert log.sm.read("k") is None


def test_expiry_happens_when_the_later_entry_itself_is_a_command() -> None:
    log = Log()
    cid = log.register()
    result = log.apply(Put("k", "v", h(cid, 1)), now=TIMEOUT + 1)
    assert result.outcome is Outcome.EXPIRED
    assert log.sm.read("k") is None


def test_activity_keeps_a_session_alive() -> None:
    log = Log()
    cid = log.register()
    log.apply(Put("k", "1", h(cid, 1)), now=8)
    log.apply(Put("k", "1", h(cid, 1)), now=16)  # A duplicate counts as activity too.
    log.noop(26)
    assert cid in log.sm.sessions
    log.noop(27)
    assert cid not in log.sm.sessions


def test_unknown_session_answers_session_expired() -> None:
    log = Log()
    result = log.apply(Append("k", "x", h(99, 1)))
    assert result.outcome is Outcome.EXPIRED
    assert result.response == Response(Status.SESSION_EXPIRED)
    assert log.sm.read("k") is None


@pytest.mark.parametrize("kind", [EntryKind.NOOP, EntryKind.CONF_CHANGE])
def test_noop_and_conf_change_advance_index_and_time_but_not_data(kind: EntryKind) -> None:
    log = Log()
    log.apply(Put("k", "v"))
    before = dict(log.sm.data)
    result = log.sm.apply(Entry(2, 2, kind, b"\x01conf", 5))
    assert result.outcome is Outcome.NOOP
    assert result.response is None
    assert log.sm.applied_index == 2
    assert log.sm.cluster_time_ticks == 5
    assert dict(log.sm.data) == before


def test_cluster_time_never_moves_backwards() -> None:
    log = Log()
    log.noop(7)
    log.noop(3)
    assert log.sm.cluster_time_ticks == 7


def test_bad_entry_data_is_rejected_without_effect() -> None:
    sm = KVStateMachine(TIMEOUT)
    result = sm.apply(Entry(1, 1, EntryKind.NORMAL, b'{"op":"put","key":1}', 0))
    assert result.outcome is Outcome.REJECTED
    assert result.response is not None
    assert result.response.status is Status.BAD_COMMAND
    assert sm.applied_index == 1
    assert dict(sm.data) == {}


def test_entries_must_be_applied_in_order() -> None:
    sm = KVStateMachine(TIMEOUT)
    with pytest.raises(AssertionError):
        sm.apply(Entry(1, 2, EntryKind.NOOP))


def test_planted_apply_duplicate_bug_re_executes_a_duplicate() -> None:
    log = Log(KVStateMachine(TIMEOUT, planted_bug=PlantedBug.APPLY_DUPLICATE))
    cid = log.register()
    log.apply(Append("k", "x", h(cid, 1)))
    again = log.apply(Append("k", "x", h(cid, 1)))
    assert again.outcome is Outcome.APPLIED
    assert log.sm.read("k") == "xx"


def test_apply_entry_trace_events() -> None:
    events: list[TraceEvent] = []
    log = Log(KVStateMachine(TIMEOUT, node_id="n1", tracer=events.append))
    cid = log.register()
    log.apply(Put("k", "v", h(cid, 1)), now=3)
    log.apply(Put("k", "v", h(cid, 1)), now=3)
    log.noop(4)
    assert [e.name for e in events] == ["ApplyEntry"] * 4
    assert {e.node for e in events} == {"n1"}
    outcomes = [e.params["outcome"] for e in events]
    assert outcomes == ["registered", "applied", "duplicate", "noop"]
    assert events[1].params == {
        "index": 2,
        "kind": "Normal",
        "client_id": 1,
        "seq": 1,
        "outcome": "applied",
    }
    assert events[3].params["kind"] == "NoOp"
    assert events[3].params["client_id"] == 0
    assert events[3].state == {
        "applied_index": 4,
        "cluster_time_ticks": 4,
        "sessions": {"1": 1},
    }


def _busy_log() -> Log:
    log = Log()
    a = log.register()
    b = log.register()
    log.apply(Put("k", "v", h(a, 1)), now=2)
    log.apply(Cas("k", "x", "y", h(b, 1)), now=3)
    log.apply(Append("l", "é\u2603", h(b, 2, 1)), now=3)
    log.noop(4)
    return log


def test_snapshot_round_trip_restores_everything() -> None:
    log = _busy_log()
    blob = log.sm.snapshot()
    other = KVStateMachine(TIMEOUT)
    other.restore(blob)
    assert other.snapshot() == blob
    assert other.applied_index == log.sm.applied_index
    assert other.cluster_time_ticks == log.sm.cluster_time_ticks
    assert dict(other.data) == dict(log.sm.data)
    # Both continue identically: the cached failed CAS survives, and expiry agrees.
    twin = Log(other)
    for target in (log, twin):
        assert target.apply(Cas("k", "x", "y", h(2, 1)), now=5).outcome is Outcome.DUPLICATE
        target.noop(14)
        target.noop(15)
    assert other.snapshot() == log.sm.snapshot()
    assert other.sessions.highest_seqs() == {2: 2}


def test_equal_states_give_equal_snapshot_bytes() -> None:
    assert _busy_log().sm.snapshot() == _busy_log().sm.snapshot()


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-1],
        lambda b: b[:40] + bytes([b[40] ^ 1]) + b[41:],
        lambda b: b"x" + b[1:],
        lambda b: b.replace(b"\n", b"", 2),
        lambda b: b"",
    ],
)
def test_a_corrupt_snapshot_is_detected_and_not_used(damage) -> None:  # type: ignore[no-untyped-def]
    blob = _busy_log().sm.snapshot()
    sm = KVStateMachine(TIMEOUT)
    sm.apply(Entry(1, 1, EntryKind.NOOP))
    before = sm.snapshot()
    with pytest.raises(SnapshotCorrupt):
        sm.restore(damage(blob))
    assert sm.snapshot() == before


def test_a_well_checksummed_snapshot_with_a_bad_shape_is_rejected() -> None:
    body = b'{"applied_index":-1,"cluster_time_ticks":0,"data":{},"sessions":[]}'
    blob = b"raftkv-snapshot/1\n" + b"%08x\n" % zlib.crc32(body) + body
    with pytest.raises(SnapshotCorrupt, match="malformed"):
        KVStateMachine(TIMEOUT).restore(blob)


def test_fast_apply_result_equals_the_constructor() -> None:
    args = (7, Outcome.APPLIED, Response(Status.OK, "v"), Put("k", "v"), 3, 2)
    fast = _result(*args)
    assert type(fast) is ApplyResult
    assert fast == ApplyResult(*args)
    assert hash(fast) == hash(ApplyResult(*args))
    with pytest.raises(AttributeError):
        fast.index = 8  # type: ignore[misc]
