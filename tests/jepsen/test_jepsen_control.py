"""Process control and file faults, run on this machine through `LocalRemote`.

These start real (short-lived, port-less) processes: the same shell text that runs on a
node over SSH runs here through /bin/sh, so pid files, process groups and signals are the
real thing. No root needed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jepsen import control
from jepsen.control import ControlError, Daemon
from jepsen.remote import LocalRemote

SLEEPER = [sys.executable, "-c", "import time\nwhile True: time.sleep(1)"]


@pytest.fixture
def remote() -> LocalRemote:
    return LocalRemote("local")


@pytest.fixture
def daemon(tmp_path: Path, remote: LocalRemote) -> Iterator[Daemon]:
    daemon = Daemon(str(tmp_path / "run" / "d.pid"), str(tmp_path / "log" / "d.log"))
    try:
        yield daemon
    finally:
        control.kill_daemon(remote, daemon)


def proc_state(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    state = next(line.split()[1] for line in text.splitlines() if line.startswith("State:"))
    return None if state == "Z" else state


def test_started_daemon_is_the_process_in_the_pid_file(
    remote: LocalRemote, daemon: Daemon, tmp_path: Path
) -> None:
    pid = control.start_daemon(remote, daemon, [*SLEEPER], cwd=str(tmp_path), env={"X": "1"})
    assert Path(daemon.pid_file).read_text().strip() == str(pid)
    assert control.is_running(remote, daemon)
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[0] == sys.executable.encode()
    # It leads its own session, so signals to its group reach nothing of ours.
    assert os.getsid(pid) == pid
    assert b"X=1" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")


def test_output_goes_to_the_log_file(remote: LocalRemote, daemon: Daemon) -> None:
    control.start_daemon(remote, daemon, ["sh", "-c", "echo hello; echo oops >&2; exec sleep 60"])
    assert control.wait_until_stopped(remote, daemon, 0.3) is False
    assert control.tail_lines(remote, daemon.log_file) == "hello\noops\n"


def test_a_second_start_is_refused(remote: LocalRemote, daemon: Daemon) -> None:
    control.start_daemon(remote, daemon, SLEEPER)
    with pytest.raises(ControlError, match="already running"):
        control.start_daemon(remote, daemon, SLEEPER)


def test_pause_and_resume(remote: LocalRemote, daemon: Daemon) -> None:
    pid = control.start_daemon(remote, daemon, SLEEPER)
    assert control.pause_daemon(remote, daemon)
    assert control.is_paused(remote, daemon)
    assert proc_state(pid) == "T"
    assert control.is_running(remote, daemon)
    assert control.resume_daemon(remote, daemon)
    assert not control.is_paused(remote, daemon)
    assert proc_state(pid) in ("S", "R")


def test_kill_takes_the_whole_process_group(remote: LocalRemote, daemon: Daemon) -> None:
    script = f"{SLEEPER[0]} -c 'import time; time.sleep(60)' & echo $! >child.pid; wait"
    log_dir = str(Path(daemon.log_file).parent)
    control.start_daemon(remote, daemon, ["sh", "-c", script], cwd=log_dir)
    child_file = Path(daemon.log_file).parent / "child.pid"
    for _ in range(200):
        if child_file.exists() and child_file.read_text().strip():
            break
        control.wait_until_stopped(remote, daemon, 0.01)
    child = int(child_file.read_text())
    assert proc_state(child) is not None
    assert control.kill_daemon(remote, daemon)
    assert not control.is_running(remote, daemon)
    assert not Path(daemon.pid_file).exists()
    assert control.wait_until_stopped(remote, daemon, 1.0)
    # The child was in the daemon's group, so SIGKILL reached it too.
    assert proc_state(child) is None


def test_kill_of_a_stopped_daemon_is_a_no_op(remote: LocalRemote, daemon: Daemon) -> None:
    assert control.kill_daemon(remote, daemon) is False
    assert control.pause_daemon(remote, daemon) is False


def test_stop_daemon_terminates_even_a_paused_one(remote: LocalRemote, daemon: Daemon) -> None:
    control.start_daemon(remote, daemon, SLEEPER)
    control.pause_daemon(remote, daemon)
    assert control.stop_daemon(remote, daemon, grace_s=5.0)
    assert not control.is_running(remote, daemon)


def test_stale_pid_file_counts_as_not_running(remote: LocalRemote, daemon: Daemon) -> None:
    Path(daemon.pid_file).parent.mkdir(parents=True)
    Path(daemon.pid_file).write_text("999999999\n")
    assert not control.is_running(remote, daemon)
    Path(daemon.pid_file).write_text("garbage\n")
    assert control.read_pid(remote, daemon) is None


def test_truncate_tail(remote: LocalRemote, tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    wal.write_bytes(bytes(range(100)))
    assert control.truncate_tail(remote, str(wal), 30) == 70
    assert wal.read_bytes() == bytes(range(70))
    assert control.truncate_tail(remote, str(wal), 500) == 0
    with pytest.raises(ControlError, match="must be > 0"):
        control.truncate_tail(remote, str(wal), 0)


def test_flip_bytes_inverts_exactly_the_bytes_asked(remote: LocalRemote, tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    original = bytes(range(64))
    wal.write_bytes(original)
    assert control.flip_bytes(remote, str(wal), -4, 2) == 60
    data = wal.read_bytes()
    assert data[:60] == original[:60]
    assert data[60:62] == bytes([60 ^ 0xFF, 61 ^ 0xFF])
    assert data[62:] == original[62:]
    with pytest.raises(ControlError, match="outside a 64-byte file"):
        control.flip_bytes(remote, str(wal), 63, 2)
