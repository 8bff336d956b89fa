package sim

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
	"github.com/shopspring/decimal"
)

// TestTotalMicro: totalMicro is micro(m.Total().Amount).
func TestTotalMicro(t *testing.T) {
	prices := []string{"0", "0.01", "8.65", "-8.65", "1", "12.345678", "0.000001", "1.2345678", "999999999999", "1000000000000",
		"1000000000001", "123456.789012", "1E3", "1E7", "5.000000", "0.10", "-0.000001"}
	qtys := []int64{0, 1, -3, 2, 650, 1_000_000, 999_999_999, 1 << 40, 1 << 62}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		prices = append(prices, decimal.New(rng.Int64N(2_000_000_000_000)-1_000_000_000_000, -int32(rng.IntN(9))).String())
		qtys = append(qtys, rng.Int64N(10_000_000))
	}
	for i, p := range prices {
		for j, q := range qtys {
			if i > 20 && j > 20 && i != j {
				continue
			}
			u := decimal.RequireFromString(p)
			m := &mailbox.Message{UnitPrice: mailbox.Money{Amount: u, Currency: "USD"}, Quantity: q}
			if got, want := totalMicro(m), micro(m.Total().Amount); got != want {
				t.Fatalf("totalMicro(%s × %d) = %d, micro of the total %d", p, q, got, want)
			}
			m.Amount = mailbox.Money{Amount: u.Add(decimal.New(1, -2)), Currency: "USD"}
			if got, want := totalMicro(m), micro(m.Total().Amount); got != want {
				t.Fatalf("totalMicro(amount %s) = %d, micro of the total %d", m.Amount.Amount, got, want)
			}
		}
	}
}

// TestApplyMessage: the state the simulator builds by handing the policy
// each message (State.ApplyMessage) is the state built from the entries
// written in full (State.Apply), line by line, over generated deals of
// every kind — answers, escalations, confirmations, payments, denials.
func TestApplyMessage(t *testing.T) {
	type line struct {
		e mailbox.Entry
		m *mailbox.Message
	}
	seen := map[string]int{}
	for i := range 60 {
		s := Generate(21, i)
		var lines []line
		keep := func(e mailbox.Entry, m *mailbox.Message) {
			if m != nil {
				c := *m // as it was then
				m = &c
			}
			lines = append(lines, line{e, m})
		}
		opt := Options{Seed: uint64(i), Shuffle: i%2 == 1, Keep: keep}
		if i%3 == 2 {
			opt.Buyer = Buyers[i%len(Buyers)]
		}
		if _, err := Run(s, opt); err != nil {
			t.Fatal(err)
		}
		pol, err := PolicyFor(s)
		if err != nil {
			t.Fatal(err)
		}
		full, brief := policy.NewState(), policy.NewState()
		full.Follow(pol)
		brief.Follow(pol)
		for j, l := range lines {
			full.Apply(l.e)
			if l.m == nil {
				brief.Apply(l.e)
			} else {
				e := mailbox.Entry{Time: l.e.Time, Agent: l.e.Agent, Event: l.e.Event, Decision: l.e.Decision, Rule: l.e.Rule,
					Reason: l.e.Reason, Policy: l.e.Policy, Key: l.e.Key}
				brief.ApplyMessage(e, l.m)
			}
			if j%7 == 0 || j == len(lines)-1 {
				if !reflect.DeepEqual(full, brief) {
					t.Fatalf("scenario %d, line %d (%s %s %s): the states differ", i, j, l.e.Event, l.e.Verb, l.e.MsgID)
				}
			}
		}
		for _, l := range lines {
			seen[l.e.Event+" "+l.e.Verb+" "+l.e.Decision]++
		}
	}
	for _, what := range []string{"delivered APPROVED ", "delivered CONFIRMED ", "delivered PAID ", "decision ORDER allow",
		"decision APPROVED escalate", "decision PAID escalate", "decision COUNTER allow", "delivered COUNTER "} {
		if seen[what] == 0 {
			t.Errorf("no line %q among %v", what, seen)
		}
	}
}
