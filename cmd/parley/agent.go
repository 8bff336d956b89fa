package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/parley-dev/parley/agents"
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

Example:
   parley agent procurement`,
		Action: withRoot(1, 1, "one agent NAME", func(c *cli.Context, e *env) error {
			name := c.Args().First()
			team, err := e.team()
			if err != nil {
				return err
			}
			a := team.Agent(name)
			if a == nil {
				return withHint(fmt.Errorf("no agent named %q in parley.toml", name), "agents: "+fmt.Sprint(team.Names()))
			}
			if a.Role == "human" {
				// One watcher of the human's inbox, so each notice is sent once.
				unlock, err := agents.Lock(name, e.root.Inbox(name).Path("state", "lock"))
				if err != nil {
					return err
				}
				defer unlock()
				return e.watch(c.Context, []string{name}, team.Human, team.NotifyCommand, 500*time.Millisecond)
			}
			var mu sync.Mutex
			rt := &agents.Runtime{Root: e.root, Team: team, Name: name, Log: func(line string) {
				mu.Lock()
				defer mu.Unlock()
				fmt.Fprintf(e.stdout, "%s  %s\n", e.now().Local().Format("15:04:05"), line)
			}}
			return rt.Run(c.Context)
		}),
	}
}
