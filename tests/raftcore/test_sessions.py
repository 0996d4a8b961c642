"""Data-driven scripts for client sessions (testdata/sessions/*.txt), etcd style.

Each directive appends one entry to a log and applies it to a `KVStateMachine`; the output
is the `ApplyResult` rendered on one line. Set RAFTCORE_REWRITE=1 to regenerate the
expected outputs (then review the diff). Commands:

    init timeout=T                      a fresh state machine (session_timeout_ticks=T)
    register [now=T]                    RegisterSession
    put|append key=K value=V [session]  session = client=C seq=S [ack=A]; now=T sets the
    cas key=K expected=E new=N [...]    entry's cluster time (it stays put otherwise);
    delete|get key=K [session]          expected=- means "absent"
    noop now=T | conf now=T             a NOOP / CONF_CHANGE entry
    sessions                            the live sessions and their cached responses
    restore                             snapshot, restore into a new machine, continue there
"""

from __future__ import annotations

from pathlib import Path

import pytest
from datadriven import Directive, run_file

from raftcore import commands
from raftcore.commands import (
    Append,
    Cas,
    Command,
    Delete,
    Get,
    Put,
    RegisterSession,
    SessionHeader,
)
from raftcore.kv import ApplyResult, KVStateMachine
from raftcore.types import Entry, EntryKind

SCRIPTS = sorted((Path(__file__).parent / "testdata" / "sessions").glob("*.txt"))


class SessionEnv:
    def __init__(self) -> None:
        self.sm = KVStateMachine(10)
        self.now = 0

    def handle(self, d: Directive) -> str:
        now = d.get("now")
        if now is not None:
            self.now = int(now)
        if d.command == "init":
            self.sm = KVStateMachine(int(d.get("timeout", "10") or 10))
            self.now = 0
            return "ok"
        if d.command == "sessions":
            return self._sessions()
        if d.command == "restore":
            blob = self.sm.snapshot()
            self.sm = KVStateMachine(self.sm.session_timeout_ticks)
            self.sm.restore(blob)
            return f"restored at index {self.sm.applied_index} ({len(blob)} bytes)"
        if d.command in ("noop", "conf"):
            kind = EntryKind.NOOP if d.command == "noop" else EntryKind.CONF_CHANGE
            return self._render(self._apply(kind, b""))
        return self._render(self._apply(EntryKind.NORMAL, commands.encode(self._command(d))))

    def _command(self, d: Directive) -> Command:
        if d.command == "register":
            return RegisterSession()
        session = None
        if d.get("client") is not None:
            seq = int(d.get("seq") or 0)
            session = SessionHeader(int(d.get("client") or 0), seq, int(d.get("ack") or seq))
        key = d.get("key") or ""
        if d.command == "put":
            return Put(key, d.get("value") or "", session)
        if d.command == "append":
            return Append(key, d.get("value") or "", session)
        if d.command == "cas":
            expected = d.get("expected")
            return Cas(key, None if expected == "-" else expected, d.get("new") or "", session)
        if d.command == "delete":
            return Delete(key, session)
        assert d.command == "get", f"{d.pos}: unknown command {d.command}"
        return Get(key, session)

    def _apply(self, kind: EntryKind, data: bytes) -> ApplyResult:
        entry = Entry(1, self.sm.applied_index + 1, kind, data, self.now)
        return self.sm.apply(entry)

    def _render(self, result: ApplyResult) -> str:
        line = f"{result.index}: {result.outcome.value}"
        if result.client_id is not None:
            line += f" client={result.client_id}"
        if result.seq is not None:
            line += f" seq={result.seq}"
        if result.response is not None:
            line += f" -> {result.response.status.value}"
            if result.response.value is not None:
                line += f" {result.response.value!r}"
        return line + f" (time {self.sm.cluster_time_ticks})"

    def _sessions(self) -> str:
        lines = []
        for client_id in sorted(self.sm.sessions.highest_seqs()):
            session = self.sm.sessions.get(client_id)
            assert session is not None
            cached = ",".join(str(seq) for seq in sorted(session.responses)) or "-"
            lines.append(
                f"client {client_id}: last active {session.last_active_ticks}, "
                f"ack {session.ack_seq}, highest {session.highest_seq}, cached {cached}"
            )
        return "\n".join(lines) or "no sessions"


def test_scripts_exist() -> None:
    assert len(SCRIPTS) >= 3


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_session_script(path: Path) -> None:
    run_file(path, SessionEnv().handle)
