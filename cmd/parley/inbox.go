package main

import (
	"errors"
	"fmt"
	"path/filepath"
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

The human's inbox is a mailbox a person keeps, as a mail client keeps it:
a notice is new until read (the Maildir flag S, which neomutt, notmuch and
Python's mailbox set and show too), then read; an escalation is waiting,
answered, expired or withdrawn. --read marks messages read; --archive
moves them into the archive, human/.Archive, a Maildir of its own (a
subfolder to any mail client); --archived lists it. Neither changes what
parley did with a message, and the ledger finds a message wherever it is.

Example:
   parley inbox procurement
   parley inbox human --new
   parley inbox human --read restock-widget-1
   parley inbox human --archive done
   parley inbox finance --json | jq .subject`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "new", Usage: "only messages still waiting (the human's: unread, or an escalation waiting)"},
			&cli.BoolFlag{Name: "json", Usage: "one JSON object a message"},
			&cli.StringFlag{Name: "read", Usage: "the human's: mark read the messages of THREAD, the message ID, or all"},
			&cli.StringFlag{Name: "archive", Usage: "the human's: archive the messages of THREAD, the message ID, or done (every one read, or answered)"},
			&cli.BoolFlag{Name: "archived", Usage: "the human's: list the archive"},
		},
		Action: withRoot(1, 1, "one agent NAME", func(c *cli.Context, e *env) error {
			name := c.Args().First()
			if err := e.agent(name); err != nil {
				return err
			}
			human := false
			if team, err := e.team(); err == nil && name == team.Human {
				human = true
				if err := e.bringHuman(); err != nil {
					return err
				}
			}
			keeping := 0
			for _, f := range []string{"read", "archive", "archived"} {
				if c.IsSet(f) {
					keeping++
					if !human {
						return usageError{fmt.Errorf("--%s is for the human's inbox, which a person keeps; %s's is its agent's", f, name)}
					}
				}
			}
			if keeping > 1 {
				return usageError{errors.New("one of --read, --archive and --archived at a time")}
			}
			switch {
			case c.IsSet("read"):
				return e.keepHuman(name, c.String("read"), "read")
			case c.IsSet("archive"):
				return e.keepHuman(name, c.String("archive"), "archive")
			}
			rows, err := e.inbox(name, c.Bool("new"), c.Bool("archived"))
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
				switch {
				case c.Bool("archived"):
					fmt.Fprintf(e.stdout, "%s's archive is empty\n", name)
				case c.Bool("new") && human:
					fmt.Fprintf(e.stdout, "nothing new in %s's inbox\n", name)
				default:
					fmt.Fprintf(e.stdout, "%s's inbox is empty\n", name)
				}
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
func (e *env) inboxItems(name string, archived bool) ([]mailbox.Peeked, error) {
	if p, ok := e.root.Transport.(mailbox.Peeker); ok {
		if team, err := e.team(); err == nil && name != team.Human {
			return p.Peek(name)
		}
	}
	inbox := e.root.Inbox(name)
	if archived {
		inbox = inbox.Archive()
		if !inbox.Exists() {
			return nil, nil
		}
	}
	items, err := inbox.List(e.record())
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
	if e.root.Transport == nil {
		rec, _ := mailbox.ReadRootRecord(e.root.Dir) // from its checkpoint, as an agent's inbox reads it
		return rec
	}
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
	Seen    bool      `json:"seen,omitempty"` // the human's: read (Maildir flag S)
	Problem string    `json:"problem,omitempty"`
}

// keepHuman marks read (how "read") or archives (how "archive") the
// messages of the human's inbox that what names: a thread, a message id,
// "all" (to read) or "done" (to archive: every message read, and every
// escalation no longer waiting). An escalation that waits for an answer is
// not archived: it would hide the question.
func (e *env) keepHuman(name, what, how string) error {
	rows, err := e.inbox(name, false, false)
	if err != nil {
		return err
	}
	var picked []inboxRow
	threads := map[string]bool{}
	for _, r := range rows {
		threads[r.Thread] = r.Thread != ""
		switch {
		case what == "all" && how == "read",
			what == "done" && how == "archive" && r.State != "waiting" && (r.Seen || r.State != string(mailbox.StateNew)),
			r.Thread == what, r.MsgID == what:
			picked = append(picked, r)
		}
	}
	if len(picked) == 0 && what != "all" && what != "done" {
		var known []string
		for t, ok := range threads {
			if ok {
				known = append(known, t)
			}
		}
		slices.Sort(known) // one guess, the same every time
		hint := e.cmd("inbox", name) + " lists them"
		if guess := suggest(what, known); guess != "" {
			hint = "did you mean " + guess + "? " + hint
		}
		return withHint(fmt.Errorf("no message of thread or id %q in %s's inbox", what, name), hint)
	}
	inbox := e.root.Inbox(name)
	n := 0
	for _, r := range picked {
		if how == "archive" && r.State == "waiting" {
			return withHint(fmt.Errorf("the escalation on %s waits for an answer: not archived", r.Thread),
				fmt.Sprintf("answer it first: %s, or %s", e.cmd("approve", r.Thread), e.cmd("deny", r.Thread, "--reason", "...")))
		}
		var to string
		if how == "read" {
			if r.Seen {
				continue
			}
			to, err = inbox.MarkSeen(r.File)
		} else {
			to, err = inbox.MoveToArchive(r.File)
		}
		if errors.Is(err, mailbox.ErrVanished) {
			continue // a mail client moved it a moment ago
		}
		if err != nil {
			return err
		}
		if how == "archive" {
			if err := e.recordArchived(name, r, to); err != nil {
				return err
			}
		}
		n++
	}
	switch how {
	case "read":
		fmt.Fprintf(e.stdout, "marked %d message(s) read\n", n)
	default:
		fmt.Fprintf(e.stdout, "archived %d message(s) into %s\n", n, filepath.Join(inbox.Dir, mailbox.ArchiveDir))
	}
	return nil
}

// recordArchived appends the ledger's line for a message a person moved
// into the archive: where it went, for whoever looks for it.
func (e *env) recordArchived(name string, r inboxRow, to string) error {
	l, err := e.root.Ledger()
	if err != nil {
		return err
	}
	x := mailbox.Entry{Agent: name, Event: mailbox.EventArchived, Thread: r.Thread, MsgID: r.MsgID, Verb: r.Verb, From: r.From, To: name, Subject: r.Subject}
	if rel, err := filepath.Rel(e.root.Dir, to); err == nil {
		x.File = rel
	}
	_, err = l.Append(x)
	return err
}

func (e *env) inbox(name string, onlyNew, archived bool) ([]inboxRow, error) {
	items, err := e.inboxItems(name, archived)
	if err != nil {
		return nil, err
	}
	// The questions put to the human stand where the escalation's one
	// state machine says: waiting, answered, expired or withdrawn.
	asked := map[string]string{}
	human := false
	if team, err := e.team(); err == nil && name == team.Human {
		human = true
		if st, _, err := e.engine().State(); err == nil {
			for _, x := range st.Escalations(name, "") {
				asked[x.MsgID] = x.State(e.now())
			}
		}
	}
	var rows []inboxRow
	for _, it := range items {
		if onlyNew && it.State != mailbox.StateNew && !human {
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
			if _, ok := asked[m.ID]; !ok && human && m.Verb == mailbox.Escalate {
				// A question on a thread retired from the policy's
				// working set (settled, idle a week): brought back.
				if st, _, err := e.engine().StateOf(m.Thread); err == nil {
					for _, x := range st.Escalations(name, m.Thread) {
						asked[x.MsgID] = x.State(e.now())
					}
				}
			}
			if state, ok := asked[m.ID]; ok && m.Verb == mailbox.Escalate {
				row.State = state
			} else if it.State == mailbox.StateNew && !m.Expires.IsZero() && e.now().After(m.Expires) {
				row.State = "expired"
			} else if human && it.State == mailbox.StateNew && mailbox.Seen(filepath.Base(it.Where)) {
				row.State = "read" // a person read it: parley's or a mail client's S
			}
		}
		if human {
			row.Seen = mailbox.Seen(filepath.Base(it.Where))
			// What is new to a person: unread, or a question still open.
			if onlyNew && !(row.State == string(mailbox.StateNew) || row.State == "waiting" || row.State == "expired" && !row.Seen) {
				continue
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}
