"""Leader election: timeouts, PreVote, RequestVote, TimeoutNow, becoming leader.

Role: the election half of a Raft node (paper section 5.2, thesis 9.6 for PreVote and
4.2.3 for the leader lease, 3.10 for leadership transfer), as a mixin over `NodeCore`.

Theory of operation:
- A voter whose election timer fires (`Timeout`) becomes a PreCandidate (with PreVote) and
  asks the voters whether they *would* vote for it in `current_term + 1`; nothing durable
  changes. With a quorum of pre-votes it becomes a Candidate (`BecomeCandidate`), moves to
  the next term, votes for itself and asks for real votes (`RequestVote`). Without PreVote
  the timer makes it a Candidate directly.
- A vote is granted at most once per term (`voted_for` is durable and handed out in Ready
  before the response leaves), only to a candidate whose log is at least as up to date,
  and never while the voter still has a live leader (the lease;
  `step` drops such requests before they can raise our term) unless the request carries
  `transfer` (sent after TimeoutNow).
- A Candidate with a quorum of votes becomes Leader and appends a no-op (`BecomeLeader`),
  so that entries of earlier terms get committed by the Figure 8 rule.

Rules: only voters campaign, and only the voters of the candidate's configuration are
asked and counted (a learner's vote never counts: it is asked only by a candidate whose
configuration already makes it a voter); an election that is lost waits for the next
timeout (no early step-down).
"""

from __future__ import annotations

from raftcore.bugs import PlantedBug
from raftcore.core import NodeCore
from raftcore.quorum import VoteResult, vote_result
from raftcore.types import (
    EntryKind,
    RequestVoteRequest,
    RequestVoteResponse,
    Role,
    TimeoutNow,
)


