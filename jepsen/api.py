"""One node's key-value API as the harness's clients see it, over HTTP or in memory.

Role: the narrow waist between workload clients (jepsen/client.py) and a database. The
workload clients speak `KvApi`; `HttpKvApi` speaks kvserver's HTTP API (docs/http-api.md)
with the standard library's http.client, one connection per client thread; the in-memory
database (jepsen/memdb.py) provides the same protocol without sockets.

Errors, one tree:

    ApiFailure(definite, code, message)   the request did not complete as asked
    └── ApiTimeout                        no answer in time (never definite for writes)

`definite` is the server's own `definite` flag where there is one (every kvserver error
body carries it): True means the operation surely did not take effect. A refused
connection is definite (nothing was sent); a timeout, a reset connection or an answer that
cannot be parsed are not. A read whose outcome is unknown is still reported by its error;
the workload client decides fail versus info, as Jepsen's clients do.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import urllib.parse
from dataclasses import dataclass
from typing import Protocol

CONSISTENCIES = ("linearizable", "lease", "stale")


class ApiFailure(Exception):
    """A request that did not complete as asked; `definite` means it surely had no effect."""

    def __init__(self, definite: bool, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.definite = definite
        self.code = code
        self.message = message


class ApiTimeout(ApiFailure):
    """No answer within the client's timeout."""

    def __init__(self, message: str) -> None:
        super().__init__(False, "timeout", message)


@dataclass(frozen=True, slots=True)
class Session:
    """A client session's header fields for one request (thesis 6.3)."""

    client_id: int
    seq: int
    ack_seq: int


class CasMismatch(ApiFailure):
    """The compare of a compare-and-set failed: the value differs (definite)."""

    def __init__(self, message: str) -> None:
        super().__init__(True, "cas_mismatch", message)


class KvApi(Protocol):
    """The operations the workloads need from one node."""

    @property
    def node(self) -> str: ...

    def get(self, key: str, consistency: str = "linearizable") -> str | None: ...

    def put(self, key: str, value: str, session: Session | None = None) -> None: ...

    def cas(self, key: str, expected: str, new: str, session: Session | None = None) -> None:
        ...

    def append(self, key: str, value: str, session: Session | None = None) -> str | None: ...

    def register_session(self) -> int: ...

    def close(self) -> None: ...


def _peer_closed(sock: socket.socket) -> bool:
    """True when an idle connection has something to read: EOF, a reset, or stray bytes."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


class HttpKvApi:
    """kvserver's HTTP API on one node, through one http.client connection."""

    def __init__(self, node: str, address: str, timeout_s: float = 5.0) -> None:
        host, _, port = address.rpartition(":")
        assert host, address
        assert port.isdigit(), address
        self._node = node
        self._host = host
        self._port = int(port)
        self._timeout_s = timeout_s
        self._connection: http.client.HTTPConnection | None = None

    @property
    def node(self) -> str:
        return self._node

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _request(self, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self._host, self._port,
                                                          timeout=self._timeout_s)
        if self._connection.sock is not None and _peer_closed(self._connection.sock):
            # The node closed this idle connection (restart, keep-alive timeout): sending
            # on it would turn a clean failure into an unknown outcome.
            self.close()
            self._connection = http.client.HTTPConnection(self._host, self._port,
                                                          timeout=self._timeout_s)
        if self._connection.sock is None:
            try:
                self._connection.connect()
            except OSError as error:
                # No connection, so nothing was sent: the request surely had no effect.
                self.close()
                raise ApiFailure(True, "connect_failed", f"{self._node}: {error!r}") from error
        try:
            self._connection.request(method, path, body=body, headers=headers or {})
            response = self._connection.getresponse()
            return response.status, response.read()
        except TimeoutError as error:
            self.close()
            raise ApiTimeout(f"{self._node}: {method} {path}: no answer in "
                             f"{self._timeout_s:g} s") from error
        except (OSError, http.client.HTTPException) as error:
            # The request may have reached the node before the connection broke.
            self.close()
            raise ApiFailure(False, "connection_error", f"{self._node}: {error!r}") from error

    @staticmethod
    def _headers(session: Session | None) -> dict[str, str]:
        if session is None:
            return {}
        return {"Client-Id": str(session.client_id), "Request-Seq": str(session.seq),
                "Ack-Seq": str(session.ack_seq)}

    def _check(self, status: int, body: bytes) -> dict[str, object]:
        try:
            doc = json.loads(body) if body else {}
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise ApiFailure(False, "bad_answer", f"{self._node}: HTTP {status}: {body[:200]!r}")
        if status >= 300:
            code = str(doc.get("code", f"http_{status}"))
            message = str(doc.get("message", ""))
            if code == "cas_mismatch":
                raise CasMismatch(message)
            raise ApiFailure(doc.get("definite") is True, code, message)
        return doc

    @staticmethod
    def _path(key: str, **query: str) -> str:
        path = "/kv/" + urllib.parse.quote(key, safe="")
        return path + ("?" + urllib.parse.urlencode(query) if query else "")

    def get(self, key: str, consistency: str = "linearizable") -> str | None:
        assert consistency in CONSISTENCIES
        query = {} if consistency == "linearizable" else {"consistency": consistency}
        status, body = self._request("GET", self._path(key, **query))
        if status == 404:
            doc = self._check(200, body)
            if doc.get("code") == "not_found":
                return None
            raise ApiFailure(True, "no_route", f"{self._node}: 404 {body[:200]!r}")
        value = self._check(status, body).get("value")
        return None if value is None else str(value)

    def put(self, key: str, value: str, session: Session | None = None) -> None:
        status, body = self._request("PUT", self._path(key), value.encode(),
                                     self._headers(session))
        self._check(status, body)

    def cas(self, key: str, expected: str, new: str, session: Session | None = None) -> None:
        status, body = self._request("PUT", self._path(key, prev=expected), new.encode(),
                                     self._headers(session))
        self._check(status, body)

    def append(self, key: str, value: str, session: Session | None = None) -> str | None:
        status, body = self._request("POST", self._path(key, op="append"), value.encode(),
                                     self._headers(session))
        result = self._check(status, body).get("value")
        return None if result is None else str(result)

    def register_session(self) -> int:
        status, body = self._request("POST", "/sessions", b"")
        client_id = self._check(status, body).get("client_id")
        if not isinstance(client_id, int):
            raise ApiFailure(False, "bad_answer", f"{self._node}: no client_id in {body!r}")
        return client_id
