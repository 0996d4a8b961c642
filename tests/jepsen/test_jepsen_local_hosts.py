"""Local hosts end to end, as root: namespaces, sshd, real SSH, SFTP, iptables partitions.

Every host here is one this module makes itself (prefix `rkjt`, subnet 10.77.201.0/24,
state in a temporary directory), and every test cleans up even when it fails: the
fixture brings the hosts down in `finally` and then asserts that nothing is left.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jepsen import control, hosts, net, remote, sshd
from jepsen.control import Daemon
from jepsen.remote import SshRemote

MISSING = hosts.missing_tools() + [t for t in ("iptables-save",) if shutil.which(t) is None]

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, sshd)"),
    pytest.mark.skipif(bool(MISSING), reason=f"missing {', '.join(MISSING)}"),
    pytest.mark.timeout(60),
]

LISTENER = (
    "import socket, sys\n"
    "server = socket.create_server((sys.argv[1], int(sys.argv[2])))\n"
    "while True:\n"
    "    server.accept()[0].close()\n"
)
PROBE = (
    "import socket, sys\n"
    "socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()"
)
PORT = 7000


def make_config(
    tmp_path: Path, prefix: str = "rkjt", subnet: str = "10.77.201.0/24"
) -> hosts.HostsConfig:
    return hosts.HostsConfig(prefix=prefix, subnet=subnet, state_dir=tmp_path / "hosts")


@dataclass
class Cluster:
    config: hosts.HostsConfig
    state: hosts.HostsState
    remotes: dict[str, SshRemote]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    config = make_config(tmp_path_factory.mktemp("local-hosts"))
    privsep_existed = hosts.PRIVSEP_DIR.exists()
    remotes: dict[str, SshRemote] = {}
    try:
        state, made = hosts.up(config, 3)
        assert made
        options = state.ssh_options(connect_timeout_s=5.0)
        remotes = {host.name: remote.connect(host.name, options) for host in state.hosts}
        yield Cluster(config, state, remotes)
    finally:
        for session in remotes.values():
            session.close()
        hosts.down(config)
    assert hosts.leftovers(config) == []
    # sshd's privilege separation directory is removed again if the harness made it.
    assert hosts.PRIVSEP_DIR.exists() == privsep_existed


def test_up_is_idempotent(cluster: Cluster) -> None:
    state, made = hosts.up(cluster.config, 3)
    assert not made
    assert state == cluster.state
    with pytest.raises(hosts.AlreadyUp, match="already up"):
        hosts.up(cluster.config, 4)


def test_each_host_has_its_own_address_and_loopback(cluster: Cluster) -> None:
    for host in cluster.state.hosts:
        session = cluster.remotes[host.name]
        assert session.exec(["id", "-u"]).text == "0\n"
        addresses = session.exec(["ip", "-4", "-o", "addr", "show"]).text
        assert f"inet {host.address}/24" in addresses
        assert "inet 127.0.0.1/8" in addresses
        others = [h.address for h in cluster.state.hosts if h != host]
        assert not any(f"inet {other}/" in addresses for other in others)
        # Loopback is up: a listener on 127.0.0.1 inside the host's namespace answers.
        script = (
            "import socket; s = socket.create_server(('127.0.0.1', 0)); "
            "socket.create_connection(s.getsockname(), timeout=2).close()"
        )
        assert session.exec([sys.executable, "-c", script]).exit_status == 0


def test_exec_returns_status_streams_and_times_out(cluster: Cluster) -> None:
    session = cluster.remotes["n1"]
    result = session.exec("echo out; echo err >&2; exit 4", check=False)
    assert (result.exit_status, result.stdout, result.stderr) == (4, b"out\n", b"err\n")
    with pytest.raises(remote.CommandFailed, match=r"^n1: "):
        session.exec("exit 1")
    with pytest.raises(remote.CommandTimeout, match=r"^n1: "):
        session.exec("sleep 10", timeout_s=0.5)
    assert session.exec("cat", stdin=b"x" * 200_000).stdout == b"x" * 200_000


def test_upload_download_and_file_faults_over_sftp(cluster: Cluster, tmp_path: Path) -> None:
    payload = random.Random(5).randbytes(1_000_000)
    source, copy = tmp_path / "payload", tmp_path / "copy"
    source.write_bytes(payload)
    target = str(cluster.config.state_dir / "n2" / "payload")
    session = cluster.remotes["n2"]
    session.upload(source, target)
    digest = session.exec(["sha256sum", target]).text.split()[0]
    assert digest == hashlib.sha256(payload).hexdigest()
    assert control.truncate_tail(session, target, 1000) == 999_000
    assert control.flip_bytes(session, target, 10, 2) == 10
    session.download(target, copy)
    flipped = bytes(byte ^ 0xFF for byte in payload[10:12])
    assert copy.read_bytes() == payload[:10] + flipped + payload[12:999_000]
    with pytest.raises(remote.TransferFailed, match=r"^n2: "):
        session.download("/nonexistent/file", copy)


def reachable(cluster: Cluster, source: str, target: str) -> bool:
    address = cluster.state.addresses[target]
    result = cluster.remotes[source].exec(
        [sys.executable, "-c", PROBE, address, str(PORT), "1.0"], check=False
    )
    return result.exit_status == 0


def wait_listening(address: str) -> None:
    """Wait until the control node can connect to the listener (it is never cut off)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((address, PORT), timeout=0.5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"no listener on {address}"
            time.sleep(0.05)


def root_namespace_rules() -> str:
    return subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout


def test_partition_cuts_n1_from_n2_and_heal_restores(cluster: Cluster) -> None:
    daemons = {
        name: Daemon(
            str(cluster.config.state_dir / name / "listener.pid"),
            str(cluster.config.state_dir / name / "listener.log"),
        )
        for name in ("n2", "n3")
    }
    try:
        for name, daemon in daemons.items():
            address = cluster.state.addresses[name]
            control.start_daemon(
                cluster.remotes[name],
                daemon,
                [sys.executable, "-c", LISTENER, address, str(PORT)],
            )
            wait_listening(address)
        assert reachable(cluster, "n1", "n2")
        assert reachable(cluster, "n1", "n3")
        grudge = {"n1": frozenset({"n2"}), "n2": frozenset({"n1"})}
        net.partition(cluster.remotes, grudge, cluster.state.addresses)
        assert net.chain_rules(cluster.remotes["n1"]) == [
            f"-A {net.CHAIN} -s {cluster.state.addresses['n2']}/32 -j DROP"
        ]
        assert not reachable(cluster, "n1", "n2")
        assert reachable(cluster, "n1", "n3")
        assert reachable(cluster, "n3", "n2")
        # The rules live in the hosts' namespaces; the machine's own firewall is untouched.
        assert net.CHAIN not in root_namespace_rules()
        net.heal_all(cluster.remotes)
        assert reachable(cluster, "n1", "n2")
    finally:
        net.teardown_all(cluster.remotes)
        for name, daemon in daemons.items():
            control.kill_daemon(cluster.remotes[name], daemon)
    assert all("RAFTKV" not in s.exec("iptables-save").text for s in cluster.remotes.values())


def test_pause_resume_kill_over_ssh(cluster: Cluster) -> None:
    session = cluster.remotes["n3"]
    daemon = Daemon(
        str(cluster.config.state_dir / "n3" / "sleeper.pid"),
        str(cluster.config.state_dir / "n3" / "sleeper.log"),
    )
    try:
        control.start_daemon(session, daemon, ["sleep", "60"])
        assert control.pause_daemon(session, daemon)
        assert control.is_paused(session, daemon)
        assert control.resume_daemon(session, daemon)
        assert not control.is_paused(session, daemon)
    finally:
        assert control.kill_daemon(session, daemon)
    assert not control.is_running(session, daemon)


def test_connection_errors_name_the_host_and_cause(cluster: Cluster, tmp_path: Path) -> None:
    state = cluster.state
    unreachable = remote.SshOptions(addresses={"n9": "10.77.201.99"}, connect_timeout_s=1.0)
    with pytest.raises(remote.HostUnreachable, match=r"^n9: .*10\.77\.201\.99:22"):
        remote.connect("n9", unreachable)
    closed_port = remote.SshOptions(addresses=state.addresses, port=2222, connect_timeout_s=2.0)
    with pytest.raises(remote.HostUnreachable, match=r"^n1: .*refused"):
        remote.connect("n1", closed_port)
    stranger_key = tmp_path / "stranger"
    sshd.generate_key_pair(stranger_key)
    stranger = remote.SshOptions(addresses=state.addresses, private_key_path=stranger_key)
    with pytest.raises(remote.AuthFailed, match=r"^n1: login refused"):
        remote.connect("n1", stranger)
    good = state.ssh_options()
    empty_known_hosts = tmp_path / "known_hosts"
    empty_known_hosts.write_text("")
    unknown = remote.SshOptions(
        addresses=state.addresses, private_key_path=good.private_key_path,
        strict_host_key_checking=True, known_hosts_path=empty_known_hosts,
    )
    with pytest.raises(remote.HostKeyRejected, match=r"^n1: .*not in known hosts"):
        remote.connect("n1", unknown)
    # A known-hosts file that gives n1's address n2's key: a changed host key.
    lines = good.known_hosts_path.read_text().splitlines() if good.known_hosts_path else []
    n2_key = next(line.split(None, 1)[1] for line in lines if line.startswith("n2 "))
    empty_known_hosts.write_text(f"{state.addresses['n1']} {n2_key}\n")
    with pytest.raises(remote.HostKeyRejected, match=r"^n1: .*differs"):
        remote.connect("n1", unknown)


def test_down_cleans_up_after_a_crash_and_a_corrupt_state_file(tmp_path: Path) -> None:
    config = make_config(tmp_path, prefix="rkju", subnet="10.77.202.0/24")
    try:
        state, _ = hosts.up(config, 2)
        # An sshd dies: `up` notices and makes the hosts again.
        pid = hosts.sshd_pid(config, state.hosts[0])
        assert pid is not None
        os.kill(pid, 9)
        assert not hosts.healthy(config, state)
        _, made = hosts.up(config, 2)
        assert made
        assert hosts.healthy(config, state)
        (config.state_dir / hosts.STATE_FILE).write_text("{not json")
        with pytest.raises(hosts.HostsStateCorrupt, match="corrupt"):
            hosts.load_state(config)
    finally:
        removed = hosts.down(config)
    assert "namespace rkju-n1" in removed
    assert hosts.leftovers(config) == []
    assert hosts.down(config) == []
