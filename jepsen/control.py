"""Process control and file faults on a node, as small functions over a `Remote` session.

Theory of operation: a daemon is started by the node's shell as
`setsid nohup ARGV >>LOG 2>&1 </dev/null &`, so it leads its own session and process
group, holds no terminal and none of the SSH channel's descriptors; `$!` is written to
its pid file. Signals go to the whole process group (`kill -SIG -PID`), so children of
the daemon are stopped, continued and killed with it.

Rules:
- Processes are found only through their pid files, never by name: local hosts share one
  process table, so a name would match the same daemon on every node.
- A process in state Z (exited, not yet reaped) counts as not running.
- Only coreutils, `kill` and /proc are used on the node; file faults go through the
  session's file operations (SFTP over SSH), so they need no tool on the node at all.
- Operating errors are `ControlError` (or a `RemoteError` from the session).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from jepsen.remote import Remote

Signal = Literal["KILL", "TERM", "STOP", "CONT"]
_POLL_INTERVAL_S = 0.05


class ControlError(Exception):
    """A process or file fault could not be carried out; names the host."""

    def __init__(self, host: str, cause: str) -> None:
        super().__init__(f"{host}: {cause}")
        self.host = host
        self.cause = cause


@dataclass(frozen=True, slots=True)
class Daemon:
    """Where a daemon keeps its pid and log on a node (absolute paths)."""

    pid_file: str
    log_file: str

    def __post_init__(self) -> None:
        assert self.pid_file.startswith("/"), self.pid_file
        assert self.log_file.startswith("/"), self.log_file


def start_daemon(
    remote: Remote,
    daemon: Daemon,
    argv: Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start `argv` detached on the node; returns its pid. Refuses if it already runs."""
    assert argv, "empty argv"
    if process_state(remote, daemon) is not None:
        raise ControlError(remote.host, f"a process from {daemon.pid_file} is already running")
    pid_file, log_file = shlex.quote(daemon.pid_file), shlex.quote(daemon.log_file)
    environment = [f"{key}={value}" for key, value in (env or {}).items()]
    launch = shlex.join(["env", *environment, "setsid", "nohup", *argv])
    script = "\n".join(
        [
            "set -e",
            f'mkdir -p "$(dirname {pid_file})" "$(dirname {log_file})"',
            f"cd {shlex.quote(cwd)}" if cwd else ":",
            f"{launch} >>{log_file} 2>&1 </dev/null &",
            f"echo $! >{pid_file}.tmp",
            f"mv {pid_file}.tmp {pid_file}",
            "echo $!",
        ]
    )
    result = remote.exec(script)
    try:
        return int(result.text.strip())
    except ValueError as error:
        raise ControlError(remote.host, f"daemon start printed {result.text!r}") from error


def _pid_and_state(remote: Remote, daemon: Daemon) -> tuple[int | None, str | None]:
    """The pid in the pid file and its /proc state letter, in one round trip."""
    pid_file = shlex.quote(daemon.pid_file)
    script = "\n".join(
        [
            f"pid=$(cat {pid_file} 2>/dev/null) || exit 0",
            'case "$pid" in ""|*[!0-9]*) exit 0;; esac',
            "state=$(sed -n 's/^State:[[:space:]]*\\([A-Z]\\).*/\\1/p' "
            '"/proc/$pid/status" 2>/dev/null)',
            'echo "$pid $state"',
        ]
    )
    fields = remote.exec(script).text.split()
    if not fields or int(fields[0]) <= 0:
        return None, None
    return int(fields[0]), (fields[1] if len(fields) > 1 else None)


def read_pid(remote: Remote, daemon: Daemon) -> int | None:
    """The pid in the daemon's pid file, or None when there is no (valid) pid file."""
    return _pid_and_state(remote, daemon)[0]


def process_state(remote: Remote, daemon: Daemon) -> str | None:
    """The /proc state letter (R, S, D, T, ...) of the daemon, or None when not running."""
    state = _pid_and_state(remote, daemon)[1]
    return None if state in (None, "Z", "X") else state


