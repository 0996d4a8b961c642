-------------------------------- MODULE raft --------------------------------
(***************************************************************************)
(* The Raft protocol exactly as raftcore implements it: the referee that   *)
(* TLC model-checks (MCraft.tla) and that every core trace is checked      *)
(* against, step by step (Traceraft.tla).                                  *)
(*                                                                         *)
(* Written for this project; Ongaro's raft.tla gave the classic shape (a   *)
(* bag of messages, one action per send and per receive, UpdateTerm as its *)
(* own step, AdvanceCommitIndex apart from the response handler).  On top  *)
(* of it: PreVote, CheckQuorum, the no-op on election, batched             *)
(* AppendEntries with conflict hints, crash and restart, log compaction    *)
(* and InstallSnapshot, single-server membership changes with learners and *)
(* the current-term-commit guard, leadership transfer with TimeoutNow,     *)
(* ReadIndex with heartbeat rounds, and the state machine's client-session *)
(* table (register, dedup at apply, expiry by cluster time).               *)
(*                                                                         *)
(* Each action is named after the trace event (docs/trace-format.md) and   *)
(* is implemented by (modules of raftcore/; election and replication are   *)
(* the mixins of node.Node):                                               *)
(*                                                                         *)
(*   Restart                      core.NodeCore.__init__ (from Storage)    *)
(*   Timeout                      election._timeout                        *)
(*   BecomeCandidate              election._poll -> _become_candidate      *)
(*   RequestVote                  election._start_vote_round               *)
(*   HandleRequestVoteRequest     election._handle_request_vote_request    *)
(*   IgnoreRequestVoteRequest     node.Node.step (lease; logged as         *)
(*                                HandleRequestVoteRequest, no reply)      *)
(*   HandleRequestVoteResponse    election._handle_request_vote_response   *)
(*   UpdateTerm                   core.NodeCore._update_term               *)
(*   BecomeLeader                 election._become_leader                  *)
(*   ClientRequest                node.Node.propose                        *)
(*   AppendEntries                replication._send_append                 *)
(*   HandleAppendEntriesRequest   replication._append_to_log               *)
(*   HandleAppendEntriesResponse  replication._handle_append_entries_...   *)
(*   Heartbeat                    replication._broadcast_heartbeat         *)
(*   HandleHeartbeatRequest       replication._handle_heartbeat_request    *)
(*   HandleHeartbeatResponse      replication._handle_heartbeat_response   *)
(*   AdvanceCommitIndex           core.NodeCore._maybe_commit              *)
(*   PersistEntries               core.NodeCore._persisted_to (advance)    *)
(*   CheckQuorum                  replication._check_quorum                *)
(*   CompactLog                   node.Node.compact                        *)
(*   InstallSnapshot              replication._send_snapshot               *)
(*   HandleInstallSnapshotRequest replication._restore                     *)
(*   AddLearner, PromoteLearner,                                           *)
(*   RemoveServer                 node.Node.propose_conf_change            *)
(*   StepDownRemoved              core.NodeCore._on_leader_commit          *)
(*   TransferLeadership           node.Node.transfer_leadership            *)
(*   TimeoutNow                   replication._send_timeout_now            *)
(*   HandleTimeoutNow             election._handle_timeout_now             *)
(*   AbortTransfer                replication._abort_transfer              *)
(*   ReadIndex                    replication._register_read               *)
(*   ReadIndexReady               replication._release_read                *)
(*   ApplyEntry                   kv.KVStateMachine.apply                  *)
(*                                                                         *)
(* Not trace events (the network's doing, or bookkeeping of the model):    *)
(* DuplicateMessage and DropMessage.                                       *)
(*                                                                         *)
(* Modelling choices, each safe (it can only allow more behaviours than    *)
(* the code has, never hide an unsafe one):                                *)
(* - Timing is not modelled.  Election timeouts, CheckQuorum step-downs,   *)
(*   transfer aborts and lease-based vote refusals may happen at any time. *)
(* - A leader may send any AppendEntries batch that starts at or after its *)
(*   snapshot: next_index, in-flight windows and progress states decide    *)
(*   *when* messages are sent, never *what* is safe (PrevChoices and       *)
(*   LastChoices below; MCraft narrows them to next_index to keep the      *)
(*   state space small).                                                   *)
(* - Durable state (term, vote, log, snapshot) is written atomically with  *)
(*   the action; a restart keeps it and loses the rest.  The commit index  *)
(*   is durable too but may be restored older than it was (it is written  *)
(*   lazily, and forgetting commit knowledge is always safe).  One         *)
(*   exception (thesis 10.2.1): entries a leader appends (the no-op,       *)
(*   client requests, configuration entries) are durable only once         *)
(*   PersistEntries covers them (persistedIndex), because the leader sends *)
(*   them before its own write finishes; it counts itself toward commit    *)
(*   only up to persistedIndex, and a restart keeps its log up to some     *)
(*   length between persistedIndex and the whole log (an unfinished        *)
(*   write).  A follower's appends are durable at once: it answers only    *)
(*   after its write.                                                      *)
(* - Entries carry their term, kind, cluster time and, for configuration   *)
(*   entries, the node the change is about.  A Normal entry's command is   *)
(*   `cmd`; traces do not log commands (the core only sees bytes), so in   *)
(*   trace validation `cmd` is Unknown and ApplyEntry takes the command's  *)
(*   session and sequence number from the logged event instead.            *)
(***************************************************************************)
EXTENDS Integers, Sequences, FiniteSets, TLC

CONSTANTS
    Server,          \* all servers that may ever take part
    InitServer,      \* the voters of the bootstrap configuration
    PreVote,         \* TRUE: an election timeout starts a pre-vote round (thesis 9.6)
    LeaseReads,      \* TRUE: lease reads (CheckQuorum's lease also serves reads)
    SessionTimeout   \* a session idle for more than this many cluster ticks expires

ASSUME InitServer \subseteq Server
ASSUME PreVote \in BOOLEAN
ASSUME LeaseReads \in BOOLEAN
ASSUME SessionTimeout \in Nat

\* "None" as the trace renders it (voted_for, leader_id, transfer_target).
Nil == ""

Follower == "Follower"
PreCandidate == "PreCandidate"
Candidate == "Candidate"
Leader == "Leader"

\* Entry kinds; a configuration entry's kind is the change it makes.
ConfKinds == {"AddLearner", "PromoteLearner", "RemoveServer"}
EntryKinds == {"Normal", "NoOp"} \cup ConfKinds

\* The command of a Normal entry when the trace does not say (see the header).
Unknown == "?"

----------------------------------------------------------------------------
VARIABLES
    messages,     \* the network: a bag [message -> copies in flight]
    currentTerm,  \* durable
    votedFor,     \* durable
    log,          \* durable: the entries after the snapshot (index snapshot.index + k)
    snapshot,     \* durable: [index, term, voters, learners, ctime, sm]
    commitIndex,  \* durable, may be restored older (see the header)
    persistedIndex, \* the log up to here survives a restart (see the header)
    role,         \* Follower, PreCandidate, Candidate or Leader
    leaderId,     \* the leader this server knows for currentTerm, or Nil
    config,       \* the configuration in force: [voters, learners, index]
    votes,        \* (pre-)candidate: [voter -> granted?] of this round
    matchIndex,   \* leader: [server -> highest index known replicated there]
    nextIndex,    \* leader: [server -> next index to send] (drives MCraft only)
    transferee,   \* leader: the leadership-transfer target, or Nil
    readRound,    \* leader: the heartbeat round of the newest registered read
    readAcks,     \* leader: [server -> highest read round it echoed]
    pendingReads, \* leader: reads waiting for their round to be confirmed
    readsSafe,    \* ghost: every read released so far was linearizable
    applied,      \* state machine: last applied index
    sm            \* state machine: [time, sessions, dupExec]

serverVars == <<currentTerm, votedFor, role, leaderId>>
logVars == <<log, snapshot, commitIndex, config, persistedIndex>>
candidateVars == <<votes>>
leaderVars == <<matchIndex, nextIndex, transferee>>
readVars == <<readRound, readAcks, pendingReads, readsSafe>>
smVars == <<applied, sm>>
vars == <<messages, serverVars, logVars, candidateVars, leaderVars, readVars, smVars>>

----------------------------------------------------------------------------
(* Logs.  log[i][k] holds index snapshot[i].index + k.                      *)

Max(a, b) == IF a >= b THEN a ELSE b
Min(a, b) == IF a <= b THEN a ELSE b

FirstIndex(i) == snapshot[i].index + 1
LastIndex(i) == snapshot[i].index + Len(log[i])
Entry(i, k) == log[i][k - snapshot[i].index]
\* The term at index k, for snapshot.index <= k <= LastIndex(i).
TermAt(i, k) == IF k = snapshot[i].index THEN snapshot[i].term ELSE Entry(i, k).term
LastTerm(i) == TermAt(i, LastIndex(i))
LastCtime(i) == IF log[i] = <<>> THEN snapshot[i].ctime ELSE log[i][Len(log[i])].ctime
\* Does i hold an entry at k with term t (snapshot point included)?
MatchTerm(i, k, t) == /\ snapshot[i].index <= k
                      /\ k <= LastIndex(i)
                      /\ TermAt(i, k) = t

\* Votes are granted only to candidates whose log is at least as up to date.
UpToDate(i, lastIndex, lastTerm) ==
    \/ lastTerm > LastTerm(i)
    \/ /\ lastTerm = LastTerm(i)
       /\ lastIndex >= LastIndex(i)

----------------------------------------------------------------------------
(* Configurations (single-server changes, effective when appended).        *)

ApplyChange(c, kind, n, k) ==
    CASE kind = "AddLearner" ->
            [voters |-> c.voters, learners |-> c.learners \cup {n}, index |-> k]
      [] kind = "PromoteLearner" ->
            [voters |-> c.voters \cup {n}, learners |-> c.learners \ {n}, index |-> k]
      [] kind = "RemoveServer" ->
            [voters |-> c.voters \ {n}, learners |-> c.learners \ {n}, index |-> k]

\* The configuration after the entries es, which start at index first.
RECURSIVE ConfigAfter(_, _, _)
ConfigAfter(c, es, first) ==
    IF es = <<>> THEN c
    ELSE ConfigAfter(IF es[1].kind \in ConfKinds
                        THEN ApplyChange(c, es[1].kind, es[1].target, first)
                        ELSE c,
                     Tail(es), first + 1)

SnapConfig(s) == [voters |-> s.voters, learners |-> s.learners, index |-> s.index]
Members(c) == c.voters \cup c.learners

\* A joining server that has never seen a configuration or an entry.
NoState(i) == Members(config[i]) = {} /\ LastIndex(i) = 0

\* Majorities of voters; an empty voter set has none.
IsQuorum(S, voters) == Cardinality(S \cap voters) * 2 > Cardinality(voters)

----------------------------------------------------------------------------
(* The state machine: client sessions (thesis 6.3, raftcore/sessions.py).  *)
(* sessions: [client id -> [active, highest, executed]]; executed is the   *)
(* set of sequence numbers this session has executed.  dupExec is a ghost  *)
(* that records a second execution of one (client, seq).                   *)

InitSm == [time |-> 0, sessions |-> [c \in {} |-> 0], dupExec |-> FALSE]

\* Expiry at cluster time now: a session idle for more than SessionTimeout goes.
Expire(ss, now) == [c \in {d \in DOMAIN ss : ss[d].active >= now - SessionTimeout} |-> ss[c]]

\* A command that already executed gets its cached answer (dedup at apply).
\* MCraft_nodedup overrides this to model a state machine without dedup.
IsDuplicate(s, seq) == seq \in s.executed

\* May applying (client c, seq) at this index answer outcome, given the table
\* ss after expiry at the entry's cluster time?  Logged outcomes
\* are checked against the table exactly as raftcore/kv.py decides them; the
\* one choice the trace hides is the client's ack floor, so "rejected" (a
\* stale request below it, or bytes that are no command) is allowed whenever
\* it could be.
OutcomeOk(ss, index, kind, c, seq, outcome) ==
    CASE kind # "Normal" -> outcome = "noop" /\ c = 0 /\ seq = 0
      [] outcome = "noop" -> c = 0 /\ seq = 0
      [] outcome = "registered" -> c = index /\ seq = 0
      [] outcome = "expired" -> c # 0 /\ c \notin DOMAIN ss
      [] outcome = "duplicate" -> c \in DOMAIN ss /\ IsDuplicate(ss[c], seq)
      [] outcome = "applied" -> \/ c = 0 /\ seq = 0
                                \/ c \in DOMAIN ss /\ seq > 0 /\ ~IsDuplicate(ss[c], seq)
      [] outcome = "rejected" -> \/ c = 0 /\ seq = 0
                                 \/ c \in DOMAIN ss /\ seq > 0
      [] OTHER -> FALSE

\* The state machine after applying one entry (kind, ctime) at index with the
\* given session outcome.
SmAfter(s, index, ctime, c, seq, outcome) ==
    LET now == Max(s.time, ctime)
        ss == Expire(s.sessions, now)
        touch(x) == [x EXCEPT !.active = Max(x.active, now)]
        ran(x) == [x EXCEPT !.active = Max(x.active, now),
                            !.highest = Max(x.highest, seq),
                            !.executed = x.executed \cup {seq}]
        ss2 == CASE outcome = "registered" ->
                        ss @@ (index :> [active |-> now, highest |-> 0, executed |-> {}])
                 [] outcome = "applied" /\ c # 0 -> [ss EXCEPT ![c] = ran(@)]
                 [] outcome \in {"duplicate", "rejected"} /\ c # 0 -> [ss EXCEPT ![c] = touch(@)]
                 [] OTHER -> ss
        dup == outcome = "applied" /\ c # 0 /\ seq \in ss[c].executed
    IN [time |-> now, sessions |-> ss2, dupExec |-> s.dupExec \/ dup]

\* What the state machine answers for a command it knows (model checking).
\* cmd is [op |-> "register"] or [op |-> "put", client |-> c, seq |-> q].
DecideOutcome(s, index, e) ==
    LET now == Max(s.time, e.ctime)
        ss == Expire(s.sessions, now)
    IN CASE e.kind # "Normal" -> [c |-> 0, seq |-> 0, outcome |-> "noop"]
         [] e.cmd.op = "register" -> [c |-> index, seq |-> 0, outcome |-> "registered"]
         [] e.cmd.client \notin DOMAIN ss ->
                [c |-> e.cmd.client, seq |-> e.cmd.seq, outcome |-> "expired"]
         [] IsDuplicate(ss[e.cmd.client], e.cmd.seq) ->
                [c |-> e.cmd.client, seq |-> e.cmd.seq, outcome |-> "duplicate"]
         [] OTHER -> [c |-> e.cmd.client, seq |-> e.cmd.seq, outcome |-> "applied"]

----------------------------------------------------------------------------
(* The network.                                                            *)

WithMessage(m, bag) ==
    IF m \in DOMAIN bag THEN [bag EXCEPT ![m] = @ + 1] ELSE bag @@ (m :> 1)
WithoutMessage(m, bag) ==
    IF bag[m] = 1 THEN [x \in DOMAIN bag \ {m} |-> bag[x]] ELSE [bag EXCEPT ![m] = @ - 1]
Send(m) == messages' = WithMessage(m, messages)
Discard(m) == messages' = WithoutMessage(m, messages)
Reply(response, request) == messages' = WithMessage(response, WithoutMessage(request, messages))

----------------------------------------------------------------------------
(* Initial state: the servers of the bootstrap configuration start from a  *)
(* snapshot at index 0 holding it; a joining server starts with nothing at *)
(* all (no configuration), and asks its leader for a snapshot.             *)

BootSnapshot(i) == [index |-> 0, term |-> 0,
                    voters |-> IF i \in InitServer THEN InitServer ELSE {},
                    learners |-> {}, ctime |-> 0, sm |-> InitSm]

Init ==
    /\ messages = [m \in {} |-> 0]
    /\ currentTerm = [i \in Server |-> 0]
    /\ votedFor = [i \in Server |-> Nil]
    /\ log = [i \in Server |-> <<>>]
    /\ snapshot = [i \in Server |-> BootSnapshot(i)]
    /\ commitIndex = [i \in Server |-> 0]
    /\ persistedIndex = [i \in Server |-> 0]
    /\ role = [i \in Server |-> Follower]
    /\ leaderId = [i \in Server |-> Nil]
    /\ config = [i \in Server |-> SnapConfig(BootSnapshot(i))]
    /\ votes = [i \in Server |-> [j \in {} |-> TRUE]]
    /\ matchIndex = [i \in Server |-> [j \in Server |-> 0]]
    /\ nextIndex = [i \in Server |-> [j \in Server |-> 1]]
    /\ transferee = [i \in Server |-> Nil]
    /\ readRound = [i \in Server |-> 0]
    /\ readAcks = [i \in Server |-> [j \in Server |-> 0]]
    /\ pendingReads = [i \in Server |-> <<>>]
    /\ readsSafe = TRUE
    /\ applied = [i \in Server |-> 0]
    /\ sm = [i \in Server |-> InitSm]

----------------------------------------------------------------------------
(* Helpers shared by the role changes.                                     *)

NoVotes == [j \in {} |-> TRUE]
VoteWon(i) == IsQuorum({j \in DOMAIN votes[i] : votes[i][j]}, config[i].voters)
\* Leader state is dropped on every role change (raftcore: ReadOnly.reset,
\* the progress tracker and the transfer target are rebuilt by become_leader).
ResetLeader(i) ==
    /\ transferee' = [transferee EXCEPT ![i] = Nil]
    /\ readRound' = [readRound EXCEPT ![i] = 0]
    /\ readAcks' = [readAcks EXCEPT ![i] = [j \in Server |-> 0]]
    /\ pendingReads' = [pendingReads EXCEPT ![i] = <<>>]
    /\ matchIndex' = [matchIndex EXCEPT ![i] = [j \in Server |-> 0]]
    /\ UNCHANGED <<nextIndex, readsSafe>>

\* Has the leader committed an entry of its current term?
CommittedInTerm(i) == TermAt(i, commitIndex[i]) = currentTerm[i]
\* The highest index any server knows committed (for the ReadIndex ghost).
MaxCommitted == LET ks == {commitIndex[j] : j \in Server}
                IN CHOOSE k \in ks : \A x \in ks : k >= x

----------------------------------------------------------------------------
(* Crash and restart.                                                      *)

\* Server i restarts from storage: term, vote and snapshot survive, and the
\* log up to index n, at least up to persistedIndex (a leader's unfinished
\* write may have reached the disk in part); the commit index is restored to
\* what was last written (c); the configuration is the log's; role, votes,
\* leader state and reads are lost; the state machine restarts from the
\* snapshot.
Restart(i, c, n) ==
    LET kept == SubSeq(log[i], 1, n - snapshot[i].index)
    IN
    /\ n \in persistedIndex[i]..LastIndex(i)
    /\ c \in snapshot[i].index..Min(commitIndex[i], n)
    /\ commitIndex' = [commitIndex EXCEPT ![i] = c]
    /\ log' = [log EXCEPT ![i] = kept]
    /\ persistedIndex' = [persistedIndex EXCEPT ![i] = n]
    /\ config' = [config EXCEPT ![i] =
                    IF n = LastIndex(i) THEN @
                    ELSE ConfigAfter(SnapConfig(snapshot[i]), kept, FirstIndex(i))]
    /\ role' = [role EXCEPT ![i] = Follower]
    /\ leaderId' = [leaderId EXCEPT ![i] = Nil]
    /\ votes' = [votes EXCEPT ![i] = NoVotes]
    /\ ResetLeader(i)
    /\ applied' = [applied EXCEPT ![i] = snapshot[i].index]
    /\ sm' = [sm EXCEPT ![i] = snapshot[i].sm]
    /\ UNCHANGED <<messages, currentTerm, votedFor, snapshot>>

\* The driver reports i's log durable up to k (a leader's own entries count
\* toward commit from here on).
PersistEntries(i, k) ==
    /\ k \in persistedIndex[i] + 1..LastIndex(i)
    /\ persistedIndex' = [persistedIndex EXCEPT ![i] = k]
    /\ UNCHANGED <<messages, serverVars, log, snapshot, commitIndex, config, candidateVars,
                   leaderVars, readVars, smVars>>

----------------------------------------------------------------------------
(* Elections.                                                              *)

\* i becomes a candidate of the next term, voting for itself.
Campaign(i) ==
    /\ role' = [role EXCEPT ![i] = Candidate]
    /\ currentTerm' = [currentTerm EXCEPT ![i] = @ + 1]
    /\ votedFor' = [votedFor EXCEPT ![i] = i]
    /\ leaderId' = [leaderId EXCEPT ![i] = Nil]
    /\ votes' = [votes EXCEPT ![i] = (i :> TRUE)]

\* The election timer fires on a voter that is not leader.
Timeout(i) ==
    /\ role[i] # Leader
    /\ i \in config[i].voters
    /\ IF PreVote
          THEN /\ role' = [role EXCEPT ![i] = PreCandidate]
               /\ leaderId' = [leaderId EXCEPT ![i] = Nil]
               /\ votes' = [votes EXCEPT ![i] = (i :> TRUE)]
               /\ UNCHANGED <<currentTerm, votedFor>>
          ELSE Campaign(i)
    /\ UNCHANGED <<messages, logVars, leaderVars, readVars, smVars>>

\* A pre-candidate that a quorum would vote for starts the real election.
BecomeCandidate(i) ==
    /\ role[i] = PreCandidate
    /\ VoteWon(i)
    /\ Campaign(i)
    /\ UNCHANGED <<messages, logVars, leaderVars, readVars, smVars>>

\* A (pre-)candidate asks voter j; a pre-vote asks about the next term.
\* transfer is the flag of a campaign started by TimeoutNow (it overrides the
\* voters' leader lease); the model lets any campaign set it, which only
\* allows more behaviours (a voter may refuse a non-transfer vote anyway).
RequestVote(i, j, transfer) ==
    /\ role[i] \in {PreCandidate, Candidate}
    /\ j \in config[i].voters \ {i}
    /\ Send([type |-> "RequestVoteRequest",
             term |-> IF role[i] = PreCandidate THEN currentTerm[i] + 1 ELSE currentTerm[i],
             from |-> i, to |-> j,
             last_log_index |-> LastIndex(i), last_log_term |-> LastTerm(i),
             pre_vote |-> role[i] = PreCandidate, transfer |-> transfer])
    /\ UNCHANGED <<serverVars, logVars, candidateVars, leaderVars, readVars, smVars>>

VoteResponse(i, m, granted) ==
    [type |-> "RequestVoteResponse",
     term |-> IF m.pre_vote /\ granted THEN m.term ELSE currentTerm[i],
     from |-> i, to |-> m.from, vote_granted |-> granted, pre_vote |-> m.pre_vote]

\* Server i answers a (pre-)vote request m (a real one only once its term is
\* not higher: UpdateTerm comes first).  Votes are granted on term, vote and
\* log alone, whatever i's own configuration says (thesis 4.1).
HandleRequestVoteRequest(i, m) ==
    LET j == m.from
        logOk == UpToDate(i, m.last_log_index, m.last_log_term)
        canVote == \/ votedFor[i] = j
                   \/ votedFor[i] = Nil /\ leaderId[i] = Nil
                   \/ m.pre_vote /\ m.term > currentTerm[i]
        grant == m.term >= currentTerm[i] /\ canVote /\ logOk
    IN
    /\ m.type = "RequestVoteRequest"
    /\ m.to = i
    /\ m.term <= currentTerm[i] \/ m.pre_vote
    /\ Reply(VoteResponse(i, m, grant), m)
    /\ IF grant /\ ~m.pre_vote
          THEN votedFor' = [votedFor EXCEPT ![i] = j]
          ELSE UNCHANGED votedFor
    /\ UNCHANGED <<currentTerm, role, leaderId, logVars, candidateVars, leaderVars,
                   readVars, smVars>>

\* Inside the leader lease (thesis 4.2.3: i heard from a leader, or restarted,
\* less than an election timeout ago) a (pre-)vote request of a higher term
\* without the transfer flag is dropped unanswered and i keeps its term.
\* Timing is not modelled, so the lease may hold whenever the rest does.
\* (Trace event: HandleRequestVoteRequest without a reply.)
IgnoreRequestVoteRequest(i, m) ==
    /\ m.type = "RequestVoteRequest"
    /\ m.to = i
    /\ m.term > currentTerm[i]
    /\ ~m.transfer
    /\ Discard(m)
    /\ UNCHANGED <<serverVars, logVars, candidateVars, leaderVars, readVars, smVars>>

\* With lease reads, a follower inside its leader lease ignores an answer of a
\* higher term (a delayed reply to something it sent in an earlier role)
\* instead of raising its term; timing is not modelled, so it may always.
IgnoredAnswer(i, m) == LeaseReads /\ role[i] = Follower /\ m.term > currentTerm[i]

\* Server i tallies a (pre-)vote response of the current round.
HandleRequestVoteResponse(i, m) ==
    LET j == m.from
        current == \/ /\ m.pre_vote /\ role[i] = PreCandidate
                      /\ m.term = IF m.vote_granted THEN currentTerm[i] + 1 ELSE currentTerm[i]
                   \/ /\ ~m.pre_vote /\ role[i] = Candidate
                      /\ m.term = currentTerm[i]
    IN
    /\ m.type = "RequestVoteResponse"
    /\ m.to = i
    /\ m.term <= currentTerm[i] \/ (m.pre_vote /\ m.vote_granted) \/ IgnoredAnswer(i, m)
    /\ IF current /\ j \in config[i].voters
          THEN votes' = [votes EXCEPT ![i] = @ @@ (j :> m.vote_granted)]
          ELSE UNCHANGED votes
    /\ Discard(m)
    /\ UNCHANGED <<serverVars, logVars, leaderVars, readVars, smVars>>

\* A message of a higher term turns i into a follower of that term before its
\* handler runs.  Pre-vote requests and granted pre-vote responses never do.
UpdateTerm(i, m) ==
    /\ m.to = i
    /\ m.term > currentTerm[i]
    /\ ~(m.type = "RequestVoteRequest" /\ m.pre_vote)
    /\ ~(m.type = "RequestVoteResponse" /\ m.pre_vote /\ m.vote_granted)
    /\ currentTerm' = [currentTerm EXCEPT ![i] = m.term]
    /\ role' = [role EXCEPT ![i] = Follower]
    /\ votedFor' = [votedFor EXCEPT ![i] = Nil]
    /\ leaderId' = [leaderId EXCEPT ![i] = Nil]
    /\ votes' = [votes EXCEPT ![i] = NoVotes]
    /\ ResetLeader(i)
    /\ UNCHANGED <<messages, logVars, smVars>>

\* A candidate with a quorum of votes becomes leader and appends the no-op at
\* its cluster time (a new leader's clock starts at its last entry's time).
BecomeLeader(i, ctime) ==
    /\ role[i] = Candidate
    /\ VoteWon(i)
    /\ ctime >= LastCtime(i)
    /\ role' = [role EXCEPT ![i] = Leader]
    /\ leaderId' = [leaderId EXCEPT ![i] = i]
    /\ votes' = [votes EXCEPT ![i] = NoVotes]
    /\ log' = [log EXCEPT ![i] = Append(@, [term |-> currentTerm[i], kind |-> "NoOp",
                                           ctime |-> ctime, target |-> Nil, cmd |-> Nil])]
    /\ matchIndex' = [matchIndex EXCEPT ![i] = [j \in Server |->
                                              IF j = i THEN LastIndex(i) + 1 ELSE 0]]
    /\ nextIndex' = [nextIndex EXCEPT ![i] = [j \in Server |-> LastIndex(i) + 1]]
    /\ transferee' = [transferee EXCEPT ![i] = Nil]
    /\ readRound' = [readRound EXCEPT ![i] = 0]
    /\ readAcks' = [readAcks EXCEPT ![i] = [j \in Server |-> 0]]
    /\ pendingReads' = [pendingReads EXCEPT ![i] = <<>>]
    /\ UNCHANGED <<messages, currentTerm, votedFor, snapshot, commitIndex, config,
                   persistedIndex, readsSafe, smVars>>

