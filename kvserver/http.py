"""The client HTTP API (aiohttp): requests in, commands and reads to the node, JSON out.

Role: read requests, turn them into `raftcore.commands` values, ask the node
(`kvserver.service.Service`) and map what it answers onto status codes. It decides nothing
about Raft or the data; the API is documented in docs/http-api.md and docs/openapi.yaml.
The limits, checks and error answers it shares with the HTTP front are in
kvserver/httprules.py.

Rules:
- Every error is answered as an `ApiError` (kvserver/httprules.py states the body and the
  limits), rendered by `error_response`.
- A request this node cannot serve because it is not the leader is forwarded to the leader
  (or answered 307 with `?redirect=1`); with no leader known the answer is 503 with a
  Retry-After header. A forwarded request is never forwarded again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, Final

import aiohttp
from aiohttp import web

from kvserver.errors import RequestFailed
from kvserver.httprules import (
    RETRY_AFTER_S,
    SESSION_HEADERS,
    ApiError,
    Limits,
    api_error_for,
    bad_request,
    check_key,
    check_value_size,
    consistency_from,
    decode_text,
    not_found,
    read_body,
    session_from_headers,
    write_failure,
)
from kvserver.metrics import Histogram
from kvserver.service import Consistency, ReadResult, Service, WriteResult
from raftcore import commands
from raftcore.commands import Append, Cas, Delete, Put, SessionHeader
from raftcore.errors import NotLeader, RaftError

log = logging.getLogger(__name__)

FORWARDED_HEADER: Final = "X-Raftkv-Forwarded-By"
SERVICE_KEY: Final = web.AppKey("service", Service)
CLIENT_KEY: Final = web.AppKey("client", aiohttp.ClientSession)
LATENCY_KEY: Final = web.AppKey("latency", Histogram)
LIMITS_KEY: Final = web.AppKey("limits", Limits)


def error_response(error: ApiError) -> web.Response:
    """The JSON error answer of `error`."""
    return web.json_response(error.body, status=error.status, headers=error.headers)


# ---------------------------------------------------------------- parsing


def parse_key(request: web.Request, key: str | None = None) -> str:
    key = request.match_info.get("key", "") if key is None else key
    return check_key(key, request.app[LIMITS_KEY])


def check_value(request: web.Request, value: str) -> str:
    return check_value_size(value, request.app[LIMITS_KEY])


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


def parse_consistency(request: web.Request) -> Consistency:
    return consistency_from(request.query.get("consistency", Consistency.LINEARIZABLE.value))


# ---------------------------------------------------------------- results


async def propose(request: web.Request, command: commands.SessionCommand) -> WriteResult:
    result = await request.app[SERVICE_KEY].write(command)
    failure = write_failure(result)
    if failure is not None:
        raise failure
    return result


async def read(request: web.Request, key: str) -> ReadResult:
    return await request.app[SERVICE_KEY].read(key, parse_consistency(request))


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


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
            response = error_response(api_error)
    except (ApiError, RequestFailed, RaftError) as exc:
        mapped = api_error_for(exc)
        assert mapped is not None
        response = error_response(mapped)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        definite = True
        response = error_response(ApiError(exc.status, exc.reason, definite=definite,
                                           code=_http_code(exc.status)))
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