def is_running(remote: Remote, daemon: Daemon) -> bool:
    """True while the daemon's process exists (a paused process counts as running)."""
    return process_state(remote, daemon) is not None


def is_paused(remote: Remote, daemon: Daemon) -> bool:
    """True when the daemon is stopped by SIGSTOP (state T)."""
    return process_state(remote, daemon) == "T"


def signal_daemon(remote: Remote, daemon: Daemon, signal: Signal) -> bool:
    """Send `signal` to the daemon's process group; False when it was not running."""
    pid, state = _pid_and_state(remote, daemon)
    if pid is None or state in (None, "Z", "X"):
        return False
    result = remote.exec(["kill", f"-{signal}", f"-{pid}"], check=False)
    if result.exit_status != 0:
        # The group may have exited between the check and the kill; only a process that
        # is still there makes a failed kill an error.
        if is_running(remote, daemon):
            stderr = result.stderr.decode(errors="replace").strip()
            raise ControlError(remote.host, f"kill -{signal} {pid} failed: {stderr}")
        return False
    return True


def wait_until_stopped(remote: Remote, daemon: Daemon, timeout_s: float) -> bool:
    """Poll until the daemon is gone; True if it went within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while is_running(remote, daemon):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL_S)
    return True


def kill_daemon(remote: Remote, daemon: Daemon, timeout_s: float = 10.0) -> bool:
    """kill -9 the daemon's group, wait for it, drop its pid file; False if it was not up."""
    was_running = signal_daemon(remote, daemon, "KILL")
    if was_running and not wait_until_stopped(remote, daemon, timeout_s):
        raise ControlError(remote.host, f"process of {daemon.pid_file} survived SIGKILL")
    remote.exec(["rm", "-f", daemon.pid_file])
    return was_running


def stop_daemon(remote: Remote, daemon: Daemon, grace_s: float = 5.0) -> bool:
    """SIGTERM (after SIGCONT, in case it is paused), then SIGKILL after `grace_s`."""
    if not is_running(remote, daemon):
        remote.exec(["rm", "-f", daemon.pid_file])
        return False
    signal_daemon(remote, daemon, "CONT")
    signal_daemon(remote, daemon, "TERM")
    if not wait_until_stopped(remote, daemon, grace_s):
        kill_daemon(remote, daemon)
    remote.exec(["rm", "-f", daemon.pid_file])
    return True


def pause_daemon(remote: Remote, daemon: Daemon) -> bool:
    """SIGSTOP the daemon's group; False when it was not running."""
    return signal_daemon(remote, daemon, "STOP")


def resume_daemon(remote: Remote, daemon: Daemon) -> bool:
    """SIGCONT the daemon's group; False when it was not running."""
    return signal_daemon(remote, daemon, "CONT")


def tail_lines(remote: Remote, path: str, lines: int = 50) -> str:
    """The last `lines` lines of a file on the node ('' when it does not exist)."""
    assert lines > 0
    result = remote.exec(["tail", "-n", str(lines), path], check=False)
    return result.text if result.exit_status == 0 else ""


def truncate_tail(remote: Remote, path: str, drop_bytes: int) -> int:
    """Cut `drop_bytes` off the end of a file (a torn WAL write); returns the new size."""
    if drop_bytes <= 0:
        raise ControlError(remote.host, f"truncate {path}: drop_bytes must be > 0")
    size = remote.file_size(path)
    new_size = max(0, size - drop_bytes)
    remote.truncate(path, new_size)
    return new_size


def flip_bytes(remote: Remote, path: str, offset: int, count: int = 1) -> int:
    """Invert `count` bytes at `offset` (negative: from the end); returns the offset used."""
    if count <= 0:
        raise ControlError(remote.host, f"corrupt {path}: count must be > 0")
    size = remote.file_size(path)
    start = size + offset if offset < 0 else offset
    if start < 0 or start + count > size:
        raise ControlError(
            remote.host, f"corrupt {path}: bytes {offset}+{count} outside a {size}-byte file"
        )
    original = remote.read_at(path, start, count)
    assert len(original) == count
    remote.write_at(path, start, bytes(byte ^ 0xFF for byte in original))
    return start
