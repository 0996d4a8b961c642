"""Simulated clients: sessions, retries after timeouts, and the history they record.

Rules:
- Closed loop: a client has at most one operation outstanding. Writes carry a session
  header; a timed-out write is retried with the same sequence number (so the session layer,
  not luck, makes it exactly-once). Reads go through ReadIndex and are not retried: a
  read that times out is recorded with an unknown outcome.
- The history uses the world's event clock (strictly increasing), not ticks.
- A definite answer ends an operation (`ok` or a definite failure such as a CAS mismatch).
  SESSION_EXPIRED ends it as unknown: an earlier attempt may have executed before the
  session expired. The client then registers a new session.
- Values are unique per client and operation, so a duplicate execution shows in the data.
- Every choice comes from the `random.Random` handed in.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from raftcore import commands
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
from raftcore.sim.linearizability import Operation


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """A client's request to a node: a command for the log, or a ReadIndex read of `key`."""

    client: str
    request_id: int
    data: bytes = b""
    read_key: str | None = None
    register_nonce: int = 0
    client_id: int = 0
    seq: int = 0


class ReplyKind(enum.Enum):
    RESULT = "result"
    REDIRECT = "redirect"
    """Not the leader (or a transfer is under way): try `leader_hint`."""


@dataclass(frozen=True, slots=True)
class ClientReply:
    request_id: int
    kind: ReplyKind
    response: Response | None = None
    client_id: int = 0
    """For a registration: the new session's id."""
    leader_hint: str | None = None


@dataclass(slots=True)
class PendingOp:
    f: str
    key: str
    value: str | None
    expected: str | None
    call: int
    seq: int
    request_id: int
    """The latest attempt's id; replies to older attempts are still valid results."""
    deadline_tick: int
    attempts: int = 1
    redirected: bool = False
    """The latest attempt was redirected: resend to the hinted leader at the deadline."""
    first_request_id: int = 0


@dataclass(frozen=True, slots=True)
class ClientOptions:
    keys: int = 2
    request_probability: float = 0.5
    timeout_ticks: int = 30
    read_fraction: float = 0.2


