"""The client HTTP API (aiohttp): requests in, commands and reads to the node, JSON out.

Role: parse and bound requests, turn them into `raftcore.commands` values, ask the node
(`kvserver.service.Service`) and map what it answers onto status codes. It decides nothing
about Raft or the data; the API is documented in docs/http-api.md and docs/openapi.yaml.

Rules:
- Every error body is JSON `{"message": ..., "definite": true|false, "code": ...}`;
  `definite: true` means the operation surely did not take effect.
- A request this node cannot serve because it is not the leader is forwarded to the leader
  (or answered 307 with `?redirect=1`); with no leader known the answer is 503 with a
  Retry-After header. A forwarded request is never forwarded again.
- Keys, values and bodies have size limits (`Limits`), each answered with a clear 4xx.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Final, NoReturn

import aiohttp
from aiohttp import web

from kvserver.errors import NoLeader, RequestFailed
from kvserver.metrics import Histogram
from kvserver.service import Consistency, ReadResult, Service, WriteResult
from raftcore import commands
from raftcore.commands import Append, Cas, Delete, Put, SessionHeader, Status
from raftcore.errors import (
    ConfChangeRejected,
    InvalidConfChange,
    InvalidTransfer,
    NotLeader,
    RaftError,
    TransferInProgress,
)

log = logging.getLogger(__name__)

FORWARDED_HEADER: Final = "X-Raftkv-Forwarded-By"
SESSION_HEADERS: Final = ("Client-Id", "Request-Seq", "Ack-Seq")
RETRY_AFTER_S: Final = "1"
SERVICE_KEY: Final = web.AppKey("service", Service)
CLIENT_KEY: Final = web.AppKey("client", aiohttp.ClientSession)
LATENCY_KEY: Final = web.AppKey("latency", Histogram)


@dataclass(frozen=True, slots=True)
class Limits:
    max_key_bytes: int = 1024
    max_value_bytes: int = 1024 * 1024
    max_body_bytes: int = 2 * 1024 * 1024
    forward_timeout_s: float = 10.0


LIMITS_KEY: Final = web.AppKey("limits", Limits)


class ApiError(Exception):
    """An answer other than success, rendered as the JSON error body."""

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

    def response(self) -> web.Response:
        return web.json_response(self.body, status=self.status, headers=self.headers)


def bad_request(message: str, code: str = "bad_request", status: int = 400) -> NoReturn:
    raise ApiError(status, message, definite=True, code=code)


# ---------------------------------------------------------------- parsing


def parse_key(request: web.Request, key: str | None = None) -> str:
    key = request.match_info.get("key", "") if key is None else key
    return check_key(key, request.app[LIMITS_KEY])


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


def check_value(request: web.Request, value: str) -> str:
    return check_value_size(value, request.app[LIMITS_KEY])


def check_value_size(value: str, limits: Limits) -> str:
    if len(value.encode("utf-8")) > limits.max_value_bytes:
        bad_request(f"value longer than {limits.max_value_bytes} bytes", "value_too_large", 413)
    return value


def decode_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        bad_request("the body is not valid UTF-8", "bad_value")


async def read_text(request: web.Request) -> str:
    return decode_text(await request.read())


async def read_json_object(request: web.Request) -> dict[str, Any]:
    text = await read_text(request)
    try:
        doc = json.loads(text)
    except ValueError:
        bad_request("the body is not valid JSON", "bad_json")
    if not isinstance(doc, dict):
        bad_request("the body must be a JSON object", "bad_json")
    return doc


def session_header(request: web.Request) -> SessionHeader | None:
    return session_from_headers(request.headers.get)


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


def parse_consistency(request: web.Request) -> Consistency:
    return consistency_from(request.query.get("consistency", Consistency.LINEARIZABLE.value))


def consistency_from(text: str) -> Consistency:
    try:
        return Consistency(text)
    except ValueError:
        bad_request("consistency must be linearizable, lease or stale", "bad_consistency")


# ---------------------------------------------------------------- results


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


async def propose(request: web.Request, command: commands.SessionCommand) -> WriteResult:
    result = await request.app[SERVICE_KEY].write(command)
    failure = write_failure(result)
    if failure is not None:
        raise failure
    return result


async def read(request: web.Request, key: str) -> ReadResult:
    return await request.app[SERVICE_KEY].read(key, parse_consistency(request))


def not_found(key: str, result: ReadResult) -> ApiError:
    return ApiError(404, f"key {key!r} not found", definite=True, code="not_found",
                    extra={"key": key, "index": result.index})


def read_body(key: str, result: ReadResult) -> dict[str, object]:
    body: dict[str, object] = {"key": key, "value": result.value, "index": result.index}
    if result.staleness is not None:
        body["staleness"] = asdict(result.staleness)
    return body


# ---------------------------------------------------------------- /kv routes


async def kv_put(request: web.Request) -> web.Response:
    key = parse_key(request)
    session = session_header(request)
    command: commands.SessionCommand
    if "prev" in request.query:
        new = check_value(request, await read_text(request))
        command = Cas(key, request.query["prev"], new, session)
    elif request.content_type == "application/json" and (doc := await _cas_doc(request)):
        command = Cas(key, doc[0], check_value(request, doc[1]), session)
    else:
        command = Put(key, check_value(request, await read_text(request)), session)
    result = await propose(request, command)
    value = command.new if isinstance(command, Cas) else command.value
    return web.json_response({"key": key, "value": value, "index": result.index})


async def _cas_doc(request: web.Request) -> tuple[str | None, str] | None:
    """(from, to) when the JSON body is a CAS object {"from": ..., "to": ...}."""
    try:
        doc = json.loads(await read_text(request))
    except ValueError:
        return None
    if not isinstance(doc, dict) or set(doc) != {"from", "to"}:
        return None
    old, new = doc["from"], doc["to"]
    if not (old is None or isinstance(old, str)) or not isinstance(new, str):
        bad_request('CAS needs {"from": string or null, "to": string}', "bad_cas")
    return old, new


async def kv_append(request: web.Request) -> web.Response:
    """POST /kv/{key}?op=append: append the body to the key's value (absent: empty).

    The answer carries the value right after this append as the state machine returned
    it, so a retried request (same session and Request-Seq) answers the original value."""
    key = parse_key(request)
    if request.query.get("op") != "append":
        bad_request("POST /kv/{key} needs ?op=append", "bad_op")
    session = session_header(request)
    element = check_value(request, await read_text(request))
    result = await propose(request, Append(key, element, session))
    return web.json_response({"key": key, "value": result.response.value,
                              "index": result.index})


async def kv_get(request: web.Request) -> web.Response:
    key = parse_key(request)
    result = await read(request, key)
    if result.value is None:
        raise not_found(key, result)
    return web.json_response(read_body(key, result))


async def kv_delete(request: web.Request) -> web.Response:
    key = parse_key(request)
    result = await propose(request, Delete(key, session_header(request)))
    previous = result.response.value
    return web.json_response({"key": key, "previous": previous, "index": result.index})


async def register_session(request: web.Request) -> web.Response:
    client_id = await request.app[SERVICE_KEY].register_session()
    return web.json_response({"client_id": client_id}, status=201)


# ---------------------------------------------------------------- cluster routes


async def cluster_status(request: web.Request) -> web.Response:
    status = request.app[SERVICE_KEY].status()
    return web.json_response(status_doc(status))


def status_doc(status: Any) -> dict[str, object]:
    doc = asdict(status)
    doc["members"] = [asdict(m) for m in status.members]
    doc.update(doc.pop("extra"))
    return doc


async def cluster_join(request: web.Request) -> web.Response:
    doc = await read_json_object(request)
    node_id = _string_field(doc, "id")
    raft = _string_field(doc, "raft")
    http_address = doc.get("http")
    if http_address is not None and not isinstance(http_address, str):
        bad_request("http must be a host:port string", "bad_join")
    book = await request.app[SERVICE_KEY].join(node_id, raft, http_address)
    peers = {peer: {"raft": raft_at, "http": http_at} for peer, (raft_at, http_at) in book.items()}
    return web.json_response({"ok": True, "id": node_id, "role": "learner", "peers": peers})


async def cluster_remove(request: web.Request) -> web.Response:
    doc = await read_json_object(request)
    node_id = _string_field(doc, "id")
    await request.app[SERVICE_KEY].remove(node_id)
    return web.json_response({"ok": True, "id": node_id})


async def cluster_transfer(request: web.Request) -> web.Response:
    doc = await read_json_object(request) if await request.read() else {}
    target = doc.get("id")
    if target is not None and not isinstance(target, str):
        bad_request("id must be a node id", "bad_transfer")
    leader = await request.app[SERVICE_KEY].transfer_leadership(target)
    return web.json_response({"ok": True, "leader": leader})


def _string_field(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value or len(value) > 255:
        bad_request(f"field {name!r} must be a non-empty string", "bad_field")
    return value


async def metrics(request: web.Request) -> web.Response:
    latency = "\n".join(request.app[LATENCY_KEY].render()) + "\n"
    text = request.app[SERVICE_KEY].metrics_text() + latency
    return web.Response(text=text, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Format": "prometheus-0.0.4"})


async def health(request: web.Request) -> web.Response:
    status = request.app[SERVICE_KEY].status()
    service = request.app[SERVICE_KEY]
    return web.json_response({
        "status": "ok", "id": status.node_id, "role": status.role, "leader": status.leader_id,
        "term": status.term, "raft": service.raft_address, "http": service.http_address,
    })


# ---------------------------------------------------------------- compatibility routes


async def raftd_put(request: web.Request) -> web.Response:
    """raftd: POST /db/{key} with the value as the body."""
    key = parse_key(request)
    await propose(request, Put(key, check_value(request, await read_text(request))))
    return web.Response(status=200)


async def raftd_get(request: web.Request) -> web.Response:
    """raftd: GET /db/{key} answers the bare value."""
    key = parse_key(request)
    result = await read(request, key)
    if result.value is None:
        raise not_found(key, result)
    return web.Response(text=result.value)


async def legacy_join(request: web.Request) -> web.Response:
    """POST /join: hraftd {"id", "addr"} or raftd {"name", "connectionString"}."""
    doc = await read_json_object(request)
    if "addr" in doc:
        node_id, raft, http_address = _string_field(doc, "id"), _string_field(doc, "addr"), None
        if isinstance(doc.get("http"), str):
            http_address = doc["http"]
    elif "connectionString" in doc:
        node_id = _string_field(doc, "name")
        http_address = _string_field(doc, "connectionString").removeprefix("http://")
        raft = await _raft_address_of(request, http_address)
    else:
        bad_request('join needs {"id", "addr"} (hraftd) or {"name", "connectionString"}',
                    "bad_join")
    await request.app[SERVICE_KEY].join(node_id, raft, http_address)
    return web.Response(status=200)


async def _raft_address_of(request: web.Request, http_address: str) -> str:
    """Ask a joining node's /health for its peer address (raftd joins give only HTTP)."""
    url = f"http://{http_address}/health"
    timeout = aiohttp.ClientTimeout(total=request.app[LIMITS_KEY].forward_timeout_s)
    try:
        async with request.app[CLIENT_KEY].get(url, timeout=timeout) as response:
            doc = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ApiError(502, f"cannot reach the joining node at {url}: {exc}", definite=True,
                       code="join_unreachable") from None
    raft = doc.get("raft") if isinstance(doc, dict) else None
    if not isinstance(raft, str):
        raise ApiError(502, f"{url} did not say its raft address", definite=True,
                       code="join_unreachable")
    return raft