class ElectionMixin(NodeCore):
    __slots__ = ()

    def _tick_election(self) -> None:
        """Follower, PreCandidate and Candidate tick."""
        self._election_elapsed += 1
        if self._election_elapsed >= self._randomized_election_timeout and self._promotable():
            self._election_elapsed = 0
            self._timeout()

    def _timeout(self) -> None:
        """Timeout: start a pre-vote round or, without PreVote, an election."""
        pre_vote = self._config.pre_vote
        if pre_vote:
            self._become_pre_candidate()
        else:
            self._become_candidate()
        if self._tracer is not None:
            self._emit("Timeout", {"pre_vote": pre_vote})
        self._start_vote_round(pre_vote=pre_vote, transfer=False)

    def _become_pre_candidate(self) -> None:
        # A pre-candidate keeps its term and vote: a pre-vote changes nothing durable.
        self._role = Role.PRE_CANDIDATE
        self._leader_id = None
        # Our timer fired, so a full election timeout has passed since the restart: the
        # restart lease is over (keeping it would refuse pre-votes for ever longer).
        self._restart_lease = False
        self._votes = {}
        self._election_elapsed = 0
        self._randomize_election_timeout()

    def _become_candidate(self) -> None:
        self._reset(self._term + 1)
        self._voted_for = self._id
        self._role = Role.CANDIDATE

    def _start_vote_round(self, pre_vote: bool, transfer: bool) -> None:
        """Vote for ourselves, then send RequestVote to every other voter."""
        self._votes = {self._id: True}
        if self._poll(pre_vote):
            return
        log = self._log
        term = self._term + 1 if pre_vote else self._term
        last_index = log.last_index()
        last_term = log.last_term()
        for voter in sorted(self._membership.voters):
            if voter == self._id:
                continue
            msg = RequestVoteRequest(
                term=term,
                from_id=self._id,
                to_id=voter,
                last_log_index=last_index,
                last_log_term=last_term,
                pre_vote=pre_vote,
                transfer=transfer,
                seq=self._next_seq(),
            )
            self._msgs.append(msg)
            if self._tracer is not None:
                self._emit_msg("RequestVote", msg)

    def _poll(self, pre_vote: bool) -> bool:
        """Tally the votes of this round; act on a win. True if the round is over."""
        if vote_result(self._membership.voters, self._votes) is not VoteResult.WON:
            return False
        if pre_vote:
            self._become_candidate()
            if self._tracer is not None:
                self._emit("BecomeCandidate", {})
            self._start_vote_round(pre_vote=False, transfer=False)
        else:
            self._become_leader()
        return True

    def _become_leader(self) -> None:
        assert self._role is Role.CANDIDATE, "only a candidate becomes leader"
        self._reset(self._term)
        self._role = Role.LEADER
        self._leader_id = self._id
        self._cluster_time_ticks = self._last_cluster_time()
        self._sync_progress(self._log.last_index() + 1)
        entry = self._append_as_leader(EntryKind.NOOP, b"")
        self._term_start_index = entry.index
        if self._tracer is not None:
            self._emit(
                "BecomeLeader",
                {
                    "index": entry.index,
                    "term": entry.term,
                    "cluster_time_ticks": entry.cluster_time_ticks,
                },
            )
        self._maybe_commit()
        if self._role is Role.LEADER:
            self._broadcast_append()

    def _handle_request_vote_request(self, msg: RequestVoteRequest) -> None:
        """HandleRequestVoteRequest (the lease check and UpdateTerm happened in step)."""
        term = self._term
        if msg.term < term:
            granted = False
        else:
            granted = self._can_grant(msg)
            if granted and not msg.pre_vote:
                self._voted_for = msg.from_id
                self._election_elapsed = 0
        reply = RequestVoteResponse(
            term=msg.term if granted and msg.pre_vote else term,
            from_id=self._id,
            to_id=msg.from_id,
            vote_granted=granted,
            pre_vote=msg.pre_vote,
            seq=self._next_seq(),
        )
        self._msgs.append(reply)
        if self._tracer is not None:
            self._emit_msg("HandleRequestVoteRequest", msg, reply)

    def _can_grant(self, msg: RequestVoteRequest) -> bool:
        # Votes are granted on term and log alone, whatever our own configuration says
        # (thesis 4.1): a candidate asks only the voters of *its* configuration, which may
        # include a learner promoted by an entry that learner has not received yet.
        # Refusing there can deadlock a cluster; counting is the candidate's business.
        voted_for = self._voted_for
        can_vote = (
            voted_for == msg.from_id
            or (voted_for is None and self._leader_id is None)
            or (msg.pre_vote and msg.term > self._term)
        )
        if not can_vote and not msg.pre_vote and self._bug is PlantedBug.DOUBLE_VOTE:
            can_vote = True
        return can_vote and self._log.is_up_to_date(msg.last_log_index, msg.last_log_term)

    def _handle_request_vote_response(self, msg: RequestVoteResponse) -> None:
        """HandleRequestVoteResponse: count the vote if it belongs to the current round."""
        role = self._role
        term = self._term
        if msg.pre_vote:
            counted = role is Role.PRE_CANDIDATE and (
                msg.term == term + 1 if msg.vote_granted else msg.term == term
            )
        else:
            counted = role is Role.CANDIDATE and msg.term == term
        if counted:
            self._votes[msg.from_id] = msg.vote_granted
        if self._tracer is not None:
            self._emit_msg("HandleRequestVoteResponse", msg)
        if counted:
            self._poll(msg.pre_vote)

    def _handle_timeout_now(self, msg: TimeoutNow) -> None:
        """HandleTimeoutNow: start an election at once, skipping PreVote and the lease."""
        if msg.term < self._term or self._role is Role.LEADER or not self._promotable():
            if self._tracer is not None:
                self._emit_msg("HandleTimeoutNow", msg)
            return
        self._become_candidate()
        if self._tracer is not None:
            self._emit_msg("HandleTimeoutNow", msg)
        self._start_vote_round(pre_vote=False, transfer=True)
