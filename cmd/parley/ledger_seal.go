package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/parley-dev/parley/mailbox"
	"github.com/urfave/cli/v2"
)

func ledgerSealCommand() *cli.Command {
	return &cli.Command{
		Name:      "seal",
		Usage:     "seal the ledger's history into segments that never change",
		ArgsUsage: " ",
		Description: `The ledger is the sealed segments ROOT/ledger/000001.jsonl, 000002.jsonl, ...,
then the live file ROOT/ledger.jsonl that the agents append to. A segment is
a run of whole lines, written once and never changed, so git and backups
only ever see new data; the hash chain runs across the files unchanged, and
every command reads them as one ledger.

seal turns sealing on for a root made before it (one that has no ledger/
folder: parley init makes it), and seals the live file now into segments
of at least --size bytes each, keeping the rest live. From then on the
agents seal the live file whenever it reaches the segment size ($` + mailbox.SegmentSizeEnv + `,
4MiB when unset). No line is rewritten: seq, hashes, anchors and every
checkpoint stay as they were. It is safe to run again, and after a crash
in the middle it finishes what was begun.

git stores a changed file whole at each commit: the live file is stored
again, the sealed segments never. --all seals the whole live file first,
so that the commit adds only the lines appended since the last one.

Example:
   parley ledger seal
   parley ledger seal --all && git add mailboxes && git commit -m "ledger: one more day"`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "size", Usage: "the size of a segment (default $" + mailbox.SegmentSizeEnv + ", else 4MiB)"},
			&cli.BoolFlag{Name: "all", Usage: "seal the whole live file, whatever its size, so that the next commit adds only new files"},
		},
		Action: withRoot(0, 0, "no arguments", sealLedger),
	}
}

func sealLedger(c *cli.Context, e *env) error {
	size, err := mailbox.SegmentSize()
	if err != nil {
		return withHint(err, "write a size such as 64MiB, or unset it")
	}
	if c.Bool("all") {
		size = 0
	} else if s := c.String("size"); s != "" {
		z, err := mailbox.ParseSize(s)
		if err != nil {
			return misuse(c.Command, fmt.Errorf("--size: %w", err), "")
		}
		size = int64(z)
	}
	made, err := e.root.SealLedger(size)
	if err != nil {
		return fmt.Errorf("seal the ledger: %w", err)
	}
	dir := filepath.Join(e.root.Dir, mailbox.SegmentDir)
	if len(made) == 0 && size == 0 {
		_, err = fmt.Fprintf(e.stdout, "nothing to seal: %s is empty\n", filepath.Join(e.root.Dir, mailbox.LedgerFile))
		return err
	}
	if len(made) == 0 {
		_, err = fmt.Fprintf(e.stdout, "nothing to seal: %s is under %s; the agents seal it into %s/ when it reaches that\n",
			filepath.Join(e.root.Dir, mailbox.LedgerFile), mailbox.Size(size), dir)
		return err
	}
	names := make([]string, len(made))
	for i, m := range made {
		names[i] = filepath.Base(m)
	}
	_, err = fmt.Fprintf(e.stdout, "sealed %d segment(s) into %s/: %s\n", len(made), dir, strings.Join(names, " "))
	return err
}