async def hraftd_set(request: web.Request) -> web.Response:
    """hraftd: POST /key with a JSON object of key/value pairs."""
    doc = await read_json_object(request)
    pairs = []
    for key, value in doc.items():
        if not isinstance(value, str):
            bad_request(f"the value of {key!r} must be a string", "bad_value")
        pairs.append((parse_key(request, key), check_value(request, value)))
    for key, value in pairs:
        await propose(request, Put(key, value))
    return web.Response(status=200)


async def hraftd_get(request: web.Request) -> web.Response:
    """hraftd: GET /key/{key} answers {key: value} ("" when absent, as hraftd does)."""
    key = parse_key(request)
    result = await read(request, key)
    return web.json_response({key: result.value if result.value is not None else ""})


async def hraftd_delete(request: web.Request) -> web.Response:
    key = parse_key(request)
    await propose(request, Delete(key))
    return web.Response(status=200)


async def goraft_set(request: web.Request) -> web.Response:
    """eatonphil/goraft: GET /set?key=K&value=V."""
    key = parse_key(request, request.query.get("key", ""))
    value = check_value(request, request.query.get("value", ""))
    await propose(request, Put(key, value))
    return web.Response(status=200)


async def goraft_get(request: web.Request) -> web.Response:
    """eatonphil/goraft: GET /get?key=K answers the bare value."""
    key = parse_key(request, request.query.get("key", ""))
    result = await read(request, key)
    if result.value is None:
        raise not_found(key, result)
    return web.Response(text=result.value)