----------------------------------------------------------------------------
(* Proposals.                                                              *)

\* The leader appends one entry for a client command (not during a transfer).
ClientRequest(i, cmd, ctime) ==
    /\ role[i] = Leader
    /\ transferee[i] = Nil
    /\ ctime >= LastCtime(i)
    /\ log' = [log EXCEPT ![i] = Append(@, [term |-> currentTerm[i], kind |-> "Normal",
                                           ctime |-> ctime, target |-> Nil, cmd |-> cmd])]
    /\ matchIndex' = [matchIndex EXCEPT ![i][i] = LastIndex(i) + 1]
    /\ UNCHANGED <<messages, serverVars, snapshot, commitIndex, config, persistedIndex,
                   candidateVars, nextIndex, transferee, readVars, smVars>>

\* The configuration-change guard (the fix of the July 2015 single-server bug):
\* the leader has committed an entry of its term, and no configuration entry
\* is uncommitted.  MCraft_noguard overrides ConfGuard to drop the first part.
NoPendingConf(i) == config[i].index <= commitIndex[i]
ConfGuard(i) == CommittedInTerm(i) /\ NoPendingConf(i)

ConfValid(c, kind, n) ==
    CASE kind = "AddLearner" -> n \notin Members(c)
      [] kind = "PromoteLearner" -> n \in c.learners
      [] kind = "RemoveServer" -> n \in Members(c) /\ c.voters # {n}

