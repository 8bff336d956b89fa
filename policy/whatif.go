package policy

import (
	"github.com/parley-dev/parley/mailbox"
	"github.com/shopspring/decimal"
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
	// Money allowed to be committed (APPROVED, ORDER, PAID) before and after.
	WasSpend   string `json:"was_spend"`
	WouldSpend string `json:"would_spend"`
	Currency   string `json:"currency"`
}

// Replay judges every decision recorded in entries again under p, as if p
// had been in force: each decision is made from the history as p would have
// shaped it (a denial p makes frees the budget that an allowed spend used),
// and everything else that happened is taken as it was.
func Replay(entries []mailbox.Entry, p *Policy) WhatIf {
	s := NewState()
	w := WhatIf{Would: map[Outcome]int{}, Was: map[Outcome]int{}, Currency: p.Currency}
	var was, would decimal.Decimal
	for _, e := range entries {
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
		if isMoney(a.Message.Verb) && e.Amount != "" {
			amt, _ := decimal.NewFromString(e.Amount)
			if old.Outcome == Allow {
				was = was.Add(amt)
			}
			if d.Outcome == Allow {
				would = would.Add(amt)
			}
		}
		if d.Outcome != old.Outcome || d.Rule != old.Rule {
			w.Changes = append(w.Changes, Change{Seq: e.Seq, Agent: e.Agent, Verb: e.Verb, To: e.To, Thread: e.Thread,
				Amount: e.Amount, Was: old, Would: d})
		}
		e.Decision, e.Rule, e.Reason, e.Policy = string(d.Outcome), d.Rule, d.Reason, d.Policy
		s.Apply(e)
	}
	w.WasSpend, w.WouldSpend = p.money(was).String(), p.money(would).String()
	return w
}

// actionOf rebuilds the action a decision entry was about.
func actionOf(e mailbox.Entry) Action {
	m := &mailbox.Message{ID: e.MsgID, Date: e.Time, From: e.From, To: e.To, Thread: e.Thread, InReplyTo: e.InReplyTo,
		Verb: mailbox.Verb(e.Verb), Item: e.Item, Quantity: e.Quantity}
	if e.Amount != "" {
		m.Amount, _ = mailbox.ParseMoney(e.Amount + " " + e.Currency)
	}
	return Action{Agent: e.Agent, Message: m}
}
