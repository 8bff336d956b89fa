package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func defaultPolicy(t testing.TB) *Policy {
	t.Helper()
	p, err := Parse("policy.toml", Default)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var msgSeq int

// msg builds a message; amount "" for none.
func msg(from, to string, verb mailbox.Verb, thread, amount string) *mailbox.Message {
	msgSeq++
	m := &mailbox.Message{Version: "1", ID: fmt.Sprintf("<%d@test>", msgSeq), Date: now, From: from, To: to,
		Thread: thread, Verb: verb, Item: "widget", Quantity: 500}
	if amount != "" {
		m.Amount = mailbox.MustMoney(amount)
	}
	return m
}

func delivered(m *mailbox.Message, at time.Time) mailbox.Entry {
	e := mailbox.MessageEntry(m.From, mailbox.EventDelivered, m)
	e.Time = at
	return e
}

func decisionEntry(m *mailbox.Message, o Outcome, rule string, at time.Time) mailbox.Entry {
	e := mailbox.MessageEntry(m.From, EventDecision, m)
	e.Time, e.Decision, e.Rule = at, string(o), rule
	return e
}

// approvedOn is finance's allowed approval of amount on thread, at.
func approvedOn(thread, amount string, at time.Time) []mailbox.Entry {
	m := msg("finance", "procurement", mailbox.Approved, thread, amount)
	return []mailbox.Entry{decisionEntry(m, Allow, "allow.4", at), delivered(m, at)}
}

func orderedOn(thread, to, amount string, at time.Time) []mailbox.Entry {
	m := msg("procurement", to, mailbox.Order, thread, amount)
	return []mailbox.Entry{decisionEntry(m, Allow, "allow.2", at), delivered(m, at)}
}

func paidOn(thread, amount string, at time.Time) []mailbox.Entry {
	m := msg("finance", "vendor-b", mailbox.Paid, thread, amount)
	return []mailbox.Entry{decisionEntry(m, Allow, "allow.4", at), delivered(m, at)}
}

func many(n int, f func(i int) []mailbox.Entry) []mailbox.Entry {
	var out []mailbox.Entry
	for i := 0; i < n; i++ {
		out = append(out, f(i)...)
	}
	return out
}

func join(parts ...[]mailbox.Entry) []mailbox.Entry {
	var out []mailbox.Entry
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestRules has a case for every rule: the ledger before, the action, and
// the decision with the rule that made it.
func TestRules(t *testing.T) {
	hour := time.Hour
	tests := []struct {
		name    string
		ledger  []mailbox.Entry
		agent   string
		m       *mailbox.Message
		outcome Outcome
		rule    string
		reason  string // a part of the reason
	}{
		{"allowed by an allow rule", nil, "inventory", msg("inventory", "procurement", mailbox.Request, "t", ""), Allow, "allow.1", "rule 1 lets inventory send REQUEST"},
		{"forged From", nil, "vendor-b", msg("finance", "procurement", mailbox.Approved, "t", "100.00 USD"), Deny, "from", "says it is from finance, but vendor-b is sending it"},
		{"far-future Date", nil, "procurement", func() *mailbox.Message {
			m := msg("procurement", "vendor-b", mailbox.Request, "t", "")
			m.Date = now.Add(48 * hour)
			return m
		}(), Deny, "date", "in the future"},
		{"verb the sender may not use", nil, "vendor-b", msg("vendor-b", "finance", mailbox.Paid, "t", "10.00 USD"), Deny, "allow", "no [[allow]] rule lets vendor-b send PAID to finance"},
		{"recipient the sender may not write to", nil, "inventory", msg("inventory", "vendor-b", mailbox.Request, "t", ""), Deny, "allow", ""},
		{"rate limit", many(300, func(i int) []mailbox.Entry {
			return []mailbox.Entry{delivered(msg("procurement", "vendor-b", mailbox.Request, fmt.Sprint("r", i), ""), now.Add(-30*time.Second))}
		}), "procurement", msg("procurement", "vendor-b", mailbox.Request, "t", ""), Deny, "rate.messages_per_minute", "sent 300 messages in the last minute"},
		{"rate limit forgets after a minute", many(300, func(i int) []mailbox.Entry {
			return []mailbox.Entry{delivered(msg("procurement", "vendor-b", mailbox.Request, fmt.Sprint("r", i), ""), now.Add(-2*time.Minute))}
		}), "procurement", msg("procurement", "vendor-b", mailbox.Request, "t", ""), Allow, "allow.2", ""},
		{"hop fuse", many(40, func(i int) []mailbox.Entry {
			return []mailbox.Entry{delivered(msg("procurement", "vendor-b", mailbox.Request, "loop", ""), now.Add(-hour))}
		}), "procurement", msg("procurement", "vendor-b", mailbox.Request, "loop", ""), Escalate, "fuses.max_hops", "already has 40 messages"},
		{"a stopped thread may still tell the human", join(
			[]mailbox.Entry{decisionEntry(msg("procurement", "vendor-b", mailbox.Request, "loop", ""), Escalate, "fuses.max_hops", now)},
		), "procurement", msg("procurement", "human", mailbox.Notify, "loop", ""), Allow, "allow.2", ""},
		{"a stopped thread stays stopped", join(
			[]mailbox.Entry{decisionEntry(msg("procurement", "vendor-b", mailbox.Request, "loop", ""), Escalate, "fuses.max_hops", now)},
		), "vendor-b", msg("vendor-b", "procurement", mailbox.Quote, "loop", "1.00 USD"), Deny, "fuses.max_hops", "was stopped"},
		{"token fuse", []mailbox.Entry{{Time: now, Agent: "procurement", Event: "llm", Thread: "t", Tokens: 160000}},
			"procurement", msg("procurement", "vendor-b", mailbox.Counter, "t", ""), Escalate, "fuses.max_tokens", "160000 model tokens"},
		{"token fuse for each agent asked", []mailbox.Entry{
			delivered(msg("procurement", "vendor-a", mailbox.Request, "t", ""), now),
			delivered(msg("procurement", "vendor-b", mailbox.Request, "t", ""), now),
			{Time: now, Agent: "procurement", Event: "llm", Thread: "t", Tokens: 290000}},
			"procurement", msg("procurement", "vendor-b", mailbox.Counter, "t", ""), Allow, "allow.2", ""},
		{"token fuse for each agent asked, passed", []mailbox.Entry{
			delivered(msg("procurement", "vendor-a", mailbox.Request, "t", ""), now),
			delivered(msg("procurement", "vendor-b", mailbox.Request, "t", ""), now),
			{Time: now, Agent: "procurement", Event: "llm", Thread: "t", Tokens: 310000}},
			"procurement", msg("procurement", "vendor-b", mailbox.Counter, "t", ""), Escalate, "fuses.max_tokens", "the fuse is 300000"},
		{"negotiation rounds", many(12, func(i int) []mailbox.Entry {
			return []mailbox.Entry{delivered(msg("procurement", "vendor-b", mailbox.Counter, "t", ""), now)}
		}), "vendor-b", msg("vendor-b", "procurement", mailbox.Counter, "t", ""), Deny, "negotiation.max_rounds", "exchanged 12 counter-offers"},
		{"another currency", nil, "finance", msg("finance", "procurement", mailbox.Approved, "t", "100.00 EUR"), Deny, "currency", "not in USD"},
		{"a negative price made in code, past the parser", nil, "vendor-b", func() *mailbox.Message {
			m := msg("vendor-b", "procurement", mailbox.Quote, "t", "")
			m.UnitPrice = mailbox.Money{Amount: mailbox.MustMoney("4.80 USD").Amount.Neg(), Currency: "USD"}
			return m
		}(), Deny, "amount", "-2400.00 USD"},
		{"nothing to spend", nil, "finance", msg("finance", "procurement", mailbox.Approved, "t", "0.00 USD"), Deny, "amount", ""},
		{"money verb without an amount", nil, "finance", msg("finance", "procurement", mailbox.Approved, "t", ""), Deny, "amount", "must say how much"},
		{"per-transaction cap", nil, "finance", msg("finance", "procurement", mailbox.Approved, "t", "5000.01 USD"), Deny, "limits.per_transaction", "above the per-transaction limit of 5000.00 USD"},
		{"approval within limits", nil, "finance", msg("finance", "procurement", mailbox.Approved, "t", "2400.00 USD"), Allow, "allow.4", ""},
		{"above the sign-off threshold", nil, "finance", msg("finance", "procurement", mailbox.Approved, "t", "3000.00 USD"), Escalate, "human.approval_over", "above 2500.00 USD, the amount the human signs off"},
		{"the human approved", []mailbox.Entry{delivered(msg("human", "finance", mailbox.Approved, "t", "3000.00 USD"), now)},
			"finance", msg("finance", "procurement", mailbox.Approved, "t", "3000.00 USD"), Allow, "human.approved", "human approved up to 3000.00 USD"},
		{"the human's answer claimed before its delivery is recorded", []mailbox.Entry{func() mailbox.Entry {
			e := mailbox.MessageEntry("finance", mailbox.EventClaimed, msg("human", "finance", mailbox.Approved, "t", "3000.00 USD"))
			e.Time = now
			return e
		}()}, "finance", msg("finance", "procurement", mailbox.Approved, "t", "3000.00 USD"), Allow, "human.approved", ""},
		{"the human approved less", []mailbox.Entry{delivered(msg("human", "finance", mailbox.Approved, "t", "2800.00 USD"), now)},
			"finance", msg("finance", "procurement", mailbox.Approved, "t", "3000.00 USD"), Escalate, "human.approval_over", ""},
		{"the human denied", []mailbox.Entry{delivered(msg("human", "finance", mailbox.Denied, "t", ""), now)},
			"finance", msg("finance", "procurement", mailbox.Approved, "t", "100.00 USD"), Deny, "human.denied", "human denied thread t"},
		{"an approval from someone else is not the human's", []mailbox.Entry{delivered(msg("vendor-b", "finance", mailbox.Approved, "t", "3000.00 USD"), now)},
			"finance", msg("finance", "procurement", mailbox.Approved, "t", "3000.00 USD"), Escalate, "human.approval_over", ""},
		{"the human did not answer in time", []mailbox.Entry{decisionEntry(msg("finance", "procurement", mailbox.Approved, "t", "3000.00 USD"), Escalate, "human.approval_over", now.Add(-25*hour))},
			"finance", msg("finance", "procurement", mailbox.Approved, "t", "3000.00 USD"), Deny, "human.timeout", "did not answer within 24h0m0s"},
		{"the human still has time", []mailbox.Entry{decisionEntry(msg("finance", "procurement", mailbox.Approved, "t", "3000.00 USD"), Escalate, "human.approval_over", now.Add(-hour))},
			"finance", msg("finance", "procurement", mailbox.Approved, "t", "3000.00 USD"), Escalate, "human.approval_over", ""},
		{"the human's own answer", nil, "human", msg("human", "finance", mailbox.Approved, "t", "4000.00 USD"), Allow, "allow.5", ""},
		{"the budget", join(
			many(41, func(i int) []mailbox.Entry { return paidOn(fmt.Sprint("p", i), "2400.00 USD", now.Add(-48*hour)) }),
			approvedOn("held", "1000.00 USD", now.Add(-hour)),
		), "finance", msg("finance", "procurement", mailbox.Approved, "t", "1500.00 USD"), Deny, "budget", "with 99400.00 USD already spent or held this month makes 100900.00 USD, above the budget of 100000.00 USD"},
		{"an expired approval holds nothing", join(
			many(41, func(i int) []mailbox.Entry { return paidOn(fmt.Sprint("p", i), "2400.00 USD", now.Add(-48*hour)) }),
			approvedOn("held", "1000.00 USD", now.Add(-25*hour)),
		), "finance", msg("finance", "procurement", mailbox.Approved, "t", "1500.00 USD"), Allow, "allow.4", ""},
		{"a released approval holds nothing", join(
			many(41, func(i int) []mailbox.Entry { return paidOn(fmt.Sprint("p", i), "2400.00 USD", now.Add(-48*hour)) }),
			approvedOn("held", "1000.00 USD", now.Add(-hour)),
			[]mailbox.Entry{{Time: now, Agent: "procurement", Event: EventReleased, Thread: "held"}},
		), "finance", msg("finance", "procurement", mailbox.Approved, "t", "1500.00 USD"), Allow, "allow.4", ""},
		{"an order without an approval", nil, "procurement", msg("procurement", "vendor-b", mailbox.Order, "t", "2400.00 USD"), Deny, "order.unapproved", "no approval in force"},
		{"an order to another vendor than approved", func() []mailbox.Entry {
			m := msg("finance", "procurement", mailbox.Approved, "t", "2400.00 USD")
			m.Extra = []mailbox.Header{{Name: "Vendor", Value: "vendor-b"}}
			return []mailbox.Entry{decisionEntry(m, Allow, "allow.4", now)}
		}(), "procurement", msg("procurement", "vendor-a", mailbox.Order, "t", "2400.00 USD"), Deny, "order.vendor", "approval is for vendor-b, not vendor-a"},
		{"an order of more than approved", func() []mailbox.Entry {
			m := msg("finance", "procurement", mailbox.Approved, "t", "2400.00 USD")
			m.Quantity = 400
			return []mailbox.Entry{decisionEntry(m, Allow, "allow.4", now)}
		}(), "procurement", msg("procurement", "vendor-b", mailbox.Order, "t", "2400.00 USD"), Deny, "order.quantity", "approval is for 400 widget, not 500"},
		{"an order above its approval", approvedOn("t", "2000.00 USD", now), "procurement", msg("procurement", "vendor-b", mailbox.Order, "t", "2400.00 USD"), Deny, "order.unapproved", "above the 2000.00 USD approved"},
		{"an order within its approval", approvedOn("t", "2400.00 USD", now), "procurement", msg("procurement", "vendor-b", mailbox.Order, "t", "2400.00 USD"), Allow, "allow.2", ""},
		{"an approval from an earlier day has expired", approvedOn("t", "2400.00 USD", now.Add(-25*hour)), "procurement", msg("procurement", "vendor-b", mailbox.Order, "t", "2400.00 USD"), Deny, "order.unapproved", ""},
		{"one need split into orders in a thread", join(approvedOn("t", "2500.00 USD", now), orderedOn("t", "vendor-b", "2000.00 USD", now)),
			"procurement", msg("procurement", "vendor-b", mailbox.Order, "t", "1000.00 USD"), Escalate, "human.split", "with 2000.00 USD already ordered in thread t this makes 3000.00 USD"},
		{"one need split over threads", join(approvedOn("a", "2000.00 USD", now), orderedOn("a", "vendor-b", "2000.00 USD", now), approvedOn("b", "1000.00 USD", now)),
			"procurement", msg("procurement", "vendor-b", mailbox.Order, "b", "1000.00 USD"), Escalate, "human.split", "with 2000.00 USD of widget already ordered from vendor-b today"},
		{"orders from another vendor are another need", join(approvedOn("a", "2000.00 USD", now), orderedOn("a", "vendor-a", "2000.00 USD", now), approvedOn("b", "1000.00 USD", now)),
			"procurement", msg("procurement", "vendor-b", mailbox.Order, "b", "1000.00 USD"), Allow, "allow.2", ""},
		{"per agent per day", join(many(25, func(i int) []mailbox.Entry {
			th := fmt.Sprint("d", i)
			return join(approvedOn(th, "2000.00 USD", now), orderedOn(th, fmt.Sprint("vendor-", i), "2000.00 USD", now))
		}), approvedOn("t", "100.00 USD", now)),
			"procurement", msg("procurement", "vendor-x", mailbox.Order, "t", "100.00 USD"), Deny, "limits.per_agent_per_day", "procurement has committed 50000.00 USD today"},
		{"a payment without an approval", nil, "finance", msg("finance", "vendor-b", mailbox.Paid, "t", "2400.00 USD"), Deny, "paid.unapproved", ""},
		{"a payment within its approval", join(approvedOn("t", "2400.00 USD", now), orderedOn("t", "vendor-b", "2400.00 USD", now)),
			"finance", msg("finance", "vendor-b", mailbox.Paid, "t", "2400.00 USD"), Allow, "allow.4", ""},
		{"a payment to whom nothing was ordered from", join(approvedOn("t", "2400.00 USD", now), orderedOn("t", "vendor-b", "2400.00 USD", now)),
			"finance", msg("finance", "vendor-a", mailbox.Paid, "t", "2400.00 USD"), Deny, "paid.unordered", "thread t ordered nothing from vendor-a"},
		{"a payment days after the order, past the approval's hold", join(approvedOn("t", "2400.00 USD", now.Add(-72*hour)), orderedOn("t", "vendor-b", "2400.00 USD", now.Add(-71*hour))),
			"finance", msg("finance", "vendor-b", mailbox.Paid, "t", "2400.00 USD"), Allow, "allow.4", ""},
		{"a second order on one approval", join(approvedOn("t", "1200.00 USD", now), orderedOn("t", "vendor-b", "1200.00 USD", now)),
			"procurement", msg("procurement", "vendor-b", mailbox.Order, "t", "1200.00 USD"), Deny, "order.unapproved", "with 1200.00 USD already ordered on thread t is above the 1200.00 USD approved"},
		{"a second order on one human approval", join(
			[]mailbox.Entry{delivered(msg("human", "finance", mailbox.Approved, "t", "3000.00 USD"), now)},
			approvedOn("t", "5000.00 USD", now), orderedOn("t", "vendor-b", "3000.00 USD", now)),
			"procurement", msg("procurement", "vendor-b", mailbox.Order, "t", "2000.00 USD"), Escalate, "human.split", "with 3000.00 USD already ordered in thread t this makes 5000.00 USD"},
		{"a payment of more than was ordered: the human decides", join(approvedOn("t", "2400.00 USD", now), orderedOn("t", "vendor-b", "1200.00 USD", now)),
			"finance", msg("finance", "vendor-b", mailbox.Paid, "t", "2400.00 USD"), Escalate, "paid.terms", "the payment is 2400.00 USD where 1200.00 USD is owed on the order of 1200.00 USD"},
		{"a second payment on a paid thread", join(approvedOn("t", "2400.00 USD", now), orderedOn("t", "vendor-b", "2400.00 USD", now), paidOn("t", "2400.00 USD", now)),
			"finance", msg("finance", "vendor-b", mailbox.Paid, "t", "2400.00 USD"), Deny, "paid.unapproved", "no approval in force"},
	}
	p := defaultPolicy(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState()
			for _, e := range tt.ledger {
				s.Apply(e)
			}
			d := s.Evaluate(p, Action{Agent: tt.agent, Message: tt.m}, now)
			if d.Outcome != tt.outcome || d.Rule != tt.rule {
				t.Fatalf("Evaluate = %s by %s (%s), want %s by %s", d.Outcome, d.Rule, d.Reason, tt.outcome, tt.rule)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason %q does not say %q", d.Reason, tt.reason)
			}
			if d.Policy != p.Hash {
				t.Errorf("decision names policy %q, want %q", d.Policy, p.Hash)
			}
		})
	}
}