\* The leader appends a configuration entry; it takes effect at once.  A
\* removed member's progress is dropped, so it is never counted again.
ChangeConfig(i, kind, n, ctime) ==
    LET k == LastIndex(i) + 1
        c2 == ApplyChange(config[i], kind, n, k)
    IN
    /\ role[i] = Leader
    /\ transferee[i] = Nil
    /\ ConfGuard(i)
    /\ ConfValid(config[i], kind, n)
    /\ ctime >= LastCtime(i)
    /\ log' = [log EXCEPT ![i] = Append(@, [term |-> currentTerm[i], kind |-> kind,
                                           ctime |-> ctime, target |-> n, cmd |-> Nil])]
    /\ config' = [config EXCEPT ![i] = c2]
    /\ matchIndex' = [matchIndex EXCEPT ![i] = [j \in Server |->
                        IF j = i THEN k
                        ELSE IF j \in Members(c2) /\ j \in Members(config[i]) THEN @[j]
                        ELSE 0]]
    /\ nextIndex' = [nextIndex EXCEPT ![i][n] = IF kind = "AddLearner" THEN k ELSE @]
    /\ UNCHANGED <<messages, serverVars, snapshot, commitIndex, persistedIndex,
                   candidateVars, transferee, readVars, smVars>>

AddLearner(i, n, ctime) == ChangeConfig(i, "AddLearner", n, ctime)
PromoteLearner(i, n, ctime) == ChangeConfig(i, "PromoteLearner", n, ctime)
RemoveServer(i, n, ctime) == ChangeConfig(i, "RemoveServer", n, ctime)

