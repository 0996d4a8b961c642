------------------------------ MODULE Traceraft ------------------------------
(***************************************************************************)
(* Trace validation: raft.tla constrained to one logged execution of the  *)
(* core (the method of Cirstea, Kuppe, Loillier, Merz and Ron, 2024).      *)
(*                                                                         *)
(* The trace reaches TLC as the generated module TraceData (this TLC has   *)
(* no Json module): TraceLog, a sequence of event records, bound once as a *)
(* constant definition (TLC evaluates it a single time; every step reads   *)
(* only TraceLog[l]).  `python -m raftcore.validate` writes TraceData.tla, *)
(* this file, raft.tla and Traceraft.cfg to a temporary folder and runs    *)
(* TLC in breadth-first mode with one worker.                              *)
(*                                                                         *)
(* Step l takes event TraceLog[l] with the raft.tla action of its name and *)
(* its logged parameters, then requires the acting node's spec-visible     *)
(* state to equal the logged image.  What the trace does not log is left  *)
(* to the spec (existentially): entry commands (the core only sees bytes), *)
(* durable-commit and kept-log choices on Restart are taken from the      *)
(* image (commit_index, last_index).                                       *)
(*                                                                         *)
(* The network: each event that sends a message carries `copies`, the      *)
(* number of times the message is received later in the trace (0: lost,   *)
(* 2 or more: duplicated by the network), and each event that reads a      *)
(* received message carries `src`, the position of the event that sent   *)
(* it.  The spec's bag is keyed by that position (TraceWithMessage and     *)
(* TraceWithoutMessage override raft.tla's WithMessage and WithoutMessage): *)
(* a send puts its message in `copies` times, a receive takes it by its    *)
(* key, so no step hashes or compares the messages in flight, and         *)
(* messages that are never received never weigh on the state.  One event  *)
(* is one TLC step.                                                        *)
(*                                                                         *)
(* Several traces with the same cluster setup may share one run: they are *)
(* joined by "Reset" events, after which the spec starts again from Init.  *)
(*                                                                         *)
(* Verdict: every event taken means TLC reaches depth TraceLen + 1.       *)
(* A smaller depth d means event d could not be taken; a second run with   *)
(* DiagAt = d relaxes the image check at that event and prints which       *)
(* logged values disagree with the spec.                                   *)
(***************************************************************************)
\* TraceData first: TLC evaluates the constant definitions module by module in
\* this order, and before evaluating one it walks its body, following every
\* operator it uses, to find its level.  With raft first, each raft.tla
\* definition that sends a message walks through TraceWithMessage into the
\* whole, not yet evaluated trace; with TraceData first, the trace is a value
\* by then and the walk stops there.
EXTENDS TraceData, raft

VARIABLE l          \* the next event to take

traceVars == <<vars, l>>

E == TraceLog[l]

----------------------------------------------------------------------------
(* Messages.                                                               *)

\* The logged form of a spec message: an InstallSnapshot's snapshot carries
\* the state machine in the spec, which the trace does not log.
Logged(m) ==
    IF m.type = "InstallSnapshotRequest"
    THEN [m EXCEPT !.snapshot = [index |-> m.snapshot.index, term |-> m.snapshot.term,
                                 voters |-> m.snapshot.voters,
                                 learners |-> m.snapshot.learners,
                                 ctime |-> m.snapshot.ctime]]
    ELSE m

\* The message event e sends (its own, or the handler's reply).
SentBy(e) == IF "reply" \in DOMAIN e THEN e.reply ELSE e.msg

\* The bag: [send position -> [k |-> copies in flight, m |-> the spec's message]].
\* Key 0 marks a step that sent or removed a message other than the logged one
\* (NetworkOk then fails).  The overriding definitions cannot read Traceraft's
\* variable l, so they find the event by TLC's level: the state at level l is
\* the one that takes event l.
Wrong(m, bag) == IF 0 \in DOMAIN bag THEN bag ELSE bag @@ (0 :> [k |-> 1, m |-> m])

\* Overrides WithMessage: the logged message goes in `copies` times (not at
\* all when it is never received), keyed by its send position.
TraceWithMessage(m, bag) ==
    LET at == TLCGet("level")
        e == TraceLog[at]
    IN IF Logged(m) # SentBy(e) \/ at \in DOMAIN bag THEN Wrong(m, bag)
       ELSE IF e.copies = 0 THEN bag
       ELSE bag @@ (at :> [k |-> e.copies, m |-> m])

\* Overrides WithoutMessage: the received message is taken by its key.
TraceWithoutMessage(m, bag) ==
    LET f == TraceLog[TLCGet("level")].src
    IN IF f \notin DOMAIN bag \/ bag[f].m # m THEN Wrong(m, bag)
       ELSE IF bag[f].k = 1 THEN [x \in DOMAIN bag \ {f} |-> bag[x]]
       ELSE [bag EXCEPT ![f].k = @ - 1]

\* The received message: in flight, and the one the receiver logged.
Arrived == E.src \in DOMAIN messages /\ Logged(messages[E.src].m) = E.msg
Received == messages[E.src].m

\* After a send: a message that is received later really went out.
SentOk ==
    IF l = DiagAt
    THEN PrintT(<<"diag-sent", IF 0 \in DOMAIN messages' THEN Logged(messages'[0].m)
                                 ELSE IF l \in DOMAIN messages' THEN Logged(messages'[l].m)
                                 ELSE "nothing">>)
    ELSE E.copies > 0 => l \in DOMAIN messages'

\* No step sent or removed a message other than the logged one.
NetworkOk == 0 \notin DOMAIN messages'

----------------------------------------------------------------------------
(* The state image (docs/trace-format.md) and its comparison.             *)

KindName(k) == IF k \in ConfKinds THEN "ConfChange" ELSE k

NodeImage(i) ==
    [current_term |-> currentTerm[i], role |-> role[i], voted_for |-> votedFor[i],
     leader_id |-> leaderId[i], commit_index |-> commitIndex[i],
     last_index |-> LastIndex(i), last_term |-> LastTerm(i),
     snapshot_index |-> snapshot[i].index, snapshot_term |-> snapshot[i].term,
     voters |-> config[i].voters, learners |-> config[i].learners]

LeaderImage(i) ==
    [match_index |-> [j \in Members(config[i]) \ {i} |-> matchIndex[i][j]],
     transfer_target |-> transferee[i]]

SmImage(i) ==
    [applied_index |-> applied[i], cluster_time_ticks |-> sm[i].time,
     sessions |-> [c \in DOMAIN sm[i].sessions |-> sm[i].sessions[c].highest]]

SpecImageOf(i) ==
    IF role[i] = Leader
    THEN [current_term |-> currentTerm[i], role |-> role[i], voted_for |-> votedFor[i],
          leader_id |-> leaderId[i], commit_index |-> commitIndex[i],
          last_index |-> LastIndex(i), last_term |-> LastTerm(i),
          snapshot_index |-> snapshot[i].index, snapshot_term |-> snapshot[i].term,
          voters |-> config[i].voters, learners |-> config[i].learners,
          match_index |-> [j \in Members(config[i]) \ {i} |-> matchIndex[i][j]],
          transfer_target |-> transferee[i]]
    ELSE NodeImage(i)

\* The spec's image of event e's node after the step.  ImageOk binds e with
\* \E, so that priming the image does not prime the l inside E (operator
\* arguments are substituted by name).
ImageAfter(e) == IF e.n = "ApplyEntry" THEN SmImage(e.i)' ELSE SpecImageOf(e.i)'

ImageOk == \E e \in {E} : ImageAfter(e) = e.s

----------------------------------------------------------------------------
(* One event: the action of its name with its logged parameters.          *)

TakeEvent ==
    LET i == E.i
        p == E.p
    IN
    CASE E.n = "Restart" -> Restart(i, E.s.commit_index, E.s.last_index)
      [] E.n = "PersistEntries" -> PersistEntries(i, p.index)
      [] E.n = "Timeout" -> p.pre_vote = PreVote /\ Timeout(i)
      [] E.n = "BecomeCandidate" -> BecomeCandidate(i)
      [] E.n = "RequestVote" -> RequestVote(i, E.msg.to, E.msg.transfer) /\ SentOk
      [] E.n = "HandleRequestVoteRequest" ->
            /\ Arrived
            /\ IF "reply" \in DOMAIN E
                  THEN HandleRequestVoteRequest(i, Received)
                  ELSE IgnoreRequestVoteRequest(i, Received)
            /\ SentOk
      [] E.n = "HandleRequestVoteResponse" ->
            Arrived /\ HandleRequestVoteResponse(i, Received)
      [] E.n = "UpdateTerm" -> Arrived /\ UpdateTerm(i, Received)
      [] E.n = "BecomeLeader" ->
            /\ BecomeLeader(i, p.cluster_time_ticks)
            /\ p.index = LastIndex(i) + 1
            /\ p.term = currentTerm[i]
      [] E.n = "ClientRequest" ->
            /\ ClientRequest(i, Unknown, p.cluster_time_ticks)
            /\ p.index = LastIndex(i) + 1
            /\ p.term = currentTerm[i]
      [] E.n = "AppendEntries" ->
            /\ AppendEntries(i, E.msg.to, E.msg.prev_log_index,
                             E.msg.prev_log_index + Len(E.msg.entries))
            /\ SentOk
      [] E.n = "HandleAppendEntriesRequest" ->
            /\ Arrived
            /\ HandleAppendEntriesRequest(i, Received)
            /\ SentOk
      [] E.n = "HandleAppendEntriesResponse" ->
            Arrived /\ HandleAppendEntriesResponse(i, Received)
      [] E.n = "Heartbeat" -> Heartbeat(i, E.msg.to) /\ SentOk
      [] E.n = "HandleHeartbeatRequest" ->
            /\ Arrived
            /\ HandleHeartbeatRequest(i, Received)
            /\ SentOk
      [] E.n = "HandleHeartbeatResponse" ->
            Arrived /\ HandleHeartbeatResponse(i, Received)
      [] E.n = "AdvanceCommitIndex" ->
            AdvanceCommitIndex(i) /\ commitIndex'[i] = p.commit_index
      [] E.n = "CheckQuorum" -> CheckQuorum(i)
      [] E.n = "CompactLog" ->
            /\ p.index = applied[i]
            /\ p.index > snapshot[i].index
            /\ p.term = TermAt(i, p.index)
            /\ CompactLog(i)
      [] E.n = "InstallSnapshot" -> InstallSnapshot(i, E.msg.to) /\ SentOk
      [] E.n = "HandleInstallSnapshotRequest" ->
            /\ Arrived
            /\ HandleInstallSnapshotRequest(i, Received)
            /\ SentOk
      [] E.n \in ConfKinds ->
            /\ ChangeConfig(i, E.n, p.node_id, p.cluster_time_ticks)
            /\ p.index = LastIndex(i) + 1
            /\ p.term = currentTerm[i]
      [] E.n = "StepDownRemoved" -> StepDownRemoved(i) /\ p.index = config[i].index
      [] E.n = "TransferLeadership" -> TransferLeadership(i, p.target)
      [] E.n = "TimeoutNow" ->
            /\ transferee[i] = E.msg.to
            /\ TimeoutNow(i)
            /\ SentOk
      [] E.n = "HandleTimeoutNow" -> Arrived /\ HandleTimeoutNow(i, Received)
      [] E.n = "AbortTransfer" ->
            /\ transferee[i] = p.target
            /\ AbortTransfer(i, p.reason)
      [] E.n = "ReadIndex" -> ReadIndex(i, p.ctx) /\ p.index = commitIndex[i]
      [] E.n = "ReadIndexReady" ->
            /\ pendingReads[i] # <<>>
            /\ Head(pendingReads[i]).ctx = p.ctx
            /\ Head(pendingReads[i]).index = p.index
            /\ ReadIndexReady(i)
      [] E.n = "ApplyEntry" ->
            /\ p.index = applied[i] + 1
            /\ applied[i] < commitIndex[i]
            /\ KindName(Entry(i, p.index).kind) = p.kind
            /\ ApplyEntryAs(i, p.client_id, p.seq, p.outcome)
      [] OTHER -> FALSE

----------------------------------------------------------------------------

TraceInit == Init /\ l = 1

\* Init as an action: the spec starts afresh (TLC cannot evaluate Init').
Reset ==
    /\ messages' = [m \in {} |-> 0]
    /\ currentTerm' = [i \in Server |-> 0]
    /\ votedFor' = [i \in Server |-> Nil]
    /\ log' = [i \in Server |-> <<>>]
    /\ snapshot' = [i \in Server |-> BootSnapshot(i)]
    /\ commitIndex' = [i \in Server |-> 0]
    /\ persistedIndex' = [i \in Server |-> 0]
    /\ role' = [i \in Server |-> Follower]
    /\ leaderId' = [i \in Server |-> Nil]
    /\ config' = [i \in Server |-> SnapConfig(BootSnapshot(i))]
    /\ votes' = [i \in Server |-> [j \in {} |-> TRUE]]
    /\ matchIndex' = [i \in Server |-> [j \in Server |-> 0]]
    /\ nextIndex' = [i \in Server |-> [j \in Server |-> 1]]
    /\ transferee' = [i \in Server |-> Nil]
    /\ readRound' = [i \in Server |-> 0]
    /\ readAcks' = [i \in Server |-> [j \in Server |-> 0]]
    /\ pendingReads' = [i \in Server |-> <<>>]
    /\ readsSafe' = TRUE
    /\ applied' = [i \in Server |-> 0]
    /\ sm' = [i \in Server |-> InitSm]

\* Several traces of one cluster setup can be validated in one TLC run:
\* TraceData then joins them with "Reset" events, which start the spec afresh.
\* Printed when the last event is taken.  The validator's first run is TLC's
\* random simulation of one behaviour (`-simulate num=1`): TLC keeps no set of
\* seen states, so a step costs only taking the event, and every state it
\* walks through is a state of the spec reached by taking the logged events;
\* this line in its output shows it took them all (ACCEPTED).  A run that
\* stops early is repeated in breadth-first mode, exhaustively, before
\* anything is rejected: every choice the trace does not log stays
\* existential.
TraceComplete == "trace complete: every event taken"

TraceNext ==
    /\ l <= TraceLen
    /\ l = TLCGet("level")
    /\ IF E.n = "Reset"
          THEN Reset
          ELSE /\ TakeEvent
               /\ l = DiagAt \/ (ImageOk /\ NetworkOk)
    /\ l' = l + 1
    /\ l = TraceLen => PrintT(TraceComplete)

TraceSpec == TraceInit /\ [][TraceNext]_traceVars


\* Diagnostics (second run only, DiagAt = the first event not taken): the
\* spec's view of the acting node before the event, whether a handled message
\* was in flight, the message the spec sends (SentOk prints it instead of
\* checking it), and, if the action can be taken, the node's image after it.
DiagBefore ==
    l = DiagAt =>
        PrintT(<<"diag-before", E.i, NodeImage(E.i),
                 IF "msg" \in DOMAIN E /\ E.msg.to = E.i THEN Arrived ELSE TRUE,
                 SmImage(E.i)>>)
DiagAfter ==
    l = DiagAt + 1 =>
        LET i == TraceLog[DiagAt].i
        IN PrintT(<<"diag-after", i, SpecImageOf(i), SmImage(i)>>)

=============================================================================
