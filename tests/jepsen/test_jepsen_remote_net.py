"""Remote sessions without a network (`LocalRemote`, quoting, errors) and the mapping from
grudges to per-node iptables rules, checked against a recording fake session."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from jepsen import grudges, net
from jepsen.remote import (
    CommandFailed,
    CommandTimeout,
    ExecResult,
    LocalRemote,
    SshOptions,
    TransferFailed,
    render_command,
)


def test_argument_lists_are_quoted_for_the_remote_shell() -> None:
    remote = LocalRemote()
    text = "it's $HOME; rm -rf /"
    assert render_command(["echo", text]) == "echo 'it'\"'\"'s $HOME; rm -rf /'"
    assert remote.exec(["echo", text]).text == text + "\n"


def test_exec_reports_status_and_both_streams() -> None:
    result = LocalRemote().exec("echo out; echo err >&2; exit 3", check=False)
    assert result == ExecResult(3, b"out\n", b"err\n")


def test_failed_command_raises_with_host_and_stderr() -> None:
    with pytest.raises(CommandFailed, match=r"^n7: `echo why >&2; false` exited 1: why") as info:
        LocalRemote("n7").exec("echo why >&2; false")
    assert info.value.host == "n7"
    assert info.value.result.exit_status == 1


def test_timeout_raises_command_timeout() -> None:
    with pytest.raises(CommandTimeout, match=r"within 0\.2 s"):
        LocalRemote().exec("sleep 5", timeout_s=0.2)


def test_stdin_reaches_the_command() -> None:
    assert LocalRemote().exec("wc -c", stdin=b"12345").text.strip() == "5"


def test_missing_file_is_a_transfer_error(tmp_path: Path) -> None:
    with pytest.raises(TransferFailed, match="download"):
        LocalRemote().download(str(tmp_path / "absent"), tmp_path / "copy")


def test_options_resolve_local_host_names_only() -> None:
    options = SshOptions(addresses={"n1": "10.77.0.11"})
    assert options.address_of("n1") == "10.77.0.11"
    assert options.address_of("db.example") == "db.example"


class RecordingRemote:
    """A session that records the scripts it is asked to run."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.commands: list[str] = []

    def exec(self, command: Sequence[str] | str, **_options: object) -> ExecResult:
        self.commands.append(render_command(command))
        return ExecResult(0, b"", b"")

    def dropped_sources(self) -> list[str]:
        """The sources the last script leaves dropped, after its flush."""
        script = self.commands[-1]
        assert f"-F {net.CHAIN}" in script
        after_flush = script.split(f"-F {net.CHAIN}", 1)[1]
        rules = [line for line in after_flush.splitlines() if " -s " in line]
        return [rule.split(" -s ")[1].split()[0] for rule in rules]


def test_partition_installs_each_nodes_grudge_and_heals_the_rest() -> None:
    nodes = ["n1", "n2", "n3", "n4", "n5"]
    addresses = {node: f"10.77.0.{10 + index}" for index, node in enumerate(nodes, start=1)}
    remotes = {node: RecordingRemote(node) for node in nodes}
    grudge = grudges.bridge(nodes, random.Random(3))
    net.partition(remotes, grudge, addresses)  # type: ignore[arg-type]
    for node in nodes:
        expected = sorted(addresses[other] for other in grudge.get(node, frozenset()))
        assert remotes[node].dropped_sources() == expected
    net.heal_all(remotes)  # type: ignore[arg-type]
    assert all(remote.dropped_sources() == [] for remote in remotes.values())


def test_the_chain_is_hooked_from_input_first() -> None:
    script = net.drop_script(["10.77.0.12"])
    assert f"-I INPUT 1 -j {net.CHAIN}" in script
    assert "OUTPUT" not in script
    assert script.index(f"-F {net.CHAIN}") < script.index("-s 10.77.0.12")
