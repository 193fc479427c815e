// Package ledger is kmsledger's event store: an embedded NATS server with
// JetStream holding two file-backed streams.
//
//   - LEDGER (subjects "ledger.>") holds every fact as an Event envelope,
//     one subject per aggregate (see subjects.go). It has no limits, denies
//     delete and purge and forbids rollups, so the ledger never deletes or
//     rewrites a message and its sequence numbers have no gaps.
//   - SECRETS (subjects "secrets.>") holds sealed key material, one message
//     per reference "<enclave>.<key>.<version>". It is the only erasable
//     stream: EraseSecret overwrites a message in place (crypto-shredding).
//
// # Invariants
//
//   - Subjects are built only in subjects.go, from names checked with
//     ValidName at the edge; Append and the secret calls re-check the shape
//     of every subject and refuse wildcards where they do not belong.
//   - Every Append carries Nats-Msg-Id = Event.CommandID (deduplicated for
//     24 h) and, unless Expect.Any, an expected-last-subject-sequence
//     header, so a name is created once and racing writers get exactly one
//     success and one *ConflictError. Conflicts are recognised by JetStream
//     error code (10071 or 10164), never by message text.
//   - A duplicate CommandID never writes: Append returns the original
//     sequence with dup = true. JetStream checks expectations before
//     duplicates, so after a conflict Append probes the duplicates window
//     with an expected-last-msg-id that cannot match (see probeDuplicate).
//   - Replay and Subscribe deliver events in stream order, without gaps or
//     repeats, with Event.Seq set to the stream sequence.
//   - Only package ledger imports nats.go or nats-server.
//
// # Durability
//
// Open starts the server with SyncAlways. The path from publish to ack,
// in nats-server v2.15.2 (server/stream.go, server/filestore.go), is:
//
//  1. setupStore copies Options.SyncAlways into the stream's
//     FileStoreConfig; for a single-replica stream AsyncFlush stays false,
//     so the file store flushes in place (fs.fip) instead of from a
//     background flusher.
//  2. processJetStreamMsg checks the expectation and duplicate headers,
//     then calls store.StoreMsg. storeRawMsg appends the record with
//     writeMsgRecord(flush = true), whose flushPendingMsgsLocked writes
//     the record to the block file and, because syncAlways is set, calls
//     File.Sync (fsync) on it before returning.
//  3. If the write or the fsync fails, StoreMsg returns the error and the
//     publisher gets an error reply, never an ack. Only after StoreMsg
//     succeeds does processJetStreamMsg send the PubAck.
//
// So a nil error from Append or PutSecret means the record's bytes are on
// stable storage. One gap remains in the server: a new block file
// ("<n>.blk", created when the previous block is full) is not followed by
// an fsync of its directory until the next periodic sync (2 min), and a
// power cut could lose the directory entry on filesystems that do not
// persist it with the file. Append and PutSecret close that gap: after
// the ack they look for the next block file and, if it appeared, fsync
// the stream's message directory before returning (see durability.go).
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
// # Network
//
// By default the server has no listener; the Store talks to it in process
// (nats.InProcessServer). Config.Listen opens a NATS port without
// authentication for tools and clustering: bind it to a trusted interface
// only, since any client on it can publish to or read both streams.
package ledger
