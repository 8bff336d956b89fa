package agents

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

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

// Replay runs agent name's decisions on thread again, clock steps
// included: each message it claimed there, from its inbox, and each step
// its clock took there (a quote window closing, a reminder, the human's
// decision timeout), in the order the ledger has them, through a fresh
// brain whose model calls are played from the agent's tapes (no model
// runs), and compares what it sends with what the ledger says it sent. A
// clock step is taken at the Date of the first message it sent; what the
// policy denied or held for the human is told to the brain as it was then,
// and a held message goes again when the human's answer is replayed. Clock
// is how many of the steps are the clock's.
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
	rp := &replayer{name: name, human: team.Human, thread: thread, brain: rules, sent: map[string][]mailbox.Entry{}, done: map[uint64]bool{}, entries: entries}
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
			rp.uses = append(rp.uses, fmt.Sprintf("%s: %s: %s", n.Purpose, how, firstLine(n.Reason)))
		}
		rp.brain = b
	}
	for _, e := range entries {
		if e.Event == policy.EventDecision && e.Agent == name && e.Thread == thread {
			rp.sent[e.MsgID] = append(rp.sent[e.MsgID], e)
		}
	}
	// A claim with no finish after it (before the message was claimed
	// again) was cut short by a stop: nothing of it was done, and the
	// message is handled when the agent starts again. It is not replayed.
	unfinished := map[uint64]bool{}
	open := map[string]uint64{} // Message-ID: the seq of its claim not yet finished
	for _, e := range entries {
		if e.Agent != name || e.Thread != thread {
			continue
		}
		switch e.Event {
		case mailbox.EventClaimed:
			if seq, ok := open[e.MsgID]; ok {
				unfinished[seq] = true
			}
			open[e.MsgID] = e.Seq
		case mailbox.EventDone, mailbox.EventFailed, mailbox.EventRejected:
			delete(open, e.MsgID)
		}
	}
	for _, seq := range open {
		unfinished[seq] = true
	}
	for _, e := range entries {
		switch {
		case e.Agent != name || e.Thread != thread:
		case e.Event == mailbox.EventClaimed && unfinished[e.Seq]:
		case e.Event == mailbox.EventClaimed:
			m, err := claimedMessage(root, e.File)
			if err != nil {
				return nil, 0, err
			}
			steps = append(steps, rp.receive(e.Time, m))
		case e.Event == policy.EventDecision && !rp.done[e.Seq]:
			// Sent, and by no message replayed so far: a step of the clock.
			steps = append(steps, rp.tick(e))
			clock++
		}
	}
	return steps, clock, nil
}

// replayer is the state of one replay.
type replayer struct {
	name, human, thread string
	brain               Role
	// sent holds the decisions on each message the agent sent, by id, in
	// order: a message held for the human goes again under its id.
	sent map[string][]mailbox.Entry
	done map[uint64]bool    // the decisions replayed, by Seq
	held []*mailbox.Message // what waits for the human, as replayed
	uses []string           // the model's part in the step
	// entries is the whole ledger: what the runtime knew from it at each
	// step (where the human's decisions stood) is told the brain again.
	entries []mailbox.Entry
}

// tellAsked tells the brain where the human's decisions stood before the
// ledger line seq, as the runtime told it then.
func (rp *replayer) tellAsked(seq uint64, at time.Time) {
	role := rp.brain
	if b, ok := role.(*Model); ok {
		role = b.Rules
	}
	a, ok := role.(asker)
	if !ok || !a.Chasing(at) {
		return
	}
	st := policy.NewState()
	for _, e := range rp.entries {
		if e.Seq >= seq {
			break
		}
		st.Apply(e)
	}
	a.Asked(AskedOf(st.Escalations(rp.human, ""), at))
}

// receive replays the handling of m, claimed at t.
func (rp *replayer) receive(t time.Time, m *mailbox.Message) Step {
	rp.uses = nil
	st := Step{Message: fmt.Sprintf("%s %s from %s", m.Verb, m.ID, m.From), Recorded: []string{}, Replayed: []string{}, Same: true}
	if m.From == rp.human && len(rp.held) > 0 && (m.Verb == mailbox.Approved || m.Verb == mailbox.Denied) {
		// The runtime's answer to the human's: the held messages go, or the
		// role hears they were denied.
		held := rp.held
		rp.held = nil
		if m.Verb == mailbox.Approved {
			rp.play(&st, m.ID+"|approved", held, t, false)
		} else {
			for _, h := range held {
				d := policy.Decision{Outcome: policy.Deny, Rule: "human.denied", Reason: rp.human + " denied it: " + firstLine(m.Body, m.Subject)}
				rp.play(&st, m.ID+"|denied|"+h.ID, rp.brain.Denied(t, h, d), t, false)
			}
		}
	}
	out := rp.brain.Receive(t, m)
	rp.sentAt(rp.when(m.ID, t), out)
	rp.play(&st, m.ID, out, rp.when(m.ID, t), true)
	st.Model = rp.uses
	return st
}

