package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
	"github.com/urfave/cli/v2"
)

func approveCommand() *cli.Command {
	return answerCommand("approve", mailbox.Approved, `Answers the escalation waiting on THREAD with an APPROVED from the human to
the agent that asked, for the amount it asked (or --amount). The agent acts
on it the next time it decides.

Example:
   parley inbox human
   parley approve restock-widget-20261126T100000-4f2a1c --note "go ahead"`)
}

func denyCommand() *cli.Command {
	return answerCommand("deny", mailbox.Denied, `Answers the escalation waiting on THREAD with a DENIED from the human to the
agent that asked; the reason goes with it.

Example:
   parley deny restock-widget-20261126T100000-4f2a1c --reason "too dear"`)
}

func answerCommand(name string, verb mailbox.Verb, description string) *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "as", Value: "human", Usage: "who answers"},
		&cli.BoolFlag{Name: "json", Usage: "print what was sent as JSON"},
	}
	if verb == mailbox.Approved {
		flags = append(flags,
			&cli.StringFlag{Name: "amount", Usage: "the most that may be spent, such as 2400.00 USD (default: what was asked)"},
			&cli.StringFlag{Name: "note", Usage: "a line for the agent"})
	} else {
		flags = append(flags, &cli.StringFlag{Name: "reason", Required: true, Usage: "why not"})
	}
	return &cli.Command{
		Name:        name,
		Usage:       "answer an escalation: " + strings.ToLower(string(verb)),
		ArgsUsage:   "THREAD",
		Description: description,
		Flags:       flags,
		Action: withRoot(1, 1, "one THREAD", func(c *cli.Context, e *env) error {
			text := c.String("reason")
			if verb == mailbox.Approved {
				text = c.String("note")
			}
			m, err := e.answer(c.Args().First(), verb, c.String("as"), c.String("amount"), text)
			if err != nil {
				return err
			}
			return e.printSent(c.Bool("json"), m)
		}),
	}
}

// answer sends the human's APPROVED or DENIED to the agent that escalated
// on thread; amount "" is what was asked.
func (e *env) answer(thread string, verb mailbox.Verb, as, amount, text string) (*mailbox.Message, error) {
	if err := e.bringHuman(); err != nil {
		return nil, err
	}
	asked, err := e.escalation(thread)
	if err != nil {
		return nil, err
	}
	m := &mailbox.Message{From: as, To: asked.From, Thread: thread, InReplyTo: asked.MsgID, Verb: verb, Item: asked.Item, Body: text}
	if verb == mailbox.Denied {
		m.Subject = "DENIED: " + text
		sent, err := e.send("the answer", m.Marshal(), "")
		if err == nil {
			e.markAnswered(asked)
		}
		return sent, err
	}
	if amount == "" && asked.Amount != "" {
		amount = asked.Amount + " " + asked.Currency
	}
	if amount == "" {
		return nil, withHint(fmt.Errorf("the escalation on %s asks no spend, so there is nothing to approve", thread),
			fmt.Sprintf("read it (parley inbox human), do what it says, then close it: parley deny %s --reason ...", thread))
	}
	if m.Amount, err = mailbox.ParseMoney(amount); err != nil {
		return nil, usageError{fmt.Errorf("--amount: %w", err)}
	}
	m.Subject = fmt.Sprintf("APPROVED: up to %s on %s", m.Amount, thread)
	sent, err := e.send("the answer", m.Marshal(), "")
	if err == nil {
		e.markAnswered(asked)
	}
	return sent, err
}

// escalation finds the question that waits for the human's answer on
// thread. One answered, expired or withdrawn is not answered again: the
// agent that asked has moved on, and an answer would do nothing.
func (e *env) escalation(thread string) (*policy.Escalation, error) {
	team, err := e.team()
	if err != nil {
		return nil, err
	}
	st, _, err := e.engine().StateOf(thread)
	if err != nil {
		return nil, err
	}
	asked := st.Escalations(team.Human, thread)
	if len(asked) == 0 {
		hint := "parley status lists the escalations that wait"
		var threads []string
		for _, x := range st.Escalations(team.Human, "") {
			threads = append(threads, x.Thread)
		}
		if guess := suggest(thread, threads); guess != "" {
			hint = "did you mean " + guess + "? " + hint
		}
		return nil, withHint(fmt.Errorf("no escalation was ever put to %s on thread %q", team.Human, thread), hint)
	}
	for _, x := range asked {
		if x.State(e.now()) == policy.Waiting {
			return x, nil
		}
	}
	x := asked[len(asked)-1]
	switch x.State(e.now()) {
	case policy.Expired:
		return nil, withHint(fmt.Errorf("the escalation on %s expired at %s, unanswered: %s has moved on", thread, x.Expires.UTC().Format(time.RFC3339), x.From),
			"nothing waits for an answer; parley why "+thread+" shows what happened instead")
	case policy.Answered:
		return nil, withHint(fmt.Errorf("the escalation on %s was answered already (%s at %s)", thread, x.Answer, x.AnsweredAt.UTC().Format(time.RFC3339)),
			"parley why "+thread+" shows what followed")
	}
	return nil, withHint(fmt.Errorf("the escalation on %s was withdrawn: %s asked again, or no longer asks", thread, x.From), "parley status lists the escalations that wait")
}

// bringHuman brings what waits for the human on the transport into the
// human's Maildir, where parley inbox, approve and deny read it.
func (e *env) bringHuman() error {
	if e.root.Transport == nil {
		return nil
	}
	team, err := e.team()
	if err != nil {
		return err
	}
	_, err = e.root.Bring(team.Human)
	return err
}

// findNew is the name in agent's new/ of the message id, or "".
func (e *env) findNew(agent, id string) string {
	ids, _ := e.root.Inbox(agent).IDs()
	if dir, name := filepath.Split(ids[id]); dir == "new/" {
		return name
	}
	return ""
}

// markAnswered moves the answered ESCALATE out of the human's new/, as
// answered, so that it no longer shows as waiting.
func (e *env) markAnswered(asked *policy.Escalation) {
	human, name := filepath.Dir(filepath.Dir(asked.File)), filepath.Base(asked.File)
	if e.root.Transport != nil {
		// Delivered on another transport, and brought into the Maildir:
		// found there by its id.
		human, name = asked.To, e.findNew(asked.To, asked.MsgID)
	}
	if name == "" {
		return
	}
	c, err := e.root.Claim(human, name)
	if err != nil {
		return // read and moved by a person's mail reader, or answered already
	}
	_ = e.root.Finish(c, mailbox.FlagDone+mailbox.FlagAnswered, "answered")
}
