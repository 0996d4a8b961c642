"""`HttpKvApi` against a scripted HTTP server on 127.0.0.1 (an integration test: real
sockets): the server's `definite` flag, not-found reads, session headers, refused
connections (definite: nothing was sent), timeouts and garbled answers (not definite).
Also the progress line's text."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from jepsen.api import ApiFailure, ApiTimeout, CasMismatch, HttpKvApi, Session
from jepsen.core import RunState
from jepsen.history import History
from jepsen.progress import status_line

ANSWERS: dict[str, tuple[int, bytes]] = {}
SEEN: list[dict[str, Any]] = []


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        SEEN.append({"method": self.command, "path": self.path,
                     "body": self.rfile.read(length).decode(),
                     "headers": {k: v for k, v in self.headers.items()
                                 if k in ("Client-Id", "Request-Seq", "Ack-Seq")}})
        status, body = ANSWERS.get(self.path.split("?")[0], (500, b"{}"))
        if body == b"HANG":
            threading.Event().wait(2.0)
            body = b"{}"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = _answer


@pytest.fixture
def server() -> Iterator[str]:
    ANSWERS.clear()
    SEEN.clear()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def test_reads_writes_and_session_headers(server: str) -> None:
    api = HttpKvApi("n1", server, timeout_s=1.0)
    ANSWERS["/kv/a"] = (200, body({"key": "a", "value": "3", "index": 4}))
    ANSWERS["/kv/missing"] = (404, body({"code": "not_found", "definite": True,
                                         "message": "no"}))
    assert api.get("a") == "3"
    assert api.get("missing") is None
    api.put("a", "5", Session(7, 2, 1))
    assert SEEN[-1]["method"] == "PUT"
    assert SEEN[-1]["body"] == "5"
    assert SEEN[-1]["headers"] == {"Client-Id": "7", "Request-Seq": "2", "Ack-Seq": "1"}
    api.get("a", "stale")
    assert SEEN[-1]["path"] == "/kv/a?consistency=stale"
    api.cas("a", "5", "6")
    assert SEEN[-1]["path"] == "/kv/a?prev=5"
    ANSWERS["/sessions"] = (201, body({"client_id": 12}))
    assert api.register_session() == 12
    api.close()


@pytest.mark.parametrize(
    ("status", "doc", "error", "definite"),
    [
        (503, {"code": "no_leader", "definite": True, "message": "x"}, ApiFailure, True),
        (504, {"code": "outcome_unknown", "definite": False, "message": "x"}, ApiFailure,
         False),
        (409, {"code": "cas_mismatch", "definite": True, "message": "x"}, CasMismatch, True),
        (502, {"message": "no definite flag"}, ApiFailure, False),
    ],
)
def test_errors_carry_the_servers_definite_flag(
    server: str, status: int, doc: dict[str, Any], error: type[ApiFailure], definite: bool
) -> None:
    ANSWERS["/kv/k"] = (status, body(doc))
    with pytest.raises(error) as caught:
        HttpKvApi("n1", server).put("k", "1")
    assert caught.value.definite is definite


def test_garbled_answer_and_timeout_are_not_definite(server: str) -> None:
    ANSWERS["/kv/k"] = (200, b"<html>not json")
    with pytest.raises(ApiFailure) as caught:
        HttpKvApi("n1", server).put("k", "1")
    assert caught.value.definite is False
    ANSWERS["/kv/k"] = (200, b"HANG")
    with pytest.raises(ApiTimeout) as timed_out:
        HttpKvApi("n1", server, timeout_s=0.3).put("k", "1")
    assert timed_out.value.definite is False


def test_refused_connection_is_definite() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ApiFailure) as caught:
        HttpKvApi("n1", f"127.0.0.1:{port}").put("k", "1")
    assert caught.value.definite is True
    assert caught.value.code == "connect_failed"


def test_status_line_shows_phase_time_ops_and_fault() -> None:
    history = History(clock_ns=lambda: 0)
    history.invoke(0, "read", 1, None)
    history.complete(0, "ok", 3)
    state = RunState(phase="run", started_s=100.0, time_limit_s=60.0, run_started_s=110.0,
                     fault="partition-halves", history=history)
    line = status_line(state, 130.0)
    assert line == "[run]    30 s elapsed,  40 s left | 1 ops | fault: partition-halves"