class Client:
    """One simulated client process (its index is the history's process id)."""

    def __init__(
        self, index: int, rng: random.Random, options: ClientOptions, targets: list[str]
    ) -> None:
        self.index = index
        self.name = f"c{index}"
        self.rng = rng
        self.options = options
        self.targets = targets
        self.target = rng.choice(targets)
        self.client_id = 0
        self.next_seq = 1
        self.ack_seq = 1
        self.op: PendingOp | None = None
        self.registering: tuple[int, int] | None = None  # (request_id, deadline_tick)
        self.history: list[Operation] = []
        self._request_ids = 0
        self._values = 0
        self.completed = 0

    # Driving.

    def tick(self, now: int, clock: int) -> list[tuple[str, ClientRequest]]:
        """Time passes: retry on timeouts, start a new operation. Returns requests to send."""
        if self.client_id == 0:
            if self.registering is None or now >= self.registering[1]:
                return [self._register(now)]
            return []
        op = self.op
        if op is None:
            if self.rng.random() < self.options.request_probability:
                return [self._start(now, clock)]
            return []
        if now < op.deadline_tick:
            return []
        if op.f == "read":
            self._finish(clock, None, None, unknown=True)
            return []
        if not op.redirected:
            self.target = self.rng.choice(self.targets)  # Timed out: try another node.
        op.redirected = False
        op.attempts += 1
        op.request_id = self._next_request_id()
        op.deadline_tick = now + self.options.timeout_ticks
        return [(self.target, self._write_request(op))]

    def on_reply(self, reply: ClientReply, now: int, clock: int) -> list[tuple[str, ClientRequest]]:
        if self.registering is not None and reply.request_id == self.registering[0]:
            return self._on_register_reply(reply, now)
        op = self.op
        if op is None or not op.first_request_id <= reply.request_id <= op.request_id:
            return []  # A late reply to an operation that already ended.
        if reply.kind is ReplyKind.REDIRECT:
            if reply.request_id != op.request_id:
                return []  # Only the latest attempt's redirect counts (duplicates do not).
            hint = reply.leader_hint
            self.target = hint if hint in self.targets else self.rng.choice(self.targets)
            if op.f == "read":
                self._finish(clock, None, None, unknown=True)
                return []
            # Resend next tick: an immediate resend would let stale hints ping-pong.
            op.redirected = True
            op.deadline_tick = now + 1
            return []
        response = reply.response
        assert response is not None
        status = response.status
        assert status is not Status.BAD_COMMAND, f"{self.name} sent a bad command"
        if status in (Status.SESSION_EXPIRED, Status.STALE_REQUEST):
            self._finish(clock, None, None, unknown=True)
            self.client_id = 0  # Open a new session before the next operation.
            self.registering = None
            return []
        self._finish(clock, status, response.value, unknown=False)
        return []

    def abandon(self, clock: int) -> None:
        """The run ended: an outstanding operation has an unknown outcome."""
        if self.op is not None:
            self._finish(clock, None, None, unknown=True)

    # Internals.

    def _next_request_id(self) -> int:
        self._request_ids += 1
        return self._request_ids

    def _register(self, now: int) -> tuple[str, ClientRequest]:
        request_id = self._next_request_id()
        self.registering = (request_id, now + self.options.timeout_ticks)
        if now > 0:
            self.target = self.rng.choice(self.targets)
        data = commands.encode(RegisterSession(nonce=self.index * 1_000_000 + request_id))
        request = ClientRequest(
            self.name, request_id, data, register_nonce=self.index * 1_000_000 + request_id
        )
        return self.target, request

    def _on_register_reply(self, reply: ClientReply, now: int) -> list[tuple[str, ClientRequest]]:
        if reply.kind is ReplyKind.REDIRECT:
            hint = reply.leader_hint
            self.target = hint if hint in self.targets else self.rng.choice(self.targets)
            return [self._register(now)]
        assert reply.client_id > 0, "a registration answers the new session id"
        self.client_id = reply.client_id
        self.registering = None
        self.next_seq = 1
        self.ack_seq = 1
        return []

    def _start(self, now: int, clock: int) -> tuple[str, ClientRequest]:
        rng = self.rng
        key = f"k{rng.randrange(self.options.keys)}"
        self._values += 1
        value = f"{self.index}.{self._values};"
        request_id = self._next_request_id()
        deadline = now + self.options.timeout_ticks
        if rng.random() < self.options.read_fraction:
            self.op = PendingOp(
                "read", key, None, None, clock, 0, request_id, deadline, first_request_id=request_id
            )
            return self.target, ClientRequest(self.name, request_id, read_key=key)
        f = rng.choice(("put", "append", "append", "cas", "get", "delete"))
        expected: str | None = None
        if f == "cas":
            # Compare against a value some client may have written, or absence.
            expected = rng.choice((None, f"{rng.randrange(1, 5)}.{rng.randrange(1, 4)};"))
        seq = self.next_seq
        self.next_seq += 1
        # ack_seq is the lowest unacknowledged seq; clients sometimes lag in reporting it.
        lag = rng.randrange(3) if rng.random() < 0.3 else 0
        self.ack_seq = max(1, seq - lag)
        self.op = PendingOp(
            f, key, value, expected, clock, seq, request_id, deadline, first_request_id=request_id
        )
        return self.target, self._write_request(self.op)

    def _write_request(self, op: PendingOp) -> ClientRequest:
        header = SessionHeader(self.client_id, op.seq, min(self.ack_seq, op.seq))
        command: Command
        if op.f == "put":
            command = Put(op.key, op.value or "", header)
        elif op.f == "append":
            command = Append(op.key, op.value or "", header)
        elif op.f == "cas":
            command = Cas(op.key, op.expected, op.value or "", header)
        elif op.f == "delete":
            command = Delete(op.key, header)
        else:
            command = Get(op.key, header)
        return ClientRequest(
            self.name,
            op.request_id,
            commands.encode(command),
            client_id=self.client_id,
            seq=op.seq,
        )

    def _finish(
        self, clock: int, status: Status | None, output: str | None, *, unknown: bool
    ) -> None:
        op = self.op
        assert op is not None
        f = "get" if op.f == "read" else op.f
        self.history.append(
            Operation(
                process=self.index,
                f=f,
                key=op.key,
                call=op.call,
                ret=None if unknown else clock,
                value=op.value,
                expected=op.expected,
                status=status,
                output=output,
            )
        )
        self.op = None
        if not unknown:
            self.completed += 1
