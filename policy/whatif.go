package policy

import (
	"time"

	"github.com/parley-dev/parley/mailbox"
)

// Change is a recorded decision that a policy would have made otherwise.
type Change struct {
	Seq    uint64   `json:"seq"`
	Agent  string   `json:"agent"`
	Verb   string   `json:"verb"`
	To     string   `json:"to"`
	Thread string   `json:"thread"`
	Amount string   `json:"amount,omitempty"`
	Was    Decision `json:"was"`
	Would  Decision `json:"would"`
}

// WhatIf is what a policy would have decided over a recorded ledger.
type WhatIf struct {
	Decisions int             `json:"decisions"`
	Changes   []Change        `json:"changes"`
	Would     map[Outcome]int `json:"would"` // outcomes under the new policy
	Was       map[Outcome]int `json:"was"`
	// The books at the ledger's last line, as recorded and as the policy
	// would have kept them: every figure defined once (Books).
	WasBooks   Figures `json:"was_books"`
	WouldBooks Figures `json:"would_books"`
	Currency   string  `json:"currency"`
}

// Replay judges every decision recorded in entries again under p, as if p
// had been in force: each decision is made from the history as p would have
// shaped it (a denial p makes frees the budget that an allowed spend used),
// and everything else that happened is taken as it was.
func Replay(entries []mailbox.Entry, p *Policy) WhatIf {
	s, orig := NewState(), NewState()
	s.Follow(p)
	orig.Follow(p)
	w := WhatIf{Would: map[Outcome]int{}, Was: map[Outcome]int{}, Currency: p.Currency}
	var last time.Time
	for _, e := range entries {
		orig.Apply(e)
		last = e.Time
		if e.Event != EventDecision {
			s.Apply(e)
			continue
		}
		a := actionOf(e)
		old := Decision{Outcome: Outcome(e.Decision), Rule: e.Rule, Reason: e.Reason, Policy: e.Policy}
		d := s.Evaluate(p, a, e.Time)
		w.Decisions++
		w.Was[old.Outcome]++
		w.Would[d.Outcome]++
		if d.Outcome != old.Outcome || d.Rule != old.Rule {
			w.Changes = append(w.Changes, Change{Seq: e.Seq, Agent: e.Agent, Verb: e.Verb, To: e.To, Thread: e.Thread,
				Amount: e.Amount, Was: old, Would: d})
		}
		e.Decision, e.Rule, e.Reason, e.Policy = string(d.Outcome), d.Rule, d.Reason, d.Policy
		s.Apply(e)
	}
	reserve := p.Budget.ReserveFor.Duration
	w.WasBooks, w.WouldBooks = orig.books.Totals(reserve, last), s.books.Totals(reserve, last)
	return w
}

// actionOf rebuilds the action a decision entry was about.
func actionOf(e mailbox.Entry) Action {
	m := &mailbox.Message{ID: e.MsgID, Date: e.Time, From: e.From, To: e.To, Thread: e.Thread, InReplyTo: e.InReplyTo,
		Verb: mailbox.Verb(e.Verb), Item: e.Item, Quantity: e.Quantity}
	if e.Amount != "" {
		m.Amount, _ = mailbox.ParseMoney(e.Amount + " " + e.Currency)
	}
	if e.Vendor != "" {
		m.Extra = []mailbox.Header{{Name: "Vendor", Value: e.Vendor}}
	}
	return Action{Agent: e.Agent, Message: m}
}
