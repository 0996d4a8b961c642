"""Remote sessions: every command and file transfer the harness does on a node.

`SshRemote` runs over paramiko (SSH exec, SFTP); `LocalRemote` runs the same operations on
this machine with subprocess, so `jepsen.control` and `jepsen.net` are exercised by tests
without SSH. Both satisfy the `Remote` protocol, which is all other modules depend on.

Errors, one tree (operating errors; a bug in the harness is an assertion instead):

    RemoteError(host, cause)
    ├── HostUnreachable      no TCP connection or SSH handshake (refused, no route, timeout)
    ├── AuthFailed           the login was refused, or the private key cannot be read
    ├── HostKeyRejected      strict host key checking: the host key is unknown or differs
    ├── CommandTimeout       the command did not finish within its timeout
    ├── CommandFailed        the command exited non-zero and the caller asked for a check
    └── TransferFailed       an SFTP upload, download or file operation failed

Rules:
- Commands given as an argument list are quoted with `shlex.join`; a string is passed to the
  remote shell as is.
- A timeout closes the channel; the remote command may keep running (no pty, so no hangup
  signal). Callers that must bound a remote process wrap it in coreutils `timeout`.
- With strict host key checking the host key must already be in the known-hosts file (the
  local hosts write theirs); without it an unknown key is accepted for this session only
  and never written anywhere.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

# paramiko ships no type information; this module is its only importer and converts every
# value it takes from paramiko to a typed one before handing it on.
import paramiko  # type: ignore[import-untyped]

DEFAULT_COMMAND_TIMEOUT_S = 60.0
_READ_CHUNK_BYTES = 65536


class RemoteError(Exception):
    """Base of every operating error from a remote session; names the host and the cause."""

    def __init__(self, host: str, cause: str) -> None:
        super().__init__(f"{host}: {cause}")
        self.host = host
        self.cause = cause


class HostUnreachable(RemoteError):
    """No TCP connection or SSH handshake with the host."""


class AuthFailed(RemoteError):
    """The SSH login was refused, or the private key could not be used."""


class HostKeyRejected(RemoteError):
    """Strict host key checking refused the host's key (unknown or changed)."""


class CommandTimeout(RemoteError):
    """A remote command did not finish within its timeout."""


class CommandFailed(RemoteError):
    """A remote command exited with a non-zero status."""

    def __init__(self, host: str, command: str, result: ExecResult) -> None:
        stderr = result.stderr.decode(errors="replace").strip()[-400:]
        super().__init__(host, f"`{command}` exited {result.exit_status}: {stderr}")
        self.command = command
        self.result = result


class TransferFailed(RemoteError):
    """An SFTP transfer or remote file operation failed."""


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_status: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")


@dataclass(frozen=True, slots=True)
class SshOptions:
    """How to reach nodes: the issue's `--username`, `--ssh-*` and host-key options."""

    username: str = "root"
    private_key_path: Path | None = None
    port: int = 22
    strict_host_key_checking: bool = False
    known_hosts_path: Path | None = None
    connect_timeout_s: float = 10.0
    # Name-to-address map of the local hosts; a node not in it is reached by its name.
    addresses: Mapping[str, str] = field(default_factory=dict)

    def address_of(self, host: str) -> str:
        return self.addresses.get(host, host)


def render_command(command: Sequence[str] | str) -> str:
    """The shell text of a command; argument lists are quoted."""
    if isinstance(command, str):
        return command
    assert command, "empty command"
    return shlex.join(command)


