package main

import (
	"encoding/base64"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/urfave/cli/v2"
)

// keyRow is one key in keys --json.
type keyRow struct {
	Agent       string     `json:"agent"`
	Fingerprint string     `json:"fingerprint"`
	Public      string     `json:"public"` // the ed25519 public key, base64
	Retired     *time.Time `json:"retired,omitempty"`
}

func keysCommand() *cli.Command {
	return &cli.Command{
		Name:      "keys",
		Usage:     "list the agents' signing keys, or rotate one",
		ArgsUsage: " ",
		Description: `Lists every agent's ed25519 public key (ROOT/keys/NAME.pub, committed with the
ledger) by fingerprint, and the keys it retired. Each agent's private key is
ROOT/NAME/state/NAME.key, readable by its owner only, and kept out of git by
the .gitignore parley init writes.

Example:
   parley keys
   parley keys --json | jq -r 'select(.retired == null) | .fingerprint'
   parley keys rotate finance`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "one JSON object a key"}},
		Action: withRoot(0, 0, "no arguments", func(c *cli.Context, e *env) error {
			ring, err := e.root.Keys()
			if err != nil {
				return err
			}
			if len(ring) == 0 {
				return withHint(fmt.Errorf("%s has no keys", e.root.Dir), "parley init makes a key for every agent")
			}
			names := make([]string, 0, len(ring))
			for n := range ring {
				names = append(names, n)
			}
			sort.Strings(names)
			if c.Bool("json") {
				for _, n := range names {
					for _, k := range ring[n] {
						row := keyRow{Agent: n, Fingerprint: mailbox.Fingerprint(k.Public), Public: base64.StdEncoding.EncodeToString(k.Public)}
						if !k.Retired.IsZero() {
							t := k.Retired.UTC()
							row.Retired = &t
						}
						if err := printJSON(e.stdout, row); err != nil {
							return err
						}
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AGENT\tKEY\tSTATE")
			for _, n := range names {
				for _, k := range ring[n] {
					state := "in use"
					if !k.Retired.IsZero() {
						state = "retired " + k.Retired.UTC().Format("2006-01-02 15:04:05")
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", n, mailbox.Fingerprint(k.Public), state)
				}
			}
			return tw.Flush()
		}),
		Subcommands: []*cli.Command{{
			Name:      "rotate",
			Usage:     "give an agent a new key; what the old one signed still verifies",
			ArgsUsage: "NAME",
			Description: `Retires the agent's key (kept as ROOT/keys/NAME.FINGERPRINT.pub with the time
it was retired, so messages signed before still verify; one it signs after
is refused), makes a new one, and records the rotation in the ledger.

Example:
   parley keys rotate finance`,
			Action: withRoot(1, 1, "one agent NAME", func(c *cli.Context, e *env) error {
				name := c.Args().First()
				if err := e.agent(name); err != nil {
					return err
				}
				old, fresh, err := e.root.RotateKey(name)
				if err != nil {
					return err
				}
				l, err := e.root.Ledger()
				if err != nil {
					return err
				}
				if _, err := l.Append(mailbox.Entry{Agent: name, Event: "rotated", Reason: fmt.Sprintf("key %s retired, key %s in use", old, fresh)}); err != nil {
					return err
				}
				_, err = fmt.Fprintf(e.stdout, "%s: key %s retired, key %s in use\n", name, old, fresh)
				return err
			}),
		}},
	}
}
