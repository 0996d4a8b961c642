"""What both HTTP servers agree on: request limits and checks, and the error answers.

Role: the rules kvserver/http.py (the aiohttp API) and kvserver/httpfront.py (the fast
path for the hot /kv routes) share, so the two answer a request the same way: the size
limits, the checks of keys, values, session headers and consistency levels, the bodies of
reads, and how a write's outcome or an operating error becomes an `ApiError`. It does no
I/O and knows no server; each server renders an `ApiError` itself.

Rules:
- Every error body is JSON `{"message": ..., "definite": true|false, "code": ...}`;
  `definite: true` means the operation surely did not take effect.
- Keys, values and bodies have size limits (`Limits`), each answered with a clear 4xx.
- A check that fails raises `ApiError` (via `bad_request`); it never returns a bad value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Final, NoReturn

from kvserver.errors import NoLeader, RequestFailed
from kvserver.service import Consistency, ReadResult, WriteResult
from raftcore.commands import SessionHeader, Status
from raftcore.errors import (
    ConfChangeRejected,
    InvalidConfChange,
    InvalidTransfer,
    NotLeader,
    RaftError,
    TransferInProgress,
)

SESSION_HEADERS: Final = ("Client-Id", "Request-Seq", "Ack-Seq")
RETRY_AFTER_S: Final = "1"


@dataclass(frozen=True, slots=True)
class Limits:
    max_key_bytes: int = 1024
    max_value_bytes: int = 1024 * 1024
    max_body_bytes: int = 2 * 1024 * 1024
    forward_timeout_s: float = 10.0


class ApiError(Exception):
    """An answer other than success: its status, JSON error body and headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        definite: bool,
        code: str,
        extra: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, object] = {"message": message, "definite": definite, "code": code}
        self.body.update(extra or {})
        self.headers = headers or {}


def bad_request(message: str, code: str = "bad_request", status: int = 400) -> NoReturn:
    raise ApiError(status, message, definite=True, code=code)


# ---------------------------------------------------------------- checks


def check_key(key: str, limits: Limits) -> str:
    if not key:
        bad_request("the key must not be empty", "bad_key")
    if len(key.encode("utf-8", "surrogatepass")) > limits.max_key_bytes:
        bad_request(f"key longer than {limits.max_key_bytes} bytes", "key_too_large", 413)
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        bad_request("the key is not valid UTF-8", "bad_key")
    return key


def check_value_size(value: str, limits: Limits) -> str:
    if len(value.encode("utf-8")) > limits.max_value_bytes:
        bad_request(f"value longer than {limits.max_value_bytes} bytes", "value_too_large", 413)
    return value


def decode_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        bad_request("the body is not valid UTF-8", "bad_value")


def session_from_headers(get: Callable[[str], str | None]) -> SessionHeader | None:
    """The session header of a request, from its (case-insensitive) header getter."""
    raw = {name: get(name) for name in SESSION_HEADERS}
    if raw["Client-Id"] is None:
        if raw["Request-Seq"] is not None or raw["Ack-Seq"] is not None:
            bad_request("Request-Seq and Ack-Seq need a Client-Id", "bad_session")
        return None
    values: dict[str, int] = {}
    for name, text in raw.items():
        if text is None:
            continue
        if not text.isascii() or not text.isdigit() or len(text) > 18:
            bad_request(f"{name} must be a non-negative integer", "bad_session")
        values[name] = int(text)
    if "Request-Seq" not in values:
        bad_request("a request with a Client-Id needs a Request-Seq", "bad_session")
    client_id, seq = values["Client-Id"], values["Request-Seq"]
    ack_seq = values.get("Ack-Seq", seq)
    if client_id < 1 or seq < 1 or ack_seq > seq:
        bad_request("need Client-Id >= 1, Request-Seq >= 1, Ack-Seq <= Request-Seq",
                    "bad_session")
    return SessionHeader(client_id, seq, ack_seq)


def consistency_from(text: str) -> Consistency:
    try:
        return Consistency(text)
    except ValueError:
        bad_request("consistency must be linearizable, lease or stale", "bad_consistency")


# ---------------------------------------------------------------- answers


def write_failure(result: WriteResult) -> ApiError | None:
    """The error a definite non-OK status maps to, or None for OK."""
    response = result.response
    extra: dict[str, object] = {"index": result.index}
    if response.status is Status.OK:
        return None
    if response.status is Status.CAS_MISMATCH:
        extra["current"] = response.value
        return ApiError(409, "compare failed: the current value differs", definite=True,
                        code="cas_mismatch", extra=extra)
    if response.status is Status.SESSION_EXPIRED:
        return ApiError(410, "the client session is unknown or has expired", definite=True,
                        code="session_expired", extra=extra)
    if response.status is Status.STALE_REQUEST:
        return ApiError(409, "Request-Seq is below the session's acknowledged floor; its "
                        "response is gone and it may have run once before", definite=False,
                        code="stale_request", extra=extra)
    return ApiError(400, f"the command was rejected: {response.value}", definite=True,
                    code="bad_command", extra=extra)


def not_found(key: str, result: ReadResult) -> ApiError:
    return ApiError(404, f"key {key!r} not found", definite=True, code="not_found",
                    extra={"key": key, "index": result.index})


def read_body(key: str, result: ReadResult) -> dict[str, object]:
    body: dict[str, object] = {"key": key, "value": result.value, "index": result.index}
    if result.staleness is not None:
        body["staleness"] = asdict(result.staleness)
    return body


def raft_error(exc: RaftError) -> ApiError:
    if isinstance(exc, InvalidConfChange | InvalidTransfer):
        return ApiError(400, str(exc), definite=True, code="invalid_request")
    if isinstance(exc, ConfChangeRejected | TransferInProgress):
        return ApiError(503, str(exc), definite=True, code="busy",
                        headers={"Retry-After": RETRY_AFTER_S})
    return ApiError(500, str(exc), definite=False, code="raft_error")


def api_error_for(exc: BaseException) -> ApiError | None:
    """The answer to an operating error raised while serving a request (NotLeader aside,
    which is forwarded); None for anything that is not an operating error."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, NoLeader):
        return ApiError(503, exc.message, definite=True, code=exc.code,
                        headers={"Retry-After": RETRY_AFTER_S})
    if isinstance(exc, RequestFailed):
        headers = {"Retry-After": RETRY_AFTER_S} if exc.status == 503 else {}
        return ApiError(exc.status, exc.message, definite=exc.definite, code=exc.code,
                        headers=headers)
    if isinstance(exc, RaftError) and not isinstance(exc, NotLeader):
        return raft_error(exc)
    return None
