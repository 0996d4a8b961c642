"""Files for the local hosts' sshd: ed25519 key pairs and a self-contained sshd config.

Rules:
- Keys are made with `cryptography` (a dependency of paramiko) in OpenSSH format, so no
  ssh-keygen run and no file outside the harness's state directory is involved.
- Private files are written 0600 and replaced atomically (write, fsync, rename).
- The sshd config names every path it uses, so sshd reads nothing from /etc/ssh; it
  allows public-key login only, from the one authorized-keys file given.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def write_private(path: Path, data: bytes) -> None:
    """Write a file only root can read, replacing any old one atomically."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def generate_key_pair(private_path: Path) -> str:
    """Make an ed25519 key pair (OpenSSH format); returns the public key line."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    write_private(private_path, private)
    write_private(private_path.with_name(private_path.name + ".pub"), (public + "\n").encode())
    return public


def config_text(
    name: str, address: str, port: int, host_dir: Path, authorized_keys: Path
) -> str:
    """The sshd configuration of one local host; nothing is read from /etc/ssh."""
    return "\n".join(
        [
            f"# sshd of local host {name}, made by `python -m jepsen hosts up`.",
            f"ListenAddress {address}:{port}",
            f"HostKey {host_dir / 'ssh_host_ed25519_key'}",
            f"PidFile {host_dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {authorized_keys}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            # The state directory is root's and 0700; StrictModes would also demand that
            # every parent be root-owned and not world-writable, which rules out /tmp in tests.
            "StrictModes no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "MaxStartups 100:30:200",
            "MaxSessions 100",
            "Subsystem sftp internal-sftp",
            "",
        ]
    )
