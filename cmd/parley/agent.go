package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/internal/cmdline"
	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
	"github.com/urfave/cli/v2"
)

func agentCommand() *cli.Command {
	return &cli.Command{
		Name:      "agent",
		Usage:     "run one agent in this terminal",
		ArgsUsage: "NAME",
		Description: `Runs the agent NAME of parley.toml until Ctrl-C: it watches its inbox,
handles each message with its role's rules, puts everything it would send
through the policy, and logs one line a step. It also takes in hand-written
files from its drop folder. A second copy of the same agent refuses to
start. The human's agent claims nothing: it shows what arrives for a person
to read (parley inbox human) and takes in the drop folder.

Stop it at any moment: a message it was handling is handled again, once,
when it starts again.

To grow or shrink the team: parley agent add NAME --role ROLE, parley agent
remove NAME.

Example:
   parley agent procurement`,
		Subcommands: []*cli.Command{agentAddCommand(), agentRemoveCommand()},
		Action: withRoot(1, 1, "one agent NAME", func(c *cli.Context, e *env) error {
			name := c.Args().First()
			if err := orphaned(); err != nil {
				return err
			}
			team, err := e.team()
			if err != nil {
				return err
			}
			a := team.Agent(name)
			if a == nil {
				return withHint(fmt.Errorf("no agent named %q in parley.toml", name), "agents: "+fmt.Sprint(team.Names()))
			}
			if a.Role == "human" {
				// One watcher of the human's inbox, team-wide, so each notice
				// is sent once and the messages come to one machine.
				ctx, stop := context.WithCancelCause(c.Context)
				defer stop(nil)
				release, err := agents.Hold(e.root, name, stop)
				if err != nil {
					return err
				}
				defer release()
				// Its heartbeat, as the other agents beat at each tick:
				// status shows when it last looked, not when it started.
				beat, stopBeat := context.WithCancel(ctx)
				var beating sync.WaitGroup
				beating.Add(1)
				go func() {
					defer beating.Done()
					agents.Beat(beat, e.root.Inbox(name).Path("state", "lock"), time.Second)
				}()
				defer func() { stopBeat(); beating.Wait() }()
				err = e.watch(ctx, []string{name}, team.Human, team.NotifyCommand, 500*time.Millisecond)
				if cause := context.Cause(ctx); errors.Is(cause, mailbox.ErrLost) {
					return fmt.Errorf("agent %s: %w", name, cause)
				}
				return err
			}
			var mu sync.Mutex
			rt := &agents.Runtime{Root: e.root, Team: team, Name: name, Log: func(line string) {
				mu.Lock()
				defer mu.Unlock()
				fmt.Fprintf(e.stdout, "%s  %s\n", e.now().Local().Format("15:04:05"), cmdline.ForRoot(e.root.Dir, line))
			}}
			return rt.Run(c.Context)
		}),
	}
}