// tick replays the step of the clock that sent e: the role's timers run at
// e's Date, and the human's decision timeout.
func (rp *replayer) tick(e mailbox.Entry) Step {
	rp.uses = nil
	at := e.Date
	if at.IsZero() {
		at = e.Time // a ledger written before entries had dates
	}
	st := Step{Message: "the clock at " + at.UTC().Format(time.TimeOnly), Recorded: []string{}, Replayed: []string{}, Same: true}
	for _, h := range rp.held {
		if h.ID == e.MsgID {
			// The human did not answer in time: what was held is decided
			// again.
			held := rp.held
			rp.held = nil
			rp.play(&st, "timeout|"+rp.thread, held, at, false)
			break
		}
	}
	rp.tellAsked(e.Seq, at)
	var out []*mailbox.Message
	for _, m := range rp.brain.Tick(at) {
		if m.Thread == rp.thread {
			out = append(out, m)
		}
	}
	rp.sentAt(at, out)
	for _, m := range out {
		m.ID = tickID(rp.name, m)
	}
	rp.play(&st, "tick", out, at, false)
	if !rp.done[e.Seq] {
		// Sent then, and not by this step now.
		rp.done[e.Seq] = true
		st.Recorded, st.Same = append(st.Recorded, entryLine(e)), false
	}
	st.Model = rp.uses
	return st
}

// take returns the first decision on id not replayed yet.
func (rp *replayer) take(id string) (mailbox.Entry, bool) {
	for _, e := range rp.sent[id] {
		if !rp.done[e.Seq] {
			rp.done[e.Seq] = true
			return e, true
		}
	}
	return mailbox.Entry{}, false
}

// recorded reports whether a decision on id is still to be replayed.
func (rp *replayer) recorded(id string) bool {
	for _, e := range rp.sent[id] {
		if !rp.done[e.Seq] {
			return true
		}
	}
	return false
}

// when is the Date of the first message sent under key: when the step's
// messages went out; t when it sent none.
func (rp *replayer) when(key string, t time.Time) time.Time {
	if es := rp.sent[MessageID(rp.name, key, 0)]; len(es) > 0 && !es[0].Date.IsZero() {
		return es[0].Date
	}
	return t
}

// sentAt tells the brain when the step's messages went out, as the runtime
// did.
func (rp *replayer) sentAt(at time.Time, out []*mailbox.Message) {
	if s, ok := rp.brain.(sender); ok && len(out) > 0 {
		s.Sent(at, out)
	}
}

// play compares out, sent under key, with what the ledger recorded under
// the same ids, and tells the brain what the policy denied or held then,
// replaying what it does next. All, for a message's own step, also counts
// what was recorded under key beyond what comes out now. A message with an
// id keeps it, as the runtime's send keeps it (the clock's, one held for
// the human).
func (rp *replayer) play(st *Step, key string, out []*mailbox.Message, at time.Time, all bool) {
	for i := 0; ; i++ {
		id := MessageID(rp.name, key, i)
		if i >= len(out) && (!all || !rp.recorded(id)) {
			return
		}
		if i < len(out) && out[i].ID != "" {
			id = out[i].ID
		}
		rec, was := rp.take(id)
		if was {
			st.Recorded = append(st.Recorded, entryLine(rec))
		}
		if i >= len(out) {
			st.Same = false
			continue
		}
		o := out[i]
		o.ID, o.From = id, rp.name
		line := entryLine(mailbox.MessageEntry(rp.name, "", o))
		st.Replayed = append(st.Replayed, line)
		st.Same = st.Same && was && entryLine(rec) == line
		if !was {
			continue
		}
		switch rec.Decision {
		case string(policy.Deny):
			next := rp.brain.Denied(at, o, policy.Decision{Outcome: policy.Deny, Rule: rec.Rule, Reason: rec.Reason})
			rp.play(st, key+"|denied|"+id, next, at, false)
		case string(policy.Escalate):
			rp.held = append(rp.held, o)
		}
	}
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