\* A leader whose removal has committed steps down.
StepDownRemoved(i) ==
    /\ role[i] = Leader
    /\ i \notin Members(config[i])
    /\ config[i].index <= commitIndex[i]
    /\ role' = [role EXCEPT ![i] = Follower]
    /\ leaderId' = [leaderId EXCEPT ![i] = Nil]
    /\ ResetLeader(i)
    /\ UNCHANGED <<messages, currentTerm, votedFor, logVars, candidateVars, smVars>>

----------------------------------------------------------------------------
(* Replication.                                                            *)

\* Where an AppendEntries to j may start and end (see the header).
PrevChoices(i, j) == snapshot[i].index..LastIndex(i)
LastChoices(i, j, prev) == prev..LastIndex(i)

\* Leader i sends member j the entries prev+1..last in one AppendEntries.
AppendEntries(i, j, prev, last) ==
    /\ role[i] = Leader
    /\ j \in Members(config[i]) \ {i}
    /\ prev \in PrevChoices(i, j)
    /\ last \in LastChoices(i, j, prev)
    /\ Send([type |-> "AppendEntriesRequest", term |-> currentTerm[i], from |-> i, to |-> j,
             prev_log_index |-> prev, prev_log_term |-> TermAt(i, prev),
             entries |-> SubSeq(log[i], prev + 1 - snapshot[i].index,
                                last - snapshot[i].index),
             leader_commit |-> commitIndex[i]])
    /\ UNCHANGED <<serverVars, logVars, candidateVars, leaderVars, readVars, smVars>>