# ---------------------------------------------------------------- forwarding and errors


async def forward(request: web.Request, leader_http: str) -> web.Response:
    """Send the request on to the leader and relay its answer."""
    service = request.app[SERVICE_KEY]
    url = f"http://{leader_http}{request.rel_url}"
    headers = {name: request.headers[name] for name in SESSION_HEADERS if name in request.headers}
    headers[FORWARDED_HEADER] = service.node_id
    if request.content_type:
        headers["Content-Type"] = request.content_type
    timeout = aiohttp.ClientTimeout(total=request.app[LIMITS_KEY].forward_timeout_s)
    body = await request.read()
    try:
        async with request.app[CLIENT_KEY].request(
            request.method, url, data=body, headers=headers, timeout=timeout,
            allow_redirects=False,
        ) as answer:
            data = await answer.read()
            relayed = {k: answer.headers[k] for k in ("Retry-After", "Location")
                       if k in answer.headers}
            return web.Response(status=answer.status, body=data, headers=relayed,
                                content_type=answer.content_type)
    except aiohttp.ClientConnectorError as exc:
        raise ApiError(503, f"leader {leader_http} unreachable: {exc}", definite=True,
                       code="leader_unreachable", headers={"Retry-After": RETRY_AFTER_S}
                       ) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ApiError(504, f"no answer from the leader at {leader_http}: {exc!r}",
                       definite=request.method == "GET", code="forward_failed") from None