func TestSpendFuse(t *testing.T) {
	p := defaultPolicy(t)
	p.Human.ApprovalOver = mailbox.MustMoney("100000.00 USD") // let the fuse speak first
	p.Limits.PerAgentPerDay = mailbox.Money{}
	s := NewState()
	for _, e := range join(approvedOn("t", "5000.00 USD", now), orderedOn("t", "vendor-b", "5000.00 USD", now),
		approvedOn("t", "5000.00 USD", now), orderedOn("t", "vendor-b", "4000.00 USD", now), approvedOn("t", "5000.00 USD", now)) {
		s.Apply(e)
	}
	d := s.Evaluate(p, Action{Agent: "procurement", Message: msg("procurement", "vendor-b", mailbox.Order, "t", "2000.00 USD")}, now)
	if d.Outcome != Escalate || d.Rule != "fuses.max_spend" {
		t.Fatalf("Evaluate = %s by %s (%s), want escalate by fuses.max_spend", d.Outcome, d.Rule, d.Reason)
	}
}

// TestOneNeedTwoVendors: a need split between two vendors on one thread
// holds one approval for each: each order draws on its own, each payment
// goes to a vendor ordered from, and paying one does not free the other's.
func TestOneNeedTwoVendors(t *testing.T) {
	p := defaultPolicy(t)
	s := NewState()
	approve := func(vendor, amount string) {
		m := msg("finance", "procurement", mailbox.Approved, "t", amount)
		m.Extra = []mailbox.Header{{Name: "Vendor", Value: vendor}}
		d := s.Evaluate(p, Action{Agent: "finance", Message: m}, now)
		if d.Outcome != Allow {
			t.Fatalf("approving %s for %s: %s by %s (%s)", amount, vendor, d.Outcome, d.Rule, d.Reason)
		}
		s.Apply(decisionEntry(m, Allow, d.Rule, now))
	}
	act := func(agent, to string, verb mailbox.Verb, amount string) Decision {
		m := msg(agent, to, verb, "t", amount)
		d := s.Evaluate(p, Action{Agent: agent, Message: m}, now)
		if d.Outcome == Allow {
			s.Apply(decisionEntry(m, Allow, d.Rule, now))
		}
		return d
	}
	approve("vendor-a", "1200.00 USD")
	approve("vendor-b", "800.00 USD")
	for _, step := range []struct {
		agent, to string
		verb      mailbox.Verb
		amount    string
		want      Outcome
		rule      string
	}{
		{"procurement", "vendor-c", mailbox.Order, "100.00 USD", Deny, "order.vendor"},
		{"procurement", "vendor-b", mailbox.Order, "900.00 USD", Deny, "order.unapproved"},
		{"procurement", "vendor-a", mailbox.Order, "1200.00 USD", Allow, "allow.2"},
		{"procurement", "vendor-b", mailbox.Order, "800.00 USD", Allow, "allow.2"},
		{"finance", "vendor-a", mailbox.Paid, "1200.00 USD", Allow, "allow.4"},
		{"finance", "vendor-b", mailbox.Paid, "800.00 USD", Allow, "allow.4"},
		{"finance", "vendor-c", mailbox.Paid, "100.00 USD", Deny, "paid.unapproved"},
	} {
		d := act(step.agent, step.to, step.verb, step.amount)
		if d.Outcome != step.want || d.Rule != step.rule {
			t.Errorf("%s %s %s to %s = %s by %s (%s), want %s by %s", step.agent, step.verb, step.amount, step.to, d.Outcome, d.Rule, d.Reason, step.want, step.rule)
		}
	}
}