AEResponse(i, m, success, match, hintTerm, hintIndex) ==
    [type |-> "AppendEntriesResponse", term |-> currentTerm[i], from |-> i, to |-> m.from,
     success |-> success, match_index |-> match,
     reject_index |-> IF success THEN 0 ELSE m.prev_log_index,
     conflict_term |-> hintTerm, conflict_index |-> hintIndex]

\* The answer to an InstallSnapshot of a stale term: unsuccessful, with our term.
StaleResponse(i, m) ==
    [type |-> "AppendEntriesResponse", term |-> currentTerm[i], from |-> i, to |-> m.from,
     success |-> FALSE, match_index |-> 0, reject_index |-> 0,
     conflict_term |-> 0, conflict_index |-> 0]

\* Contact from the leader of the current term: (pre-)candidates give up.
FollowLeader(i, m) ==
    /\ role' = [role EXCEPT ![i] = Follower]
    /\ leaderId' = [leaderId EXCEPT ![i] = m.from]
    /\ votes' = [votes EXCEPT ![i] = IF role[i] = Follower THEN @ ELSE NoVotes]

\* The first index among es (starting at prev+1) where i's log disagrees or
\* ends, or 0 if i already holds all of es.
RECURSIVE FirstConflict(_, _, _)
FirstConflict(i, es, k) ==
    IF es = <<>> THEN 0
    ELSE IF MatchTerm(i, k, es[1].term) THEN FirstConflict(i, Tail(es), k + 1)
    ELSE k

\* i's log after accepting es at prev+1.. where k = FirstConflict: a
\* conflicting suffix is truncated, missing entries are appended.
AcceptEntries(i, prev, es, k) ==
    LET keep == SubSeq(log[i], 1, k - 1 - snapshot[i].index)
        new == SubSeq(es, k - prev, Len(es))
    IN IF k = 0 THEN log[i] ELSE keep \o new

\* The rejection hints: the term at prev (0 if the log is shorter) and the
\* first index this server holds with that term (or its last index + 1).
RECURSIVE FirstOfTerm(_, _, _)
FirstOfTerm(i, t, k) ==
    IF k > FirstIndex(i) /\ TermAt(i, k - 1) = t THEN FirstOfTerm(i, t, k - 1) ELSE k
HintTerm(i, prev) == IF prev > LastIndex(i) THEN 0 ELSE TermAt(i, prev)
HintIndex(i, prev) == IF prev > LastIndex(i) THEN LastIndex(i) + 1
                      ELSE FirstOfTerm(i, TermAt(i, prev), prev)

HandleAppendEntriesRequest(i, m) ==
    LET prev == m.prev_log_index
        lastNew == prev + Len(m.entries)
        logOk == MatchTerm(i, prev, m.prev_log_term)
        conflict == FirstConflict(i, m.entries, prev + 1)
        newLog == AcceptEntries(i, prev, m.entries, conflict)
        truncated == conflict # 0 /\ conflict <= LastIndex(i)
    IN
    /\ m.type = "AppendEntriesRequest"
    /\ m.to = i
    /\ m.term <= currentTerm[i]
    /\ \/ /\ m.term < currentTerm[i]
          /\ Reply(AEResponse(i, m, FALSE, 0, 0, 0), m)
          /\ UNCHANGED <<serverVars, logVars, votes>>
       \/ /\ m.term = currentTerm[i]
          /\ role[i] # Leader
          /\ FollowLeader(i, m)
          /\ \/ \* A joining server asks for a snapshot (conflict_index 0).
                /\ NoState(i)
                /\ Reply(AEResponse(i, m, FALSE, 0, 0, 0), m)
                /\ UNCHANGED logVars
             \/ \* Already committed here: report the commit index.
                /\ ~NoState(i)
                /\ prev < commitIndex[i]
                /\ Reply(AEResponse(i, m, TRUE, commitIndex[i], 0, 0), m)
                /\ persistedIndex' = [persistedIndex EXCEPT ![i] = Max(@, commitIndex[i])]
                /\ UNCHANGED <<log, snapshot, commitIndex, config>>
             \/ /\ ~NoState(i)
                /\ prev >= commitIndex[i]
                /\ logOk
                /\ log' = [log EXCEPT ![i] = newLog]
                /\ config' = [config EXCEPT ![i] =
                                IF truncated
                                THEN ConfigAfter(SnapConfig(snapshot[i]), newLog, FirstIndex(i))
                                ELSE ConfigAfter(@, SubSeq(newLog, Len(log[i]) + 1, Len(newLog)),
                                                 LastIndex(i) + 1)]
                /\ commitIndex' = [commitIndex EXCEPT ![i] =
                                     Max(@, Min(m.leader_commit, lastNew))]
                \* What i acknowledges is durable (it answers after its write).
                /\ persistedIndex' = [persistedIndex EXCEPT ![i] =
                                        IF conflict = 0 THEN Max(@, lastNew) ELSE lastNew]
                /\ Reply(AEResponse(i, m, TRUE, lastNew, 0, 0), m)
                /\ UNCHANGED snapshot
             \/ /\ ~NoState(i)
                /\ prev >= commitIndex[i]
                /\ ~logOk
                /\ Reply(AEResponse(i, m, FALSE, 0, HintTerm(i, prev), HintIndex(i, prev)), m)
                /\ UNCHANGED logVars
          /\ UNCHANGED <<currentTerm, votedFor>>
    /\ UNCHANGED <<leaderVars, readVars, smVars>>

