"""Local hosts: n1..nN on this machine as network namespaces, each with its own sshd.

Theory of operation (all names carry the configured prefix, `rkj` by default):

    root namespace                 switch namespace rkj-sw         host namespace rkj-nK
    rkj-ctl 10.77.0.1/24 <--veth--> ctl ] br0 [ nK <------veth------> eth0 10.77.0.(10+K)/24
                                                                      lo 127.0.0.1 (up)
                                                                      sshd on 10.77.0.(10+K):22

The bridge lives in a namespace of its own, so frames between hosts never pass the root
namespace's netfilter hooks (br_netfilter would otherwise send them through the machine's
FORWARD chain, whose policy is the machine's business). The control node (this process,
in the root namespace) reaches every host through `rkj-ctl`.

Each host runs `/usr/sbin/sshd -f <state>/nK/sshd_config`: its own ed25519 host key, its
own pid and log file, listening only on the host's address, accepting only the harness's
own key (`<state>/authorized_keys`). The harness writes a known-hosts file with every host
key, so sessions to local hosts check host keys strictly. `<state>/hosts.json` is the
name-to-address map; nothing in /etc/ssh, ~/.ssh, /etc/hosts or the machine's firewall is
read or changed.

Errors, one tree (each message says what to do next):

    HostsError
    ├── BadConfig            a prefix, subnet or host count that cannot work
    ├── AlreadyUp            hosts of another size are up (`down` first)
    ├── NotRoot              the command needs root
    ├── MissingTool          ip, iptables or /usr/sbin/sshd is missing (apt-get install ...)
    ├── SubnetInUse          the subnet overlaps a route this machine already has
    └── HostsStateCorrupt    the state file exists but cannot be trusted (`down` still works)

Rules:
- Needs root; without it, or without `ip`, `sshd` or `iptables`, `up` raises a
  `HostsError` that says how to proceed, before changing anything.
- `up` is idempotent (hosts already up and healthy are kept); a failed `up` undoes itself.
- `down` works from what exists, not from the state file, so it also cleans up after a
  crash or a corrupt state file. It kills every process in the hosts' namespaces (sshd and
  anything started over SSH), deletes the namespaces and links, and removes the state
  directory (only if it carries the harness's marker file).
- Local hosts share this machine's filesystem and process table: paths on a node must
  include the node's name, and processes are found by pid file, never by name.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jepsen import net, sshd
from jepsen.remote import SshOptions

DEFAULT_STATE_DIR = Path("/var/lib/raftkv-jepsen/hosts")
STATE_DIR_ENV = "RAFTKV_JEPSEN_HOSTS_DIR"
STATE_FILE = "hosts.json"
MARKER_FILE = ".raftkv-jepsen-hosts"
PRIVSEP_FLAG_FILE = "created-run-sshd"
STATE_FORMAT = "raftkv-jepsen-hosts"
STATE_VERSION = 1
SSHD_PATH = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")
FIRST_HOST_OFFSET = 10
INSTALL_HINT = "apt-get install -y openssh-server iptables"
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")


class HostsError(Exception):
    """Local hosts cannot be made, inspected or removed; the message says why and what to do."""


class BadConfig(HostsError):
    """A prefix, subnet or host count that cannot work."""


class AlreadyUp(HostsError):
    """Local hosts of another size are already up."""


class NotRoot(HostsError):
    """The command needs root."""


class MissingTool(HostsError):
    """A program the local hosts need is not installed."""


class SubnetInUse(HostsError):
    """The configured subnet overlaps an address or route this machine already has."""


class HostsStateCorrupt(HostsError):
    """The state file exists but cannot be trusted."""


@dataclass(frozen=True, slots=True)
class HostsConfig:
    prefix: str = "rkj"
    subnet: str = "10.77.0.0/24"
    state_dir: Path = DEFAULT_STATE_DIR
    ssh_port: int = 22
    start_timeout_s: float = 15.0

    def __post_init__(self) -> None:
        if not _PREFIX_RE.match(self.prefix):
            raise BadConfig(f"invalid prefix {self.prefix!r}: 1-8 of [a-z0-9], letter first")
        try:
            network = ipaddress.IPv4Network(self.subnet)
        except ValueError as error:
            raise BadConfig(f"invalid subnet {self.subnet!r}: {error}") from error
        if network.prefixlen > 28 or not network.is_private:
            raise BadConfig(f"subnet {self.subnet} must be a private IPv4 /28 or larger")

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def switch_namespace(self) -> str:
        return f"{self.prefix}-sw"

    @property
    def control_link(self) -> str:
        return f"{self.prefix}-ctl"

    @property
    def control_address(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def max_hosts(self) -> int:
        return min(99, self.network.num_addresses - FIRST_HOST_OFFSET - 2)

    def namespace(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def address(self, index: int) -> str:
        assert 1 <= index <= self.max_hosts
        return str(self.network.network_address + FIRST_HOST_OFFSET + index)


def config_from_env(**overrides: Any) -> HostsConfig:
    """The default config, with the state directory taken from the environment if set."""
    state_dir = os.environ.get(STATE_DIR_ENV)
    if state_dir and "state_dir" not in overrides:
        overrides["state_dir"] = Path(state_dir)
    return HostsConfig(**overrides)


@dataclass(frozen=True, slots=True)
class LocalHost:
    name: str
    namespace: str
    address: str


@dataclass(frozen=True, slots=True)
class HostsState:
    """What `up` made: enough for `status`, `down` and SSH sessions to the hosts."""

    prefix: str
    subnet: str
    state_dir: Path
    control_address: str
    ssh_port: int
    hosts: tuple[LocalHost, ...]

    @property
    def private_key_path(self) -> Path:
        return self.state_dir / "id_ed25519"

    @property
    def known_hosts_path(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def addresses(self) -> dict[str, str]:
        return {host.name: host.address for host in self.hosts}

    def ssh_options(self, connect_timeout_s: float = 10.0) -> SshOptions:
        """SSH options for sessions to these hosts: root, the harness's key, strict keys."""
        return SshOptions(
            username="root",
            private_key_path=self.private_key_path,
            port=self.ssh_port,
            strict_host_key_checking=True,
            known_hosts_path=self.known_hosts_path,
            connect_timeout_s=connect_timeout_s,
            addresses=self.addresses,
        )

    def to_json(self) -> str:
        document = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "prefix": self.prefix,
            "subnet": self.subnet,
            "control_address": self.control_address,
            "ssh_port": self.ssh_port,
            "hosts": [
                {"name": h.name, "namespace": h.namespace, "address": h.address}
                for h in self.hosts
            ],
        }
        return json.dumps(document, indent=2) + "\n"


