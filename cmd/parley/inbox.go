package main

import (
	"errors"
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/urfave/cli/v2"
)

func inboxCommand() *cli.Command {
	return &cli.Command{
		Name:      "inbox",
		Usage:     "list an agent's messages with their state",
		ArgsUsage: "NAME",
		Description: `Lists the messages in an agent's inbox, oldest first (the human's, newest
first, with the question each asks in its subject): the state (new:
waiting; claimed: being handled; done; answered; failed: needs a person;
expired: waiting past its Expires), the age, verb, sender and subject.

Example:
   parley inbox procurement
   parley inbox human --new
   parley inbox finance --json | jq .subject`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "new", Usage: "only messages still waiting"},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object a message"},
		},
		Action: withRoot(1, 1, "one agent NAME", func(c *cli.Context, e *env) error {
			name := c.Args().First()
			if err := e.agent(name); err != nil {
				return err
			}
			if team, err := e.team(); err == nil && name == team.Human {
				if err := e.bringHuman(); err != nil {
					return err
				}
			}
			rows, err := e.inbox(name, c.Bool("new"))
			if err != nil {
				return err
			}
			if team, err := e.team(); err == nil && name == team.Human {
				slices.Reverse(rows) // a person reads the newest first; agents take the oldest first
			}
			if c.Bool("json") {
				for _, r := range rows {
					if err := printJSON(e.stdout, r); err != nil {
						return err
					}
				}
				return nil
			}
			if len(rows) == 0 {
				fmt.Fprintf(e.stdout, "%s's inbox is empty\n", name)
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STATE\tAGE\tVERB\tFROM\tSUBJECT")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.State, age(e.now().Sub(r.Date)), r.Verb, r.From, r.Subject)
			}
			return tw.Flush()
		}),
	}
}

// inboxItems lists name's inbox: its Maildir's files, or on a transport
// that keeps inboxes elsewhere, what waits there — but for the human's,
// which is brought into its Maildir for a person to read.
func (e *env) inboxItems(name string) ([]mailbox.Peeked, error) {
	if p, ok := e.root.Transport.(mailbox.Peeker); ok {
		if team, err := e.team(); err == nil && name != team.Human {
			return p.Peek(name)
		}
	}
	items, err := e.root.Inbox(name).List(e.record())
	if err != nil {
		return nil, err
	}
	out := make([]mailbox.Peeked, len(items))
	for i, it := range items {
		out[i] = mailbox.Peeked{State: it.State, Time: it.MTime, Where: it.Path}
	}
	return out, nil
}

// record is what the ledger says parley did with inbox files it claimed
// before it marked its claims (see mailbox.Record); empty if it cannot be
// read, which makes such files show as waiting rather than as done.
func (e *env) record() mailbox.Record {
	path, err := e.root.LedgerPath()
	if err != nil {
		return nil
	}
	rec, _ := mailbox.ReadRecord(path)
	return rec
}

type inboxRow struct {
	State   string    `json:"state"`
	Date    time.Time `json:"date"`
	Verb    string    `json:"verb"`
	From    string    `json:"from"`
	Subject string    `json:"subject"`
	MsgID   string    `json:"msg_id,omitempty"`
	Thread  string    `json:"thread,omitempty"`
	File    string    `json:"file"`
	Problem string    `json:"problem,omitempty"`
}

func (e *env) inbox(name string, onlyNew bool) ([]inboxRow, error) {
	items, err := e.inboxItems(name)
	if err != nil {
		return nil, err
	}
	// The questions put to the human stand where the escalation's one
	// state machine says: waiting, answered, expired or withdrawn.
	asked := map[string]string{}
	if team, err := e.team(); err == nil && name == team.Human {
		if st, _, err := e.engine().State(); err == nil {
			for _, x := range st.Escalations(name, "") {
				asked[x.MsgID] = x.State(e.now())
			}
		}
	}
	var rows []inboxRow
	for _, it := range items {
		if onlyNew && it.State != mailbox.StateNew {
			continue
		}
		row := inboxRow{State: string(it.State), Date: it.Time, File: it.Where, Verb: "?"}
		data := it.Data
		if data == nil {
			data, err = mailbox.ReadMessageFile(it.Where, e.root.MaxMessageSize)
			if errors.Is(err, mailbox.ErrStranger) {
				// Shown, unread: a person should know it is there.
				row.Problem = err.Error()
				row.Subject = "(not a message file: " + err.Error() + ")"
				rows = append(rows, row)
				continue
			}
			if err != nil {
				continue // claimed and moved on since the listing
			}
		}
		m, err := mailbox.Parse(data)
		if err == nil {
			err = m.Validate()
		}
		if err != nil {
			row.Problem = err.Error()
			row.Subject = "(not a valid message: " + err.Error() + ")"
		} else {
			row.Date, row.Verb, row.From, row.Subject, row.MsgID, row.Thread = m.Date, string(m.Verb), m.From, m.Subject, m.ID, m.Thread
			if state, ok := asked[m.ID]; ok && m.Verb == mailbox.Escalate {
				row.State = state
			} else if it.State == mailbox.StateNew && !m.Expires.IsZero() && e.now().After(m.Expires) {
				row.State = "expired"
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}
