"""The three 3-node clusters bench/kvserver.py compares, started on 127.0.0.1.

Role: start, find the leader of, kill and restart the members of: this project's
kvserver (`python -m kvserver`, `--fsync always`, default timing), etcd (Debian's
`etcd-server`, driven through its v3 HTTP JSON gateway; etcd always fsyncs its WAL) and
PySyncObj (bench/kvserver_pysyncobj.py: a thin aiohttp front per node, never fsyncs).

Rules: ports are chosen by the kernel, data directories live under the run's temporary
directory, and `stop` kills every process a cluster started.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.kvserver_load import VALUE, WriteRequest, _b64, http_call, key_name

SECRET = "bench-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(address: str, path: str, body: bytes | None = None) -> Any:
    """GET (or POST `body`) a JSON document; None on any failure."""
    method = "GET" if body is None else "POST"
    request = urllib.request.Request(f"http://{address}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


@dataclass
class Member:
    http: str
    args: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=log)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Cluster:
    """Common control of a 3-member cluster; subclasses say how to start and ask."""

    name = ""
    api = "raftkv"
    """The request dialect (kvserver_load.write_lua)."""
    durable = True

    def __init__(self, root: Path) -> None:
        self.root = root / self.name
        self.root.mkdir(parents=True)
        self.members: list[Member] = []

    def start(self) -> None:
        raise NotImplementedError

    def leader_of(self, member: Member) -> str | None:
        """The leader's HTTP address as `member` sees it."""
        raise NotImplementedError

    def write_request(self, n: int) -> WriteRequest:
        return ("PUT", f"/kv/{key_name(n % 1000)}", VALUE.encode(), {})

    def live_http(self) -> list[str]:
        return [m.http for m in self.members if m.alive()]

    def leader(self, timeout_s: float = 30.0) -> Member:
        """The member every live member agrees leads, once they agree and it accepts a
        write."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            views = {self.leader_of(m) for m in self.members if m.alive()}
            if len(views) == 1 and (view := views.pop()) is not None:
                found = next((m for m in self.members if m.http == view), None)
                if found is not None and found.alive() and \
                        http_call(found.http, self.write_request(0), 2.0) == 200:
                    return found
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: no agreed leader within {timeout_s} s; "
                           f"logs in {self.root}")

    def restart(self, member: Member) -> None:
        member.start()

    def stop(self) -> None:
        for member in self.members:
            member.kill()


class RaftKV(Cluster):
    name = "raftkv"

    def start(self) -> None:
        first: str | None = None
        for i in range(1, 4):
            http, raft = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
            args = [sys.executable, "-m", "kvserver", "--id", f"n{i}", "--http", http,
                    "--raft", raft, "--cluster-secret", SECRET, "--fsync", "always",
                    str(self.root / f"n{i}")]
            if first is not None:
                args[-1:-1] = ["--join", first]
            member = Member(http, args, self.root / f"n{i}.log")
            member.start()
            self.members.append(member)
            self._wait_voters(first or http, i)
            first = first or http

    def _wait_voters(self, via: str, count: int) -> None:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            doc = get_json(via, "/cluster")
            if doc and doc.get("leader_http") and sum(
                    m["role"] == "voter" for m in doc["members"]) == count:
                return
            time.sleep(0.1)
        raise RuntimeError(f"raftkv: {count} voters did not form; logs in {self.root}")

    def leader_of(self, member: Member) -> str | None:
        doc = get_json(member.http, "/cluster")
        return doc.get("leader_http") if isinstance(doc, dict) else None


class Etcd(Cluster):
    name = "etcd"
    api = "etcd"

    def start(self) -> None:
        binary = shutil.which("etcd")
        assert binary is not None
        peers = [f"127.0.0.1:{free_port()}" for _ in range(3)]
        initial = ",".join(f"e{i + 1}=http://{p}" for i, p in enumerate(peers))
        for i, peer in enumerate(peers):
            http = f"127.0.0.1:{free_port()}"
            args = [binary, "--name", f"e{i + 1}", "--data-dir", str(self.root / f"e{i + 1}"),
                    "--listen-client-urls", f"http://{http}",
                    "--advertise-client-urls", f"http://{http}",
                    "--listen-peer-urls", f"http://{peer}",
                    "--initial-advertise-peer-urls", f"http://{peer}",
                    "--initial-cluster", initial, "--initial-cluster-state", "new",
                    "--initial-cluster-token", "bench", "--log-level", "error"]
            member = Member(http, args, self.root / f"e{i + 1}.log")
            member.start()
            self.members.append(member)

    def leader_of(self, member: Member) -> str | None:
        doc = get_json(member.http, "/v3/maintenance/status", b"{}")
        if not isinstance(doc, dict) or "leader" not in doc:
            return None
        for other in self.members:
            if other.alive():
                status = get_json(other.http, "/v3/maintenance/status", b"{}")
                if isinstance(status, dict) and \
                        status.get("header", {}).get("member_id") == doc["leader"]:
                    return other.http
        return None

    def write_request(self, n: int) -> WriteRequest:
        body = json.dumps({"key": _b64(key_name(n % 1000)), "value": _b64(VALUE)}).encode()
        return ("POST", "/v3/kv/put", body, {"Content-Type": "application/json"})


class PySyncObjCluster(Cluster):
    name = "pysyncobj"
    durable = False

    def start(self) -> None:
        rafts = [f"127.0.0.1:{free_port()}" for _ in range(3)]
        for i, raft in enumerate(rafts):
            http = f"127.0.0.1:{free_port()}"
            partners = ",".join(r for r in rafts if r != raft)
            args = [sys.executable, "-m", "bench.kvserver_pysyncobj", "--http", http,
                    "--raft", raft, "--partners", partners]
            member = Member(http, args, self.root / f"p{i + 1}.log", extra={"raft": raft})
            member.start()
            self.members.append(member)

    def leader_of(self, member: Member) -> str | None:
        doc = get_json(member.http, "/status")
        if not isinstance(doc, dict) or doc.get("leader") is None:
            return None
        return next((m.http for m in self.members if m.extra["raft"] == doc["leader"]), None)


def available(name: str) -> str | None:
    """Why the system `name` cannot run here (None if it can)."""
    if name == "etcd" and shutil.which("etcd") is None:
        return "etcd is not installed (Debian package etcd-server)"
    if name == "pysyncobj" and importlib.util.find_spec("pysyncobj") is None:
        return "pysyncobj is not installed (pip install pysyncobj)"
    return None


SYSTEMS: dict[str, type[Cluster]] = {
    "raftkv": RaftKV, "etcd": Etcd, "pysyncobj": PySyncObjCluster,
}