def parse_state(text: str, state_dir: Path) -> HostsState:
    """Parse and validate a state file's text; raises `HostsStateCorrupt`."""
    where = state_dir / STATE_FILE
    try:
        document = json.loads(text)
        if document.get("format") != STATE_FORMAT or document.get("version") != STATE_VERSION:
            raise ValueError("unknown format or version")
        hosts = tuple(
            LocalHost(str(h["name"]), str(h["namespace"]), str(h["address"]))
            for h in document["hosts"]
        )
        state = HostsState(
            prefix=str(document["prefix"]),
            subnet=str(document["subnet"]),
            state_dir=state_dir,
            control_address=str(document["control_address"]),
            ssh_port=int(document["ssh_port"]),
            hosts=hosts,
        )
        network = ipaddress.IPv4Network(state.subnet)
        for host in hosts:
            if ipaddress.IPv4Address(host.address) not in network:
                raise ValueError(f"{host.name} address {host.address} outside {state.subnet}")
            if host.namespace != f"{state.prefix}-{host.name}":
                raise ValueError(f"{host.name} has namespace {host.namespace}")
        if len({h.name for h in hosts}) != len(hosts) or not hosts:
            raise ValueError("host names missing or repeated")
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise HostsStateCorrupt(
            f"state file {where} is corrupt ({error}); run `python -m jepsen hosts down`, "
            "which cleans up without it, then `hosts up` again"
        ) from error
    return state


def load_state(config: HostsConfig) -> HostsState | None:
    """The state of hosts made with `config`, None when there are none."""
    path = config.state_dir / STATE_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise HostsStateCorrupt(f"cannot read state file {path}: {error}") from error
    state = parse_state(text, config.state_dir)
    if state.prefix != config.prefix or state.subnet != config.subnet:
        raise HostsStateCorrupt(f"state file {path} belongs to prefix {state.prefix}")
    return state


# -- running commands on this machine ----------------------------------------------------


