"""The trace format of docs/trace-format.md: event vocabulary, parameters, state image,
byte-exact lines, determinism, and zero cost when tracing is off."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from raftcore_harness import Cluster

from raftcore import trace
from raftcore.config import Config
from raftcore.types import ConfChange, ConfChangeKind, TraceEvent

DOC = Path(__file__).resolve().parents[2] / "docs" / "trace-format.md"


def documented_actions() -> set[str]:
    """Action names from the table under '## Actions' in docs/trace-format.md."""
    text = DOC.read_text()
    section = text.split("## Actions", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Za-z]+)` \|", section, flags=re.MULTILINE))


def busy_run(events: list[TraceEvent]) -> Cluster:
    """A run that takes nearly every action of the vocabulary."""
    cluster = Cluster(["n1", "n2", "n3"], tracer=events.append)
    leader = cluster.elect("n1")
    leader.propose(b"a")
    leader.read_index(b"r")
    cluster.stabilize()
    cluster.tick_all(1)
    cluster.add_node("n4")
    leader.propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, "n4"))
    cluster.stabilize()
    leader.propose_conf_change(ConfChange(ConfChangeKind.PROMOTE_LEARNER, "n4"))
    cluster.stabilize()
    leader.propose_conf_change(ConfChange(ConfChangeKind.REMOVE_SERVER, "n3"))
    cluster.stabilize()
    cluster.tick_all(1)
    storage = cluster.storages["n1"]
    snapshot = storage.create_snapshot(leader.applied_index, b"state")
    storage.compact(snapshot.meta.index)
    leader.compact(snapshot.meta)
    cluster.restart("n4")
    cluster.stabilize()
    leader.transfer_leadership("n2")
    cluster.stabilize()
    new_leader = cluster.nodes["n2"]
    cluster.down.add("n4")
    new_leader.transfer_leadership("n4")
    cluster.tick_all(12)
    cluster.down.discard("n4")
    new_leader.propose_conf_change(ConfChange(ConfChangeKind.REMOVE_SERVER, "n2"))
    cluster.stabilize()
    for _ in range(100):
        cluster.tick_all(1)
        if any(n.role.value == "Leader" for n in cluster.nodes.values()):
            break
    # A leader cut off from everyone steps down (CheckQuorum); and an old snapshot.
    leader_now = cluster.leader()
    cluster.down.update(set(cluster.nodes) - {leader_now.id})
    for _ in range(3 * leader_now.config.election_timeout_ticks):
        leader_now.tick()
    return cluster


def test_every_emitted_event_is_documented_and_most_are_exercised() -> None:
    events: list[TraceEvent] = []
    busy_run(events)
    emitted = {event.name for event in events}
    documented = documented_actions()
    assert len(documented) == 31
    assert emitted <= documented, emitted - documented
    # Everything but the snapshot handshake with a lagging follower appears in this run
    # (InstallSnapshot is pinned by testdata/snapshot.txt).
    assert documented - emitted <= {"InstallSnapshot", "HandleInstallSnapshotRequest"}


def test_state_image_fields() -> None:
    events: list[TraceEvent] = []
    busy_run(events)
    base = {
        "current_term", "role", "voted_for", "leader_id", "commit_index", "last_index",
        "last_term", "snapshot_index", "snapshot_term", "voters", "learners",
    }
    for event in events:
        assert set(event.state) - base <= {"match_index", "transfer_target"}
        assert base <= set(event.state)
        leader_only = "match_index" in event.state
        assert leader_only == (event.state["role"] == "Leader")
        json.dumps(event.state)  # Plain JSON values only.
        for key in ("voted_for", "leader_id"):
            assert isinstance(event.state[key], str)


def first_events(names: int) -> list[TraceEvent]:
    events: list[TraceEvent] = []
    cluster = Cluster(["n1", "n2", "n3"], tracer=events.append)
    cluster.elect("n1")
    return events[:names]


def test_lines_are_byte_exact() -> None:
    lines = [trace.encode_event(event) for event in first_events(40)]
    assert lines[3] == (
        '{"name":"Timeout","node":"n1","params":{"pre_vote":true},"state":{"commit_index":0,'
        '"current_term":0,"last_index":0,"last_term":0,"leader_id":"","learners":[],'
        '"role":"PreCandidate","snapshot_index":0,"snapshot_term":0,"voted_for":"",'
        '"voters":["n1","n2","n3"]}}'
    )
    assert lines[4].startswith(
        '{"name":"RequestVote","node":"n1","params":{"from":"n1","last_log_index":0,'
        '"last_log_term":0,"pre_vote":true,"seq":1,"term":1,"to":"n2","transfer":false,'
        '"type":"RequestVoteRequest"},'
    )
    become_leader = next(line for line in lines if '"BecomeLeader"' in line)
    assert become_leader.startswith(
        '{"name":"BecomeLeader","node":"n1","params":{"cluster_time_ticks":0,"index":1,'
        '"term":1},"state":{"commit_index":0,"current_term":1,"last_index":1,"last_term":1,'
        '"leader_id":"n1","learners":[],"match_index":{"n2":0,"n3":0},"role":"Leader",'
    )
    append = next(line for line in lines if '"name":"AppendEntries"' in line)
    assert append.startswith(
        '{"name":"AppendEntries","node":"n1","params":{"entries":[[1,"NoOp",0,""]],'
        '"from":"n1","leader_commit":0,"prev_log_index":0,"prev_log_term":0,"seq":5,'
        '"term":1,"to":"n2","type":"AppendEntriesRequest"},'
    )


def test_handlers_carry_their_reply_and_update_term_comes_first() -> None:
    events = first_events(40)
    names = [(e.node, e.name) for e in events]
    update = names.index(("n2", "UpdateTerm"))
    assert names[update + 1] == ("n2", "HandleRequestVoteRequest")
    handled = events[update + 1]
    reply = handled.params["reply"]
    assert isinstance(reply, dict)
    assert reply["type"] == "RequestVoteResponse"
    assert reply["vote_granted"] is True
    assert handled.state["voted_for"] == "n1"


def test_configuration_entries_render_their_change() -> None:
    events: list[TraceEvent] = []
    cluster = Cluster(["n1", "n2", "n3"], tracer=events.append)
    leader = cluster.elect("n1")
    cluster.add_node("n4")
    leader.propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, "n4"))
    cluster.stabilize()
    add = next(e for e in events if e.name == "AddLearner")
    assert add.params == {"node_id": "n4", "index": 2, "term": 1, "cluster_time_ticks": 0}
    assert add.state["learners"] == ["n4"]
    later = events[events.index(add) :]
    append = next(e for e in later if e.name == "AppendEntries" and e.params["to"] == "n2")
    assert append.params["entries"] == [[1, "AddLearner", 0, "n4"]]


def test_same_seed_same_trace() -> None:
    def run() -> list[str]:
        events: list[TraceEvent] = []
        cluster = Cluster(["n1", "n2", "n3", "n4", "n5"], seed=5, tracer=events.append)
        cluster.tick_all(30)
        cluster.leader().propose(b"x")
        cluster.tick_all(3)
        return [trace.encode_event(event, {"step": i}) for i, event in enumerate(events)]

    first = run()
    assert len(first) > 50
    assert first == run()


def test_encode_event_rejects_clashing_extra_keys() -> None:
    event = TraceEvent(name="Restart", node="n1")
    assert trace.encode_event(event, {"tick": 3}) == (
        '{"name":"Restart","node":"n1","params":{},"state":{},"tick":3}'
    )
    with pytest.raises(AssertionError):
        trace.encode_event(event, {"name": "x"})


def test_tracing_off_builds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> object:
        raise AssertionError("trace rendering ran without a tracer")

    for name in ("make_event", "message_params", "handler_params", "state_image"):
        monkeypatch.setattr(trace, name, forbidden)
    cluster = Cluster(
        ["n1", "n2", "n3"], config=lambda i: Config(id=i, max_entries_per_msg=2)
    )
    events: list[TraceEvent] = []
    assert not events
    leader = cluster.elect("n1")
    for k in range(10):
        leader.propose(b"%d" % k)
    leader.read_index(b"r")
    cluster.stabilize()
    cluster.tick_all(25)
    assert cluster.nodes["n3"].commit_index == 11