\* Where the leader retries after a rejection (drives MCraft only): past its
\* last entry of the conflicting term if it has that term, else at the hint.
LastOfTerm(i, t) ==
    LET ks == {k \in snapshot[i].index..LastIndex(i) : TermAt(i, k) = t}
    IN IF ks = {} THEN 0 ELSE CHOOSE k \in ks : \A x \in ks : k >= x
RetryIndex(i, m) ==
    IF m.conflict_term = 0 \/ LastOfTerm(i, m.conflict_term) = 0 THEN m.conflict_index
    ELSE LastOfTerm(i, m.conflict_term) + 1

\* The leader records a follower's progress; match_index never goes back.
HandleAppendEntriesResponse(i, m) ==
    LET j == m.from
        current == /\ role[i] = Leader /\ m.term = currentTerm[i]
                   /\ j \in Members(config[i]) \ {i}
    IN
    /\ m.type = "AppendEntriesResponse"
    /\ m.to = i
    /\ m.term <= currentTerm[i] \/ IgnoredAnswer(i, m)
    /\ IF current /\ m.success
          THEN /\ matchIndex' = [matchIndex EXCEPT ![i][j] = Max(@, m.match_index)]
               /\ nextIndex' = [nextIndex EXCEPT ![i][j] = Max(@, m.match_index + 1)]
          ELSE IF current /\ m.reject_index > matchIndex[i][j]
          THEN /\ nextIndex' = [nextIndex EXCEPT ![i][j] =
                                  IF m.conflict_index = 0 THEN 0  \* wants a snapshot
                                  ELSE Max(matchIndex[i][j] + 1, Min(RetryIndex(i, m), @))]
               /\ UNCHANGED matchIndex
          ELSE UNCHANGED <<matchIndex, nextIndex>>
    /\ Discard(m)
    /\ UNCHANGED <<serverVars, logVars, candidateVars, transferee, readVars, smVars>>

\* Leader i sends member j a heartbeat: its commit index as far as j is known
\* to hold the log, and the newest read round while reads wait for one.  With
\* lease reads every heartbeat broadcast starts a round (its answers renew the
\* lease), so a heartbeat may carry the next round.
Heartbeat(i, j) ==
    /\ role[i] = Leader
    /\ j \in Members(config[i]) \ {i}
    /\ \E newRound \in IF LeaseReads THEN BOOLEAN ELSE {FALSE} :
          LET round == IF newRound THEN readRound[i] + 1
                       ELSE IF LeaseReads \/ pendingReads[i] # <<>> THEN readRound[i]
                       ELSE 0
          IN /\ Send([type |-> "HeartbeatRequest", term |-> currentTerm[i], from |-> i,
                      to |-> j, commit_index |-> Min(commitIndex[i], matchIndex[i][j]),
                      read_round |-> round])
             /\ readRound' = [readRound EXCEPT ![i] = IF newRound THEN round ELSE @]
    /\ UNCHANGED <<serverVars, logVars, candidateVars, leaderVars, readAcks, pendingReads,
                   readsSafe, smVars>>

HandleHeartbeatRequest(i, m) ==
    /\ m.type = "HeartbeatRequest"
    /\ m.to = i
    /\ m.term <= currentTerm[i]
    /\ \/ /\ m.term < currentTerm[i]
          /\ Reply([type |-> "HeartbeatResponse", term |-> currentTerm[i], from |-> i,
                    to |-> m.from, read_round |-> 0], m)
          /\ UNCHANGED <<role, leaderId, votes, commitIndex>>
       \/ /\ m.term = currentTerm[i]
          /\ role[i] # Leader
          /\ FollowLeader(i, m)
          /\ commitIndex' = [commitIndex EXCEPT ![i] =
                               Max(@, Min(m.commit_index, LastIndex(i)))]
          /\ Reply([type |-> "HeartbeatResponse", term |-> currentTerm[i], from |-> i,
                    to |-> m.from, read_round |-> m.read_round], m)
    /\ UNCHANGED <<currentTerm, votedFor, log, snapshot, config, persistedIndex, leaderVars,
                   readVars, smVars>>

HandleHeartbeatResponse(i, m) ==
    LET j == m.from
    IN
    /\ m.type = "HeartbeatResponse"
    /\ m.to = i
    /\ m.term <= currentTerm[i] \/ IgnoredAnswer(i, m)
    /\ IF role[i] = Leader /\ m.term = currentTerm[i] /\ j \in Members(config[i])
          THEN readAcks' = [readAcks EXCEPT ![i][j] = Max(@, m.read_round)]
          ELSE UNCHANGED readAcks
    /\ Discard(m)
    /\ UNCHANGED <<serverVars, logVars, candidateVars, leaderVars, readRound, pendingReads,
                   readsSafe, smVars>>

\* The leader commits the highest entry of its own term that a quorum of
\* voters holds (Figure 8: older entries commit only with it), counting
\* itself only up to what it persisted (thesis 10.2.1).
Holds(i, j, k) == IF j = i THEN persistedIndex[i] >= k ELSE matchIndex[i][j] >= k
CommitCandidates(i) ==
    {k \in commitIndex[i] + 1..LastIndex(i) :
        /\ TermAt(i, k) = currentTerm[i]
        /\ IsQuorum({j \in config[i].voters : Holds(i, j, k)}, config[i].voters)}
AdvanceCommitIndex(i) ==
    /\ role[i] = Leader
    /\ CommitCandidates(i) # {}
    /\ commitIndex' = [commitIndex EXCEPT ![i] =
                         CHOOSE k \in CommitCandidates(i) : \A x \in CommitCandidates(i) : k >= x]
    /\ UNCHANGED <<messages, serverVars, log, snapshot, config, persistedIndex,
                   candidateVars, leaderVars, readVars, smVars>>

\* A leader that has not heard from a quorum within an election timeout steps
\* down (timing is not modelled, so it may at any time).
CheckQuorum(i) ==
    /\ role[i] = Leader
    /\ role' = [role EXCEPT ![i] = Follower]
    /\ leaderId' = [leaderId EXCEPT ![i] = Nil]
    /\ ResetLeader(i)
    /\ UNCHANGED <<messages, currentTerm, votedFor, logVars, candidateVars, smVars>>

----------------------------------------------------------------------------
(* Log compaction and snapshots.                                           *)

\* The application snapshots its state machine at the applied index and the
\* log prefix up to it is dropped.
CompactLog(i) ==
    LET k == applied[i]
    IN
    /\ k > snapshot[i].index
    /\ snapshot' = [snapshot EXCEPT ![i] =
                      LET c == ConfigAfter(SnapConfig(snapshot[i]),
                                           SubSeq(log[i], 1, k - snapshot[i].index),
                                           FirstIndex(i))
                      IN [index |-> k, term |-> TermAt(i, k), voters |-> c.voters,
                          learners |-> c.learners, ctime |-> Entry(i, k).ctime, sm |-> sm[i]]]
    /\ log' = [log EXCEPT ![i] = SubSeq(@, k - snapshot[i].index + 1, Len(@))]
    \* The snapshot is written durably at once.
    /\ persistedIndex' = [persistedIndex EXCEPT ![i] = Max(@, k)]
    /\ UNCHANGED <<messages, serverVars, commitIndex, config, candidateVars, leaderVars,
                   readVars, smVars>>

