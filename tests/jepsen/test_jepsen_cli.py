"""The `python -m jepsen hosts` command line and the hosts state file, without root:
exit codes, the messages that say how to proceed, and corrupt state detection."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from jepsen import __main__ as cli
from jepsen import hosts, sshd


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(
    "argv",
    [[], ["hosts"], ["hosts", "up", "--count", "x"], ["hosts", "sideways"], ["nonsense"]],
)
def test_bad_command_lines_exit_254(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run_cli(argv, capsys)
    assert code == cli.EXIT_BAD_ARGUMENTS
    assert "usage:" in output


@pytest.mark.parametrize("action", ["up", "down", "status"])
def test_without_root_it_says_so_and_how_to_proceed(
    action: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    code, output = run_cli(["hosts", "--state-dir", str(tmp_path), action], capsys)
    assert code == cli.EXIT_BAD_ARGUMENTS
    assert f"`hosts {action}` needs root" in output
    assert f"sudo .venv/bin/python -m jepsen hosts {action}" in output
    assert list(tmp_path.iterdir()) == []


def test_missing_tools_name_the_install_step(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(hosts, "SSHD_PATH", tmp_path / "no-sshd")
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool == "iptables" else tool)
    code, output = run_cli(["hosts", "--state-dir", str(tmp_path / "s"), "up"], capsys)
    assert code == cli.EXIT_BAD_ARGUMENTS
    assert "iptables" in output
    assert "no-sshd" in output
    assert hosts.INSTALL_HINT in output
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--subnet", "8.8.8.0/24"], "must be a private"),
        (["--subnet", "10.77.0.0/30"], "must be a private IPv4 /28"),
        (["--subnet", "10.77.0.1/33"], "invalid subnet"),
        (["--prefix", "Bad-Prefix"], "invalid prefix"),
    ],
)
def test_bad_hosts_config_exits_254(
    options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run_cli(["hosts", *options, "up"], capsys)
    assert code == cli.EXIT_BAD_ARGUMENTS
    assert message in output


def test_count_out_of_range_exits_254(capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run_cli(["hosts", "up", "--count", "0"], capsys)
    assert code == cli.EXIT_BAD_ARGUMENTS
    assert "--count must be between 1 and 99" in output


def sample_state(tmp_path: Path) -> hosts.HostsState:
    config = hosts.HostsConfig(state_dir=tmp_path)
    return hosts.HostsState(
        prefix="rkj", subnet=config.subnet, state_dir=tmp_path,
        control_address=config.control_address, ssh_port=22,
        hosts=tuple(hosts.plan_hosts(config, 3)),
    )


def test_state_round_trips_and_maps_names_to_addresses(tmp_path: Path) -> None:
    state = sample_state(tmp_path)
    assert hosts.parse_state(state.to_json(), tmp_path) == state
    assert state.addresses == {"n1": "10.77.0.11", "n2": "10.77.0.12", "n3": "10.77.0.13"}
    options = state.ssh_options()
    assert options.strict_host_key_checking
    assert options.known_hosts_path == tmp_path / "known_hosts"
    assert options.username == "root"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda doc: "{not json",
        lambda doc: json.dumps({**doc, "version": 99}),
        lambda doc: json.dumps({**doc, "hosts": [{**doc["hosts"][0], "address": "192.0.2.1"}]}),
        lambda doc: json.dumps({**doc, "hosts": doc["hosts"] + doc["hosts"][:1]}),
        lambda doc: json.dumps({k: v for k, v in doc.items() if k != "subnet"}),
        lambda doc: json.dumps([doc]),
    ],
)
def test_a_corrupt_state_file_is_detected_never_used(tmp_path: Path, tamper: object) -> None:
    document = json.loads(sample_state(tmp_path).to_json())
    text = tamper(document)  # type: ignore[operator]
    with pytest.raises(hosts.HostsStateCorrupt, match="hosts down"):
        hosts.parse_state(text, tmp_path)


def test_sshd_config_is_self_contained(tmp_path: Path) -> None:
    config = hosts.HostsConfig(state_dir=tmp_path, ssh_port=2200)
    host = hosts.plan_hosts(config, 2)[1]
    text = sshd.config_text(
        host.name, host.address, config.ssh_port, tmp_path / "n2", tmp_path / "authorized_keys"
    )
    assert "ListenAddress 10.77.0.12:2200" in text.splitlines()
    assert f"AuthorizedKeysFile {tmp_path}/authorized_keys" in text
    assert "PasswordAuthentication no" in text
    assert "/etc/ssh" not in text
