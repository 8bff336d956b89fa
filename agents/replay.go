package agents

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
)

// Step is one decision of a replay: the message the agent handled, what
// the ledger says it sent then, and what it sends now.
type Step struct {
	Message  string   `json:"message"` // "QUOTE <id> from vendor-b"
	Recorded []string `json:"recorded"`
	Replayed []string `json:"replayed"`
	Same     bool     `json:"same"`
	Model    []string `json:"model,omitempty"` // the model's part in it, played from its tapes
}

// Replay runs agent name's decisions on thread again: each message it
// claimed there, from its inbox, in the order it claimed them, through a
// fresh brain whose model calls are played from the agent's tapes (no
// model runs), and compares what it sends with what the ledger says it
// sent. The steps its clock took (a quote window closing, a reminder) are
// not replayed; clock counts them.
func Replay(root *mailbox.Root, team *Team, name, thread string, entries []mailbox.Entry) (steps []Step, clock int, err error) {
	a := team.Agent(name)
	if a == nil {
		return nil, 0, fmt.Errorf("no agent named %q in %s", name, TeamFile)
	}
	if a.Brain == "exec" {
		return nil, 0, fmt.Errorf("%s's brain is a program (exec): nothing is taped to replay; run it again on a message by hand (docs/EXEC.md)", name)
	}
	rules, err := NewRole(a, team, root.Inbox(name).Path(StockFile))
	if err != nil {
		return nil, 0, err
	}
	pol, err := policy.Load(filepath.Join(root.Dir, policy.File))
	if err != nil {
		return nil, 0, fmt.Errorf("replay: %w", err)
	}
	if p, ok := rules.(*Procurement); ok {
		p.Bind(pol)
	}
	brain := rules
	var uses []string
	if a.Brain == "ollama" {
		b, err := NewModel(root.Dir, team, a, rules, pol)
		if err != nil {
			return nil, 0, err
		}
		b.Ask = TapesOf(root.Dir, name).Playing()
		b.History = func(thread, cause string) string { return History(root, name, thread, cause) }
		b.Note = func(n Note) {
			how := n.Outcome
			if n.Played {
				how += ", played from its tape"
			}
			uses = append(uses, fmt.Sprintf("%s: %s: %s", n.Purpose, how, firstLine(n.Reason)))
		}
		brain = b
	}
	sent := map[string]mailbox.Entry{} // id: the decision on a message the agent sent
	caused := map[string]bool{}        // ids of messages sent in answer to a message
	for _, e := range entries {
		if e.Event == policy.EventDecision && e.Agent == name && e.Thread == thread {
			sent[e.MsgID] = e
		}
	}
	for _, e := range entries {
		if e.Event != mailbox.EventClaimed || e.Agent != name || e.Thread != thread {
			continue
		}
		m, err := claimedMessage(root, e.File)
		if err != nil {
			return nil, 0, err
		}
		uses = nil
		out := brain.Receive(e.Time, m)
		st := Step{Message: fmt.Sprintf("%s %s from %s", m.Verb, m.ID, m.From), Recorded: []string{}, Replayed: []string{}, Same: true}
		for i := 0; ; i++ {
			id := MessageID(name, m.ID, i)
			rec, was := sent[id]
			if !was && i >= len(out) {
				break
			}
			caused[id] = true
			if was {
				st.Recorded = append(st.Recorded, entryLine(rec))
			}
			if i < len(out) {
				o := out[i]
				o.ID, o.From = id, name
				st.Replayed = append(st.Replayed, entryLine(mailbox.MessageEntry(name, "", o)))
				if was && rec.Decision == string(policy.Deny) {
					brain.Denied(e.Time, o, policy.Decision{Outcome: policy.Deny, Rule: rec.Rule, Reason: rec.Reason})
				}
			}
			st.Same = st.Same && was && i < len(out) && entryLine(rec) == st.Replayed[len(st.Replayed)-1]
		}
		st.Model = uses
		steps = append(steps, st)
	}
	for id, e := range sent {
		if !caused[id] && !strings.Contains(e.Rule, "human") {
			clock++
		}
	}
	return steps, clock, nil
}

// entryLine is what replay compares of a message: verb, recipient, item,
// quantity and money.
func entryLine(e mailbox.Entry) string {
	s := fmt.Sprintf("%s to %s", e.Verb, e.To)
	if e.Item != "" {
		s += fmt.Sprintf(" %d %s", e.Quantity, e.Item)
	}
	if e.Amount != "" {
		s += fmt.Sprintf(", %s %s", e.Amount, e.Currency)
	}
	return s
}

// claimedMessage reads a message an agent claimed: the file the ledger
// names, under the mark and flags it got when it was finished.
func claimedMessage(root *mailbox.Root, file string) (*mailbox.Message, error) {
	path := root.Inbox(filepath.Dir(filepath.Dir(file))).Locate(filepath.Base(file))
	if path == "" {
		return nil, fmt.Errorf("replay: %s is no longer in the inbox: %w", file, os.ErrNotExist)
	}
	data, err := mailbox.ReadMessageFile(path, root.MaxMessageSize)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	m, err := mailbox.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("replay: %s: %w", path, err)
	}
	return m, nil
}
