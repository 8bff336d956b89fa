package main

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/mailbox/jsteam"
	"github.com/urfave/cli/v2"
)

func bridgeCommand() *cli.Command {
	return &cli.Command{
		Name:      "bridge",
		Usage:     "join this root on files to a team on NATS JetStream",
		ArgsUsage: " ",
		Description: `Joins the root (on files) to a team on NATS JetStream, so that agents on a
laptop and agents on a server work together. The agents named by --remote
run there, on JetStream; every other agent of parley.toml runs here, on
files. What an agent here sends to a remote one is taken from that agent's
Maildir here and put in its inbox there; what is sent there to an agent
here is put in its Maildir here. Each message crosses once: it is put on the
other side before it is taken from this one, and put again after a crash
under the same Message-ID, which the other side stores or handles once.
Each side's ledger records it: "bridged" where it left, "delivered" where it
arrived. Runs until Ctrl-C.

Both sides share parley.toml, policy.toml and keys/*.pub (commit the root
and check it out on both machines); each side keeps the private keys of its
own agents. docs/NATS.md has the whole of it.

Example:
   parley bridge --there nats://server:4222 --remote vendor-a,vendor-b,vendor-c`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "there", Required: true, Usage: "the JetStream team: nats://host:4222 (and ?stream=... as in parley.toml)"},
			&cli.StringSliceFlag{Name: "remote", Required: true, Usage: "the agents that run there (comma-separated, or repeat)"},
		},
		Action: withRoot(0, 0, "no arguments", func(c *cli.Context, e *env) error {
			if e.root.Transport != nil {
				return usageError{errors.New("the root to bridge from is on files: give --transport files, or run the bridge on the machine with the files")}
			}
			team, err := e.team()
			if err != nil {
				return err
			}
			remote := c.StringSlice("remote")
			for _, r := range remote {
				if team.Agent(r) == nil {
					return withHint(fmt.Errorf("--remote %s: no agent of that name in parley.toml", r), "agents: "+fmt.Sprint(team.Names()))
				}
			}
			var local []string
			for _, n := range team.Names() {
				if !slices.Contains(remote, n) {
					local = append(local, n)
				}
			}
			tr, err := dialTransport(c.Context, c.String("there"), e.now)
			if err != nil {
				return err
			}
			if tr == nil {
				return usageError{fmt.Errorf("--there %q: want nats://host:4222", jsteam.Redact(c.String("there")))}
			}
			there := &mailbox.Root{Dir: e.root.Dir, Now: e.now, Transport: tr}
			defer there.Close()
			var mu sync.Mutex
			say := func(line string) {
				mu.Lock()
				defer mu.Unlock()
				fmt.Fprintf(e.stdout, "%s  %s\n", e.now().Local().Format("15:04:05"), line)
			}
			say(fmt.Sprintf("bridging %v here to %v on %s; Ctrl-C stops", local, remote, jsteam.Redact(c.String("there"))))
			b := &mailbox.Bridge{Here: e.root, There: there, Remote: remote, Local: local, Log: say}
			return b.Run(c.Context)
		}),
	}
}
