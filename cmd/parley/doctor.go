package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/agents/llm"
	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
	"github.com/urfave/cli/v2"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:      "doctor",
		Usage:     "check that each agent with an Ollama brain can reach its model",
		ArgsUsage: " ",
		Description: `For every agent of parley.toml with brain = "ollama": checks that its role
prompt can be read, that its Ollama host answers, and that its model is
pulled there — and says what to run when not (ollama serve, ollama pull
MODEL) — and warns where fallback = "escalate" cannot work (the policy does
not let the agent send ESCALATE to the human). Agents with rules brains need
no model. It also warns where a procurement agent has no max_unit_price: with
no ceiling it has no sense of what a unit is worth, and may buy at a loss.

Exit status is 1 when a check fails.

Example:
   parley doctor
   OLLAMA_HOST=gpu.lan:11434 parley doctor --json`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the checks as JSON"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "how long to wait for each host"},
		},
		Action: withRoot(0, 0, "no arguments", func(c *cli.Context, e *env) error {
			team, err := e.team()
			if err != nil {
				return err
			}
			checks := doctor(c.Context, e.root.Dir, team, c.Duration("timeout"))
			if c.Bool("json") {
				err = printJSON(e.stdout, checks)
			} else {
				err = printChecks(e, checks)
			}
			if err != nil {
				return err
			}
			for _, ch := range checks {
				if !ch.OK {
					return withHint(fmt.Errorf("%s: %s", ch.Agent, ch.Problem), ch.Fix)
				}
			}
			return nil
		}),
	}
}

// check is what parley doctor found for one agent.
type check struct {
	Agent   string `json:"agent"`
	Model   string `json:"model"`
	Host    string `json:"host"`
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"`
	Fix     string `json:"fix,omitempty"`
	// Warning is what will not work as set, though the model answers: a
	// fallback = "escalate" the policy does not let through.
	Warning string `json:"warning,omitempty"`
}

func doctor(ctx context.Context, root string, team *agents.Team, timeout time.Duration) []check {
	checks := []check{}
	for i := range team.Agents {
		a := &team.Agents[i]
		if a.Role == "procurement" && a.MaxUnitPrice.IsZero() {
			// Without a ceiling a buyer has no sense of what a unit is worth
			// but its budget: it may buy at a loss (issue 17).
			checks = append(checks, check{Agent: a.Name, OK: true, Warning: `no max_unit_price: it pays up to its budget, even more than a unit is worth; add max_unit_price = "8.00 USD" (what a unit is worth to you)`})
		}
		if a.Brain != "ollama" {
			continue
		}
		ch := check{Agent: a.Name, Model: a.Model}
		ch.Problem, ch.Fix = diagnose(ctx, root, a, timeout, &ch.Host)
		ch.OK = ch.Problem == ""
		ch.Warning = fallbackWarning(root, team, a)
		checks = append(checks, ch)
	}
	return checks
}

// fallbackWarning says why agent a's fallback = "escalate" cannot work:
// the policy does not let it send ESCALATE to the human, so when its model
// fails nothing is sent and no one answers for it.
func fallbackWarning(root string, team *agents.Team, a *agents.Agent) string {
	if a.Fallback != "escalate" {
		return ""
	}
	p, err := policy.Load(filepath.Join(root, policy.File))
	if err != nil {
		return fmt.Sprintf("fallback = \"escalate\" cannot be checked: %v", err)
	}
	if p.Allows(a.Name, mailbox.Escalate, team.Human) == 0 {
		return fmt.Sprintf("fallback = \"escalate\" cannot work: no [[allow]] rule of %s lets %s send ESCALATE to %s; add one, or set fallback = \"rules\"",
			policy.File, a.Name, team.Human)
	}
	return ""
}

// diagnose returns what is wrong with agent a's model, and what to do.
func diagnose(ctx context.Context, root string, a *agents.Agent, timeout time.Duration, host *string) (problem, fix string) {
	if _, err := agents.RolePrompt(root, a); err != nil {
		return err.Error(), "write the prompt file, or remove prompt = from parley.toml to use the shipped one"
	}
	u, err := llm.ParseHost(a.Host)
	if err != nil {
		return err.Error(), `set host = "127.0.0.1:11434" in parley.toml`
	}
	*host = u.String()
	client := api.NewClient(u, &http.Client{Timeout: timeout})
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := client.Heartbeat(ctx); err != nil {
		return fmt.Sprintf("the Ollama server at %s does not answer (%v)", u, firstLine(err.Error())),
			"start it with: ollama serve   (or set host = in parley.toml, or OLLAMA_HOST, to where it runs)"
	}
	list, err := client.List(ctx)
	if err != nil {
		return fmt.Sprintf("the Ollama server at %s cannot list its models: %v", u, err), "see the server's log"
	}
	for _, m := range list.Models {
		if sameModel(m.Name, a.Model) || sameModel(m.Model, a.Model) {
			return "", ""
		}
	}
	return fmt.Sprintf("model %s is not pulled on %s", a.Model, u), "run: ollama pull " + a.Model
}

// sameModel says whether two names are one model: "llama3.2" is
// "llama3.2:latest".
func sameModel(a, b string) bool {
	tag := func(s string) string {
		if !strings.Contains(s, ":") {
			return s + ":latest"
		}
		return s
	}
	return a != "" && tag(a) == tag(b)
}

func printChecks(e *env, checks []check) error {
	models := false
	for _, ch := range checks {
		models = models || ch.Model != ""
	}
	if !models {
		fmt.Fprintln(e.stdout, "no agent has brain = \"ollama\": every brain is rules, and no model is needed")
	}
	for _, ch := range checks {
		switch {
		case ch.Model == "":
		case ch.OK:
			fmt.Fprintf(e.stdout, "ok    %s: model %s on %s\n", ch.Agent, ch.Model, ch.Host)
		default:
			fmt.Fprintf(e.stdout, "FAIL  %s: %s\n      %s\n", ch.Agent, ch.Problem, ch.Fix)
		}
		if ch.Warning != "" {
			fmt.Fprintf(e.stdout, "warn  %s: %s\n", ch.Agent, ch.Warning)
		}
	}
	return nil
}
