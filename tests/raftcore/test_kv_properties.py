"""Properties of the session state machine under arbitrary retries, acks and clock jumps.

A hypothesis-generated log mixes new commands, retries of old sequence numbers, and
acknowledgements from a few clients, with the cluster time jumping forward. Checked:
each (client, seq) executes at most once; answers are never silent re-executions; a
replica restored from a snapshot taken at any point continues byte-identically.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from raftcore import commands
from raftcore.commands import Append, RegisterSession, SessionHeader, Status
from raftcore.kv import KVStateMachine, Outcome
from raftcore.types import Entry, EntryKind

TIMEOUT = 20

steps = st.lists(
    st.tuples(
        st.sampled_from(["new", "retry", "ack", "noop", "register"]),
        st.integers(0, 2),  # client slot
        st.integers(0, 8),  # which old seq to retry / time advance
    ),
    max_size=60,
)


def build_log(plan: list[tuple[str, int, int]]) -> list[Entry]:
    """Entries as clients would propose them; client ids are the register entries' indexes."""
    entries: list[Entry] = []
    clients: dict[int, dict[str, int]] = {}
    now = 0

    def add(kind: EntryKind, data: bytes) -> None:
        entries.append(Entry(1, len(entries) + 1, kind, data, now))

    for action, slot, arg in plan:
        client = clients.get(slot)
        if action == "register" or client is None:
            add(EntryKind.NORMAL, commands.encode(RegisterSession(slot)))
            clients[slot] = {"id": len(entries), "next": 1, "ack": 1}
            continue
        cid = client["id"]
        if action == "noop":
            now += arg * 3
            add(EntryKind.NOOP, b"")
        elif action == "ack":
            client["ack"] = client["next"]
        else:
            seq = client["next"] if action == "new" else max(1, client["next"] - 1 - arg)
            client["next"] = max(client["next"], seq + 1)
            header = SessionHeader(cid, seq, min(client["ack"], seq))
            token = f"<{cid}.{seq}>"
            add(EntryKind.NORMAL, commands.encode(Append("log", token, header)))
    return entries


@settings(max_examples=150, deadline=None)
@given(steps)
def test_each_client_request_executes_at_most_once(plan: list[tuple[str, int, int]]) -> None:
    sm = KVStateMachine(TIMEOUT)
    executed: set[tuple[int, int]] = set()
    for entry in build_log(plan):
        result = sm.apply(entry)
        if result.outcome is Outcome.APPLIED and result.client_id is not None:
            assert result.seq is not None
            key = (result.client_id, result.seq)
            assert key not in executed, f"{key} executed twice"
            executed.add(key)
        if result.outcome in (Outcome.DUPLICATE, Outcome.REJECTED, Outcome.EXPIRED):
            assert result.client_id is not None
            assert result.response is not None
            assert result.response.status is not Status.BAD_COMMAND
    value = sm.read("log") or ""
    for cid, seq in executed:
        assert value.count(f"<{cid}.{seq}>") == 1


@settings(max_examples=100, deadline=None)
@given(steps, st.integers(0, 60))
def test_a_replica_restored_from_any_snapshot_continues_identically(
    plan: list[tuple[str, int, int]], cut: int
) -> None:
    entries = build_log(plan)
    cut = min(cut, len(entries))
    a = KVStateMachine(TIMEOUT)
    for entry in entries[:cut]:
        a.apply(entry)
    b = KVStateMachine(TIMEOUT)
    b.restore(a.snapshot())
    for entry in entries[cut:]:
        assert a.apply(entry) == b.apply(entry)
    assert a.snapshot() == b.snapshot()
