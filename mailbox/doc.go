// Package mailbox is how parley agents talk: the message format, Maildir
// inboxes, the inbox watcher, the drop folder for hand-written files, and
// the append-only ledger.
//
// Invariants:
//   - A message is in exactly one place: tmp/ while being written (never
//     read there), new/ once delivered whole, cur/ once claimed, rejected/
//     when it could not be accepted. Files move by rename only, within one
//     file system, and nothing is ever deleted.
//   - Delivery is durable before it is reported: file fsync, rename, folder
//     fsync. Of any number of claimers of one message, exactly one wins.
//   - Writing a message is canonical: Marshal(Parse(Marshal(m))) equals
//     Marshal(m) byte for byte. Money is exact decimal with a currency.
//   - The ledger only grows. Each line is one write under an exclusive
//     flock, seq is contiguous from 1, and each line carries the hash of the
//     one before it; a torn last line is set aside, never a complete one.
//     Its history may be sealed into segments that never change; the
//     chain runs across them unchanged (segment.go).
package mailbox
