"""Load generation for bench/kvserver.py: wrk with generated Lua scripts, a check that wrk
is not the bottleneck, and the sequential writer that measures failover.

Role: everything that sends requests. wrk (Debian package `wrk`, C, event-driven) runs
closed-loop connections: each of `clients` connections sends its next request when the
previous one is answered. The Lua script is generated per system and workload with every
request precomputed, and reports its figures as one JSON line from `done()`.

Rules: traffic goes to 127.0.0.1 only. Every run is bounded in time.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KEYS = 1000
VALUE = "x" * 16
WORKLOADS = ("write", "read", "mix")
"""write: PUT of a random key; read: linearizable GET of a random key; mix: half each."""

_LUA = r"""
local writes, reads = {}, {}
local mode = "%(mode)s"
function init(args)
  local keys = {%(keys)s}
  for i, key in ipairs(keys) do
    writes[i] = wrk.format(%(write)s)
    reads[i] = wrk.format(%(read)s)
  end
  math.randomseed(os.time() * 1000 + math.floor(os.clock() * 1e6) + %(seed)d)
end
function request()
  local i = math.random(1, #writes)
  if mode == "write" or (mode == "mix" and math.random() < 0.5) then
    return writes[i]
  end
  return reads[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "status_errors": %%d, ' ..
    '"socket_errors": %%d, "p50_us": %%d, "p99_us": %%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def key_name(i: int) -> str:
    return f"k{i:04d}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_lua(path: Path, api: str, workload: str, seed: int) -> Path:
    """A wrk script for `api` ("raftkv": PUT/GET /kv/KEY; "etcd": v3 JSON gateway)."""
    assert workload in WORKLOADS
    if api == "raftkv":
        keys = ", ".join(f'"{key_name(i)}"' for i in range(KEYS))
        write = f'"PUT", "/kv/" .. key, nil, "{VALUE}"'
        read = '"GET", "/kv/" .. key, nil, nil'
    else:
        assert api == "etcd"
        keys = ", ".join(f'"{_b64(key_name(i))}"' for i in range(KEYS))
        headers = '{["Content-Type"] = "application/json"}'
        write = (f'"POST", "/v3/kv/put", {headers}, '
                 f'\'{{"key": "\' .. key .. \'", "value": "{_b64(VALUE)}"}}\'')
        read = f'"POST", "/v3/kv/range", {headers}, \'{{"key": "\' .. key .. \'"}}\''
    path.write_text(_LUA % {"mode": workload, "keys": keys, "write": write, "read": read,
                            "seed": seed})
    return path


@dataclass(frozen=True, slots=True)
class Cell:
    """One wrk run."""

    rate: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def run_wrk(url: str, script: Path, clients: int, seconds: int) -> Cell:
    threads = 1 if clients == 1 else 2
    command = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s",
               "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                         check=False).stdout
    line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {out[-500:]}")
    doc = json.loads(line.removeprefix("WRKJSON "))
    errors = int(doc["status_errors"]) + int(doc["socket_errors"])
    good = int(doc["requests"]) - int(doc["status_errors"])
    return Cell(good / (int(doc["duration_us"]) / 1e6), doc["p50_us"] / 1000,
                doc["p99_us"] / 1000, int(doc["requests"]), errors)


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        sys.exit("bench.kvserver needs wrk (Debian package wrk): apt-get install -y wrk")


# ---------------------------------------------------------------- the generator's ceiling

_TRIVIAL_SERVER = r"""
import asyncio, socket, sys
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
class P(asyncio.Protocol):
    def connection_made(self, t): self.t = t
    def data_received(self, data):
        n = data.count(b"\r\n\r\n")
        if n: self.t.write(RESPONSE * n)
async def main():
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", int(sys.argv[1])))
    server = await asyncio.get_running_loop().create_server(P, sock=sock, backlog=512)
    await server.serve_forever()
asyncio.run(main())
"""


def generator_ceiling(free_port: Callable[[], int], workdir: Path, seconds: int = 3) -> Cell:
    """wrk's rate against a trivial server (two processes answering a canned response to
    GET requests): what the load generator reaches on this machine when the server
    costs next to nothing."""
    port = free_port()
    servers = [subprocess.Popen([sys.executable, "-c", _TRIVIAL_SERVER, str(port)])
               for _ in range(2)]
    try:
        wait_port(port)
        script = write_lua(workdir / "ceiling.lua", "raftkv", "read", seed=1)
        return run_wrk(f"http://127.0.0.1:{port}", script, 64, seconds)
    finally:
        for server in servers:
            server.kill()
            server.wait()


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


# ---------------------------------------------------------------- failover

WriteRequest = tuple[str, str, bytes, dict[str, str]]
"""(method, path, body, headers) of one write."""


def http_call(address: str, request: WriteRequest, timeout_s: float) -> int:
    """The status of one request (0 when it failed to complete)."""
    method, path, body, headers = request
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        connection.close()


class FailoverWriter:
    """Writes one key after another (each to the members in turn until one acknowledges)
    and records when each acknowledged write was issued and answered."""

    def __init__(self, members: Callable[[], list[str]],
                 make_write: Callable[[int], WriteRequest], timeout_s: float = 0.5) -> None:
        self._members = members
        self._make_write = make_write
        self._timeout_s = timeout_s
        self.acks: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FailoverWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        n = 0
        turn = 0
        while not self._stop.is_set():
            n += 1
            issued = time.monotonic()
            members = self._members()
            for _ in range(max(1, len(members))):
                turn += 1
                address = members[turn % len(members)]
                if http_call(address, self._make_write(n), self._timeout_s) == 200:
                    self.acks.append((issued, time.monotonic()))
                    turn -= 1  # stay with a member that answers
                    break
            else:
                time.sleep(0.005)

    def first_ack_after(self, moment: float, timeout_s: float = 20.0) -> float | None:
        """Seconds from `moment` to the first acknowledgment of a write issued after it."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            for issued, acked in list(self.acks):
                if issued >= moment:
                    return acked - moment
            time.sleep(0.01)
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())