class Remote(Protocol):
    """What the harness needs from a node session."""

    @property
    def host(self) -> str: ...

    def exec(
        self,
        command: Sequence[str] | str,
        *,
        timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> ExecResult: ...

    def upload(self, local_path: Path, remote_path: str) -> None: ...

    def download(self, remote_path: str, local_path: Path) -> None: ...

    def file_size(self, remote_path: str) -> int: ...

    def truncate(self, remote_path: str, size_bytes: int) -> None: ...

    def read_at(self, remote_path: str, offset: int, length: int) -> bytes: ...

    def write_at(self, remote_path: str, offset: int, data: bytes) -> None: ...


class _Strict(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]  # paramiko is untyped
    """Refuse any host whose key is not in the loaded known-hosts file."""

    def missing_host_key(self, _client: Any, hostname: str, key: Any) -> None:
        raise HostKeyRejected(hostname, f"host key {key.get_name()} not in known hosts")


class _AcceptForSession(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]  # untyped base
    """Accept an unknown host key for this session only; nothing is written."""

    def missing_host_key(self, _client: Any, _hostname: str, _key: Any) -> None:
        return None


def _load_private_key(host: str, path: Path) -> Any:
    try:
        return paramiko.PKey.from_path(str(path))
    except (OSError, paramiko.SSHException, ValueError) as error:
        raise AuthFailed(host, f"cannot use private key {path}: {error}") from error


def connect(host: str, options: SshOptions) -> SshRemote:
    """Open an SSH session to `host` (a node name); raises a `RemoteError` subclass."""
    client = paramiko.SSHClient()
    if options.strict_host_key_checking:
        if options.known_hosts_path is not None:
            client.load_host_keys(str(options.known_hosts_path))
        else:
            client.load_system_host_keys()
        client.set_missing_host_key_policy(_Strict())
    else:
        client.set_missing_host_key_policy(_AcceptForSession())
    pkey = None
    if options.private_key_path is not None:
        pkey = _load_private_key(host, options.private_key_path)
    address = options.address_of(host)
    try:
        client.connect(
            address,
            port=options.port,
            username=options.username,
            pkey=pkey,
            look_for_keys=pkey is None,
            allow_agent=pkey is None,
            timeout=options.connect_timeout_s,
            banner_timeout=options.connect_timeout_s,
            auth_timeout=options.connect_timeout_s,
        )
    except RemoteError as error:
        client.close()
        raise type(error)(host, f"{error.cause} ({address}:{options.port})") from error
    except Exception as error:
        client.close()
        raise _classify_connect_error(host, address, options.port, error) from error
    return SshRemote(host, client)


def _classify_connect_error(host: str, address: str, port: int, error: Exception) -> RemoteError:
    where = f"{address}:{port}"
    if isinstance(error, paramiko.BadHostKeyException):
        return HostKeyRejected(host, f"host key of {where} differs from the known one")
    if isinstance(error, paramiko.AuthenticationException):
        return AuthFailed(host, f"login refused at {where}: {error}")
    if isinstance(error, paramiko.ssh_exception.NoValidConnectionsError):
        # paramiko folds one socket error per address family into this one exception.
        errors = error.errors.values()
        causes = sorted({os.strerror(e.errno) if e.errno else str(e) for e in errors})
        return HostUnreachable(host, f"cannot connect to {where}: {'; '.join(causes)}")
    if isinstance(error, socket.gaierror):
        return HostUnreachable(host, f"cannot resolve {address!r}: {error}")
    if isinstance(error, TimeoutError | socket.timeout):
        return HostUnreachable(host, f"timed out connecting to {where}")
    if isinstance(error, OSError):
        return HostUnreachable(host, f"cannot connect to {where}: {error}")
    if isinstance(error, paramiko.SSHException):
        return HostUnreachable(host, f"SSH handshake with {where} failed: {error}")
    return RemoteError(host, f"connecting to {where} failed: {error!r}")


class SshRemote:
    """One SSH connection to a node; safe to use from several threads."""

    def __init__(self, host: str, client: Any) -> None:
        self._host = host
        self._client = client
        self._sftp: Any = None
        self._sftp_lock = threading.Lock()

    @property
    def host(self) -> str:
        return self._host

    def __enter__(self) -> SshRemote:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._sftp_lock:
            if self._sftp is not None:
                self._sftp.close()
                self._sftp = None
        self._client.close()

    def exec(
        self,
        command: Sequence[str] | str,
        *,
        timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> ExecResult:
        text = render_command(command)
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise HostUnreachable(self._host, "the SSH connection is closed")
        try:
            channel = transport.open_session(timeout=timeout_s)
            try:
                channel.exec_command(text)
                if stdin:
                    channel.sendall(stdin)
                channel.shutdown_write()
                result = _collect(self._host, text, channel, timeout_s)
            finally:
                channel.close()
        except RemoteError:
            raise
        except (paramiko.SSHException, OSError, EOFError) as error:
            cause = f"lost the session running `{text}`: {error}"
            raise HostUnreachable(self._host, cause) from error
        if check and result.exit_status != 0:
            raise CommandFailed(self._host, text, result)
        return result

    def _sftp_client(self) -> Any:
        with self._sftp_lock:
            if self._sftp is None:
                try:
                    self._sftp = self._client.open_sftp()
                except (paramiko.SSHException, OSError) as error:
                    raise TransferFailed(self._host, f"cannot open SFTP: {error}") from error
            return self._sftp

    def _sftp_call(self, what: str, action: Any) -> Any:
        sftp = self._sftp_client()
        try:
            return action(sftp)
        except (paramiko.SSHException, OSError, EOFError) as error:
            raise TransferFailed(self._host, f"{what}: {error}") from error

    def upload(self, local_path: Path, remote_path: str) -> None:
        self._sftp_call(
            f"upload {local_path} to {remote_path}",
            lambda sftp: sftp.put(str(local_path), remote_path),
        )

    def download(self, remote_path: str, local_path: Path) -> None:
        self._sftp_call(
            f"download {remote_path} to {local_path}",
            lambda sftp: sftp.get(remote_path, str(local_path)),
        )

    def file_size(self, remote_path: str) -> int:
        attributes = self._sftp_call(f"stat {remote_path}", lambda sftp: sftp.stat(remote_path))
        return int(attributes.st_size)

    def truncate(self, remote_path: str, size_bytes: int) -> None:
        assert size_bytes >= 0
        self._sftp_call(
            f"truncate {remote_path} to {size_bytes} bytes",
            lambda sftp: sftp.truncate(remote_path, size_bytes),
        )

    def read_at(self, remote_path: str, offset: int, length: int) -> bytes:
        def read(sftp: Any) -> bytes:
            with sftp.open(remote_path, "rb") as handle:
                handle.seek(offset)
                return cast(bytes, handle.read(length))

        return cast(bytes, self._sftp_call(f"read {remote_path}", read))

    def write_at(self, remote_path: str, offset: int, data: bytes) -> None:
        def write(sftp: Any) -> None:
            with sftp.open(remote_path, "r+b") as handle:
                handle.seek(offset)
                handle.write(data)

        self._sftp_call(f"write {remote_path}", write)


def _collect(host: str, text: str, channel: Any, timeout_s: float) -> ExecResult:
    """Read stdout and stderr until the command exits or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    stdout, stderr = bytearray(), bytearray()
    while True:
        drained = False
        while channel.recv_ready():
            stdout += channel.recv(_READ_CHUNK_BYTES)
            drained = True
        while channel.recv_stderr_ready():
            stderr += channel.recv_stderr(_READ_CHUNK_BYTES)
            drained = True
        # sshd may send the exit status while output still waits for window space, so
        # the end is the exit status *and* the end of the output (EOF), with nothing buffered.
        idle = not channel.recv_ready() and not channel.recv_stderr_ready()
        if idle and channel.exit_status_ready() and channel.eof_received:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CommandTimeout(host, f"`{text}` did not finish within {timeout_s:g} s")
        if not drained:
            # The channel's file descriptor becomes readable on data, stderr or close;
            # the short cap guards against an event that arrived before select.
            select.select([channel], [], [], min(remaining, 0.2))
    return ExecResult(int(channel.recv_exit_status()), bytes(stdout), bytes(stderr))



class LocalRemote:
    """The `Remote` operations on this machine, for tests and the in-memory harness."""

    def __init__(self, host: str = "local", cwd: Path | None = None) -> None:
        self._host = host
        self._cwd = cwd

    @property
    def host(self) -> str:
        return self._host

    def exec(
        self,
        command: Sequence[str] | str,
        *,
        timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> ExecResult:
        text = render_command(command)
        try:
            completed = subprocess.run(  # noqa: S603 - runs the caller's command, like SSH
                ["/bin/sh", "-c", text],
                input=stdin or b"",
                capture_output=True,
                timeout=timeout_s,
                cwd=self._cwd,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            cause = f"`{text}` did not finish within {timeout_s:g} s"
            raise CommandTimeout(self._host, cause) from error
        result = ExecResult(completed.returncode, completed.stdout, completed.stderr)
        if check and result.exit_status != 0:
            raise CommandFailed(self._host, text, result)
        return result

    def _file_op(self, what: str, action: Any) -> Any:
        try:
            return action()
        except OSError as error:
            raise TransferFailed(self._host, f"{what}: {error}") from error

    def upload(self, local_path: Path, remote_path: str) -> None:
        self._file_op(f"upload {local_path}", lambda: _copy(local_path, Path(remote_path)))

    def download(self, remote_path: str, local_path: Path) -> None:
        self._file_op(f"download {remote_path}", lambda: _copy(Path(remote_path), local_path))

    def file_size(self, remote_path: str) -> int:
        return int(self._file_op(f"stat {remote_path}", lambda: os.stat(remote_path).st_size))

    def truncate(self, remote_path: str, size_bytes: int) -> None:
        assert size_bytes >= 0
        self._file_op(f"truncate {remote_path}", lambda: os.truncate(remote_path, size_bytes))

    def read_at(self, remote_path: str, offset: int, length: int) -> bytes:
        def read() -> bytes:
            with open(remote_path, "rb") as handle:
                handle.seek(offset)
                return handle.read(length)

        return cast(bytes, self._file_op(f"read {remote_path}", read))

    def write_at(self, remote_path: str, offset: int, data: bytes) -> None:
        def write() -> None:
            with open(remote_path, "r+b") as handle:
                handle.seek(offset)
                handle.write(data)

        self._file_op(f"write {remote_path}", write)


def _copy(source: Path, target: Path) -> None:
    data = source.read_bytes()
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    target.write_bytes(data)
