package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/parley-dev/parley/internal/tomlfile"
	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
	"github.com/shopspring/decimal"
	"github.com/urfave/cli/v2"
)

func policyCommand() *cli.Command {
	return &cli.Command{
		Name:  "policy",
		Usage: "check, explain and try out the policy",
		Description: `The policy (ROOT/policy.toml) is read before every action: check reads it
as the agents do, explain says what it would decide about a message, test
replays the ledger's decisions under a changed one.

Example:
   parley policy check
   parley policy explain order.msg
   cp mailboxes/policy.toml new.toml && $EDITOR new.toml && parley policy test new.toml`,
		Subcommands: []*cli.Command{
			{
				Name:      "check",
				Usage:     "read a policy strictly and say what it allows",
				ArgsUsage: "[FILE]",
				Description: `Reads FILE (default ROOT/policy.toml) as parley does before every action.
A mistake is one line naming the file, the line and the fix, and exit
status 1; a good policy is summed up. With --json, one object either way:
{"file", "ok", "hash", "summary"} or {"file", "ok": false, "line",
"error", "hint"} (and the exit status as without).

Example:
   parley policy check
   parley policy check new-policy.toml
   parley policy check --json | jq .ok`,
				Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"}},
				Action: func(c *cli.Context) error {
					if err := needArgs(c, 0, 1, "at most one FILE"); err != nil {
						return err
					}
					path := c.Args().First()
					if path == "" {
						path = filepath.Join(c.String("root"), policy.File)
					}
					p, err := policy.Load(path)
					if c.Bool("json") {
						out := policyCheck{File: path, OK: err == nil}
						var te *tomlfile.Error
						switch {
						case errors.As(err, &te):
							out.Line, out.Error, out.Hint = te.Line, te.Msg, te.Hint
						case err != nil:
							out.Error = err.Error()
						default:
							out.Hash = p.Hash
							out.Summary = strings.Split(strings.TrimRight(p.Summary(), "\n"), "\n")
							for i, l := range out.Summary {
								out.Summary[i] = strings.TrimSpace(l)
							}
						}
						if jerr := printJSON(c.App.Writer, out); jerr != nil {
							return jerr
						}
					}
					if err != nil {
						return err
					}
					if !c.Bool("json") {
						fmt.Fprintf(c.App.Writer, "%s: ok\n%s", path, p.Summary())
					}
					return nil
				},
			},
			{
				Name:      "explain",
				Usage:     "say what the policy would decide about a message, and why",
				ArgsUsage: "FILE",
				Description: `Decides the message in FILE as if its sender were sending it now, against
the policy and what the ledger says was already spent, and prints the
decision, the rule that made it and why. Nothing is sent or recorded.

Example:
   parley policy explain order.msg
   parley policy explain --json order.msg`,
				Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the decision as JSON"}},
				Action: withRoot(1, 1, "one message FILE", func(c *cli.Context, e *env) error {
					name := c.Args().First()
					data, err := os.ReadFile(name)
					if err != nil {
						return fmt.Errorf("read message: %w", err)
					}
					m, err := mailbox.Parse(data)
					if err != nil {
						return fmt.Errorf("%s: %w", name, err)
					}
					if err := e.root.Fill(m, nil); err != nil {
						return err
					}
					d, err := e.engine().Explain(policy.Action{Agent: m.From, Message: m})
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(e.stdout, d)
					}
					fmt.Fprintf(e.stdout, "%s: %s %s to %s: %s by %s\n  %s\n", name, m.From, m.Verb, m.To, d.Outcome, d.Rule, d.Reason)
					return nil
				}),
			},
			{
				Name:      "test",
				Usage:     "replay the ledger's decisions under a changed policy",
				ArgsUsage: "NEW.toml",
				Description: `Judges every decision recorded in the ledger again under NEW.toml, as if it
had been in force, and shows each decision that would change, how many
actions would be allowed, denied or escalated, and the money that would have
been committed. Nothing is changed.

Example:
   cp mailboxes/policy.toml new.toml && $EDITOR new.toml
   parley policy test new.toml`,
				Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"}},
				Action: withRoot(1, 1, "one policy FILE", func(c *cli.Context, e *env) error {
					p, err := policy.Load(c.Args().First())
					if err != nil {
						return err
					}
					entries, err := readLedger(e.root)
					if err != nil {
						return err
					}
					w := policy.Replay(entries, p)
					if c.Bool("json") {
						return printJSON(e.stdout, w)
					}
					return printWhatIf(e.stdout, w)
				}),
			},
		},
	}
}

// policyCheck is policy check --json.
type policyCheck struct {
	File    string   `json:"file"`
	OK      bool     `json:"ok"`
	Hash    string   `json:"hash,omitempty"`
	Summary []string `json:"summary,omitempty"`
	Line    int      `json:"line,omitempty"`
	Error   string   `json:"error,omitempty"`
	Hint    string   `json:"hint,omitempty"`
}

