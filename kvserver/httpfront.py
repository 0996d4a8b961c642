"""The HTTP front: serves the hot key-value routes itself, relays the rest to aiohttp.

Role: the node's public HTTP/1.1 server. `PUT`, `GET` and `DELETE /kv/{key}` in their
plain forms are parsed (kvserver/httpparse.py), checked and answered here from callbacks on
the node's futures (`Service.start_write`, `start_read`), with no task and no framework
object per request. Every other request, and every request the fast path does not take
(query parameters other than `consistency`, a JSON body, a key with `%`, `.` or empty
path segments, a node that is not the leader), is relayed byte for byte to the aiohttp
application (kvserver/http.py) listening on a private loopback port, so the API has one
definition of every route, error and forward.

Rules:
- The fast path answers exactly what kvserver/http.py answers for the same request: both
  use the checks (`check_key`, `check_value_size`, `session_from_headers`,
  `consistency_from`), error mapping (`api_error_for`, `write_failure`) and bodies of
  kvserver/httprules.py; the test suite runs every API test through both servers.
- A request leaves the fast path for the relay only before anything happened: a write
  refused with NotLeader at `start_write`, or a read whose leadership was lost (reads are
  safe to repeat). A write whose proposal was made is always answered here.
- Requests on one connection are answered in order, one at a time.
- A request that cannot be parsed is answered (400, 413, 431, 501 or 505, JSON body with
  `definite: true`) and the connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Final, cast

from kvserver.httpparse import ParseError, Request, RequestParser
from kvserver.httprules import (
    ApiError,
    Limits,
    api_error_for,
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
from raftcore.commands import Delete, Put, SessionCommand
from raftcore.errors import NotLeader

log = logging.getLogger(__name__)
_json_string: Final = json.encoder.encode_basestring_ascii  # json.dumps's own escaping

MAX_HEAD_BYTES: Final = 64 * 1024
MAX_IDLE_RELAY_CONNECTIONS: Final = 32
MAX_PIPELINED_BYTES: Final = 4 * 1024 * 1024
HOP_BY_HOP: Final = frozenset({
    "connection", "keep-alive", "transfer-encoding", "content-length", "expect", "te",
    "trailer", "upgrade", "proxy-connection",
})
_REASONS: Final = {
    200: "OK", 307: "Temporary Redirect", 400: "Bad Request", 404: "Not Found",
    409: "Conflict", 410: "Gone", 413: "Content Too Large", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
}
_PARSE_CODES: Final = {413: "body_too_large", 431: "headers_too_large", 501: "not_implemented",
                       505: "bad_version"}


def render_response(status: int, body: bytes, headers: dict[str, str] | None = None,
                    *, close: bool = False,
                    content_type: str = "application/json; charset=utf-8") -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
             f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def fast_key(request: Request) -> tuple[str, str] | None:
    """(key, query) when `request` is a /kv route the fast path takes, else None."""
    target = request.target
    if not target.startswith("/kv/") or "%" in target or not target.isascii():
        return None  # escapes and raw non-ASCII bytes: aiohttp decodes them
    path, _, query = target.partition("?")
    key = path[4:]
    if not key or any(part in ("", ".", "..") for part in key.split("/")):
        return None
    return key, query


class Relay:
    """Persistent connections to the private aiohttp server, reused one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def exchange(self, request: Request) -> bytes:
        """The aiohttp server's whole answer to `request` (status line, headers, body)."""
        head = [f"{request.method} {request.target} HTTP/1.1"]
        head += [f"{name}: {value}" for name, value in request.headers.items()
                 if name not in HOP_BY_HOP]
        if "host" not in request.headers:
            head.append(f"Host: {self.address[0]}:{self.address[1]}")
        head.append(f"Content-Length: {len(request.body)}")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + request.body
        reader, writer = await self._connection()
        try:
            writer.write(raw)
            status_and_headers = await reader.readuntil(b"\r\n\r\n")
            answer, body_length, reusable = _relayed_head(status_and_headers)
            body = await reader.readexactly(body_length) if body_length else b""
        except BaseException:
            writer.close()
            raise
        if reusable and len(self._idle) < MAX_IDLE_RELAY_CONNECTIONS:
            self._idle.append((reader, writer, time.monotonic()))
        else:
            writer.close()
        return answer + body

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        fresh_after = time.monotonic() - 30.0  # aiohttp closes idle ones after 75 s
        while self._idle:
            reader, writer, since = self._idle.pop()
            if since >= fresh_after and not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(*self.address)

    def close(self) -> None:
        for _, writer, _ in self._idle:
            writer.close()
        self._idle.clear()


