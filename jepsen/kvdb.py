"""The real DB: kvserver deployed over SSH, one daemon per node, joined into one cluster.

Role: jepsen-io/jepsen `db.clj` for kvserver. Setup builds the wheels on the control node
(jepsen/wheels.py), uploads them over SFTP, installs them into a venv on each node with
`pip install --no-index --find-links` (no node ever reaches a package index), starts the
first node alone (it bootstraps a one-node cluster), then the others with `--join`, and
waits until every node is a voter. Faults go through jepsen/control.py (kill -9, SIGSTOP,
SIGCONT, WAL damage) and jepsen/net.py (iptables); membership and leadership through the
cluster API. Teardown stops every daemon, removes the harness's firewall chain and the
run's files; `collect` first stops every node, then downloads each node's log and trace.

Files on a node, under BASE/<node>/ (local hosts share one filesystem, so the node's name
is in every path; BASE is <hosts state dir>/nodes for local hosts, ~/raftkv-jepsen
otherwise):

    wheels/                  the uploaded wheels (dependency set kept between runs)
    venv-<deps key>/         python -m venv + the dependency set; the project wheel is
                             reinstalled for every run (local hosts share one of each,
                             in BASE/shared/)
    run/data/                kvserver's DATA_DIR            run/kvserver.log, kvserver.pid
    run/trace.jsonl          kvserver --trace (stored gzipped as <node>/trace.jsonl.gz)

Rules:
- Every process is found through its pid file (control.py), never by name.
- The cluster secret is fresh per run and reaches kvserver through its environment.
- A restarted node is always given `--join` to a live peer: with state it ignores it, and
  with an empty data directory it joins instead of bootstrapping a second cluster.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import secrets
import shlex
import shutil
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from jepsen import control, hosts, net, wheels
from jepsen.api import HttpKvApi
from jepsen.cli import UsageError
from jepsen.core import TestConfig
from jepsen.db import DBError
from jepsen.remote import RemoteError, SshOptions, SshRemote, connect

HTTP_PORT = 7700
RAFT_PORT = 7701
REMOTE_BASE = "~/raftkv-jepsen"  # under the login's home, resolved on the node
_T = TypeVar("_T")
log = logging.getLogger("jepsen")


@dataclass(frozen=True, slots=True)
class Target:
    """Where the nodes are and how to reach them."""

    nodes: tuple[str, ...]
    ssh: SshOptions
    addresses: Mapping[str, str]
    base_dir: str
    python: str
    local_hosts: bool = False


def target_from_args(args: argparse.Namespace, nodes: tuple[str, ...]) -> Target:
    """Real hosts from the node options, or the local hosts (made if needed) without them."""
    overrides: dict[str, object] = {"prefix": args.hosts_prefix, "subnet": args.hosts_subnet}
    if args.hosts_state_dir is not None:
        overrides["state_dir"] = args.hosts_state_dir.resolve()
    config = hosts.config_from_env(**overrides)
    if not nodes:
        return local_hosts_target(config)
    local = _local_hosts_named(config, nodes)
    if local is not None:
        return local
    addresses = {}
    for node in nodes:
        try:
            addresses[node] = socket.gethostbyname(node)
        except OSError as error:
            raise UsageError(f"cannot resolve node {node!r}: {error}") from error
    ssh = SshOptions(username=args.username, private_key_path=args.ssh_private_key,
                     port=args.ssh_port, strict_host_key_checking=args.strict_host_key_checking)
    return Target(nodes, ssh, addresses, REMOTE_BASE, "python3")


def _local_hosts_named(config: hosts.HostsConfig, nodes: tuple[str, ...]) -> Target | None:
    """The local hosts, when they are up and `nodes` are all among them (`--nodes n1..n3`
    then means those local hosts); None otherwise."""
    try:
        state = hosts.load_state(config)
    except hosts.HostsError:
        return None
    if state is None or not set(nodes) <= {h.name for h in state.hosts}:
        return None
    whole = local_hosts_target(config)
    return Target(nodes, whole.ssh, {n: whole.addresses[n] for n in nodes}, whole.base_dir,
                  whole.python, local_hosts=True)


def local_hosts_target(config: hosts.HostsConfig, count: int = 5) -> Target:
    """The local hosts of `config`, made first (n1..n5) if they are not up and healthy."""
    state = hosts.load_state(config)
    if state is None or not hosts.healthy(config, state):
        state, _ = hosts.up(config, count)
    # Local hosts share this machine's interpreter; the venv's base one is a real python.
    python = getattr(sys, "_base_executable", sys.executable)
    return Target(tuple(h.name for h in state.hosts), state.ssh_options(), state.addresses,
                  str(state.state_dir / "nodes"), python, local_hosts=True)


@dataclass(slots=True)
class _NodeFiles:
    base: str

    @property
    def run(self) -> str:
        return f"{self.base}/run"

    @property
    def data(self) -> str:
        return f"{self.base}/run/data"

    @property
    def trace(self) -> str:
        return f"{self.base}/run/trace.jsonl"

    @property
    def daemon(self) -> control.Daemon:
        return control.Daemon(f"{self.base}/run/kvserver.pid", f"{self.base}/run/kvserver.log")


@dataclass(slots=True)
class KvDB:
    """kvserver on the target's nodes (see the module docstring)."""

    target: Target
    config: TestConfig
    run_number: int = 0
    remotes: dict[str, SshRemote] = field(default_factory=dict)
    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    wheel_set: wheels.WheelSet | None = None
    started_once: set[str] = field(default_factory=set)
    bases: dict[str, str] = field(default_factory=dict)

    @property
    def nodes(self) -> tuple[str, ...]:
        return self.target.nodes

    def files(self, node: str) -> _NodeFiles:
        base = self.bases.get(node)
        if base is None:
            base = self.target.base_dir
            if base.startswith("~/"):
                home = self._remote(node).exec('printf %s "$HOME"').text.strip()
                if not home.startswith("/"):
                    raise DBError(node, f"cannot find the login's home directory ({home!r})")
                base = home + base[1:]
            base = self.bases[node] = f"{base}/{node}"
        return _NodeFiles(base)

    def install_root(self, node: str) -> str:
        """Where wheels and the venv live: per node, or once for local hosts, which share
        this machine's filesystem (the venv is only read while nodes run)."""
        if self.target.local_hosts:
            return f"{self.target.base_dir}/shared"
        return self.files(node).base

    def venv(self, node: str) -> str:
        assert self.wheel_set is not None
        return f"{self.install_root(node)}/venv-{self.wheel_set.deps_key}"

    def http_address(self, node: str) -> str:
        return f"{self.target.addresses[node]}:{HTTP_PORT}"

    def _on_all(self, action: Callable[[str], _T]) -> dict[str, _T]:
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            futures = {node: pool.submit(action, node) for node in self.nodes}
            return {node: future.result() for node, future in futures.items()}

    def _remote(self, node: str) -> SshRemote:
        remote = self.remotes.get(node)
        if remote is None:
            try:
                remote = self.remotes[node] = connect(node, self.target.ssh)
            except RemoteError as error:
                raise DBError(node, error.cause) from error
        return remote

    # ------------------------------------------------------------ setup and teardown
    def setup(self) -> None:
        self._on_all(self._remote)  # an unreachable node fails the run before any build
        self.wheel_set = wheels.build()
        self._on_all(self._prepare)
        if self.target.local_hosts:
            self._install(self.nodes[0])
        else:
            self._on_all(self._install)
        net.teardown_all({n: self.remotes[n] for n in self.nodes})
        first, *others = self.nodes
        self._start_daemon(first, join=None)
        if not self._wait_leader([first], 30.0):
            log_tail = control.tail_lines(self._remote(first), self.files(first).daemon.log_file)
            raise DBError(first, f"no leader in its one-node cluster; its log ends:\n{log_tail}")
        for node in others:
            self._start_daemon(node, join=self.http_address(first))

    def _prepare(self, node: str) -> None:
        run_dir = self.files(node).run
        self._remote(node).exec(f"rm -rf {shlex.quote(run_dir)} && mkdir -p "
                                f"{shlex.quote(run_dir)}")

    def _install(self, node: str) -> None:
        assert self.wheel_set is not None
        remote = self._remote(node)
        wheel_dir = f"{self.install_root(node)}/wheels"
        venv = self.venv(node)
        remote.exec(["mkdir", "-p", wheel_dir])
        marker = f"{venv}/.deps-installed"
        ready = remote.exec(["test", "-f", marker], check=False).exit_status == 0
        if not ready:
            remote.exec(["rm", "-rf", venv, wheel_dir])
            remote.exec(["mkdir", "-p", wheel_dir])
            for wheel in self.wheel_set.dependency_wheels:
                remote.upload(wheel, f"{wheel_dir}/{wheel.name}")
        project = self.wheel_set.project_wheel
        remote.upload(project, f"{wheel_dir}/{project.name}")
        pip = f"{shlex.quote(venv)}/bin/pip install --quiet --no-index --find-links " \
              f"{shlex.quote(wheel_dir)}"
        if not ready:
            remote.exec(f"{shlex.quote(self.target.python)} -m venv {shlex.quote(venv)} "
                        f"&& {pip} {shlex.quote(f'{wheel_dir}/{project.name}')} "
                        f"&& touch {shlex.quote(marker)}", timeout_s=900)
        remote.exec(f"{pip} --no-deps --force-reinstall "
                    f"{shlex.quote(f'{wheel_dir}/{project.name}')} "
                    f"&& rm -f {shlex.quote(f'{wheel_dir}/{project.name}')}", timeout_s=300)

    def _start_daemon(self, node: str, join: str | None) -> None:
        files = self.files(node)
        address = self.target.addresses[node]
        argv = [f"{self.venv(node)}/bin/python", "-m", "kvserver", "--id", node,
                "--http", f"{address}:{HTTP_PORT}", "--raft", f"{address}:{RAFT_PORT}",
                "--trace", files.trace, "--log-level", "INFO"]
        if join is not None:
            argv += ["--join", join]
        argv.append(files.data)
        try:
            control.start_daemon(self._remote(node), files.daemon, argv, cwd=files.run,
                                 env={"RAFTKV_CLUSTER_SECRET": self.secret})
        except (control.ControlError, RemoteError) as error:
            raise DBError(node, f"cannot start kvserver: {error}") from error
        self.started_once.add(node)

    def collect(self, target_dir: Path) -> None:
        """Stop every node first (SIGTERM: each writes the rest of its trace), then copy
        the files: a trace copied while its peers still run could lack sends they have
        already received, and the merged traces would not validate."""

        def halt(node: str) -> None:
            remote = self.remotes.get(node)
            if remote is not None:
                try:
                    control.stop_daemon(remote, self.files(node).daemon)
                except (control.ControlError, RemoteError) as error:
                    log.warning("%s: cannot stop kvserver before collecting: %s", node, error)

        self._on_all(halt)

        def fetch(node: str) -> None:
            folder = target_dir / node
            folder.mkdir(parents=True, exist_ok=True)
            files, remote = self.files(node), self.remotes.get(node)
            if remote is None:
                return
            for remote_path, name in ((files.daemon.log_file, "node.log"),
                                      (files.trace, "trace.jsonl")):
                try:
                    remote.download(remote_path, folder / name)
                except RemoteError as error:
                    (folder / f"{name}.missing").write_text(f"{error}\n", encoding="utf-8")
            trace = folder / "trace.jsonl"
            if trace.is_file():
                # Traces run to tens of megabytes per node and compress about tenfold.
                with trace.open("rb") as source, gzip.open(f"{trace}.gz", "wb") as target:
                    shutil.copyfileobj(source, target)
                trace.unlink()

        self._on_all(fetch)

    def teardown(self) -> None:
        def stop(node: str) -> None:
            remote = self.remotes.get(node)
            if remote is None:
                return
            control.stop_daemon(remote, self.files(node).daemon)
            net.teardown(remote)
            if not self.config.extra.get("keep_cluster_files"):
                remote.exec(["rm", "-rf", self.files(node).run])

        try:
            self._on_all(stop)
        finally:
            for remote in self.remotes.values():
                remote.close()
            self.remotes.clear()
            if self.wheel_set is not None:
                project_dir = self.wheel_set.project_wheel.parent
                self.wheel_set.project_wheel.unlink(missing_ok=True)
                if project_dir.is_dir() and not any(project_dir.iterdir()):
                    project_dir.rmdir()

    # ------------------------------------------------------------ cluster state
    def api(self, node: str, timeout_s: float) -> HttpKvApi:
        return HttpKvApi(node, self.http_address(node), timeout_s)

    def _get_json(self, node: str, path: str, timeout_s: float = 2.0) -> dict[str, Any] | None:
        import http.client  # noqa: PLC0415 - only for the cluster routes

        connection = http.client.HTTPConnection(self.target.addresses[node], HTTP_PORT,
                                                timeout=timeout_s)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            doc = json.loads(response.read() or b"null")
        except (OSError, ValueError, http.client.HTTPException):
            return None
        finally:
            connection.close()
        return doc if isinstance(doc, dict) and response.status == 200 else None

    def _post(self, node: str, path: str, body: dict[str, Any], timeout_s: float = 10.0
              ) -> dict[str, Any]:
        import http.client  # noqa: PLC0415

        connection = http.client.HTTPConnection(self.target.addresses[node], HTTP_PORT,
                                                timeout=timeout_s)
        try:
            connection.request("POST", path, body=json.dumps(body).encode(),
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            doc = json.loads(response.read() or b"null")
        except (OSError, ValueError, http.client.HTTPException) as error:
            raise DBError(node, f"POST {path}: {error!r}") from error
        finally:
            connection.close()
        if not isinstance(doc, dict) or response.status != 200:
            raise DBError(node, f"POST {path} answered {response.status}: {doc}")
        return doc

    def leader(self) -> str | None:
        for node in self.nodes:
            doc = self._get_json(node, "/health", 1.0)
            if doc is not None and isinstance(doc.get("leader"), str):
                return str(doc["leader"])
        return None

    def _wait_leader(self, nodes: Sequence[str], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            docs = [self._get_json(node, "/health", 1.0) for node in nodes]
            if all(d is not None and d.get("leader") for d in docs):
                return True
            time.sleep(0.2)
        return False

    def await_healthy(self, nodes: Sequence[str], timeout_s: float) -> bool:
        """Every node answers, agrees on one leader, and the leader lists all as voters."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._healthy(nodes):
                return True
            time.sleep(0.3)
        return False

    def _healthy(self, nodes: Sequence[str]) -> bool:
        docs = [self._get_json(node, "/health", 1.0) for node in nodes]
        leaders = {d.get("leader") for d in docs if d is not None}
        if any(d is None for d in docs) or len(leaders) != 1 or None in leaders:
            return False
        leader = str(leaders.pop())
        if leader not in self.target.addresses:
            return False
        cluster = self._get_json(leader, "/cluster", 2.0)
        if cluster is None:
            return False
        voters = {m.get("node_id") for m in cluster.get("members", [])
                  if isinstance(m, dict) and m.get("role") == "voter"}
        return set(nodes) <= voters

    # ------------------------------------------------------------ faults
    def kill(self, node: str) -> None:
        try:
            control.kill_daemon(self._remote(node), self.files(node).daemon)
        except (control.ControlError, RemoteError) as error:
            raise DBError(node, f"kill: {error}") from error

    def _live_peer(self, node: str) -> str:
        for other in self.nodes:
            if other != node and control.is_running(self._remote(other),
                                                     self.files(other).daemon):
                return self.http_address(other)
        return self.http_address(self.nodes[0] if self.nodes[0] != node else self.nodes[-1])

    def start(self, node: str) -> None:
        remote = self._remote(node)
        if control.is_running(remote, self.files(node).daemon):
            return
        self._start_daemon(node, join=self._live_peer(node))

    def pause(self, node: str) -> None:
        control.pause_daemon(self._remote(node), self.files(node).daemon)

    def resume(self, node: str) -> None:
        control.resume_daemon(self._remote(node), self.files(node).daemon)

    def partition(self, grudge: Mapping[str, frozenset[str]]) -> None:
        try:
            net.partition({n: self._remote(n) for n in self.nodes}, grudge, self.target.addresses)
        except RemoteError as error:
            raise DBError(error.host, f"partition: {error.cause}") from error

    def heal_network(self) -> None:
        try:
            net.heal_all({n: self._remote(n) for n in self.nodes})
        except RemoteError as error:
            raise DBError(error.host, f"heal: {error.cause}") from error

    def _leader_or_any(self, avoid: str | None = None) -> str:
        leader = self.leader()
        if leader is not None and leader != avoid and leader in self.target.addresses:
            return leader
        return next(n for n in self.nodes if n != avoid)

    def remove_member(self, node: str) -> None:
        via = self._leader_or_any(avoid=node)
        self._post(via, "/cluster/remove", {"id": node})
        control.stop_daemon(self._remote(node), self.files(node).daemon)
        self._remote(node).exec(["rm", "-rf", self.files(node).data])

    def add_member(self, node: str) -> None:
        remote = self._remote(node)
        control.stop_daemon(remote, self.files(node).daemon)
        remote.exec(["rm", "-rf", self.files(node).data])
        self._start_daemon(node, join=self._live_peer(node))

    def transfer_leadership(self, to: str | None) -> str:
        via = self._leader_or_any()
        doc = self._post(via, "/cluster/transfer-leadership", {"id": to} if to else {})
        return str(doc.get("leader"))

    def damage_wal(self, node: str, kind: str, amount: int) -> str:
        remote = self._remote(node)
        wal_dir = f"{self.files(node).data}/wal"
        listing = remote.exec(f"ls -1 {shlex.quote(wal_dir)} 2>/dev/null | grep '\\.wal$' "
                              "| sort | tail -n 1", check=False).text.strip()
        if not listing:
            return "no WAL segment to damage"
        path = f"{wal_dir}/{listing}"
        try:
            if kind == "truncate":
                size = control.truncate_tail(remote, path, amount)
                return f"truncated {listing} to {size} bytes"
            offset = control.flip_bytes(remote, path, amount)
            return f"flipped the byte at offset {offset} of {listing}"
        except (control.ControlError, RemoteError) as error:
            return f"could not damage {listing}: {error}"
