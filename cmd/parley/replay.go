package main

import (
	"fmt"
	"strings"

	"github.com/parley-dev/parley/agents"
	"github.com/urfave/cli/v2"
)

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:      "replay",
		Usage:     "run an agent's decisions on a thread again, clock steps included, with its model's recorded answers",
		ArgsUsage: "NAME --thread ID",
		Description: `Takes every message NAME handled on the thread, from its inbox, and every
step its clock took there (a quote window closing, a reminder, the human's
decision timeout), in the order the ledger has them, and runs its brain on
them again; a clock step runs at the Date of what it sent. What the policy
denied or held for the human then is told to the brain as it was. A model is
never called: each call is played from the tape the agent recorded in
NAME/state/llm/ (a call the server never answered has a tape that says so),
so a deal made by an LLM can be debugged, reviewed and turned into a test.
Each decision is shown with what the ledger says was sent then and what
comes out now.

A call whose prompt differs from the recorded one (the prompt file, the
policy or parley changed) has no tape; the agent then does what it does when
its model fails, and the decision may differ.

Exit status is 1 when a decision comes out differently.

Example:
   parley replay procurement --thread restock-widget-1
   parley replay vendor-b --thread restock-widget-1 --json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "thread", Usage: "the thread to replay", Required: true},
			&cli.BoolFlag{Name: "json", Usage: "print the steps as JSON"},
		},
		Action: withRoot(1, 1, "the agent's name", func(c *cli.Context, e *env) error {
			name, thread := c.Args().First(), c.String("thread")
			if err := e.agent(name); err != nil {
				return err
			}
			team, err := e.team()
			if err != nil {
				return err
			}
			entries, err := readLedger(e.root)
			if err != nil {
				return err
			}
			steps, clock, err := agents.Replay(e.root, team, name, thread, entries)
			if err != nil {
				return err
			}
			if len(steps) == 0 {
				return withHint(fmt.Errorf("%s handled no message on thread %s", name, thread), "parley thread "+thread+" shows who took part")
			}
			differ := 0
			for _, s := range steps {
				if !s.Same {
					differ++
				}
			}
			if c.Bool("json") {
				if err := printJSON(e.stdout, map[string]any{"agent": name, "thread": thread, "steps": steps, "clock_steps": clock, "differ": differ}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(e.stdout, "replaying %s on %s: %d decisions, %d of them by its clock\n", name, thread, len(steps), clock)
				for _, s := range steps {
					mark := "same"
					if !s.Same {
						mark = "DIFFERS"
					}
					fmt.Fprintf(e.stdout, "\n%-7s %s\n", mark, s.Message)
					fmt.Fprintf(e.stdout, "  then: %s\n", orNothing(s.Recorded))
					if !s.Same {
						fmt.Fprintf(e.stdout, "  now:  %s\n", orNothing(s.Replayed))
					}
					for _, u := range s.Model {
						fmt.Fprintf(e.stdout, "  model %s\n", u)
					}
				}
			}
			if differ > 0 {
				return fmt.Errorf("%d of %d decisions came out differently", differ, len(steps))
			}
			if !c.Bool("json") {
				fmt.Fprintf(e.stdout, "\nevery decision comes out the same\n")
			}
			return nil
		}),
	}
}

func orNothing(lines []string) string {
	if len(lines) == 0 {
		return "nothing"
	}
	return strings.Join(lines, "; ")
}
