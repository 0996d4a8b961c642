"""Real `python -m kvserver` processes on 127.0.0.1 for the integration tests.

Ports are picked by the kernel (bind to port 0, then released); every process is killed
and every data directory lives under pytest's tmp_path, so nothing outlives a test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECRET = "integration-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
    timeout_s: float = 5.0,
) -> tuple[int, Any]:
    """(status, parsed JSON or text); connection failures give status 0."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError, TimeoutError):
        return 0, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


@dataclass
class Proc:
    node_id: str
    http: str
    raft: str
    data_dir: Path
    log_path: Path
    extra: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    def start(self, join: str | None = None) -> None:
        args = [sys.executable, "-m", "kvserver", "--id", self.node_id, "--http", self.http,
                "--raft", self.raft, "--cluster-secret", SECRET, "-v", *self.extra]
        if join is not None:
            args += ["--join", join]
        args.append(str(self.data_dir))
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(args, stdout=log, stderr=log)
        log.close()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        self.process = None

    def url(self, path: str) -> str:
        return f"http://{self.http}{path}"

    def get(self, path: str) -> tuple[int, Any]:
        return call("GET", self.url(path))

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Cluster:
    def __init__(self, root: Path, extra: list[str] | None = None,
                 per_node: Callable[[str], list[str]] | None = None) -> None:
        self.root = root
        self.extra = extra or []
        self.per_node = per_node
        """More flags for one node, by its id (e.g. its own --trace file)."""
        self.nodes: dict[str, Proc] = {}

    def add(self, node_id: str, join: str | None = None) -> Proc:
        flags = [*self.extra, *(self.per_node(node_id) if self.per_node else [])]
        proc = Proc(node_id, f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}",
                    self.root / node_id, self.root / f"{node_id}.log", flags)
        self.nodes[node_id] = proc
        proc.start(join)
        wait_for(lambda: proc.get("/health")[0] == 200, f"{node_id} up", proc)
        return proc

    def start(self, count: int) -> None:
        first = self.add("n1")
        wait_for(lambda: self.leader_of(first) == "n1", "n1 leads itself", first)
        for i in range(2, count + 1):
            self.add(f"n{i}", join=first.http)
        wait_for(lambda: self.voters() == {f"n{i}" for i in range(1, count + 1)},
                 f"{count} voters", first)

    def voters(self, via: Proc | None = None) -> set[str]:
        for proc in [via] if via else self.live():
            status, doc = proc.get("/cluster")
            if status == 200:
                return {m["node_id"] for m in doc["members"] if m["role"] == "voter"}
        return set()

    def leader_of(self, proc: Proc) -> str | None:
        status, doc = proc.get("/cluster")
        return doc.get("leader_id") if status == 200 else None

    def leader(self) -> Proc:
        def find() -> str | None:
            seen = {self.leader_of(p) for p in self.live()}
            seen.discard(None)
            return seen.pop() if len(seen) == 1 else None

        found: list[str] = []
        wait_for(lambda: (leader := find()) is not None and not found.append(leader),
                 "one agreed leader")
        return self.nodes[found[-1]]

    def live(self) -> list[Proc]:
        return [p for p in self.nodes.values() if p.alive()]

    def put(self, key: str, value: str, via: Proc | None = None, deadline_s: float = 10.0
            ) -> int:
        """Write until acknowledged (retrying definite failures); the entry's index."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            for proc in [via] if via else self.live():
                status, doc = call("PUT", proc.url(f"/kv/{key}"), value.encode())
                if status == 200:
                    return int(doc["index"])
            time.sleep(0.05)
        raise AssertionError(f"write {key}={value} not acknowledged in {deadline_s} s")

    def stop_all(self, sig: int = signal.SIGKILL) -> None:
        for proc in self.nodes.values():
            proc.kill(sig)

    def logs(self) -> str:
        out = []
        for proc in self.nodes.values():
            with contextlib.suppress(OSError):
                out.append(f"==== {proc.node_id}\n" + proc.log_path.read_text()[-3000:])
        return "\n".join(out)


def wait_for(condition: Any, what: str, proc: Proc | None = None, timeout_s: float = 15.0
             ) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return
        if proc is not None and not proc.alive():
            log = proc.log_path.read_text() if proc.log_path.exists() else ""
            raise AssertionError(f"{proc.node_id} exited while waiting for {what}:\n{log}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def env_ok() -> bool:
    return os.name == "posix"