def _run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a local command; a failure raises `HostsError` with the command's stderr."""
    try:
        completed = subprocess.run(  # noqa: S603 - argv lists built by this module
            list(argv), capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise HostsError(f"`{' '.join(argv)}` could not run: {error}") from error
    if check and completed.returncode != 0:
        raise HostsError(f"`{' '.join(argv)}` failed: {completed.stderr.strip()}")
    return completed


def require_root(action: str) -> None:
    if os.geteuid() != 0:
        raise NotRoot(
            f"`hosts {action}` needs root (network namespaces, iptables, sshd). Run it as "
            f"root, e.g. `sudo .venv/bin/python -m jepsen hosts {action}`, or test real "
            "hosts over SSH with `python -m jepsen run --nodes ...`."
        )


def missing_tools() -> list[str]:
    """The tools local hosts need that this machine lacks (empty when all are there)."""
    missing = [tool for tool in ("ip", "iptables") if shutil.which(tool) is None]
    if not SSHD_PATH.exists():
        missing.append(str(SSHD_PATH))
    return missing


def require_tools() -> None:
    missing = missing_tools()
    if missing:
        raise MissingTool(
            f"local hosts need {', '.join(missing)}, which this machine lacks; on Debian "
            f"install them with `{INSTALL_HINT}` (the machine's own sshd is not used)"
        )


def existing_namespaces(config: HostsConfig) -> list[str]:
    """Namespaces on this machine that carry the harness's prefix, hosts and switch."""
    listing = _run(["ip", "netns", "list"]).stdout
    pattern = re.compile(rf"^{re.escape(config.prefix)}-(n[0-9]+|sw)$")
    names = [line.split()[0] for line in listing.splitlines() if line.strip()]
    return sorted(name for name in names if pattern.match(name))


def link_exists(name: str) -> bool:
    return _run(["ip", "link", "show", "dev", name], check=False).returncode == 0


def namespace_pids(namespace: str) -> list[int]:
    listing = _run(["ip", "netns", "pids", namespace], check=False).stdout
    return [int(pid) for pid in listing.split() if pid.isdigit()]


def pid_alive(pid: int) -> bool:
    """True when `pid` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    match = re.search(r"^State:\s+(\S)", status, re.MULTILINE)
    return match is not None and match.group(1) not in ("Z", "X")


def any_sshd_running() -> bool:
    """True when any sshd process runs on this machine."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            is_sshd = comm.read_text().strip() == "sshd"
        except OSError:
            continue
        if is_sshd and pid_alive(int(comm.parent.name)):
            return True
    return False


def subnet_conflicts(config: HostsConfig) -> list[str]:
    """Routes of the root namespace that overlap the subnet (other than the harness's)."""
    routes = json.loads(_run(["ip", "-4", "-j", "route", "show", "table", "all"]).stdout)
    conflicts = []
    for route in routes:
        destination = route.get("dst", "")
        if destination in ("default", "") or route.get("dev") == config.control_link:
            continue
        try:
            network = ipaddress.IPv4Network(destination, strict=False)
        except ValueError:
            continue
        if network.prefixlen > 0 and network.overlaps(config.network):
            conflicts.append(f"{destination} dev {route.get('dev', '?')}")
    return conflicts


# -- keys and files ----------------------------------------------------------------------


def _prepare_files(config: HostsConfig, hosts: Sequence[LocalHost]) -> list[str]:
    """Create the state directory, keys and sshd configs; returns known-hosts lines."""
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(config.state_dir, 0o700)
    (config.state_dir / MARKER_FILE).write_text("made by python -m jepsen hosts up\n")
    public = sshd.generate_key_pair(config.state_dir / "id_ed25519")
    sshd.write_private(config.state_dir / "authorized_keys", (public + "\n").encode())
    known_hosts: list[str] = []
    for host in hosts:
        host_dir = config.state_dir / host.name
        host_dir.mkdir(mode=0o700, exist_ok=True)
        host_key = sshd.generate_key_pair(host_dir / "ssh_host_ed25519_key")
        key_type, key_data = host_key.split()[:2]
        port = config.ssh_port
        names = [host.address, host.name] if port == 22 else [f"[{host.address}]:{port}"]
        known_hosts.extend(f"{name} {key_type} {key_data}" for name in names)
        text = sshd.config_text(
            host.name, host.address, config.ssh_port, host_dir,
            config.state_dir / "authorized_keys",
        )
        sshd.write_private(host_dir / "sshd_config", text.encode())
    return known_hosts


# -- up ----------------------------------------------------------------------------------


def _make_network(config: HostsConfig, hosts: Sequence[LocalHost]) -> None:
    switch = config.switch_namespace
    prefix_length = config.network.prefixlen
    _run(["ip", "netns", "add", switch])
    _run(["ip", "-n", switch, "link", "add", "br0", "type", "bridge"])
    _run(["ip", "-n", switch, "link", "set", "br0", "up"])
    _run(["ip", "link", "add", config.control_link, "type", "veth",
          "peer", "name", "ctl", "netns", switch])
    _run(["ip", "-n", switch, "link", "set", "ctl", "master", "br0", "up"])
    _run(["ip", "addr", "add", f"{config.control_address}/{prefix_length}",
          "dev", config.control_link])
    _run(["ip", "link", "set", config.control_link, "up"])
    for host in hosts:
        _run(["ip", "netns", "add", host.namespace])
        _run(["ip", "-n", switch, "link", "add", host.name, "type", "veth",
              "peer", "name", "eth0", "netns", host.namespace])
        _run(["ip", "-n", switch, "link", "set", host.name, "master", "br0", "up"])
        _run(["ip", "-n", host.namespace, "addr", "add",
              f"{host.address}/{prefix_length}", "dev", "eth0"])
        _run(["ip", "-n", host.namespace, "link", "set", "eth0", "up"])
        _run(["ip", "-n", host.namespace, "link", "set", "lo", "up"])


def _start_sshd(config: HostsConfig, host: LocalHost) -> None:
    host_dir = config.state_dir / host.name
    _run(["ip", "netns", "exec", host.namespace, str(SSHD_PATH),
          "-f", str(host_dir / "sshd_config"), "-E", str(host_dir / "sshd.log")])


def ssh_banner(address: str, port: int, timeout_s: float) -> bool:
    """True when an SSH server answers with its banner at address:port."""
    try:
        with socket.create_connection((address, port), timeout=timeout_s) as connection:
            connection.settimeout(timeout_s)
            return connection.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def _wait_for_sshd(config: HostsConfig, host: LocalHost) -> None:
    deadline = time.monotonic() + config.start_timeout_s
    while time.monotonic() < deadline:
        if ssh_banner(host.address, config.ssh_port, 1.0):
            return
        time.sleep(0.05)
    log = config.state_dir / host.name / "sshd.log"
    tail = log.read_text()[-400:] if log.exists() else "(no log)"
    raise HostsError(f"sshd of {host.name} did not answer on {host.address}: {tail}")


def plan_hosts(config: HostsConfig, count: int) -> list[LocalHost]:
    if not 1 <= count <= config.max_hosts:
        raise BadConfig(f"--count must be between 1 and {config.max_hosts}, got {count}")
    return [
        LocalHost(f"n{index}", config.namespace(f"n{index}"), config.address(index))
        for index in range(1, count + 1)
    ]


def up(config: HostsConfig, count: int = 5) -> tuple[HostsState, bool]:
    """Make `count` local hosts; returns the state and whether anything was made."""
    hosts = plan_hosts(config, count)
    require_root("up")
    require_tools()
    try:
        existing = load_state(config)
    except HostsStateCorrupt:
        existing = None
    if existing is not None and healthy(config, existing):
        if len(existing.hosts) != count:
            raise AlreadyUp(
                f"{len(existing.hosts)} local hosts are already up, not {count}; "
                "run `hosts down` first"
            )
        return existing, False
    if existing is not None or existing_namespaces(config) or link_exists(config.control_link):
        down(config)
    conflicts = subnet_conflicts(config)
    if conflicts:
        raise SubnetInUse(
            f"subnet {config.subnet} overlaps this machine's routes ({'; '.join(conflicts)}); "
            "choose another with --subnet"
        )
    state = HostsState(
        prefix=config.prefix, subnet=config.subnet, state_dir=config.state_dir,
        control_address=config.control_address, ssh_port=config.ssh_port, hosts=tuple(hosts),
    )
    try:
        known_hosts = _prepare_files(config, hosts)
        if not PRIVSEP_DIR.exists():
            # sshd refuses to start without its privilege separation directory; the flag
            # file tells `down` that the directory is the harness's to remove.
            (config.state_dir / PRIVSEP_FLAG_FILE).write_text(f"{PRIVSEP_DIR}\n")
            PRIVSEP_DIR.mkdir(mode=0o755)
        sshd.write_private(config.state_dir / STATE_FILE, state.to_json().encode())
        _make_network(config, hosts)
        for host in hosts:
            _start_sshd(config, host)
        for host in hosts:
            _wait_for_sshd(config, host)
        sshd.write_private(state.known_hosts_path, ("\n".join(known_hosts) + "\n").encode())
    except BaseException:
        down(config)
        raise
    return state, True


# -- status and down ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostStatus:
    host: LocalHost
    namespace_exists: bool
    sshd_pid: int | None
    ssh_answers: bool

    @property
    def ok(self) -> bool:
        return self.namespace_exists and self.sshd_pid is not None and self.ssh_answers


def sshd_pid(config: HostsConfig, host: LocalHost) -> int | None:
    """The pid of the host's sshd if its pid file names a live process."""
    try:
        text = (config.state_dir / host.name / "sshd.pid").read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and pid_alive(int(text)) else None


def host_statuses(config: HostsConfig, state: HostsState) -> list[HostStatus]:
    namespaces = set(existing_namespaces(config))
    return [
        HostStatus(
            host=host,
            namespace_exists=host.namespace in namespaces,
            sshd_pid=sshd_pid(config, host),
            ssh_answers=ssh_banner(host.address, state.ssh_port, 1.0),
        )
        for host in state.hosts
    ]


def healthy(config: HostsConfig, state: HostsState) -> bool:
    return link_exists(config.control_link) and all(
        status.ok for status in host_statuses(config, state)
    )


def _kill_namespace_processes(namespaces: Sequence[str]) -> int:
    """SIGKILL every process in the namespaces and wait for them; returns how many."""
    pids = [pid for namespace in namespaces for pid in namespace_pids(namespace)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 10.0
    while any(pid_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            survivors = [pid for pid in pids if pid_alive(pid)]
            raise HostsError(f"processes {survivors} survived SIGKILL")
        time.sleep(0.02)
    return len(pids)


def down(config: HostsConfig) -> list[str]:
    """Remove every trace of local hosts made with `config`; returns what was removed."""
    require_root("down")
    removed: list[str] = []
    namespaces = existing_namespaces(config)
    killed = _kill_namespace_processes(namespaces)
    if killed:
        removed.append(f"{killed} processes")
    for namespace in namespaces:
        _run(["ip", "netns", "delete", namespace])
        removed.append(f"namespace {namespace}")
    if link_exists(config.control_link):
        _run(["ip", "link", "delete", config.control_link])
        removed.append(f"link {config.control_link}")
    removed.extend(_remove_files(config))
    return removed


def _remove_files(config: HostsConfig) -> list[str]:
    removed = []
    created_privsep_dir = (config.state_dir / PRIVSEP_FLAG_FILE).exists()
    if (config.state_dir / MARKER_FILE).exists():
        shutil.rmtree(config.state_dir)
        removed.append(f"directory {config.state_dir}")
        parent = config.state_dir.parent
        if config.state_dir == DEFAULT_STATE_DIR and not any(parent.iterdir()):
            parent.rmdir()
    elif config.state_dir.exists():
        raise HostsError(f"{config.state_dir} lacks {MARKER_FILE}; not removing it")
    # Another sshd (the machine's, or other local hosts') may rely on the directory now.
    ours = created_privsep_dir and PRIVSEP_DIR.is_dir() and not any_sshd_running()
    if ours and not any(PRIVSEP_DIR.iterdir()):
        PRIVSEP_DIR.rmdir()
        removed.append(f"directory {PRIVSEP_DIR}")
    return removed


def leftovers(config: HostsConfig) -> list[str]:
    """Every trace of these hosts that could survive `down`, described; empty when clean.

    Namespaces, the control link, the state directory, live processes started with the
    state directory on their command line, and the harness's iptables chain in this
    machine's own namespace."""
    found = [f"namespace {name}" for name in existing_namespaces(config)]
    if link_exists(config.control_link):
        found.append(f"link {config.control_link}")
    if config.state_dir.exists():
        found.append(f"directory {config.state_dir}")
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(config.state_dir) in text and pid_alive(int(cmdline.parent.name)):
            found.append(f"process {cmdline.parent.name}: {text}")
    if shutil.which("iptables-save") is None:
        return found
    if net.CHAIN in _run(["iptables-save"], check=False).stdout:
        found.append("iptables chain in the root namespace")
    return found
