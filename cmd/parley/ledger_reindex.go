package main

import (
	"fmt"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/urfave/cli/v2"
)

func ledgerReindexCommand() *cli.Command {
	return &cli.Command{
		Name:      "reindex",
		Usage:     "throw the checkpoints away and rebuild them from the ledger",
		ArgsUsage: " ",
		Description: `Every process starts from checkpoints of what it derives from the ledger
(ROOT/.parley/checkpoint/: the policy's state, how far the ledger was
verified, where each thread's and message's lines are) and reads only the
lines appended since. They are a cache: each
is checked against the ledger's chain when it is read, and ignored and
rebuilt when it does not match. reindex deletes them, reads the whole
ledger once, verifying it, and writes them anew: after a restore from a
backup, or to time the cold start. A team on NATS JetStream keeps none.

Example:
   parley ledger reindex`,
		Action: withRoot(0, 0, "no arguments", reindexLedger),
	}
}

func reindexLedger(c *cli.Context, e *env) error {
	if e.root.Transport != nil {
		return withHint(fmt.Errorf("a team on %s keeps no checkpoints", e.transport), "nothing to rebuild: each process reads the stream")
	}
	if err := mailbox.RemoveCheckpoints(e.root.Dir); err != nil {
		return err
	}
	start := time.Now()
	at, err := e.engine().Checkpoint()
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	if at.Seq == 0 {
		_, err = fmt.Fprintln(e.stdout, "the ledger is empty: no checkpoint to keep")
		return err
	}
	path, err := e.root.LedgerPath()
	if err != nil {
		return err
	}
	if _, err := readStatusView(e.root.Dir, path); err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	if _, err := mailbox.ReadRootRecord(e.root.Dir); err != nil { // the claims' record, which status and every inbox read
		return fmt.Errorf("reindex: %w", err)
	}
	ix, err := openLookup(e)
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	ix.Close()
	_, err = fmt.Fprintf(e.stdout, "reindexed %d lines (%.1f MB) in %v: the policy state, the status view, the claims' record, the index by thread and message, and the verified position at seq %d\n",
		at.Seq, float64(at.Offset)/1e6, time.Since(start).Round(time.Millisecond), at.Seq)
	return err
}
