"""Network partitions with iptables, run over each node's remote session.

Theory of operation: every rule the harness makes lives in one chain of its own,
`RAFTKV-JEPSEN`, which the INPUT chain jumps to first. A grudge (see `jepsen.grudges`)
"n1 drops n3" becomes, on n1, `-A RAFTKV-JEPSEN -s <address of n3> -j DROP`. Healing is
flushing that chain; `teardown` also removes the jump and the chain, leaving the node's
firewall as it found it.

Rules:
- Packets are dropped where they arrive, as Jepsen's iptables net does: a grudge is
  one-directional (n1 stops hearing n3) and a partition in the middle of the network drops
  packets silently, so senders see timeouts, never errors. Jumping to the chain from OUTPUT
  as well would turn every one-way grudge into a two-way one, so the chain is hooked from
  INPUT only.
- Only nodes are ever named in rules; the control node's SSH sessions are never cut, so
  `heal` always gets through.
- `partition` replaces whatever the chain held: after it, the rules are exactly the grudge.
- Each node gets one shell script per change, so a node is never left half-configured by
  a lost round trip between two rules.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from jepsen.grudges import Grudge
from jepsen.remote import Remote

CHAIN = "RAFTKV-JEPSEN"
_IPTABLES = "iptables -w"
_T = TypeVar("_T")


def ensure_chain_script() -> str:
    """Shell lines that create the chain and its jump from INPUT if they are missing."""
    return "\n".join(
        [
            f"{_IPTABLES} -N {CHAIN} 2>/dev/null || {_IPTABLES} -L {CHAIN} -n >/dev/null",
            f"{_IPTABLES} -C INPUT -j {CHAIN} 2>/dev/null || {_IPTABLES} -I INPUT 1 -j {CHAIN}",
        ]
    )


def drop_script(sources: list[str]) -> str:
    """The script that makes the chain drop exactly the packets from `sources`."""
    lines = ["set -e", ensure_chain_script(), f"{_IPTABLES} -F {CHAIN}"]
    lines.extend(
        f"{_IPTABLES} -A {CHAIN} -s {shlex.quote(source)} -j DROP" for source in sources
    )
    return "\n".join(lines)


def teardown_script() -> str:
    """The script that removes the jump and the chain (no error when already gone)."""
    return "\n".join(
        [
            f"while {_IPTABLES} -D INPUT -j {CHAIN} 2>/dev/null; do :; done",
            f"{_IPTABLES} -F {CHAIN} 2>/dev/null || true",
            f"{_IPTABLES} -X {CHAIN} 2>/dev/null || true",
        ]
    )


def drop_from(remote: Remote, sources: list[str]) -> None:
    """On this node, drop every packet from the addresses in `sources` (and nothing else)."""
    remote.exec(["sh", "-c", drop_script(sorted(sources))])


def heal(remote: Remote) -> None:
    """Flush the harness's chain on this node (creating it if needed)."""
    remote.exec(["sh", "-c", drop_script([])])


def teardown(remote: Remote) -> None:
    """Remove the jump and the chain from this node entirely."""
    remote.exec(["sh", "-c", teardown_script()])


def chain_rules(remote: Remote) -> list[str]:
    """The rules in the harness's chain on this node, as `iptables -S` prints them."""
    result = remote.exec(f"{_IPTABLES} -S {CHAIN}", check=False)
    if result.exit_status != 0:
        return []
    return [line for line in result.text.splitlines() if line.startswith("-A ")]


def _on_each(remotes: Mapping[str, Remote], action: Callable[[str, Remote], _T]) -> dict[str, _T]:
    """Run `action` on every node at once; the first error propagates after all finish."""
    if not remotes:
        return {}
    with ThreadPoolExecutor(max_workers=len(remotes)) as pool:
        futures = {node: pool.submit(action, node, remote) for node, remote in remotes.items()}
        return {node: future.result() for node, future in futures.items()}


def partition(
    remotes: Mapping[str, Remote], grudge: Grudge, addresses: Mapping[str, str]
) -> None:
    """Make the network exactly `grudge`: each node drops packets from the nodes it names.

    `remotes` holds every node of the test (nodes outside the grudge are healed);
    `addresses` maps node names to the addresses other nodes see them at.
    """
    unknown = set(grudge).union(*grudge.values()) - set(remotes)
    assert not unknown, f"grudge names nodes without sessions: {sorted(unknown)}"

    def apply(node: str, remote: Remote) -> None:
        dropped = grudge.get(node, frozenset())
        drop_from(remote, [addresses.get(other, other) for other in dropped])

    _on_each(remotes, apply)


def heal_all(remotes: Mapping[str, Remote]) -> None:
    """Flush the harness's chain on every node."""
    _on_each(remotes, lambda _node, remote: heal(remote))


def teardown_all(remotes: Mapping[str, Remote]) -> None:
    """Remove the harness's chain from every node."""
    _on_each(remotes, lambda _node, remote: teardown(remote))
