"""One-line renderings of entries, messages, hard state, snapshots and Ready batches.

Role: the single text form used by logs, by traces read by humans, and by the data-driven
tests (etcd's DescribeMessage / DescribeReady). Changing a rendering changes expected test
output, on purpose: reviewers see protocol changes as diffs of these lines.

Rules: pure and deterministic (sets are sorted); entry data longer than 24 bytes is cut
with "..."; bytes render as Python string literals when printable ASCII, else hex.
"""

from __future__ import annotations

from collections.abc import Iterable

from raftcore import confchange
from raftcore.errors import InvalidConfChange
from raftcore.types import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    EntryKind,
    HardState,
    HeartbeatRequest,
    HeartbeatResponse,
    InstallSnapshotRequest,
    Membership,
    Message,
    ReadState,
    Ready,
    RequestVoteRequest,
    RequestVoteResponse,
    Snapshot,
    SoftState,
    TimeoutNow,
)

_MAX_DATA_CHARS = 24


def describe_bytes(data: bytes) -> str:
    """Printable ASCII as a quoted string, anything else as hex; long data is cut."""
    cut = data[:_MAX_DATA_CHARS]
    suffix = "..." if len(data) > _MAX_DATA_CHARS else ""
    if all(32 <= byte < 127 and byte not in (34, 92) for byte in cut):
        return f'"{cut.decode("ascii")}{suffix}"'
    return f"0x{cut.hex()}{suffix}"


def describe_nodes(nodes: Iterable[str]) -> str:
    return "(" + " ".join(sorted(nodes)) + ")"


def describe_membership(membership: Membership) -> str:
    text = f"voters={describe_nodes(membership.voters)}"
    if membership.learners:
        text += f" learners={describe_nodes(membership.learners)}"
    return text


def describe_entry(entry: Entry) -> str:
    """`term/index Kind payload`, e.g. `2/7 Normal "put x"` or `2/8 AddLearner n4`."""
    head = f"{entry.term}/{entry.index}"
    if entry.kind is EntryKind.NOOP:
        return f"{head} NoOp"
    if entry.kind is EntryKind.CONF_CHANGE:
        try:
            change = confchange.decode(entry.data)
        except InvalidConfChange:
            return f"{head} ConfChange {describe_bytes(entry.data)}"
        return f"{head} {change.kind.value} {change.node_id}"
    return f"{head} Normal {describe_bytes(entry.data)}"


def describe_entries(entries: Iterable[Entry]) -> str:
    return "[" + ", ".join(describe_entry(entry) for entry in entries) + "]"


def describe_hard_state(hard_state: HardState) -> str:
    vote = hard_state.voted_for or "-"
    return f"term={hard_state.current_term} vote={vote} commit={hard_state.commit_index}"


def describe_snapshot(snapshot: Snapshot) -> str:
    meta = snapshot.meta
    return f"index={meta.index} term={meta.term} {describe_membership(meta.membership)}"


def describe_soft_state(soft_state: SoftState) -> str:
    return f"{soft_state.role.value} leader={soft_state.leader_id or '-'}"


def describe_read_state(read_state: ReadState) -> str:
    return f"index={read_state.index} ctx={describe_bytes(read_state.request_ctx)}"


def describe_message(msg: Message) -> str:
    """`from->to Kind term=T fields...` on one line."""
    head = f"{msg.from_id}->{msg.to_id}"
    if isinstance(msg, AppendEntriesRequest):
        return (
            f"{head} AppendEntries term={msg.term} prev=({msg.prev_log_term}/"
            f"{msg.prev_log_index}) commit={msg.leader_commit} "
            f"entries={describe_entries(msg.entries)}"
        )
    if isinstance(msg, AppendEntriesResponse):
        if msg.success:
            return f"{head} AppendEntriesResponse term={msg.term} match={msg.match_index}"
        return (
            f"{head} AppendEntriesResponse term={msg.term} reject={msg.reject_index}"
            f" conflict=({msg.conflict_term}/{msg.conflict_index})"
        )
    if isinstance(msg, HeartbeatRequest):
        text = f"{head} Heartbeat term={msg.term} commit={msg.commit_index}"
        return text + (f" round={msg.read_round}" if msg.read_round else "")
    if isinstance(msg, HeartbeatResponse):
        text = f"{head} HeartbeatResponse term={msg.term}"
        return text + (f" round={msg.read_round}" if msg.read_round else "")
    if isinstance(msg, RequestVoteRequest):
        kind = "PreVote" if msg.pre_vote else "RequestVote"
        text = f"{head} {kind} term={msg.term} last=({msg.last_log_term}/{msg.last_log_index})"
        return text + (" transfer" if msg.transfer else "")
    if isinstance(msg, RequestVoteResponse):
        kind = "PreVoteResponse" if msg.pre_vote else "RequestVoteResponse"
        verdict = "granted" if msg.vote_granted else "rejected"
        return f"{head} {kind} term={msg.term} {verdict}"
    if isinstance(msg, InstallSnapshotRequest):
        return f"{head} InstallSnapshot term={msg.term} {describe_snapshot(msg.snapshot)}"
    assert isinstance(msg, TimeoutNow)
    return f"{head} TimeoutNow term={msg.term}"


def describe_ready(ready: Ready, indent: str = "") -> str:
    """A multi-line rendering of a Ready; each item on its own line."""
    lines = [f"{indent}Ready must_sync={str(ready.must_sync).lower()}:"]
    if ready.soft_state is not None:
        lines.append(f"{indent}State: {describe_soft_state(ready.soft_state)}")
    if ready.hard_state is not None:
        lines.append(f"{indent}HardState {describe_hard_state(ready.hard_state)}")
    if ready.snapshot is not None:
        lines.append(f"{indent}Snapshot {describe_snapshot(ready.snapshot)}")
    sections: list[tuple[str, list[str]]] = [
        ("Entries", [describe_entry(entry) for entry in ready.entries]),
        ("CommittedEntries", [describe_entry(entry) for entry in ready.committed_entries]),
        ("Messages", [describe_message(msg) for msg in ready.messages]),
        ("ReadStates", [describe_read_state(state) for state in ready.read_states]),
    ]
    for title, items in sections:
        if items:
            lines.append(f"{indent}{title}:")
            lines.extend(f"{indent}  {item}" for item in items)
    return "\n".join(lines)