func printWhatIf(out io.Writer, w policy.WhatIf) error {
	fmt.Fprintf(out, "%d decisions replayed; %d would change\n", w.Decisions, len(w.Changes))
	if len(w.Changes) > 0 {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tACTION\tAMOUNT\tTHREAD\tWAS\tWOULD BE")
		for _, c := range w.Changes {
			fmt.Fprintf(tw, "%d\t%s %s to %s\t%s\t%s\t%s by %s\t%s by %s: %s\n", c.Seq, c.Agent, c.Verb, c.To, c.Amount, c.Thread,
				c.Was.Outcome, c.Was.Rule, c.Would.Outcome, c.Would.Rule, c.Would.Reason)
		}
		tw.Flush()
	}
	for _, o := range []policy.Outcome{policy.Allow, policy.Deny, policy.Escalate} {
		fmt.Fprintf(out, "%-9s %4d, was %d\n", o+":", w.Would[o], w.Was[o])
	}
	money := func(d decimal.Decimal) string { return mailbox.Money{Amount: d, Currency: w.Currency}.String() }
	fmt.Fprintln(out, "the books at the last line (parley books):")
	for _, f := range []struct {
		what       string
		would, was decimal.Decimal
	}{
		{"spent", w.WouldBooks.Spent, w.WasBooks.Spent},
		{"committed", w.WouldBooks.Committed, w.WasBooks.Committed},
		{"held", w.WouldBooks.Held, w.WasBooks.Held},
	} {
		fmt.Fprintf(out, "  %-10s %s, was %s\n", f.what+":", money(f.would), money(f.was))
	}
	return nil
}

// readLedger reads every entry of the root's ledger.
func readLedger(r *mailbox.Root) ([]mailbox.Entry, error) {
	path, err := r.LedgerPath()
	if err != nil {
		return nil, err
	}
	f, err := mailbox.OpenLedgerReader(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var es []mailbox.Entry
	err = mailbox.ReadEntries(f, func(_ int, e mailbox.Entry) error { es = append(es, e); return nil })
	if errors.Is(err, mailbox.ErrTornTail) {
		err = nil
	}
	if err != nil {
		return nil, withHint(fmt.Errorf("%s: %w", f.Name(), err), "parley ledger verify names the first bad line")
	}
	return es, nil
}

func pauseCommand() *cli.Command {
	return &cli.Command{
		Name:      "pause",
		Usage:     "stop every agent from acting until parley resume",
		ArgsUsage: " ",
		Description: `Writes ROOT/PAUSED (who, when, why) and records it in the ledger. While it
exists no agent acts: messages keep arriving and wait in the inboxes. The
circuit breaker does the same by itself when errors or denials spike.

Example:
   parley pause --reason "checking vendor-b's invoices"`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "reason", Required: true, Usage: "why, for the ledger and whoever resumes"},
			&cli.StringFlag{Name: "as", Value: "human", Usage: "who pauses"},
		},
		Action: withRoot(0, 0, "no arguments", func(c *cli.Context, e *env) error {
			if err := e.engine().Pause(c.String("as"), c.String("reason")); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "paused: no agent acts until %s\n", e.cmd("resume"))
			return nil
		}),
	}
}

func resumeCommand() *cli.Command {
	return &cli.Command{
		Name:      "resume",
		Usage:     "let the agents act again after a pause",
		ArgsUsage: " ",
		Description: `Removes ROOT/PAUSED and records it; the circuit breaker counts afresh, and
the messages that waited are handled.

A team paused because the ledger does not verify resumes only once it does
(parley ledger verify): restore it from git. If the copy you restore is
older than what the agents had seen, their kept heads (NAME/state/
ledger.head) still name the lost lines: --accept-ledger, after a person
has checked the ledger, forgets those heads and accepts the ledger as it
now is (its chain and anchors must still verify).

Example:
   parley resume --reason "invoices checked"
   git checkout -- mailboxes/ledger.jsonl && parley resume --accept-ledger --reason "restored from git"`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "reason", Usage: "why, for the ledger"},
			&cli.StringFlag{Name: "as", Value: "human", Usage: "who resumes"},
			&cli.BoolFlag{Name: "accept-ledger", Usage: "forget the agents' kept heads: accept the ledger, chained and anchored, as it now is"},
		},
		Action: withRoot(0, 0, "no arguments", func(c *cli.Context, e *env) error {
			if c.Bool("accept-ledger") {
				if err := e.acceptLedger(); err != nil {
					return err
				}
			}
			eng := e.engine()
			why, _ := eng.Paused()
			if err := eng.Resume(c.String("as"), c.String("reason")); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "resumed (it was %s)\n", firstLine(why))
			return nil
		}),
	}
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}

// acceptLedger forgets the heads the agents kept of the ledger, once its
// chain and anchors verify: a person restored an older copy and means to
// go on from it.
func (e *env) acceptLedger() error {
	if e.root.Transport != nil {
		return usageError{fmt.Errorf("--accept-ledger: the ledger of a team on %s is its stream, which no one edits", e.transport)}
	}
	res, err := e.verify(false)
	if err != nil {
		return err
	}
	kept, _ := filepath.Glob(filepath.Join(e.root.Dir, "*", "state", mailbox.HeadFile))
	for _, path := range kept {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("accept the ledger: %w", err)
		}
	}
	fmt.Fprintf(e.stdout, "accepted the ledger as it is: %d entries, head %s; forgot %d kept head(s)\n", res.Lines, res.Head, len(kept))
	return nil
}
