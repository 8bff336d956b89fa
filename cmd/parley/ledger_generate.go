package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/parley-dev/parley/internal/ledgergen"
	"github.com/parley-dev/parley/mailbox"
	"github.com/urfave/cli/v2"
)

// ledgerGenerateCommand is a developer's command, hidden from --help: it
// fills a root's empty ledger with history, for the benchmarks of a root
// that has run for years (docs/MAILBOX.md, "A ledger of years").
func ledgerGenerateCommand() *cli.Command {
	return &cli.Command{
		Name:      "generate",
		Usage:     "fill an empty ledger with N lines of real deals, for benchmarks",
		ArgsUsage: " ",
		Hidden:    true,
		Description: `Writes N lines of history into ROOT/ledger.jsonl, which must be empty (a
fresh parley init), or into --out: the recorded restock deal again and
again, each on a thread of its own (restock-gadget-K), chained and hashed as
the agents write them, --per-day deals a day, the last starting at --until.
The ledger verifies; the messages it names are not in the inboxes.

Example:
   parley init && parley ledger generate --lines 1000000`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "lines", Usage: "how many lines", Required: true},
			&cli.IntFlag{Name: "per-day", Usage: "deals a day", Value: 100},
			&cli.TimestampFlag{Name: "until", Layout: time.RFC3339, Usage: "when the last deal starts (default: 40 days ago, outside this month's budget)"},
			&cli.StringFlag{Name: "out", Usage: "write here instead of the root's ledger"},
		},
		Action: withRoot(0, 0, "no arguments", generateLedger),
	}
}

func generateLedger(c *cli.Context, e *env) error {
	path := c.String("out")
	if path == "" {
		path = filepath.Join(e.root.Dir, "ledger.jsonl")
		if st, err := os.Stat(path); err == nil && st.Size() > 0 {
			return withHint(fmt.Errorf("%s is not empty", path), "generate into a fresh root (parley init), or --out FILE")
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if segs, err := mailbox.SegmentFiles(path); err != nil || len(segs) > 0 {
			return withHint(fmt.Errorf("%s has sealed segments", filepath.Join(e.root.Dir, mailbox.SegmentDir)), "generate into a fresh root (parley init), or --out FILE")
		}
	}
	opt := ledgergen.Options{Lines: c.Int("lines"), PerDay: c.Int("per-day")}
	if t := c.Timestamp("until"); t != nil {
		opt.Until = *t
	} else {
		opt.Until = e.now().Add(-40 * 24 * time.Hour)
	}
	// Streamed into a temporary file, synced and renamed over: a ledger
	// is there whole or not at all, whatever its size.
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	start := time.Now()
	head, err := ledgergen.Write(f, opt)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("generate: %w", err)
	}
	el := time.Since(start)
	_, err = fmt.Fprintf(e.stdout, "generated %d lines into %s in %v (%.0f lines/s), head %s\n",
		head.Seq, path, el.Round(time.Millisecond), float64(head.Seq)/el.Seconds(), head.Hash)
	return err
}