// TestHumanThenFinanceApproval: finance's approval above the threshold
// waits for the human; the human approves (naming no vendor); finance's
// approval then goes out for its vendor. It replaces the human's hold
// rather than counting twice against the budget, and no other vendor can
// be ordered from or paid on the strength of the human's answer.
func TestHumanThenFinanceApproval(t *testing.T) {
	p := defaultPolicy(t)
	p.Budget.Amount = mailbox.MustMoney("5000.00 USD")
	s := NewState()
	apply := func(agent string, m *mailbox.Message) Decision {
		d := s.Evaluate(p, Action{Agent: agent, Message: m}, now)
		s.Apply(decisionEntry(m, d.Outcome, d.Rule, now))
		if d.Outcome == Allow {
			s.Apply(delivered(m, now))
		}
		return d
	}
	approved := msg("finance", "procurement", mailbox.Approved, "t", "3000.00 USD")
	approved.Extra = []mailbox.Header{{Name: "Vendor", Value: "vendor-b"}}
	if d := apply("finance", approved); d.Outcome != Escalate || d.Covers.String() != "3000.00 USD" {
		t.Fatalf("finance's approval above the threshold: %s by %s, covers %s", d.Outcome, d.Rule, d.Covers)
	}
	if d := apply("human", msg("human", "finance", mailbox.Approved, "t", "3000.00 USD")); d.Outcome != Allow {
		t.Fatalf("the human's approval: %s by %s", d.Outcome, d.Rule)
	}
	if d := apply("finance", approved); d.Outcome != Allow {
		t.Fatalf("finance's approval after the human's: %s by %s (%s)", d.Outcome, d.Rule, d.Reason)
	}
	if used := s.BudgetUsed(p, now); used.String() != "3000" {
		t.Errorf("budget used %s, want 3000: one approval, held once", used)
	}
	if d := apply("procurement", msg("procurement", "vendor-c", mailbox.Order, "t", "2000.00 USD")); d.Outcome != Deny || d.Rule != "order.vendor" {
		t.Errorf("an order to vendor-c: %s by %s, want deny by order.vendor", d.Outcome, d.Rule)
	}
	if d := apply("procurement", msg("procurement", "vendor-b", mailbox.Order, "t", "3000.00 USD")); d.Outcome != Allow {
		t.Errorf("the order to vendor-b: %s by %s (%s)", d.Outcome, d.Rule, d.Reason)
	}
}

