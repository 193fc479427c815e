// Package ledger is kmsledger's event store: an embedded NATS server with
// JetStream holding two file-backed streams.
//
//   - LEDGER (subjects "ledger.>") holds every fact as an Event envelope,
//     one subject per aggregate (see subjects.go). It has no limits, denies
//     delete and purge and forbids rollups, so the ledger never deletes or
//     rewrites a message and its sequence numbers have no gaps.
//   - SECRETS (subjects "secrets.>") holds sealed key material, one message
//     per reference "<enclave>.<key>.<version>.<attempt>" (AttemptSecretRef
//     and AttemptOf; older events name the whole event id as the attempt,
//     or "<enclave>.<key>.<version>"). The stream itself
//     refuses a second message on a subject (at most one message per
//     subject, the new one discarded), whoever writes it. It is the only
//     erasable stream: EraseSecret overwrites a message in place
//     (crypto-shredding).
//   - AUDIT (subject "audit.records") holds one AuditRecord per API
//     request, batched by an Auditor: one message per batch, one JSON
//     record per line. Like LEDGER it has no limits and denies delete,
//     purge and rollup.
//
// # Invariants
//
//   - Subjects are built only in subjects.go, from names checked with
//     ValidName at the edge; Append and the secret calls re-check the shape
//     of every subject and refuse wildcards where they do not belong.
//   - Every Append carries Nats-Msg-Id = ScopedMsgID(Event.Aggregate,
//     Event.CommandID) (deduplicated by the server for its duplicates
//     window: 2 minutes in a cluster, 30 seconds on a single node, see
//     singleDuplicateWindow) and, unless Expect.Any, an expectation on
//     the subject's last sequence, so a name is created once and racing
//     writers get exactly one success and one *ConflictError. The server
//     checks it (the expected-last-subject-sequence header), or a single
//     node's chain head proves it itself when the caller read it at a
//     known sequence and the head wrote the subject in none of the
//     messages since; the event is then stored without the header
//     (Expect.At, chain_recent.go).
//     Conflicts are recognised by JetStream error code (10071 or 10164),
//     never by message text.
//   - A command id is scoped to the aggregate it writes: the same id on
//     another aggregate (another key, another enclave) is another command
//     and is appended; on the same aggregate it is a duplicate, which never
//     writes: Append returns the original sequence with dup = true.
//     JetStream checks expectations before duplicates, so after a conflict
//     Append probes the duplicates window with an expected-last-msg-id that
//     cannot match (see probe); Lookup does the same before a command is
//     decided, and returns the original event. Past the duplicates window
//     Lookup reads the aggregate's own events of the last 24 hours
//     (replayWindow) for the message id, so a client's command id is
//     recognised for 24 hours while the server keeps only its window of
//     ids in memory. Lookup also recognises the longer message id of
//     earlier versions (legacyScopedMsgID), so a command retried across
//     an upgrade is still a replay.
//   - A message whose outcome is unknown (a cluster's timeout or
//     election) is sent again with the same message id for at most
//     resendHorizon (1 minute, half a cluster's duplicates window) after its
//     first send, so a resend is always recognised as a duplicate; after
//     that the write fails with ErrUnavailable. A single server never
//     sends a message twice.
//   - Sealed material is stored before the event that references it, under
//     a reference unique to the attempt, so an attempt that appends nothing
//     (conflict, duplicate, refused append) erases only its own material
//     and never blocks or overwrites another attempt's (package commands
//     does this; PutSecret never overwrites a reference).
//   - Replay and Subscribe deliver events in stream order, without gaps or
//     repeats, with Event.Seq set to the stream sequence.
//   - Only package ledger imports nats.go or nats-server.
//
// # Event types
//
// Every event type, its payload (the Go type named after it; the table
// in event.go), the code that writes it, and how a user makes it
// happen. kms means POST /v1/kms/{enclave} with that command; admin
// means /v1/admin/{enclave}/keys/{name}/...; KES means the KES API.
// Decide is commands.Decide with that command (one method per command,
// commands/decide_<aggregate>.go).
//
//	event type                   payload               writer                                    route                                CLI
//	system.initialized.v1        SystemInitialized     commands.Unseal (empty ledger)            -                                    server (first start)
//	system.hsm_added.v1          HSMAdded              Handler.AddHSM, Handler.SealConfigured    POST /v1/admin/hsm/{name}            add-hsm; server (configured HSMs)
//	system.hsm_removed.v1        HSMRemoved            Handler.RemoveHSM                         DELETE /v1/admin/hsm/{name}          rm-hsm
//	system.signing_key.v1        SigningKey            commands.SigningKey (once)                -                                    server
//	system.checkpoint.v1         Checkpoint            Store.Checkpoint (Checkpointer)           -                                    server
//	enclave.created.v1           EnclaveCreated        Decide CreateEnclave                      kms ENCLAVE:CREATE                   add-enclave
//	enclave.deleted.v1           EnclaveDeleted        Decide DeleteEnclave                      kms ENCLAVE:DELETE                   rm-enclave
//	key.created.v1               KeyCreated            Decide CreateKey                          kms KEY:CREATE; KES /v1/key/create/  add-key [--version]
//	key.imported.v1              KeyImported           Decide ImportKey                          kms KEY:IMPORT; admin import;        add-key --import; migrate
//	                                                                                             KES /v1/key/import/
//	key.version_deleted.v1       KeyVersionDeleted     Decide DeleteKey (one of several)         kms KEY:DELETE                       rm-key [--version]
//	key.deleted.v1               KeyDeleted            Decide DeleteKey, DestroyScheduledKey     kms KEY:DELETE; KES /v1/key/delete/  rm-key --all; server (due deletions)
//	key.disabled.v1              KeyDisabled           Decide DisableKey                         admin disable                        disable-key
//	key.enabled.v1               KeyEnabled            Decide EnableKey                          admin enable                         enable-key
//	key.deletion_scheduled.v1    KeyDeletionScheduled  Decide ScheduleKeyDeletion                admin schedule-deletion              rm-key --schedule
//	key.restored.v1              KeyRestored           Decide RestoreKey                         admin restore                        restore-key
//	key.name_released.v1         KeyNameReleased       Decide ReleaseKeyName                     admin release                        release-key
//	key.transit_configured.v1    KeyTransitConfigured  Decide ConfigureTransitKey                Transit keys/NAME, keys/NAME/config  -
//	identity.created.v1          IdentityCreated       Decide CreateIdentity                     kms IDENTITY:CREATE                  add-identity
//	identity.deleted.v1          IdentityDeleted       Decide DeleteIdentity                     kms IDENTITY:DELETE                  rm-identity
//	identity.policy_assigned.v1  PolicyAssigned        Decide AssignPolicy                       kms POLICY:ASSIGN                    set-policy
//	policy.created.v1            PolicyCreated         Decide CreatePolicy                       kms POLICY:CREATE                    add-policy
//	policy.deleted.v1            PolicyDeleted         Decide DeletePolicy                       kms POLICY:DELETE                    rm-policy
//	approle.role_set.v1          AppRoleSet            Decide SetAppRole                         Transit auth/approle/role/NAME       -
//	approle.secret_id_added.v1   AppRoleSecretIDAdded  Decide AddAppRoleSecretID                 Transit auth/approle/role/NAME/secret-id -
//	approle.role_deleted.v1      AppRoleDeleted        Decide DeleteAppRole                      Transit auth/approle/role/NAME       -
//	token.issued.v1              TokenIssued           Decide IssueToken                         Transit auth/approle/login, auth/cert/login -
//	token.renewed.v1             TokenRenewed          Decide RenewToken                         Transit auth/token/renew-self        -
//	token.revoked.v1             TokenRevoked          Decide RevokeToken                        Transit auth/token/revoke-self       -
//
// projections.State.Apply folds each type with one function named after
// it (projections/apply.go). commands.TestEveryEventType checks that
// every type has a writer, an apply function and a golden file.
//
// Reading an envelope, and a key.created.v1 payload (DecodePayload), takes
// one pass when the body is exactly as json.Marshal writes it: the keys in
// order, no space, strings of printable ASCII without escapes
// (codec_fast.go). Anything else goes to encoding/json, and both give the
// same value or error for every input (FuzzFastEvent and
// FuzzFastKeyCreated compare them).
// With encoding/json alone, decoding was about 70 % of a replay's CPU: it
// scans a body, decodes it, then scans and decodes the payload again.
//
// # Hash chain and checkpoints
//
// LEDGER and AUDIT are each a hash chain in stream order (chain.go): every
// message carries chain_{n-1} in its Kmsledger-Prev header (on a single
// node in its link frame, with its type: event_linkframe.go), and appends
// to one stream are serialised by the Store (compute, publish with an
// expected last stream sequence, ack), so all writes must go through the
// Store. Checkpoints (checkpoint.go) sign both chain heads with an Ed25519
// key sealed under the REK; Verify recomputes the chains, checks every
// Prev header and checkpoint, and names the first bad sequence; Export
// and VerifyExport do the same for outsiders. What each layer covers:
//
//   - the chain: sequence, subject, type and message id headers, body;
//   - the Prev header: checked against the recomputed chain;
//   - a signed checkpoint: everything up to the heads it names; messages
//     after the last checkpoint are chained but unsigned (an attacker
//     who can write the data directory can rewrite them);
//   - the witness file last-checkpoint.json: a LEDGER cut short after
//     the last checkpoint;
//   - the file store's record checksums (verified by a read-only Open
//     before the server starts, chain_blocks.go): every other byte of a
//     record (store timestamp, JetStream's own headers), against
//     accidents only.
//
// # Audit records lost in a crash
//
// A request takes one of AuditConfig.Batch slots (Auditor.Reserve) before
// it is served, and gives it back only once the message holding its
// record is stored; a request that gets no slot within AuditConfig.Wait
// (default 5 s) or its own deadline is not served at all. Its record is
// accepted (AuditSlot.Commit returns) once it is in memory; Commit never
// waits for room and does not depend on the client's context. So at most
// Batch records (default 512) are ever accepted and not yet stored. The
// buffer is stored every AuditConfig.Interval (default 1 s), and at once
// when it holds Batch/2 records or one message's worth of bytes (so that
// the rest can fill meanwhile). A crash loses at most Batch records, all
// accepted within the last Interval plus the time of one store (while
// stores succeed; when they fail, the slots stay taken and new requests
// get no slot instead), and never a record of an answered request in
// Sync mode. The api package answers a request only after Commit
// returned for it. Close refuses new slots, waits (at most 30 s) for the
// slots already taken to be committed, and stores every accepted record:
// a normal shutdown loses none (Stats counts what was stored, dropped or
// lost). TestAuditorCrashLosesAtMostOneBatch, TestAuditorCloseWaitsForSlots
// (and cmd/kmsledger's TestAuditKillDashNine and
// TestAuditSIGTERMStoresEveryRecord, with a server process) show it.
//
// # Audit records are bounded
//
// A record's JSON line is at most MaxAuditRecord (128 KiB) bytes, whatever
// the client sent: appendRecord cuts every string to a limit on its
// encoded size (escaping can make a string six times longer), at a
// character boundary, and lists each cut field with its original length
// in "truncated" (a cut key name in its item's "key_len"); items that do
// not fit are left out and counted. A message holds whole records and at
// most 512 KiB, half the server's message limit. Should the stream refuse
// a message anyway (a smaller limit configured on it), the refusal is
// permanent, not retried: the message is split in halves down to single
// records, and a refused record is replaced by a marker record (its small
// fields, its items counted, and "dropped" with the reason); a refused
// marker is counted lost. Transient failures are retried with back-off.
// TestAppendRecordBounded, FuzzAppendRecord and TestAuditorRefusedRecord
// show it. Fields are only ever added to AuditRecord, so records written
// before these fields existed read as they were.
//
// # Durability
//
// A single server runs without SyncAlways and the Store does the fsync,
// once for all the writes acknowledged meanwhile (group commit). The
// path from publish to ack, in nats-server v2.15.2 (server/stream.go,
// server/filestore.go), is:
//
//  1. setupStore copies Options.SyncAlways (false) into the stream's
//     FileStoreConfig; for a single-replica stream AsyncFlush stays
//     false, so the file store flushes in place (fs.fip) instead of from
//     a background flusher.
//  2. processJetStreamMsg checks the expectation and duplicate headers,
//     then calls store.StoreMsg. storeRawMsg appends the record with
//     writeMsgRecord(flush = true), whose flushPendingMsgsLocked writes
//     the record to the block file (a write to the kernel; the fsync is
//     skipped without syncAlways) before returning.
//  3. If the write fails, StoreMsg returns the error and the publisher
//     gets an error reply, never an ack. Only after StoreMsg succeeds does
//     processJetStreamMsg send the PubAck.
//
// After the ack, and before Append, AppendBatch, PutSecret, EraseSecret,
// a checkpoint or an AUDIT batch reports the write, the Store fsyncs the
// stream's block files written since its last fsync and, when a block
// file appeared, the message directory (blockWatch in durability.go; the
// server fsyncs a new block's directory entry only at its periodic sync).
// Callers whose writes were acknowledged before an fsync round started
// share it (a round runs without the watch's lock, and wakes every
// caller it covered at once); a round that fails fails every write it
// was to cover, and a caller still waiting when a later round fails gets
// that error too (conservative: never a lost write reported as
// durable). So a nil error still means the record's bytes are on stable
// storage, and a write is reported only after the writes it depends on
// were (material is stored, fsynced and reported before its event is
// published: a creation takes two rounds one after the other, one of
// SECRETS then one of LEDGER). Open fsyncs every file of the streams
// once (their configuration included), since the server wrote them
// without SyncAlways. Appends to a chained stream are also grouped
// (group.go): the waiting appends are published one after the other
// without waiting for each ack, each with its own expectations; on a
// single server the appends that arrive while a group's acks come back
// join it, and each is answered (and starts its fsync wait) as soon as
// its own ack is in. Config.NoSync (restore staging) skips the fsync of
// the blocks. A cluster node keeps SyncAlways (see Clusters).
//
// The streams' rounds take turns: one fsync at a time among LEDGER,
// SECRETS and AUDIT (blockWatch.lane). A blocking fsync keeps its
// goroutine's scheduler slot (P) until the runtime takes it back, and
// with two rounds in flight a 2-core machine had both slots in fsync
// while the publishes and acks the next rounds wait for could not run;
// on ext4 concurrent fsyncs queue behind the journal anyway.
//
// The streams are not compressed at rest. JetStream's S2 compression of
// full blocks was tried twice. First for LEDGER and AUDIT: a cluster
// node killed with kill -9 during key creations then failed to start
// ("error reading compression reader: s2: corrupt input", and the chain
// head's message gone). The cause, found later: the server drops a last
// block that holds no record and writes on into the block before it,
// compressed or not, so it appends plain records to a compressed block,
// whose next load fails and takes every message after its compression
// with it. A cluster node buffers its writes, so its new block is often
// still empty on disk when the previous one has been compressed; on a
// single node a power cut can leave the same. Making such a block plain
// again before the server starts prevents it (built and tested: without
// it the test lost the block's messages and those written after the
// restart). Then, with that fix, on a single node for all three
// streams: a million keys took 0.71 GB instead of 1.12 GB, but the first
// start after kill -9 was ready in 10.2 s instead of 3.7-4.0 s, with
// 3.5 GB resident instead of 1.0 GB. Without a current state file the
// server reads every block to rebuild it, and it decompresses a block
// twice, into buffers grown from 512 bytes (ledger.Open alone: 4.7 s
// instead of 1.6 s). A start after kill -9 counts more than the disk, so
// no stream sets it (BENCHMARKS.md, "Compression at rest, tried again").
// AUDIT batches are compressed by the Auditor instead, one zstd frame per
// message on a single node (audit_compress.go): the server stores them
// as any other body, and the chain covers the records. A single node
// stores each LEDGER event the same way, one frame of its JSON against a
// fixed dictionary (event_compress.go), or a key creation as a key frame
// of its values, rebuilt into the same JSON when read (event_keyframe.go).
//
// Before group commit the server ran with SyncAlways, one fsync per
// write: about 300 key creations/s whatever the number of clients, now
// several thousand with 32 clients (BENCHMARKS.md).
//
// # Erasure
//
// EraseSecret uses JetStream's secure delete (a message delete request
// without no_erase). The file store then (filestore.go eraseMsg)
// overwrites the whole record — header, subject and body — with random
// bytes in the cached block, writes the whole block to "<n>.blk.tmp",
// fsyncs it and renames it over the block; it also appends a tombstone
// (sequence and time only) to the last block. The server does not fsync
// the directory after that rename, so EraseSecret does it: until then a
// power cut could bring the old block, and the blob, back. Neither the
// stream state file (index.db) nor meta files ever hold message bodies.
// TestEraseLeavesNoBytes scans every file under Dir for any 16-byte
// fragment of an erased blob, after the erase, after Close and after a
// reopen; TestScanDetectsPlainDelete shows the scan finds the bytes a
// plain delete leaves behind.
//
// What this cannot promise: the blocks of the replaced file are freed,
// not overwritten, so copies may survive in the filesystem's free space,
// its journal, snapshots or an SSD's remapped cells. Sealed material is
// encrypted under the REK, so erasure is crypto-shredding: it removes the
// only stored ciphertext of a key version, and those residues are no
// more useful than the ciphertext was.
//
// # Clusters
//
// With Config.Cluster the embedded server is a node of a NATS cluster
// (cluster.go) and the streams have 1, 3 or 5 replicas (3 by default with
// three or more nodes). What an acknowledged write means then, in
// nats-server v2.15.2: the stream's leader appends the entry to its Raft
// log, a majority of the replicas append it to theirs, then it is
// committed, the leader applies it to its stream and only then acks. So:
//
//   - "An acknowledged write survives kill -9 of every node at once"
//     holds with file storage and R3 (or R5), whatever the sync setting:
//     a killed process loses nothing the kernel already has, and the
//     entry is in the Raft log of a majority. These are the settings this
//     package uses (fileStream, Replicas from the cluster size).
//   - Surviving a power cut of every node at once needs each node's Raft
//     log on disk before it answers: the server's SyncAlways, which Open
//     sets on every node (a Raft log append is then written and fsynced).
//     One gap remains that this package cannot close for replicated
//     streams: a new Raft log block's directory entry is fsynced only by
//     the server's periodic sync (as for R1 blocks, which durability.go
//     closes). On an external NATS cluster (Config.External) the servers'
//     sync_interval is theirs to set: "always" on every server.
//
// Writes: each chained stream (LEDGER, AUDIT) has one writer, the node
// leading its Raft group; the others forward their messages to it
// (cluster_writer.go), so appends from every node form one hash chain. A
// publish whose outcome is unknown (a timeout, no leader during an
// election, an id still in flight) is sent again with the same
// Nats-Msg-Id until the caller's context ends, so it is stored once;
// after that the error is ErrUnavailable (the API's 503). Reads that must
// see every acknowledged write (the chain head, verification, the
// duplicates probe, LastSeq, erasure) go to the stream's leader
// (leaderStream in cluster_stream.go), because a direct get may be
// answered by a replica that has not applied it yet; JetStream drops a
// request it cannot answer yet (a group still electing its first
// leader) without a word, so each is sent again after leaderAttempt
// until the caller's context ends. Sealed material is
// read from the leader too (so that an erasure is in force on every node
// at once), and from any replica while the stream has no leader (it
// never changes once stored, it only disappears).
//
// Failover: every node follows JetStream's leader-elected advisories.
// When a stream elects a leader, forwarded writes and SECRETS publishes in
// flight to the old leader are sent again at once, and each LEDGER
// subscription re-creates its consumer from the next sequence it needs
// (its short heartbeats catch the other stalls), so writes and the
// projections resume right after the election; the election itself is
// JetStream's (4–9 s, longer when the surviving follower is catching up).
// A bounded read (Replay and ReplayChained: audit pages, time travel, a
// projection's start; ScanSecrets and the signing-key read at a node's
// start) whose consumer goes silent for 3 s while messages remain reads
// on from the next sequence on a new consumer, waiting twice as long each
// time (stallReader and readEvents in read_range.go), instead of nats.go's
// reset after two missed heartbeats, which with its delete and re-create
// took more than a 30 s request in a loaded cluster.
//
// Revocations: the applied barrier (cluster_barrier.go) lets a command
// that takes something away return only once every other node heard from
// lately has applied its event, for at most BarrierTimeout.
//
// Erasure in a cluster: the secure delete is applied on every replica,
// but each node's Raft log keeps the original write until its next
// snapshot. Every node watches the stream and snapshots its own log
// after an erasure (Store.StartErasureWatch), once its own replica has
// applied the erasure (its server's monitoring state, not the leader's),
// so the bytes leave every node's data dir within seconds
// (TestClusterEraseReachesEveryRaftLog). A node
// that was down during the erase and catches up from a snapshot deletes
// the message without overwriting it; its block keeps the bytes until
// the block is compacted.
//
// # Backups
//
// Backup (backup.go) writes LEDGER and AUDIT up to the heads they had
// when it started, and the secrets SECRETS holds, as gzip JSON lines with
// a trailer holding the SHA-256 of every other byte; OpenBackup checks
// that trailer, Scan the structure, BackupFile.Verify the chains and the
// checkpoints, as Verify does on a store. Restore (restore.go) writes a
// backup into an empty Store at the same sequences with the same
// headers and bodies, so the chains and checkpoints verify unchanged, and
// can stop at a LEDGER sequence or a time, writing the rest to a side
// file. Neither changes an existing message.
//
// # Network
//
// By default the server has no listener; the Store talks to it in process
// (nats.InProcessServer). Config.Listen opens a NATS port without
// authentication for tools: bind it to a trusted interface only, since
// any client on it can publish to or read every stream. A cluster node's
// client port (127.0.0.1 by default) and route port are TLS with mutual
// verification and password authentication derived from the cluster
// secret (cluster.go).
package ledger