InstallSnapshot(i, j) ==
    /\ role[i] = Leader
    /\ j \in Members(config[i]) \ {i}
    /\ Send([type |-> "InstallSnapshotRequest", term |-> currentTerm[i], from |-> i, to |-> j,
             snapshot |-> snapshot[i]])
    /\ nextIndex' = [nextIndex EXCEPT ![i][j] = snapshot[i].index + 1]
    /\ UNCHANGED <<serverVars, logVars, candidateVars, matchIndex, transferee, readVars,
                   smVars>>

\* A snapshot below the commit index (or at it, unless this server has no
\* state at all) is old news; one whose last entry this server already holds
\* only moves the commit index; any other replaces the log and the state
\* machine.  The answer is an AppendEntriesResponse.
HandleInstallSnapshotRequest(i, m) ==
    LET s == m.snapshot
        old == s.index < commitIndex[i] \/ (s.index = commitIndex[i] /\ ~NoState(i))
    IN
    /\ m.type = "InstallSnapshotRequest"
    /\ m.to = i
    /\ m.term <= currentTerm[i]
    /\ \/ /\ m.term < currentTerm[i]
          /\ Reply(StaleResponse(i, m), m)
          /\ UNCHANGED <<role, leaderId, votes, logVars, smVars>>
       \/ /\ m.term = currentTerm[i]
          /\ role[i] # Leader
          /\ FollowLeader(i, m)
          /\ \/ /\ old
                /\ Reply(AEResponse(i, m, TRUE, commitIndex[i], 0, 0), m)
                /\ persistedIndex' = [persistedIndex EXCEPT ![i] = Max(@, commitIndex[i])]
                /\ UNCHANGED <<log, snapshot, commitIndex, config, smVars>>
             \/ /\ ~old
                /\ ~NoState(i)
                /\ MatchTerm(i, s.index, s.term)
                /\ commitIndex' = [commitIndex EXCEPT ![i] = s.index]
                /\ persistedIndex' = [persistedIndex EXCEPT ![i] = Max(@, s.index)]
                /\ Reply(AEResponse(i, m, TRUE, s.index, 0, 0), m)
                /\ UNCHANGED <<log, snapshot, config, smVars>>
             \/ /\ ~old
                /\ NoState(i) \/ ~MatchTerm(i, s.index, s.term)
                /\ snapshot' = [snapshot EXCEPT ![i] = s]
                /\ log' = [log EXCEPT ![i] = <<>>]
                /\ persistedIndex' = [persistedIndex EXCEPT ![i] = s.index]
                /\ commitIndex' = [commitIndex EXCEPT ![i] = s.index]
                /\ config' = [config EXCEPT ![i] = SnapConfig(s)]
                /\ applied' = [applied EXCEPT ![i] = s.index]
                /\ sm' = [sm EXCEPT ![i] = s.sm]
                /\ Reply(AEResponse(i, m, TRUE, s.index, 0, 0), m)
    /\ UNCHANGED <<currentTerm, votedFor, leaderVars, readVars>>

----------------------------------------------------------------------------
(* Leadership transfer (thesis 3.10).                                      *)

TransferLeadership(i, t) ==
    /\ role[i] = Leader
    /\ transferee[i] = Nil
    /\ t \in config[i].voters \ {i}
    /\ transferee' = [transferee EXCEPT ![i] = t]
    /\ UNCHANGED <<messages, serverVars, logVars, candidateVars, matchIndex, nextIndex,
                   readVars, smVars>>

\* Once the target holds the whole log, it is told to campaign at once.
TimeoutNow(i) ==
    LET t == transferee[i]
    IN
    /\ role[i] = Leader
    /\ t # Nil
    /\ matchIndex[i][t] = LastIndex(i)
    /\ Send([type |-> "TimeoutNow", term |-> currentTerm[i], from |-> i, to |-> t])
    /\ UNCHANGED <<serverVars, logVars, candidateVars, leaderVars, readVars, smVars>>

\* A voter told by the leader of its term campaigns without a pre-vote.
HandleTimeoutNow(i, m) ==
    /\ m.type = "TimeoutNow"
    /\ m.to = i
    /\ m.term <= currentTerm[i]
    /\ IF m.term = currentTerm[i] /\ i \in config[i].voters /\ role[i] # Leader
          THEN Campaign(i)
          ELSE UNCHANGED <<currentTerm, votedFor, role, leaderId, votes>>
    /\ Discard(m)
    /\ UNCHANGED <<logVars, leaderVars, readVars, smVars>>

\* The transfer ends without success: it timed out, or the target was removed.
AbortTransfer(i, reason) ==
    /\ role[i] = Leader
    /\ transferee[i] # Nil
    /\ reason = "removed" => transferee[i] \notin config[i].voters
    /\ transferee' = [transferee EXCEPT ![i] = Nil]
    /\ UNCHANGED <<messages, serverVars, logVars, candidateVars, matchIndex, nextIndex,
                   readVars, smVars>>

----------------------------------------------------------------------------
(* ReadIndex (thesis 6.4, raftcore/readonly.py).                            *)

\* A leader that has committed an entry of its term registers a read at its
\* commit index and starts a new heartbeat round for it (a single voter needs
\* none: its own acknowledgment is a quorum).  With lease reads a read may be
\* served at once under the leader's lease instead: that rests on timing
\* (clocks drifting less than the lease margin), which the spec does not
\* model, so ReadIndexLinearizable does not cover such reads.  The ghost
\* `cover` is the highest index committed anywhere when the read arrived.
ReadIndex(i, ctx) ==
    /\ role[i] = Leader
    /\ CommittedInTerm(i)
    /\ \E lease \in IF LeaseReads THEN BOOLEAN ELSE {FALSE} :
          LET round == IF config[i].voters = {i} \/ lease THEN readRound[i]
                       ELSE readRound[i] + 1
          IN /\ readRound' = [readRound EXCEPT ![i] = round]
             /\ pendingReads' = [pendingReads EXCEPT ![i] = Append(@,
                                  [ctx |-> ctx, index |-> commitIndex[i], round |-> round,
                                   lease |-> lease, cover |-> MaxCommitted])]
    /\ UNCHANGED <<messages, serverVars, logVars, candidateVars, leaderVars, readAcks,
                   readsSafe, smVars>>

\* The highest round r <= readRound[i] a quorum of voters has echoed (the
\* leader echoes its own); -1 with no voters.  Since a quorum that echoed r
\* echoed every smaller round too, that round is 0, readRound[i], or one of
\* the echoed rounds, so only those are tried (rounds grow with every
\* heartbeat, and trying each of 0..readRound[i] made trace validation slow).
ConfirmedRound(i) ==
    LET acks == [j \in Server |-> IF j = i THEN readRound[i] ELSE readAcks[i][j]]
        ok(r) == IsQuorum({j \in config[i].voters : acks[j] >= r}, config[i].voters)
        tries == {acks[j] : j \in config[i].voters} \cup {0, readRound[i]}
        rs == {r \in tries : r <= readRound[i] /\ ok(r)}
    IN IF rs = {} THEN -1 ELSE CHOOSE r \in rs : \A x \in rs : r >= x

\* The oldest pending read whose round a quorum confirmed is released.
ReadIndexReady(i) ==
    LET r == Head(pendingReads[i])
    IN
    /\ role[i] = Leader
    /\ pendingReads[i] # <<>>
    /\ r.lease \/ r.round <= ConfirmedRound(i)
    /\ pendingReads' = [pendingReads EXCEPT ![i] = Tail(@)]
    /\ readsSafe' = (readsSafe /\ (r.lease \/ r.index >= r.cover) /\ CommittedInTerm(i))
    /\ UNCHANGED <<messages, serverVars, logVars, candidateVars, leaderVars, readRound,
                   readAcks, smVars>>