def _relayed_head(raw: bytes) -> tuple[bytes, int, bool]:
    """(the head to send on, the body length, whether the connection can be reused)."""
    lines = raw.decode("latin-1").split("\r\n")
    status = lines[0].partition(" ")[2]
    kept = ["HTTP/1.1 " + status]  # The client gets HTTP/1.1 semantics from the front.
    length = 0
    reusable = True
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        lowered = name.strip().lower()
        if lowered == "content-length":
            length = int(value.strip())
        elif lowered == "connection" and "close" in value.lower():
            reusable = False
        elif lowered == "transfer-encoding":
            raise ConnectionError("the API server answered with a transfer coding")
        if lowered not in HOP_BY_HOP:
            kept.append(line)
    kept.append(f"Content-Length: {length}")
    return ("\r\n".join(kept) + "\r\n\r\n").encode("latin-1"), length, reusable


class FrontProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, front: FrontServer) -> None:
        self._front = front
        self._parser = RequestParser(MAX_HEAD_BYTES, front.limits.max_body_bytes)
        self._transport: asyncio.Transport | None = None
        self._busy = False
        self._closing = False
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        del exc
        self._closing = True
        self._transport = None

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._closing and not self._paused:
            self._transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        parser.feed(data)
        self._next()
        if self._busy and parser.buffered_bytes > MAX_PIPELINED_BYTES and self._transport:
            self._transport.pause_reading()  # a client pipelining far ahead waits
            self._paused = True

    def _next(self) -> None:
        """Take the next request if the previous one was answered."""
        parser = self._parser
        while not self._busy and not self._closing:
            try:
                request = parser.next_request()
            except ParseError as exc:
                body = {"message": exc.message, "definite": True,
                        "code": _PARSE_CODES.get(exc.status, "bad_request")}
                self._send(render_response(exc.status, json.dumps(body).encode(),
                                           close=True), close=True)
                return
            if request is None:
                if parser.continue_pending() and self._transport is not None:
                    self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            self._busy = True
            self._front.handle(request, self)

    def respond(self, request: Request, raw: bytes) -> None:
        """Send the answer to the current request and go on with the next one."""
        close = not request.keep_alive
        self._send(raw, close)
        self._busy = False
        if not close:
            self._next()
        if self._paused and not self._busy and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    def _send(self, raw: bytes, close: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        transport.write(raw)
        if close:
            self._closing = True
            transport.close()


@dataclass(frozen=True, slots=True)
class _Exchange:
    """One request on the fast path, until it is answered."""

    request: Request
    connection: FrontProtocol
    started: float
    route: str
    """The route name kvserver/http.py gives it (for the latency histogram)."""


_ROUTES: Final = {"PUT": "kv_put", "GET": "kv_get", "DELETE": "kv_delete"}


class FrontServer:
    """The public server: fast /kv routes, everything else relayed to `relay`."""

    def __init__(self, service: Service, limits: Limits, relay: Relay,
                 latency: Histogram) -> None:
        self.service = service
        self.limits = limits
        self.relay = relay
        self.latency = latency
        self._server: asyncio.Server | None = None
        self._relaying: set[asyncio.Task[None]] = set()
        self.relayed = 0
        """Requests relayed to the aiohttp application so far."""

    async def start(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: FrontProtocol(self), host, port,
                                                backlog=1024)
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._relaying):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.relay.close()

    def handle(self, request: Request, connection: FrontProtocol) -> None:
        routed = fast_key(request)
        if routed is None or request.method not in ("PUT", "GET", "DELETE"):
            self._relay(request, connection)
            return
        key, query = routed
        exchange = _Exchange(request, connection, time.perf_counter(),
                             _ROUTES[request.method])
        try:
            if request.method == "PUT":
                self._put(exchange, key, query)
            elif request.method == "GET":
                self._get(exchange, key, query)
            else:
                self._delete(exchange, key, query)
        except NotLeader:
            self._relay(request, connection)  # nothing happened yet: aiohttp forwards it
        except Exception as exc:  # operating errors map to answers; others to a 500
            self._answer_error(exchange, exc)

    # ------------------------------------------------------------ the fast routes

    def _put(self, exchange: _Exchange, key: str, query: str) -> None:
        request = exchange.request
        if query or request.headers.get("content-type", "").startswith("application/json"):
            self._relay(request, exchange.connection)  # CAS (?prev= or a JSON body), ...
            return
        value = check_value_size(decode_text(request.body), self.limits)
        command = Put(check_key(key, self.limits), value,
                      session_from_headers(_getter(request)))
        future = self.service.start_write(command)
        future.add_done_callback(partial(
            self._written, exchange, lambda r: _written_body(key, value, r.index)))

    def _delete(self, exchange: _Exchange, key: str, query: str) -> None:
        if query:
            self._relay(exchange.request, exchange.connection)
            return
        command: SessionCommand = Delete(check_key(key, self.limits),
                                         session_from_headers(_getter(exchange.request)))
        future = self.service.start_write(command)
        future.add_done_callback(partial(
            self._written, exchange,
            lambda r: {"key": key, "previous": r.response.value, "index": r.index}))

    def _get(self, exchange: _Exchange, key: str, query: str) -> None:
        consistency = Consistency.LINEARIZABLE
        if query:
            name, _, value = query.partition("=")
            if name != "consistency" or "&" in value or "+" in value:
                self._relay(exchange.request, exchange.connection)
                return
            consistency = consistency_from(value)
        future = self.service.start_read(check_key(key, self.limits), consistency)
        future.add_done_callback(partial(self._read, exchange, key))

    def _written(self, exchange: _Exchange,
                 body: Callable[[WriteResult], dict[str, object] | bytes],
                 future: asyncio.Future[WriteResult]) -> None:
        exc = None if future.cancelled() else future.exception()
        if future.cancelled() or exc is not None:
            self._answer_error(exchange, exc or asyncio.CancelledError())
            return
        result = future.result()
        failure = write_failure(result)
        if failure is not None:
            self._answer_error(exchange, failure)
            return
        self._answer(exchange, 200, body(result))

    def _read(self, exchange: _Exchange, key: str, future: asyncio.Future[ReadResult]) -> None:
        exc = None if future.cancelled() else future.exception()
        if isinstance(exc, NotLeader):
            # Leadership moved before the read was confirmed; a read is safe to repeat.
            self._relay(exchange.request, exchange.connection)
            return
        if future.cancelled() or exc is not None:
            self._answer_error(exchange, exc or asyncio.CancelledError())
            return
        result = future.result()
        if result.value is None:
            self._answer_error(exchange, not_found(key, result))
            return
        self._answer(exchange, 200, read_body(key, result))

    def _answer(self, exchange: _Exchange, status: int, body: dict[str, object] | bytes,
                headers: dict[str, str] | None = None) -> None:
        request = exchange.request
        encoded = body if isinstance(body, bytes) else json.dumps(body).encode()
        raw = render_response(status, encoded, headers, close=not request.keep_alive)
        self.latency.observe(time.perf_counter() - exchange.started,
                             (exchange.route, request.method))
        exchange.connection.respond(request, raw)

    def _answer_error(self, exchange: _Exchange, exc: BaseException) -> None:
        mapped = api_error_for(exc)
        if mapped is None:
            log.error("unexpected error serving %s %s", exchange.request.method,
                      exchange.request.target, exc_info=exc)
            mapped = ApiError(500, f"internal error: {exc!r}", definite=False,
                              code="internal_error")
        self._answer(exchange, mapped.status, mapped.body, mapped.headers)

    # ------------------------------------------------------------ everything else

    def _relay(self, request: Request, connection: FrontProtocol) -> None:
        self.relayed += 1
        task = asyncio.get_running_loop().create_task(self._relayed(request, connection))
        self._relaying.add(task)
        task.add_done_callback(self._relaying.discard)

    async def _relayed(self, request: Request, connection: FrontProtocol) -> None:
        try:
            raw = await self.relay.exchange(request)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError) as exc:
            body = {"message": f"the API server did not answer: {exc!r}",
                    "definite": request.method == "GET", "code": "relay_failed"}
            raw = render_response(502, json.dumps(body).encode())
        if not request.keep_alive:
            raw = raw.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
        connection.respond(request, raw)


def _written_body(key: str, value: str, index: int) -> bytes:
    """json.dumps({"key": key, "value": value, "index": index}), byte for byte."""
    return (f'{{"key": {_json_string(key)}, "value": {_json_string(value)}, '
            f'"index": {index}}}').encode()


def _getter(request: Request) -> Callable[[str], str | None]:
    headers = request.headers
    return lambda name: headers.get(name.lower())


def make_front(service: Service, limits: Limits, api_address: tuple[str, int],
               latency: Histogram) -> FrontServer:
    return FrontServer(service, limits, Relay(*api_address), latency)
