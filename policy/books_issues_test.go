package policy

// What TestBooksProperty found parley doing against the words of issue 15,
// each as the smallest test that shows it (each failed before its fix):
// the human's answer taken as an approval past the budget; an unrelated
// allowed action restarting the human's timeout; an expired escalation
// relabelled withdrawn; Replay losing an approval's vendor; an approval's
// unused rest in no figure; a lapse or release undone by a later order; an
// overpayment taken off a later order; BudgetUsed depending on when it was
// asked before.

import (
	"fmt"
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/shopspring/decimal"
)

var bkIssueStart = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// bkIssueRules: the human signs off above 2500.00, within 1h; approvals
// hold for 24h; a budget of 5000.00 a month.
var bkIssueRules = bkRules{name: "issue", perTx: 500000, approvalOver: 250000, budget: 500000,
	period: "month", reserve: 24 * time.Hour, timeout: time.Hour, onTimeout: "deny"}

// bkLedger decides and records actions as the Engine does, at a clock the
// test moves.
type bkLedger struct {
	t  *testing.T
	p  *Policy
	s  *State
	at time.Time
	es []mailbox.Entry
	n  int
}

func newBkLedger(t *testing.T, r bkRules) *bkLedger {
	l := &bkLedger{t: t, p: bkPolicy(t, r), s: NewState(), at: bkIssueStart}
	l.s.Follow(l.p)
	return l
}

func (l *bkLedger) record(e mailbox.Entry) {
	e.Seq = uint64(len(l.es) + 1)
	l.es = append(l.es, e)
	l.s.Apply(e)
}

// msg is a message of 100 widget; vendor, when given, is an approval's
// Vendor header.
func (l *bkLedger) msg(from, to string, verb mailbox.Verb, thread, amount string, vendor ...string) *mailbox.Message {
	l.n++
	m := &mailbox.Message{Version: "1", ID: fmt.Sprintf("<issue-%d@prop>", l.n), Date: l.at, From: from, To: to,
		Thread: thread, Verb: verb, Item: "widget", Quantity: 100, Amount: mailbox.MustMoney(amount + " USD")}
	if len(vendor) > 0 {
		m.Extra = []mailbox.Header{{Name: "Vendor", Value: vendor[0]}}
	}
	return m
}

// send decides m and records the decision, then the message (allowed) or
// the ESCALATE (escalated).
func (l *bkLedger) send(m *mailbox.Message) Decision {
	a := Action{Agent: m.From, Message: m}
	m.Date = l.at
	d := l.s.Evaluate(l.p, a, l.at)
	e := mailbox.MessageEntry(m.From, EventDecision, m)
	e.Time, e.Decision, e.Rule, e.Reason, e.Policy, e.Key = l.at, string(d.Outcome), d.Rule, d.Reason, d.Policy, m.ID
	l.record(e)
	switch d.Outcome {
	case Allow:
		l.record(bkEntry(m.From, mailbox.EventDelivered, m, l.at))
	case Escalate:
		x := EscalationMessage(l.p, a, d, l.at)
		x.ID = fmt.Sprintf("<issue-%d@escalate>", len(l.es))
		l.record(bkEntry(m.From, mailbox.EventDelivered, x, l.at))
	}
	return d
}

// must sends m and fails unless the decision is want (by rule, if given).
func (l *bkLedger) must(m *mailbox.Message, want Outcome, rule string) {
	l.t.Helper()
	if d := l.send(m); d.Outcome != want || (rule != "" && d.Rule != rule) {
		l.t.Fatalf("%s %s %s to %s: %s by %s (%s), want %s %s", m.From, m.Verb, m.Amount, m.To, d.Outcome, d.Rule, d.Reason, want, rule)
	}
}

func (l *bkLedger) figures(thread string) Figures {
	return l.s.Books().Account(thread).Figures(l.p.Budget.ReserveFor.Duration, l.at)
}

