"""Workload clients: turn an `OpSpec` into requests on one node and an ok / fail / info.

Role: the Client part of a Jepsen test (jepsen-io/jepsen `client.clj`). A client is bound
to one node's `KvApi` for its whole life and is used by one worker thread at a time.

Rules (Maelstrom's `with-errors`, Jepsen's convention):
- `ok`: the operation happened, with the value shown.
- `fail`: it surely did not happen: the server said `definite: true`, the connection was
  never made, or it was a read (a read changes nothing, so an unknown read is a failed one).
- `info`: it may or may not have happened: a write or cas that timed out or got an answer
  with `definite: false`. The worker then continues under a new process id.
- A failed cas whose compare failed is `fail` with error `cas_mismatch` (it observed a
  different value); any other failed cas is `fail` with the server's error code and had no
  effect at all. The checks tell the two apart by that code.

Sessions (thesis 6.3): the sessions client registers a session and numbers its appends;
after an indefinite failure it retries the same request (same client id and sequence
number), and with probability `duplicate_probability` it also resends a request that
succeeded, as if the answer had been lost. The server must apply each append exactly once.
With `use_sessions=False` (the `--no-sessions` negative control) the same retries carry no
session, so a retried append may land twice, which the checks must catch.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from jepsen.api import ApiFailure, CasMismatch, KvApi, Session
from jepsen.generator import OpSpec

CompletionType = Literal["ok", "fail", "info"]
RETRY_BACKOFF_S = 0.2


@dataclass(frozen=True, slots=True)
class Completion:
    type: CompletionType
    value: Any = None
    error: str | None = None


class Client(Protocol):
    @property
    def node(self) -> str: ...

    def invoke(self, spec: OpSpec) -> Completion: ...

    def close(self) -> None: ...


def kv_key(key: Any) -> str:
    """The server-side key of a history key."""
    return f"jepsen-{key}"


def _failure(error: ApiFailure, write: bool) -> Completion:
    if not write or error.definite:
        return Completion("fail", None, error.code)
    return Completion("info", None, error.code)


def _parse_int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


class RegisterClient:
    """read / write / cas of small integers on independent keys."""

    def __init__(self, api: KvApi, consistency: str = "linearizable") -> None:
        self._api = api
        self._consistency = consistency

    @property
    def node(self) -> str:
        return self._api.node

    def close(self) -> None:
        self._api.close()

    def invoke(self, spec: OpSpec) -> Completion:
        key = kv_key(spec.key)
        try:
            if spec.f == "read":
                text = self._api.get(key, self._consistency)
                value = _parse_int(text)
                if text is not None and value is None:
                    return Completion("fail", None, f"unparsable value {text[:40]!r}")
                return Completion("ok", value)
            if spec.f == "write":
                self._api.put(key, str(spec.value))
                return Completion("ok", spec.value)
            if spec.f == "cas":
                expected, new = spec.value
                self._api.cas(key, str(expected), str(new))
                return Completion("ok", spec.value)
        except CasMismatch:
            return Completion("fail", spec.value, "cas_mismatch")
        except ApiFailure as error:
            completion = _failure(error, write=spec.f != "read")
            return Completion(completion.type, spec.value if spec.f != "read" else None,
                              completion.error)
        raise AssertionError(f"register client: unknown f {spec.f!r}")


def encode_element(value: int) -> str:
    return f"{value} "


def decode_list(text: str | None) -> list[int] | None:
    """The elements of an append-only list as the server stores it; None if malformed."""
    if text is None:
        return []
    try:
        return [int(part) for part in text.split()]
    except ValueError:
        return None


@dataclass(slots=True)
class SessionsClient:
    """Exactly-once appends through a client session, with deliberate retries."""

    api: KvApi
    rng: random.Random
    use_sessions: bool = True
    duplicate_probability: float = 0.1
    max_attempts: int = 4
    consistency: str = "linearizable"
    sleep: Any = time.sleep
    client_id: int | None = None
    next_seq: int = 1
    attempts_made: list[int] = field(default_factory=list)

    @property
    def node(self) -> str:
        return self.api.node

    def close(self) -> None:
        self.api.close()

    def invoke(self, spec: OpSpec) -> Completion:
        if spec.f == "read":
            try:
                text = self.api.get(kv_key(spec.key), self.consistency)
            except ApiFailure as error:
                return Completion("fail", None, error.code)
            elements = decode_list(text)
            if elements is None:
                return Completion("fail", None, f"unparsable list {str(text)[:40]!r}")
            return Completion("ok", elements)
        assert spec.f == "append", spec.f
        return self._append(kv_key(spec.key), int(spec.value))

    def _session(self) -> Session | None:
        if not self.use_sessions:
            return None
        if self.client_id is None:
            self.client_id = self.api.register_session()
            self.next_seq = 1
        return Session(self.client_id, self.next_seq, self.next_seq)

    def _append(self, key: str, value: int) -> Completion:
        try:
            session = self._session()
        except ApiFailure as error:
            # Nothing was appended: the session could not even be opened.
            return Completion("fail", value, f"register_session: {error.code}")
        maybe_applied = False
        succeeded = False
        last_error = "no attempt"
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.api.append(key, encode_element(value), session)
            except ApiFailure as error:
                if succeeded:
                    # Only a deliberate resend failed; the first answer already said ok.
                    return self._done(Completion("ok", value), attempt)
                last_error = error.code
                expired = error.code == "session_expired"
                if expired:
                    self.client_id = None
                if error.definite and not maybe_applied:
                    return self._done(Completion("fail", value, error.code), attempt)
                maybe_applied = maybe_applied or not error.definite
                if expired:
                    break
                self.sleep(RETRY_BACKOFF_S * attempt)
                continue
            if succeeded or attempt == self.max_attempts:
                return self._done(Completion("ok", value), attempt)
            if self.rng.random() >= self.duplicate_probability:
                return self._done(Completion("ok", value), attempt)
            # Pretend the answer was lost and send the same request again.
            succeeded = True
        return self._done(Completion("info", value, last_error), self.max_attempts)

    def _done(self, completion: Completion, attempts: int) -> Completion:
        self.attempts_made.append(attempts)
        if completion.type == "info":
            # Jepsen's rule: the process ends here; the next process opens a new session.
            self.client_id = None
        else:
            self.next_seq += 1
        return completion