// TestSplitEscalationAsksForTheWhole: an order that takes the thread past
// the threshold asks the human to cover the thread's total, so that
// approving what the ESCALATE says lets the order go.
func TestSplitEscalationAsksForTheWhole(t *testing.T) {
	p := defaultPolicy(t) // the human signs off above 2500.00 USD
	s := NewState()
	for _, e := range join(approvedOn("t", "2000.00 USD", now), orderedOn("t", "vendor-b", "2000.00 USD", now)) {
		s.Apply(e)
	}
	a := Action{Agent: "procurement", Message: msg("procurement", "vendor-a", mailbox.Order, "t", "1500.00 USD")}
	d := s.Evaluate(p, a, now)
	if d.Outcome != Escalate || d.Rule != "human.split" || d.Covers.String() != "3500.00 USD" {
		t.Fatalf("Evaluate = %s by %s, covers %s; want escalate by human.split covering 3500.00 USD", d.Outcome, d.Rule, d.Covers)
	}
	e := EscalationMessage(p, a, d, now)
	if e.Amount.String() != "3500.00 USD" || !strings.Contains(e.Subject, "for 1500.00 USD, 3500.00 USD in all on the thread") {
		t.Errorf("ESCALATE amount %s, subject %q", e.Amount, e.Subject)
	}
	human := msg("human", "procurement", mailbox.Approved, "t", e.Amount.String())
	s.Apply(decisionEntry(human, Allow, "allow.5", now))
	s.Apply(delivered(human, now))
	if d := s.Evaluate(p, a, now); d.Outcome == Escalate {
		t.Errorf("after the human approved what was asked, the order is still escalated: %s", d.Reason)
	}
}