func agentAddCommand() *cli.Command {
	return &cli.Command{
		Name:      "add",
		Usage:     "add an agent to the team: its entry in parley.toml, its inbox and its keys",
		ArgsUsage: "NAME --role ROLE",
		Description: `Adds an [[agent]] table for NAME at the end of parley.toml (the rest of the
file is kept as it is), creates its inbox and its key pair. The role's terms
are given with --set KEY=VALUE, as parley.toml writes them; what is missing
is said with what to add. A role of your own needs --brain exec and its
--command. The new agent may send only what policy.toml allows it: add an
[[allow]] rule for it.

Example:
   parley agent add vendor-d --role vendor --set item=widget --set 'list_price=5.20 USD' \
       --set 'floor=4.70 USD' --set capacity=500 --set lead_days=2
   parley agent add editor --role editor --brain exec --command python3 --command brains/editor.py`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "role", Required: true, Usage: "its role: a built-in one, or one of your own with --brain exec"},
			&cli.StringFlag{Name: "brain", Value: "rules", Usage: "rules, ollama or exec"},
			&cli.StringSliceFlag{Name: "command", Usage: "with --brain exec: the program, then each argument (repeat the flag)"},
			&cli.StringSliceFlag{Name: "set", Usage: "a setting of its parley.toml table, KEY=VALUE (repeat the flag)"},
		},
		Action: withRoot(1, 1, "the new agent's NAME", func(c *cli.Context, e *env) error {
			name := c.Args().First()
			if !mailbox.ValidName(name) {
				return usageError{fmt.Errorf("%q is not an agent name: lower-case letters, digits and hyphens, starting with a letter", name)}
			}
			settings := map[string]any{}
			for _, kv := range c.StringSlice("set") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageError{fmt.Errorf("--set %q is not KEY=VALUE", kv)}
				}
				settings[k] = tomlValue(v)
			}
			if cmd := c.StringSlice("command"); len(cmd) > 0 {
				settings["command"] = cmd
			}
			path := filepath.Join(e.root.Dir, agents.TeamFile)
			text, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("read team: %w", err)
			}
			out, _, err := agents.AddAgent(path, text, name, c.String("role"), c.String("brain"), settings)
			if err != nil {
				return err
			}
			if err := agents.SaveTeam(path, out); err != nil {
				return err
			}
			if err := e.root.Inbox(name).Create(); err != nil {
				return err
			}
			if _, err := e.root.NewKey(name); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "added %s (%s): its table in %s, its inbox %s/, its keys\n", name, c.String("role"), agents.TeamFile, name)
			fmt.Fprintf(e.stdout, "run it with: %s\n", e.cmd("agent", name))
			if p, err := e.engine().Policy(); err == nil && !speaks(p, name) {
				fmt.Fprintf(e.stdout, "no [[allow]] rule of %s lets it send anything yet: add one with from = %q\n", policy.File, name)
			}
			return nil
		}),
	}
}

// tomlValue reads a --set value as TOML when it is one (a number, a
// boolean, a quoted string, an array), else as a plain string.
func tomlValue(v string) any {
	var x struct{ V any }
	if _, err := toml.Decode("V = "+v, &x); err == nil {
		return x.V
	}
	return v
}

func agentRemoveCommand() *cli.Command {
	return &cli.Command{
		Name:      "remove",
		Usage:     "remove an agent from the team, once no mail waits for it",
		ArgsUsage: "NAME",
		Description: `Removes NAME's [[agent]] table from parley.toml (and the comment lines just
above it), the rest of the file kept as it is. It refuses while NAME runs,
while mail waits in its inbox, or while a message it claimed is unfinished:
let it handle them, or move them, first. Its inbox and its public key stay,
with its history: the ledger and old messages refer to them.

Example:
   parley agent remove vendor-c`,
		Action: withRoot(1, 1, "the agent's NAME", func(c *cli.Context, e *env) error {
			name := c.Args().First()
			inbox := e.root.Inbox(name)
			if live := agents.Alive(inbox.Path("state", "lock")); live.Running {
				return withHint(fmt.Errorf("%s is running (pid %s)", name, live.PID), "stop it first (Ctrl-C in its terminal, or stop parley up)")
			}
			waiting, err := inbox.Pending()
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			rec := e.record()
			unfinished, err := inbox.Unfinished(rec)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			moved, err := inbox.Waiting(rec) // read in a mail client, not yet handled
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			n := len(waiting) + len(unfinished) + len(moved)
			if p, ok := e.root.Transport.(mailbox.Peeker); ok {
				held, err := p.Peek(name) // waiting or claimed on the transport
				if err != nil {
					return err
				}
				n += len(held)
			}
			if n > 0 {
				return withHint(fmt.Errorf("%d message(s) wait for %s", n, name),
					fmt.Sprintf("let it handle them (parley agent %s), or see them with parley inbox %s", name, name))
			}
			path := filepath.Join(e.root.Dir, agents.TeamFile)
			text, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("read team: %w", err)
			}
			out, _, err := agents.RemoveAgent(path, text, name)
			if err != nil {
				return err
			}
			if err := agents.SaveTeam(path, out); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "removed %s from %s; its inbox %s/ and its public key stay, with its history\n", name, agents.TeamFile, name)
			return nil
		}),
	}
}

// speaks reports whether any [[allow]] rule of the policy is from name.
func speaks(p *policy.Policy, name string) bool {
	for _, a := range p.Allow {
		if ok, _ := path.Match(a.From, name); ok {
			return true
		}
	}
	return false
}