async def not_leader(request: web.Request) -> web.Response:
    status = request.app[SERVICE_KEY].status()
    leader_http = status.leader_http if status.leader_id is not None else None
    if leader_http is None or FORWARDED_HEADER in request.headers:
        reason = "no leader is known" if leader_http is None else "forwarded to a non-leader"
        raise ApiError(503, f"{reason}; retry later", definite=True, code="no_leader",
                       extra={"leader": status.leader_id},
                       headers={"Retry-After": RETRY_AFTER_S})
    if request.query.get("redirect") in ("1", "true"):
        location = f"http://{leader_http}{request.rel_url}"
        raise ApiError(307, f"not the leader; the leader is {status.leader_id}",
                       definite=True, code="redirect", extra={"leader": status.leader_id},
                       headers={"Location": location})
    return await forward(request, leader_http)


def raft_error(exc: RaftError) -> ApiError:
    if isinstance(exc, InvalidConfChange | InvalidTransfer):
        return ApiError(400, str(exc), definite=True, code="invalid_request")
    if isinstance(exc, ConfChangeRejected | TransferInProgress):
        return ApiError(503, str(exc), definite=True, code="busy",
                        headers={"Retry-After": RETRY_AFTER_S})
    return ApiError(500, str(exc), definite=False, code="raft_error")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    route = request.match_info.route.name or "unmatched"
    try:
        response = await handler(request)
    except NotLeader:
        try:
            response = await not_leader(request)
        except ApiError as api_error:
            response = api_error.response()
    except (ApiError, RequestFailed, RaftError) as exc:
        mapped = api_error_for(exc)
        assert mapped is not None
        response = mapped.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        definite = True
        response = ApiError(exc.status, exc.reason, definite=definite,
                            code=_http_code(exc.status)).response()
    request.app[LATENCY_KEY].observe(time.perf_counter() - started, (route, request.method))
    return response


def _http_code(status: int) -> str:
    return {404: "no_route", 405: "method_not_allowed", 413: "body_too_large"}.get(
        status, "http_error"
    )


def make_app(service: Service, limits: Limits | None = None) -> web.Application:
    """The aiohttp application serving `service`."""
    limits = limits or Limits()
    app = web.Application(client_max_size=limits.max_body_bytes,
                          middlewares=[error_middleware])
    app[SERVICE_KEY] = service
    app[LIMITS_KEY] = limits
    app[LATENCY_KEY] = Histogram(
        "raftkv_http_request_duration_seconds", "HTTP request latency by route and method",
        ("route", "method"),
    )
    app.cleanup_ctx.append(_client_session)
    routes = [
        web.put("/kv/{key:.+}", kv_put, name="kv_put"),
        web.get("/kv/{key:.+}", kv_get, name="kv_get", allow_head=False),
        web.delete("/kv/{key:.+}", kv_delete, name="kv_delete"),
        web.post("/kv/{key:.+}", kv_append, name="kv_append"),
        web.post("/sessions", register_session, name="sessions"),
        web.get("/cluster", cluster_status, name="cluster", allow_head=False),
        web.post("/cluster/join", cluster_join, name="cluster_join"),
        web.post("/cluster/remove", cluster_remove, name="cluster_remove"),
        web.post("/cluster/transfer-leadership", cluster_transfer, name="cluster_transfer"),
        web.get("/metrics", metrics, name="metrics", allow_head=False),
        web.get("/health", health, name="health", allow_head=False),
        web.post("/db/{key:.+}", raftd_put, name="raftd_put"),
        web.get("/db/{key:.+}", raftd_get, name="raftd_get", allow_head=False),
        web.post("/join", legacy_join, name="join"),
        web.post("/key", hraftd_set, name="hraftd_set"),
        web.get("/key/{key:.+}", hraftd_get, name="hraftd_get", allow_head=False),
        web.delete("/key/{key:.+}", hraftd_delete, name="hraftd_delete"),
        web.get("/set", goraft_set, name="goraft_set", allow_head=False),
        web.get("/get", goraft_get, name="goraft_get", allow_head=False),
    ]
    app.add_routes(routes)
    return app


async def _client_session(app: web.Application) -> Any:
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        app[CLIENT_KEY] = session
        yield
