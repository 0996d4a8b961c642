"""Workload clients over scripted node APIs: fail versus info, session retries, and the
`--no-sessions` control that lets a retried append land twice."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from jepsen.api import ApiFailure, ApiTimeout, CasMismatch, Session
from jepsen.client import RegisterClient, SessionsClient, decode_list
from jepsen.generator import OpSpec
from jepsen.memdb import MemoryDB


class ScriptedApi:
    """A KvApi whose answers come from a script of callables (raise or return)."""

    def __init__(self, script: list[Callable[[], Any]]) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, Any]] = []

    @property
    def node(self) -> str:
        return "n1"

    def close(self) -> None:
        pass

    def _next(self, call: str, detail: Any) -> Any:
        self.calls.append((call, detail))
        return self.script.pop(0)()

    def get(self, key: str, consistency: str = "linearizable") -> str | None:
        return self._next("get", (key, consistency))  # type: ignore[no-any-return]

    def put(self, key: str, value: str, session: Session | None = None) -> None:
        self._next("put", (key, value, session))

    def cas(self, key: str, expected: str, new: str, session: Session | None = None) -> None:
        self._next("cas", (key, expected, new, session))

    def append(self, key: str, value: str, session: Session | None = None) -> str | None:
        return self._next("append", (key, value, session))  # type: ignore[no-any-return]

    def register_session(self) -> int:
        return self._next("register", None)  # type: ignore[no-any-return]


def raises(error: Exception) -> Callable[[], Any]:
    def go() -> Any:
        raise error

    return go


def returns(value: Any) -> Callable[[], Any]:
    return lambda: value


@pytest.mark.parametrize(
    ("spec", "answer", "expected"),
    [
        (OpSpec("read", 1), returns("3"), ("ok", 3, None)),
        (OpSpec("read", 1), returns(None), ("ok", None, None)),
        (OpSpec("read", 1), raises(ApiTimeout("slow")), ("fail", None, "timeout")),
        (OpSpec("write", 1, 2), returns(None), ("ok", 2, None)),
        (OpSpec("write", 1, 2), raises(ApiFailure(True, "no_leader", "")),
         ("fail", 2, "no_leader")),
        (OpSpec("write", 1, 2), raises(ApiTimeout("slow")), ("info", 2, "timeout")),
        (OpSpec("write", 1, 2), raises(ApiFailure(False, "outcome_unknown", "")),
         ("info", 2, "outcome_unknown")),
        (OpSpec("cas", 1, [2, 3]), raises(CasMismatch("differs")),
         ("fail", [2, 3], "cas_mismatch")),
        (OpSpec("cas", 1, [2, 3]), raises(ApiTimeout("slow")), ("info", [2, 3], "timeout")),
    ],
)
def test_register_client_maps_definite_to_fail_and_unknown_to_info(
    spec: OpSpec, answer: Callable[[], Any], expected: tuple[str, Any, str | None]
) -> None:
    completion = RegisterClient(ScriptedApi([answer])).invoke(spec)
    assert (completion.type, completion.value, completion.error) == expected


def test_stale_reads_ask_for_consistency_stale() -> None:
    api = ScriptedApi([returns("1")])
    RegisterClient(api, consistency="stale").invoke(OpSpec("read", 4))
    assert api.calls == [("get", ("jepsen-4", "stale"))]


def sessions_client(api: ScriptedApi, max_attempts: int = 4) -> SessionsClient:
    return SessionsClient(api, random.Random(1), duplicate_probability=0.0,
                          max_attempts=max_attempts, sleep=lambda _s: None)


def test_a_timed_out_append_is_retried_with_the_same_session_and_seq() -> None:
    api = ScriptedApi([returns(41), raises(ApiTimeout("slow")), returns("0 ")])
    completion = sessions_client(api).invoke(OpSpec("append", 9, 0))
    assert completion.type == "ok"
    headers = [call[1][2] for call in api.calls if call[0] == "append"]
    assert headers == [Session(41, 1, 1), Session(41, 1, 1)]


def test_unknown_then_definite_failure_is_info_and_the_next_process_gets_a_new_session() -> None:
    api = ScriptedApi([returns(5), raises(ApiTimeout("slow")),
                       raises(ApiFailure(True, "no_leader", "")), returns(6), returns("")])
    client = sessions_client(api, max_attempts=2)
    assert client.invoke(OpSpec("append", 1, 0)).type == "info"
    assert client.invoke(OpSpec("append", 1, 1)).type == "ok"
    assert [c[0] for c in api.calls] == ["register", "append", "append", "register", "append"]
    assert api.calls[-1][1][2] == Session(6, 1, 1)


def test_a_definite_first_failure_is_fail_and_the_sequence_moves_on() -> None:
    api = ScriptedApi([returns(5), raises(ApiFailure(True, "no_leader", "")), returns("")])
    client = sessions_client(api)
    assert client.invoke(OpSpec("append", 1, 0)).type == "fail"
    assert client.invoke(OpSpec("append", 1, 1)).type == "ok"
    assert api.calls[-1][1][2] == Session(5, 2, 2)


def test_deliberate_resend_is_exactly_once_with_sessions_and_twice_without() -> None:
    for use_sessions, expected in ((True, [0]), (False, [0, 0])):
        db = MemoryDB(["n1"], seed=1)
        client = SessionsClient(db.api("n1", 1.0), random.Random(1), use_sessions=use_sessions,
                                duplicate_probability=1.0, sleep=lambda _s: None)
        assert client.invoke(OpSpec("append", 3, 0)).type == "ok"
        assert client.invoke(OpSpec("read", 3)).value == expected


def test_decode_list_refuses_garbage() -> None:
    assert decode_list("1 2 3 ") == [1, 2, 3]
    assert decode_list(None) == []
    assert decode_list("1 x") is None
