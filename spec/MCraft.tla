------------------------------- MODULE MCraft -------------------------------
(***************************************************************************)
(* Model checking of raft.tla.  Checked exhaustively by TLC: MCraft.cfg   *)
(* (3 servers plus n4, which joins; features: the join, a compaction, a    *)
(* transfer, a read) and MCraft_faults.cfg (a crash, a lost or duplicated  *)
(* message, a CheckQuorum step-down), both from MCSpecElected, a reachable *)
(* state right after the first election.  Larger bounds from Init run by   *)
(* random simulation (MCraft_sim.cfg).  The negative controls reuse this   *)
(* module with one definition overridden in their .cfg (MCraft_noguard,    *)
(* MCraft_nodedup).  tests/spec/test_model.py runs all of them.            *)
(*                                                                         *)
(* The bounds, in the manner of etcd-io/raft's MCetcdraft.tla: terms, log  *)
(* length, client requests, configuration changes, restarts, message       *)
(* duplicates and drops, the bag size, compactions, transfers, reads, and  *)
(* two shared budgets (faults, features) so that such events meet in pairs *)
(* without the product of all bounds.  Every bound is a guard on an action *)
(* or the state constraint MCConstraint, so a bounded run never reports a  *)
(* deadlock as a protocol fault (TLC runs with -deadlock).                 *)
(*                                                                         *)
(* Narrowings, each removing interleavings only (every behaviour left is   *)
(* one of raft.tla's): AppendEntries sends everything from next_index (the *)
(* spec lets a leader send any batch); one exchange of a kind per pair of  *)
(* servers is in flight at a time (a window of one; the network may still  *)
(* duplicate); steps the core takes inside the same step() call (a won     *)
(* vote, a commit, a committed self-removal, a confirmed read, applying)   *)
(* are taken before any outside event, as the core orders them; a leader's *)
(* write of its own entries (PersistEntries) is taken at once too, except  *)
(* with AsyncPersist (MCraft_faults, MCraft_sim) for a client request:     *)
(* then only sends, deliveries, network faults and a crash may come before *)
(* it (Calm), and a restart keeps all or none of it; and the options       *)
(* OneCandidate, LeaderlessTimeout and Heartbeats (see below).             *)
(***************************************************************************)
EXTENDS raft

CONSTANTS
    MaxTerm, MaxLogLen, MaxClientRequests, MaxConfChanges, MaxRestarts,
    MaxDuplicates, MaxDrops, MaxBagSize, MaxCompactions, MaxTransfers, MaxReads,
    MaxCheckQuorums, MaxCtime, ConfTargets, MaxFaults, MaxFeatures, OneCandidate, Heartbeats,
    ApplyEntries, LeaderlessTimeout, AsyncPersist

\* Counters of bounded actions (part of the state, as in MCetcdraft).
VARIABLE mc

mcVars == <<vars, mc>>

MCInit ==
    /\ Init
    /\ mc = [restarts |-> 0, requests |-> 0, confs |-> 0, dups |-> 0, drops |-> 0,
             compactions |-> 0, transfers |-> 0, reads |-> 0, checkQuorums |-> 0]

Count(f) == mc' = [mc EXCEPT ![f] = @ + 1]
\* Each optional event has its own bound; faults (crashes, network faults, a
\* CheckQuorum step-down) share MaxFaults and features (a membership change, a
\* compaction, a transfer, a read) share MaxFeatures, so that they meet in
\* pairs without the product of all bounds.
Faults == {"restarts", "dups", "drops", "checkQuorums"}
Features == {"confs", "compactions", "transfers", "reads"}
CountOf(F) == LET RECURSIVE S(_)
                  S(G) == IF G = {} THEN 0
                          ELSE LET f == CHOOSE x \in G : TRUE IN mc[f] + S(G \ {f})
              IN S(F)
Under(f, bound) ==
    /\ mc[f] < bound
    /\ f \in Faults => CountOf(Faults) < MaxFaults
    /\ f \in Features => CountOf(Features) < MaxFeatures

\* With OneCandidate, an election timeout fires only while no election is under
\* way (as MCetcdraft limits simultaneous candidates); split votes are then
\* left to the simulation run.  With LeaderlessTimeout, only a server that
\* knows no leader times out (CheckQuorum's lease makes the others wait).
MayTimeout(i) ==
    /\ currentTerm[i] < MaxTerm
    /\ OneCandidate => \A j \in Server \ {i} : role[j] \notin {PreCandidate, Candidate}
    /\ LeaderlessTimeout => leaderId[i] = Nil

\* The core's replication: send from next_index, everything there is.
MCPrevChoices(i, j) == {nextIndex[i][j] - 1} \cap (snapshot[i].index..LastIndex(i))
MCLastChoices(i, j, prev) == {LastIndex(i)}

BagSize == LET RECURSIVE Sum(_)
               Sum(S) == IF S = {} THEN 0
                         ELSE LET m == CHOOSE x \in S : TRUE IN messages[m] + Sum(S \ {m})
           IN Sum(DOMAIN messages)

\* At most one exchange of a kind between i and j at a time: no request from i
\* to j and no answer from j to i in flight (a window of one round trip, as
\* the core's probe state has; AppendEntries and InstallSnapshot share one).
Answer == [RequestVoteRequest |-> "RequestVoteResponse",
           AppendEntriesRequest |-> "AppendEntriesResponse",
           InstallSnapshotRequest |-> "AppendEntriesResponse",
           HeartbeatRequest |-> "HeartbeatResponse",
           TimeoutNow |-> "none"]
Idle(type, i, j) ==
    ~\E m \in DOMAIN messages :
        \/ m.from = i /\ m.to = j /\ m.type = type
        \/ /\ m.from = i /\ m.to = j /\ m.type \in DOMAIN Answer
           /\ Answer[m.type] = Answer[type] /\ Answer[type] # "none"
        \/ m.from = j /\ m.to = i /\ m.type = Answer[type]

\* Heartbeats are sent only once there is a commit index or a read to carry
\* (before that they change nothing that an AppendEntries does not); with
\* Heartbeats FALSE only for reads (followers then learn commits from
\* AppendEntries).

\* Client commands: open a session, or a put in a session opened in the log.
\* A put may be proposed twice (a client retry), which dedup must absorb.
Commands(i) ==
    {[op |-> "register"]} \cup
    {[op |-> "put", client |-> k, seq |-> 1] :
        k \in {x \in FirstIndex(i)..LastIndex(i) :
                 Entry(i, x).kind = "Normal" /\ Entry(i, x).cmd.op = "register"}}

Times(i) == {t \in {LastCtime(i), LastCtime(i) + 1} : t <= MaxCtime}

\* A leader appends again only once its last append is persisted (Calm below):
\* at most one unpersisted batch (PersistEntries persists it whole; a restart
\* keeps all of it or none of it).  With AsyncPersist FALSE the write is
\* taken at once, as an internal step (the leader's sends then come after
\* it); with TRUE it may come after any other event (thesis 10.2.1: the
\* leader's AppendEntries leave before its own write, which a crash may cut).
Durable(i) == persistedIndex[i] = LastIndex(i)
\* The writes taken at once: all of them without AsyncPersist, else those of
\* a no-op or configuration entry (bounding the state space: only a client
\* request's write races with the leader's sends, and a crash may cut it).
EagerPersist(i) ==
    /\ ~Durable(i)
    /\ ~AsyncPersist \/ Entry(i, LastIndex(i)).kind # "Normal"

\* Is an internal step (MCInternal below) pending at i?
Pending(i) ==
    \/ role[i] \in {PreCandidate, Candidate} /\ VoteWon(i)
    \/ role[i] = Leader /\ CommitCandidates(i) # {}
    \/ role[i] = Leader /\ i \notin Members(config[i]) /\ config[i].index <= commitIndex[i]
    \/ role[i] = Leader /\ pendingReads[i] # <<>>
       /\ Head(pendingReads[i]).round <= ConfirmedRound(i)
    \/ ApplyEntries /\ applied[i] < commitIndex[i]
    \/ EagerPersist(i)

Quiet == ~\E i \in Server : Pending(i)

\* While a leader's write is unpersisted (AsyncPersist), only what 10.2.1
\* is about may happen before it finishes: its sends, deliveries (a
\* follower appending and answering, the answers counted), network faults, a
\* crash of the writer, and the write itself.  Everything else waits (Calm).
Calm == Quiet /\ \A i \in Server : Durable(i)

\* Events from outside the core (timers, clients, the network, crashes),
\* taken only while no internal step is pending (Quiet).
MCExternal ==
    \/ Quiet /\ \E i \in Server : \E n \in {persistedIndex[i], LastIndex(i)} :
                 /\ Under("restarts", MaxRestarts)
                 /\ Restart(i, Min(commitIndex[i], n), n)
                 /\ Count("restarts")
    \/ Quiet /\ \E i \in Server : /\ AsyncPersist
                                /\ ~Durable(i)
                                /\ PersistEntries(i, LastIndex(i))
                                /\ UNCHANGED mc
    \/ Calm  /\ \E i \in Server : /\ MayTimeout(i)
                                /\ Timeout(i)
                                /\ UNCHANGED mc
    \/ Calm  /\ \E i, j \in Server : /\ j \notin DOMAIN votes[i]
                                   /\ Idle("RequestVoteRequest", i, j)
                                   /\ RequestVote(i, j, FALSE)
                                   /\ UNCHANGED mc
    \/ Calm  /\ \E i \in Server : \E cmd \in Commands(i) : \E t \in Times(i) :
                 /\ Under("requests", MaxClientRequests)
                 /\ ClientRequest(i, cmd, t)
                 /\ Count("requests")
    \/ Quiet /\ \E i, j \in Server : \E p \in MCPrevChoices(i, j) :
                 /\ p < LastIndex(i)
                 /\ Idle("AppendEntriesRequest", i, j)
                 /\ AppendEntries(i, j, p, LastIndex(i))
                 /\ UNCHANGED mc
    \/ Calm  /\ \E i, j \in Server : /\ \/ Heartbeats /\ commitIndex[i] > 0
                                      \/ pendingReads[i] # <<>>
                                   /\ Idle("HeartbeatRequest", i, j)
                                   /\ Heartbeat(i, j)
                                   /\ UNCHANGED mc
    \/ Calm  /\ \E i \in Server : /\ Under("checkQuorums", MaxCheckQuorums)
                                /\ CheckQuorum(i)
                                /\ Count("checkQuorums")
    \/ Calm  /\ \E i \in Server : /\ Under("compactions", MaxCompactions)
                                /\ CompactLog(i)
                                /\ Count("compactions")
    \/ Calm  /\ \E i, j \in Server : /\ nextIndex[i][j] <= snapshot[i].index
                                   /\ role[i] = Leader
                                   /\ Idle("InstallSnapshotRequest", i, j)
                                   /\ InstallSnapshot(i, j)
                                   /\ UNCHANGED mc
    \/ Calm  /\ \E i \in Server : \E n \in ConfTargets :
                 /\ Under("confs", MaxConfChanges)
                 /\ \/ AddLearner(i, n, LastCtime(i))
                    \/ PromoteLearner(i, n, LastCtime(i))
                    \/ RemoveServer(i, n, LastCtime(i))
                 /\ Count("confs")
    \/ Calm  /\ \E i, t \in Server : /\ Under("transfers", MaxTransfers)
                                   /\ TransferLeadership(i, t)
                                   /\ Count("transfers")
    \/ Calm  /\ \E i \in Server : /\ transferee[i] # Nil
                                /\ Idle("TimeoutNow", i, transferee[i])
                                /\ TimeoutNow(i)
                                /\ UNCHANGED mc
    \/ Calm  /\ \E i \in Server : \E r \in {"timeout", "removed"} :
                 AbortTransfer(i, r) /\ UNCHANGED mc
    \/ Calm  /\ \E i \in Server : /\ Under("reads", MaxReads)
                                /\ ReadIndex(i, "r")
                                /\ Count("reads")
    \/ Quiet /\ \E m \in DOMAIN messages : Receive(m) /\ UNCHANGED mc
    \/ Quiet /\ \E m \in DOMAIN messages : /\ Under("dups", MaxDuplicates)
                                         /\ DuplicateMessage(m)
                                         /\ Count("dups")
    \/ Quiet /\ \E m \in DOMAIN messages : /\ Under("drops", MaxDrops)
                                         /\ DropMessage(m)
                                         /\ Count("drops")

\* Steps the core takes by itself right after the step that enabled them
\* (raftcore runs them inside the same step() call, or the driver applies at
\* once): a won (pre-)vote, a commit, a committed self-removal, a confirmed
\* read, and applying committed entries.  MCraft takes them eagerly, before
\* any other event, which is how the core orders them.
MCInternal ==
    \/ \E i \in Server : BecomeCandidate(i) /\ UNCHANGED mc
    \/ \E i \in Server : BecomeLeader(i, LastCtime(i)) /\ UNCHANGED mc
    \/ \E i \in Server : AdvanceCommitIndex(i) /\ UNCHANGED mc
    \/ \E i \in Server : StepDownRemoved(i) /\ UNCHANGED mc
    \/ \E i \in Server : ReadIndexReady(i) /\ UNCHANGED mc
    \/ \E i \in Server : ApplyEntries /\ ApplyEntry(i) /\ UNCHANGED mc
    \/ \E i \in Server : EagerPersist(i) /\ PersistEntries(i, LastIndex(i)) /\ UNCHANGED mc

MCNext == MCInternal \/ MCExternal

MCSpec == MCInit /\ [][MCNext]_mcVars

\* A reachable state to start from: some voter L won the election of term 1
\* with every initial voter's vote (Timeout, RequestVote, UpdateTerm and a
\* granted vote at each, every answer received, BecomeLeader), and no message
\* is left in flight.  MCraft_noguard starts here so that BFS reaches the
\* depth of the July 2015 scenario in minutes.
ElectedInit ==
    \E L \in InitServer :
        /\ messages = [m \in {} |-> 0]
        /\ currentTerm = [i \in Server |-> IF i \in InitServer THEN 1 ELSE 0]
        /\ votedFor = [i \in Server |-> IF i \in InitServer THEN L ELSE Nil]
        /\ log = [i \in Server |-> IF i = L
                                    THEN <<[term |-> 1, kind |-> "NoOp", ctime |-> 0,
                                            target |-> Nil, cmd |-> Nil]>>
                                    ELSE <<>>]
        /\ snapshot = [i \in Server |-> BootSnapshot(i)]
        /\ commitIndex = [i \in Server |-> 0]
        /\ persistedIndex = [i \in Server |-> 0]  \* L's no-op is not yet on its disk.
        /\ role = [i \in Server |-> IF i = L THEN Leader ELSE Follower]
        /\ leaderId = [i \in Server |-> IF i = L THEN L ELSE Nil]
        /\ config = [i \in Server |-> SnapConfig(BootSnapshot(i))]
        /\ votes = [i \in Server |-> NoVotes]
        /\ matchIndex = [i \in Server |-> [j \in Server |-> IF i = L /\ j = L THEN 1 ELSE 0]]
        /\ nextIndex = [i \in Server |-> [j \in Server |-> 1]]
        /\ transferee = [i \in Server |-> Nil]
        /\ readRound = [i \in Server |-> 0]
        /\ readAcks = [i \in Server |-> [j \in Server |-> 0]]
        /\ pendingReads = [i \in Server |-> <<>>]
        /\ readsSafe = TRUE
        /\ applied = [i \in Server |-> 0]
        /\ sm = [i \in Server |-> InitSm]
        /\ mc = [restarts |-> 0, requests |-> 0, confs |-> 0, dups |-> 0, drops |-> 0,
                 compactions |-> 0, transfers |-> 0, reads |-> 0, checkQuorums |-> 0]

MCSpecElected == ElectedInit /\ [][MCNext]_mcVars

\* Terms and logs are bounded by guards above and by this constraint.
MCConstraint ==
    /\ \A i \in Server : currentTerm[i] <= MaxTerm /\ LastIndex(i) <= MaxLogLen
    /\ BagSize <= MaxBagSize

\* Servers of the bootstrap configuration are interchangeable.
Symmetry == Permutations(InitServer)

----------------------------------------------------------------------------
(* Negative controls (selected in their .cfg files).                       *)

\* MCraft_noguard: a leader may append a configuration entry before it has
\* committed an entry of its term (the July 2015 single-server bug).
NoTermCommitGuard(i) == NoPendingConf(i)

\* MCraft_nodedup: the state machine executes duplicates again.
NoDedup(s, seq) == FALSE

=============================================================================