// TestHumanSplitApprovalHoldsNothingMore: the human's approval of a split
// order's thread total holds no money of its own: finance's approvals for
// each vendor already hold it.
func TestHumanSplitApprovalHoldsNothingMore(t *testing.T) {
	p := defaultPolicy(t)
	s := NewState()
	step := func(agent string, m *mailbox.Message, vendor string) Decision {
		if vendor != "" {
			m.Extra = []mailbox.Header{{Name: "Vendor", Value: vendor}}
		}
		d := s.Evaluate(p, Action{Agent: agent, Message: m}, now)
		s.Apply(decisionEntry(m, d.Outcome, d.Rule, now))
		if d.Outcome == Allow {
			s.Apply(delivered(m, now))
		}
		return d
	}
	step("finance", msg("finance", "procurement", mailbox.Approved, "t", "2000.00 USD"), "vendor-a")
	step("procurement", msg("procurement", "vendor-a", mailbox.Order, "t", "2000.00 USD"), "")
	step("finance", msg("finance", "procurement", mailbox.Approved, "t", "1500.00 USD"), "vendor-b")
	order := msg("procurement", "vendor-b", mailbox.Order, "t", "1500.00 USD")
	if d := step("procurement", order, ""); d.Outcome != Escalate || d.Covers.String() != "3500.00 USD" {
		t.Fatalf("the second part: %s by %s covering %s", d.Outcome, d.Rule, d.Covers)
	}
	step("human", msg("human", "procurement", mailbox.Approved, "t", "3500.00 USD"), "")
	if d := step("procurement", order, ""); d.Outcome != Allow {
		t.Fatalf("after the human: %s by %s (%s)", d.Outcome, d.Rule, d.Reason)
	}
	if used := s.BudgetUsed(p, now); used.String() != "3500" {
		t.Errorf("budget used %s, want 3500: what finance approved, once", used)
	}
}