func bkD(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// TestBooksTimeoutClockRestarts (clock): the human, asked about an
// approval, does not answer within decision_timeout; meanwhile finance's
// approval of another part of the thread went through. Asked again after
// the timeout, the answer is on_timeout ("deny"), and the thread is
// overdue — not asked again with the clock started afresh.
func TestBooksTimeoutClockRestarts(t *testing.T) {
	for _, between := range []struct {
		name string
		f    func(l *bkLedger)
	}{
		{"another part approved", func(l *bkLedger) {
			l.must(l.msg("finance", "procurement", mailbox.Approved, "t", "1000.00", "vendor-b"), Allow, "allow.4")
		}},
		{"a vendor confirmed", func(l *bkLedger) {
			l.must(l.msg("vendor-c", "procurement", mailbox.Confirmed, "t", "10.00"), Allow, "allow.3")
		}},
	} {
		t.Run(between.name, func(t *testing.T) {
			l := newBkLedger(t, bkIssueRules)
			big := l.msg("finance", "procurement", mailbox.Approved, "t", "3000.00", "vendor-a")
			l.must(big, Escalate, "human.approval_over")
			l.at = l.at.Add(time.Minute)
			between.f(l)
			l.at = l.at.Add(2 * time.Hour)
			if got := l.s.Overdue(l.p, l.at); len(got) != 1 {
				t.Errorf("Overdue = %q, want [t]: asked 2h ago, no answer, the timeout is 1h", got)
			}
			if d := l.send(big); d.Outcome != Deny || d.Rule != "human.timeout" {
				t.Errorf("asked again 2h later: %s by %s (%s), want deny by human.timeout", d.Outcome, d.Rule, d.Reason)
			}
		})
	}
}

// TestBooksExpiredEscalationNotWithdrawn (withdrawn): an ESCALATE that
// expired stays expired when the same agent asks again; only a waiting
// one is withdrawn.
func TestBooksExpiredEscalationNotWithdrawn(t *testing.T) {
	r := bkIssueRules
	r.onTimeout = "escalate" // ask again
	l := newBkLedger(t, r)
	big := l.msg("finance", "procurement", mailbox.Approved, "t", "3000.00", "vendor-a")
	l.must(big, Escalate, "human.approval_over")
	l.at = l.at.Add(2 * time.Hour)
	l.must(big, Escalate, "human.approval_over")
	xs := l.s.Escalations(bkHuman, "t")
	if len(xs) != 2 {
		t.Fatalf("%d escalations, want 2", len(xs))
	}
	if got := xs[0].State(l.at); got != Expired {
		t.Errorf("the first ESCALATE, expired an hour before the second: %s, want %s", got, Expired)
	}
}

// TestBooksReplayKeepsVendor (replay): parley policy test under the very
// policy that decided changes nothing, also when an approval for a vendor
// replaces the one before it.
func TestBooksReplayKeepsVendor(t *testing.T) {
	r := bkIssueRules
	r.budget = 400000
	l := newBkLedger(t, r)
	l.must(l.msg("finance", "procurement", mailbox.Approved, "t", "2400.00", "vendor-a"), Allow, "allow.4")
	l.at = l.at.Add(time.Minute)
	// Renegotiated: it replaces the first, 2400.00 held in all.
	l.must(l.msg("finance", "procurement", mailbox.Approved, "t", "2400.00", "vendor-a"), Allow, "allow.4")
	if w := Replay(l.es, l.p); len(w.Changes) != 0 {
		c := w.Changes[0]
		t.Errorf("Replay under the same policy: line %d was %s by %s, would be %s by %s (%s)", c.Seq, c.Was.Outcome, c.Was.Rule, c.Would.Outcome, c.Would.Rule, c.Would.Reason)
	}
}

// TestBooksHumanAnswerWithinBudget (human-hold): the human's answer to a
// sign-off question is an approval the budget never checks. Finance's own
// approval, once the human said yes, is denied by the budget — and
// procurement orders on the human's answer all the same; or with no
// approval from finance at all, the answers to two orders' questions
// commit 6000.00. Either way the 5000.00 budget is passed.
func TestBooksHumanAnswerWithinBudget(t *testing.T) {
	for _, tt := range []struct {
		name  string
		steps func(l *bkLedger)
	}{
		{"finance denied by the budget", func(l *bkLedger) {
			l.must(l.msg("finance", "procurement", mailbox.Approved, "t1", "2000.00", "vendor-a"), Allow, "allow.4")
			l.must(l.msg("procurement", "vendor-a", mailbox.Order, "t1", "2000.00"), Allow, "allow.2")
			l.must(l.msg("vendor-a", "procurement", mailbox.Confirmed, "t1", "2000.00"), Allow, "allow.3")
			l.must(l.msg("finance", "vendor-a", mailbox.Paid, "t1", "2000.00"), Allow, "allow.4")
			approve := l.msg("finance", "procurement", mailbox.Approved, "t2", "3400.00", "vendor-b")
			l.must(approve, Escalate, "human.approval_over")
			l.must(l.msg(bkHuman, "finance", mailbox.Approved, "t2", "3400.00"), Allow, "allow.5")
			l.must(approve, Deny, "budget") // 2000.00 spent + 3400.00 is above 5000.00
			if d := l.send(l.msg("procurement", "vendor-b", mailbox.Order, "t2", "3400.00")); d.Outcome == Allow {
				t.Logf("t2: ORDER 3400.00 allowed by %s (%s)", d.Rule, d.Reason)
			}
		}},
		{"no approval from finance", func(l *bkLedger) {
			for _, th := range []string{"t1", "t2"} {
				order := l.msg("procurement", "vendor-a", mailbox.Order, th, "3000.00")
				l.must(order, Escalate, "human.approval_over")
				l.must(l.msg(bkHuman, "procurement", mailbox.Approved, th, "3000.00"), Allow, "allow.5")
				if d := l.send(order); d.Outcome == Allow {
					t.Logf("%s: ORDER 3000.00 allowed by %s (%s)", th, d.Rule, d.Reason)
				}
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newBkLedger(t, bkIssueRules)
			tt.steps(l)
			if used := l.s.BudgetUsed(l.p, l.at); used.GreaterThan(bkD("5000")) {
				f := l.s.Books().Totals(l.p.Budget.ReserveFor.Duration, l.at)
				t.Errorf("budget used %s (spent %s, committed %s, held %s), above the budget of 5000.00", used, f.Spent, f.Committed, f.Held)
			}
		})
	}
}

// TestBooksSettledApprovalRest (settled-rest): an approval of 2000.00 of
// which 1000.00 was ordered and paid holds nothing more; the 1000.00 it
// did not use must show in a figure (or a mismatch), not vanish.
func TestBooksSettledApprovalRest(t *testing.T) {
	l := newBkLedger(t, bkIssueRules)
	l.must(l.msg("finance", "procurement", mailbox.Approved, "t", "2000.00", "vendor-a"), Allow, "allow.4")
	l.must(l.msg("procurement", "vendor-a", mailbox.Order, "t", "1000.00"), Allow, "allow.2")
	l.must(l.msg("vendor-a", "procurement", mailbox.Confirmed, "t", "1000.00"), Allow, "allow.3")
	l.must(l.msg("finance", "vendor-a", mailbox.Paid, "t", "1000.00"), Allow, "allow.4")
	f := l.figures("t")
	accounted := f.Ordered.Add(f.Held).Add(f.Released).Add(f.Lapsed)
	mism := l.s.Books().Account("t").Mismatches("USD", l.p.Budget.ReserveFor.Duration, l.at)
	if !f.Approved.Equal(accounted) && len(mism) == 0 {
		t.Errorf("approved %s, but ordered %s + held %s + released %s + lapsed %s = %s, and no mismatch says why",
			f.Approved, f.Ordered, f.Held, f.Released, f.Lapsed, accounted)
	}
}

// TestBooksLapsedApprovalStaysLapsed (revive): an approval never ordered
// on within reserve_for lapsed, and one released was given back; an order
// placed later (by the human, who needs no approval) does not undo that.
func TestBooksLapsedApprovalStaysLapsed(t *testing.T) {
	for _, tt := range []struct {
		name   string
		before func(l *bkLedger)
		want   func(f Figures) string
	}{
		{"lapsed", func(l *bkLedger) { l.at = l.at.Add(25 * time.Hour) }, func(f Figures) string {
			if !f.Lapsed.Equal(bkD("1000")) || !f.Held.IsZero() {
				return fmt.Sprintf("lapsed %s, held %s; want lapsed 1000, held 0", f.Lapsed, f.Held)
			}
			return ""
		}},
		{"released", func(l *bkLedger) {
			l.record(mailbox.Entry{Time: l.at, Agent: "finance", Event: EventReleased, Thread: "t", Vendor: "vendor-a"})
		}, func(f Figures) string {
			if !f.Released.Equal(bkD("1000")) {
				return fmt.Sprintf("released %s; want 1000", f.Released)
			}
			return ""
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newBkLedger(t, bkIssueRules)
			l.must(l.msg("finance", "procurement", mailbox.Approved, "t", "1000.00", "vendor-a"), Allow, "allow.4")
			tt.before(l)
			l.must(l.msg(bkHuman, "vendor-a", mailbox.Order, "t", "600.00"), Allow, "allow.5")
			if why := tt.want(l.s.Books().Account("t").Parts["vendor-a"].Figures(l.p.Budget.ReserveFor.Duration, l.at)); why != "" {
				t.Errorf("after the human's own order of 600.00: %s", why)
			}
		})
	}
}

// TestBooksPaidBeyondNotOwedAgain (beyond): 187.00 paid beyond an order,
// with the human's approval of the vendor's changed terms, is not a
// payment of the next order to the same vendor: that one owes all of its
// 500.00.
func TestBooksPaidBeyondNotOwedAgain(t *testing.T) {
	l := newBkLedger(t, bkIssueRules)
	l.must(l.msg("finance", "procurement", mailbox.Approved, "t", "1000.00", "vendor-a"), Allow, "allow.4")
	l.must(l.msg("procurement", "vendor-a", mailbox.Order, "t", "1000.00"), Allow, "allow.2")
	l.must(l.msg("vendor-a", "procurement", mailbox.Confirmed, "t", "1187.00"), Allow, "allow.3")
	pay := l.msg("finance", "vendor-a", mailbox.Paid, "t", "1187.00")
	l.must(pay, Escalate, RuleTerms)
	l.must(l.msg(bkHuman, "finance", mailbox.Approved, "t", "1187.00"), Allow, "allow.5")
	l.must(pay, Allow, "human.approved")
	l.must(l.msg("finance", "procurement", mailbox.Approved, "t", "500.00", "vendor-a"), Allow, "allow.4")
	l.must(l.msg("procurement", "vendor-a", mailbox.Order, "t", "500.00"), Allow, "allow.2")
	f := l.s.Books().Account("t").Parts["vendor-a"].Figures(l.p.Budget.ReserveFor.Duration, l.at)
	if !f.Committed.Equal(bkD("500")) {
		var kinds []string
		for _, m := range l.s.Books().Account("t").Mismatches("USD", l.p.Budget.ReserveFor.Duration, l.at) {
			kinds = append(kinds, m.Kind+": "+m.Detail)
		}
		t.Errorf("committed %s after ordering 500.00 more, want 500.00 (mismatches: %q)", f.Committed, kinds)
	}
}

// TestBooksBudgetUsedAtAnEarlierTime: BudgetUsed is a function of the
// ledger and the time asked: asked at a later time first (when an
// approval has lapsed), it still counts the approval at an earlier one.
// (Books.BudgetUsed dropped accounts from b.open for good, judged at the
// time it was asked; a generator clock that stepped back two minutes found
// it.)
func TestBooksBudgetUsedAtAnEarlierTime(t *testing.T) {
	l := newBkLedger(t, bkIssueRules)
	l.must(l.msg("finance", "procurement", mailbox.Approved, "t", "1000.00", "vendor-a"), Allow, "allow.4")
	hour := l.at.Add(time.Hour)
	l.s.BudgetUsed(l.p, l.at.Add(25*time.Hour)) // status, at a later time
	if got := l.s.BudgetUsed(l.p, hour); !got.Equal(bkD("1000")) {
		t.Errorf("BudgetUsed an hour after the approval, asked after one a day later: %s, want 1000 (a fresh state says %s)",
			got, func() decimal.Decimal {
				s := NewState()
				s.Follow(l.p)
				for _, e := range l.es {
					s.Apply(e)
				}
				return s.BudgetUsed(l.p, hour)
			}())
	}
}
