package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/parley-dev/parley/mailbox"
	"github.com/urfave/cli/v2"
)

func ledgerCommand() *cli.Command {
	return &cli.Command{
		Name:  "ledger",
		Usage: "check the ledger",
		Subcommands: []*cli.Command{{
			Name:      "verify",
			Usage:     "check that the ledger is as the agents wrote it",
			ArgsUsage: " ",
			Description: `Reads the whole ledger and checks that every line's hash covers its content,
that seq counts up from 1 without a gap and that each line carries the hash
of the one before. It names the first line that was edited, dropped,
inserted or moved, and exits with status 3; on an honest ledger it prints the
chain's head hash: keep it (git commit the ledger) to catch a rewrite of
every hash after an edit, which no chain can tell alone.

A last line cut short by a crash is reported (exit 1); --repair sets it
aside next to the ledger, as every agent's next append would, and verifies.

Example:
   parley ledger verify
   parley ledger verify --json`,
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "repair", Usage: "set aside a torn last line first"},
				&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
			},
			Action: verifyLedger,
		}},
	}
}

func verifyLedger(c *cli.Context) error {
	if err := needArgs(c, 0, 0, "no arguments"); err != nil {
		return err
	}
	e, err := open(c)
	if err != nil {
		return err
	}
	defer e.close()
	path := filepath.Join(e.root.Dir, mailbox.LedgerFile)
	if c.Bool("repair") {
		if _, err := e.root.Ledger(); err != nil { // opening sets a torn tail aside
			return err
		}
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return withHint(fmt.Errorf("%s has no ledger", e.root.Dir), "parley init creates it")
	}
	if err != nil {
		return fmt.Errorf("open ledger: %w", err)
	}
	defer f.Close()
	res, verr := mailbox.Verify(f)
	if c.Bool("json") {
		out := map[string]any{"ok": verr == nil, "entries": res.Lines, "bytes": res.Bytes, "head": res.Head}
		var ve *mailbox.VerifyError
		if errors.As(verr, &ve) {
			out["line"], out["kind"], out["error"] = ve.Line, ve.Kind, ve.Error()
		}
		if err := printJSON(e.stdout, out); err != nil {
			return err
		}
	}
	if verr != nil {
		return fmt.Errorf("%s: %w", path, verr)
	}
	if !c.Bool("json") {
		fmt.Fprintf(e.stdout, "%s: ok, %d entries, head %s\n", path, res.Lines, res.Head)
	}
	return nil
}
