package policy

import (
	"fmt"
	"path"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/parley-dev/parley/mailbox"
	"github.com/shopspring/decimal"
)

// TestGlobPlain: glob's shortcut for a pattern without wildcards gives
// path.Match's answer.
func TestGlobPlain(t *testing.T) {
	names := []string{"", "procurement", "vendor-a", "vendor-*", "vendor-", "vendor-a/b", "*", "a*", "a/*", "a/b", "vendor-a ", "Vendor-a", "vendör", "*", "[a]", `\a`, "a?"}
	for _, p := range names {
		for _, n := range names {
			want, _ := path.Match(p, n)
			if got := glob(p, n); got != want {
				t.Errorf("glob(%q, %q) = %v, path.Match says %v", p, n, got, want)
			}
		}
	}
}

func FuzzGlob(f *testing.F) {
	f.Add("vendor-a", "vendor-a")
	f.Add("vendor-*", "vendor-b")
	f.Add("a/b", "a/b")
	f.Add("a/*", "a/b/c")
	f.Fuzz(func(t *testing.T, p, n string) {
		want, _ := path.Match(p, n)
		if got := glob(p, n); got != want {
			t.Errorf("glob(%q, %q) = %v, path.Match says %v", p, n, got, want)
		}
	})
}

// TestAllowDecision: an allowed message's rule and reason, written ahead
// by Parse, are the words written for each message.
func TestAllowDecision(t *testing.T) {
	p, err := Parse("policy.toml", Default)
	if err != nil {
		t.Fatal(err)
	}
	verbs := []mailbox.Verb{mailbox.Request, mailbox.Quote, mailbox.Counter, mailbox.Order, mailbox.Paid, mailbox.Approved, "X"}
	for rule := 1; rule <= len(p.Allow); rule++ {
		for _, v := range verbs {
			if got, want := allowDecision(p, rule, v), allowDecisionOf(p, rule, v); got != want {
				t.Errorf("rule %d, %s: %+v, want %+v", rule, v, got, want)
			}
		}
	}
	if len(p.Allow) < 5 {
		t.Fatalf("the default policy has %d [[allow]] rules", len(p.Allow))
	}
}

// TestApplyMessageLines: ApplyMessage builds the state Apply builds from
// the entries written in full, for every verb delivered, claimed and
// decided — escalations with an expiry, denials, confirmations with a
// delivery day — and lines about no message.
func TestApplyMessageLines(t *testing.T) {
	p, err := Parse("policy.toml", Default)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	usd := func(s string) mailbox.Money {
		return mailbox.Money{Amount: decimal.RequireFromString(s), Currency: "USD"}
	}
	msgs := []*mailbox.Message{
		{From: "procurement", To: "vendor-a", Verb: mailbox.Counter, Item: "widget", Quantity: 650, UnitPrice: usd("7.35"), DeliverBy: now.AddDate(0, 0, 3), Expires: now.Add(10 * time.Minute)},
		{From: "vendor-a", To: "procurement", Verb: mailbox.Quote, Item: "widget", Quantity: 650, UnitPrice: usd("7.40"), DeliverBy: now.AddDate(0, 0, 3)},
		{From: "procurement", To: "finance", Verb: mailbox.Request, Item: "widget", Quantity: 650, Amount: usd("4810.00")},
		{From: "finance", To: "human", Verb: mailbox.Escalate, Item: "widget", Quantity: 650, Amount: usd("4810.00"), Expires: now.Add(time.Hour), Subject: "ESCALATE: approve"},
		{From: "human", To: "finance", Verb: mailbox.Approved, Amount: usd("4810.00")},
		{From: "finance", To: "procurement", Verb: mailbox.Approved, Item: "widget", Quantity: 650, Amount: usd("4810.00"), Extra: []mailbox.Header{{Name: "Vendor", Value: "vendor-a"}}},
		{From: "procurement", To: "vendor-a", Verb: mailbox.Order, Item: "widget", Quantity: 650, Amount: usd("4810.00"), DeliverBy: now.AddDate(0, 0, 3)},
		{From: "vendor-a", To: "procurement", Verb: mailbox.Confirmed, Item: "widget", Quantity: 700, Amount: usd("5180.00"), DeliverBy: now.AddDate(0, 0, 4)},
		{From: "finance", To: "vendor-a", Verb: mailbox.Paid, Item: "widget", Quantity: 650, Amount: usd("4810.00")},
		{From: "human", To: "finance", Verb: mailbox.Denied, Amount: usd("5180.00")},
		{From: "vendor-b", To: "procurement", Verb: mailbox.Decline, Subject: "DECLINE"},
	}
	full, brief := NewState(), NewState()
	full.Follow(p)
	brief.Follow(p)
	apply := func(e mailbox.Entry, m *mailbox.Message) {
		t.Helper()
		f := mailbox.MessageEntry(e.Agent, e.Event, m)
		f.Time, f.Decision, f.Rule, f.Reason, f.Policy, f.Key = e.Time, e.Decision, e.Rule, e.Reason, e.Policy, e.Key
		full.Apply(f)
		brief.ApplyMessage(e, m)
		if !reflect.DeepEqual(full, brief) {
			t.Fatalf("%s %s from %s: the states differ", e.Event, m.Verb, m.From)
		}
	}
	for round := range 2 {
		for i, m := range msgs {
			m.ID, m.Thread, m.Date = fmt.Sprintf("<%d.%d@t>", round, i), "t-1", now
			now = now.Add(time.Second)
			d := full.Evaluate(p, Action{Agent: m.From, Message: m}, now)
			apply(mailbox.Entry{Time: now, Agent: m.From, Event: EventDecision, Decision: string(d.Outcome), Rule: d.Rule, Reason: d.Reason, Policy: d.Policy, Key: m.ID}, m)
			apply(mailbox.Entry{Time: now, Agent: m.From, Event: mailbox.EventDelivered}, m)
			apply(mailbox.Entry{Time: now, Agent: m.To, Event: mailbox.EventClaimed}, m)
		}
		e := mailbox.Entry{Time: now, Agent: "finance", Event: EventReleased, Thread: "t-1", Vendor: "vendor-a"}
		full.Apply(e)
		brief.Apply(e)
	}
	if len(full.Escalations("human", "")) == 0 {
		t.Fatal("no escalation recorded")
	}
}

// TestIntern: a string interned is the one copy kept of it, whether it
// was interned last or long before.
func TestIntern(t *testing.T) {
	s := NewState()
	first := map[string]string{}
	for i := range 5000 {
		v := fmt.Sprintf("reason %d", (i*7919)%37) // a fresh copy each time
		w := s.intern(v)
		if w != v {
			t.Fatalf("intern(%q) = %q", v, w)
		}
		if f, ok := first[v]; ok && unsafe.StringData(f) != unsafe.StringData(w) {
			t.Fatalf("intern(%q) gave another copy than the first", v)
		} else if !ok {
			first[v] = w
		}
	}
	if len(s.strs) != 37 {
		t.Fatalf("%d strings kept, want 37", len(s.strs))
	}
}