----------------------------------------------------------------------------
(* The state machine applies committed entries in order.                   *)

\* Apply the next entry with a given session outcome (trace validation).
ApplyEntryAs(i, c, seq, outcome) ==
    LET k == applied[i] + 1
    IN
    /\ applied[i] < commitIndex[i]
    /\ OutcomeOk(Expire(sm[i].sessions, Max(sm[i].time, Entry(i, k).ctime)),
                 k, Entry(i, k).kind, c, seq, outcome)
    /\ applied' = [applied EXCEPT ![i] = k]
    /\ sm' = [sm EXCEPT ![i] = SmAfter(@, k, Entry(i, k).ctime, c, seq, outcome)]
    /\ UNCHANGED <<messages, serverVars, logVars, candidateVars, leaderVars, readVars>>

\* Apply the next entry, deciding the outcome from its command (model checking).
ApplyEntry(i) ==
    /\ applied[i] < commitIndex[i]
    /\ LET k == applied[i] + 1
           d == DecideOutcome(sm[i], k, Entry(i, k))
       IN ApplyEntryAs(i, d.c, d.seq, d.outcome)

----------------------------------------------------------------------------
(* The network's doing.                                                    *)

DuplicateMessage(m) ==
    /\ Send(m)
    /\ UNCHANGED <<serverVars, logVars, candidateVars, leaderVars, readVars, smVars>>

DropMessage(m) ==
    /\ Discard(m)
    /\ UNCHANGED <<serverVars, logVars, candidateVars, leaderVars, readVars, smVars>>

----------------------------------------------------------------------------
(* The full protocol, with every parameter free (model checking bounds it  *)
(* in MCraft.tla).                                                         *)

Receive(m) ==
    LET i == m.to
    IN \/ UpdateTerm(i, m)
       \/ HandleRequestVoteRequest(i, m)
       \/ IgnoreRequestVoteRequest(i, m)
       \/ HandleRequestVoteResponse(i, m)
       \/ HandleAppendEntriesRequest(i, m)
       \/ HandleAppendEntriesResponse(i, m)
       \/ HandleHeartbeatRequest(i, m)
       \/ HandleHeartbeatResponse(i, m)
       \/ HandleInstallSnapshotRequest(i, m)
       \/ HandleTimeoutNow(i, m)

Next ==
    \/ \E i \in Server : \E c \in 0..commitIndex[i] : \E n \in 0..LastIndex(i) :
          Restart(i, c, n)
    \/ \E i \in Server : \E k \in 0..LastIndex(i) : PersistEntries(i, k)
    \/ \E i \in Server : Timeout(i)
    \/ \E i \in Server : BecomeCandidate(i)
    \/ \E i, j \in Server : \E t \in BOOLEAN : RequestVote(i, j, t)
    \/ \E i \in Server : BecomeLeader(i, LastCtime(i))
    \/ \E i \in Server : \E t \in {LastCtime(i), LastCtime(i) + 1} :
          \E cmd \in {[op |-> "register"]} : ClientRequest(i, cmd, t)
    \/ \E i, j \in Server : \E p \in PrevChoices(i, j) : \E l \in LastChoices(i, j, p) :
          AppendEntries(i, j, p, l)
    \/ \E i, j \in Server : Heartbeat(i, j)
    \/ \E i \in Server : AdvanceCommitIndex(i)
    \/ \E i \in Server : CheckQuorum(i)
    \/ \E i \in Server : CompactLog(i)
    \/ \E i, j \in Server : InstallSnapshot(i, j)
    \/ \E i, n \in Server : \E t \in {LastCtime(i)} :
          AddLearner(i, n, t) \/ PromoteLearner(i, n, t) \/ RemoveServer(i, n, t)
    \/ \E i \in Server : StepDownRemoved(i)
    \/ \E i, t \in Server : TransferLeadership(i, t)
    \/ \E i \in Server : TimeoutNow(i)
    \/ \E i \in Server : \E r \in {"timeout", "removed"} : AbortTransfer(i, r)
    \/ \E i \in Server : ReadIndex(i, "r")
    \/ \E i \in Server : ReadIndexReady(i)
    \/ \E i \in Server : ApplyEntry(i)
    \/ \E m \in DOMAIN messages : Receive(m) \/ DuplicateMessage(m) \/ DropMessage(m)

Spec == Init /\ [][Next]_vars

----------------------------------------------------------------------------
(* Invariants.                                                             *)

Leaders == {i \in Server : role[i] = Leader}
Held(i) == FirstIndex(i)..LastIndex(i)

\* At most one leader per term.
ElectionSafety ==
    \A i, j \in Leaders : currentTerm[i] = currentTerm[j] => i = j

\* Two logs holding entries of one term at one index agree on every index
\* both hold up to there.
LogMatching ==
    \A i, j \in Server : \A k \in Held(i) \cap Held(j) :
        Entry(i, k).term = Entry(j, k).term =>
            \A x \in (Held(i) \cap Held(j)) \cap 1..k : Entry(i, x) = Entry(j, x)

\* A leader holds every entry any server of an older or equal term knows
\* committed (leaders of newer terms may since have committed more).
LeaderCompleteness ==
    \A i \in Leaders : \A j \in Server :
        currentTerm[j] <= currentTerm[i] =>
            \A k \in FirstIndex(j)..commitIndex[j] :
                /\ k <= LastIndex(i)
                /\ k \in Held(i) => Entry(i, k).term = Entry(j, k).term

\* Servers agree on every committed entry they both hold, and state machines
\* at one applied index are equal.
StateMachineSafety ==
    /\ \A i, j \in Server : \A k \in Held(i) \cap Held(j) :
          k <= Min(commitIndex[i], commitIndex[j]) => Entry(i, k) = Entry(j, k)
    /\ \A i, j \in Server : applied[i] = applied[j] => sm[i] = sm[j]

\* A leader has at most one uncommitted configuration entry.
AtMostOneUncommittedConfig ==
    \A i \in Leaders :
        Cardinality({k \in (commitIndex[i] + 1)..LastIndex(i) : Entry(i, k).kind \in ConfKinds})
            <= 1

\* A leader keeps no progress for servers outside its configuration, and only
\* voters are ever counted (CommitCandidates, VoteWon, ConfirmedRound), so a
\* removed server is never part of a quorum.
RemovedServerNeverCounted ==
    \A i \in Leaders : \A j \in Server \ Members(config[i]) :
        j # i => matchIndex[i][j] = 0

\* Each (client, sequence) executes at most once on every state machine.
SessionAtMostOnce == \A i \in Server : ~sm[i].dupExec

\* Every released read saw every write committed before it arrived, and was
\* released by a leader that had committed an entry of its term.
ReadIndexLinearizable == readsSafe

\* Cluster time never goes backwards along a log.
ClusterTimeMonotonic ==
    \A i \in Server :
        /\ \A k \in Held(i) : k > FirstIndex(i) => Entry(i, k - 1).ctime <= Entry(i, k).ctime
        /\ log[i] # <<>> => snapshot[i].ctime <= log[i][1].ctime

\* Basic well-formedness.
TypeOk ==
    \A i \in Server :
        /\ snapshot[i].index <= applied[i]
        /\ applied[i] <= commitIndex[i]
        /\ commitIndex[i] <= LastIndex(i)
        /\ snapshot[i].index <= persistedIndex[i]
        /\ persistedIndex[i] <= LastIndex(i)
        /\ role[i] \in {Follower, PreCandidate, Candidate, Leader}

=============================================================================
