package agents

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/shopspring/decimal"
)

// TestMicros: the fast conversion is d.Shift(6).IntPart() for every kind
// of decimal, the ones it takes the slow way included.
func TestMicros(t *testing.T) {
	for _, s := range []string{"0", "5.78", "-5.78", "12", "1200.50", "0.000001", "0.0000019", "-0.0000019", "999999999999",
		"1000000000000", "123456.123456", "1234567.123456", "9.999999999", "1e3", "-1e-7", "4.8050"} {
		d := decimal.RequireFromString(s)
		if got, want := Micros(d), d.Shift(6).IntPart(); got != want {
			t.Errorf("Micros(%s)=%d, want %d", s, got, want)
		}
	}
}

// TestOfferNeverGoesDown: whatever the vendors answer — coming down,
// holding, going up, at random — no counter-offer procurement makes to a
// vendor is below one it made to that vendor before, for parley's auction,
// every baseline, one vendor at a time (a model that decides) and any
// number of rounds: an offer, once made, stands.
func TestOfferNeverGoesDown(t *testing.T) {
	for _, tactic := range []string{"", "boulware", "linear", "conceder", "tft"} {
		for _, serial := range []bool{false, true} {
			for rounds := 1; rounds <= 12; rounds++ {
				for seed := uint64(0); seed < 20; seed++ {
					name := fmt.Sprintf("tactic=%q serial=%v rounds=%d seed=%d", tactic, serial, rounds, seed)
					rng := rand.New(rand.NewPCG(seed, uint64(rounds)))
					p := role(t, "procurement").(*Procurement)
					p.Tactic, p.Serial, p.Rounds = tactic, serial, rounds
					quote := func(v string) *mailbox.Message {
						cents := 420 + rng.IntN(160) // 4.20 to 5.79: below, about and above the ceiling's reach
						return in(v, "procurement", mailbox.Quote, "t", func(m *mailbox.Message) {
							m.UnitPrice = mailbox.Money{Amount: decimal.New(int64(cents), -2), Currency: "USD"}
							m.DeliverBy = now.AddDate(0, 0, 5)
						})
					}
					queue := p.Receive(now, in("inventory", "procurement", mailbox.Request, "t", func(m *mailbox.Message) { m.DeliverBy = now.AddDate(0, 0, 8) }))
					for _, v := range []string{"vendor-a", "vendor-b", "vendor-c"} {
						queue = append(queue, p.Receive(now, quote(v))...)
					}
					made := map[string]decimal.Decimal{}
					for steps := 0; len(queue) > 0 && steps < 500; steps++ {
						m := queue[0]
						queue = queue[1:]
						if m.Verb != mailbox.Counter {
							continue
						}
						if was, ok := made[m.To]; ok && m.UnitPrice.Amount.LessThan(was) {
							t.Fatalf("%s: offered %s %s after %s", name, m.To, m.UnitPrice, was)
						}
						made[m.To] = decimal.Max(made[m.To], m.UnitPrice.Amount)
						queue = append(queue, p.Receive(now, quote(m.To))...)
					}
					if len(made) == 0 && rounds > 0 && !serial && tactic == "" {
						t.Fatalf("%s: no counter-offer was made", name)
					}
				}
			}
		}
	}
}

// TestRoundsWaitForTheRate: against vendors that keep coming down a cent a
// round, twelve rounds to three vendors are more than the policy's
// messages_per_minute lets procurement send in a minute; the rounds wait
// for room instead of being refused, no minute carries more than the rate,
// and the deal still closes.
func TestRoundsWaitForTheRate(t *testing.T) {
	p := role(t, "procurement").(*Procurement)
	p.Rate, p.Rounds, p.MaxRounds = 20, 12, 12
	clock := now
	var sent []time.Time
	asksFinance := false
	send := func(out []*mailbox.Message) []*mailbox.Message {
		p.Sent(clock, out)
		for _, m := range out {
			sent = append(sent, clock)
			asksFinance = asksFinance || (m.To == "finance" && m.Verb == mailbox.Request)
		}
		return out
	}
	asked := map[string]int{}
	quote := func(v string) *mailbox.Message {
		asked[v]++
		return in(v, "procurement", mailbox.Quote, "t", func(m *mailbox.Message) {
			m.UnitPrice = mailbox.Money{Amount: decimal.New(int64(560-asked[v]), -2), Currency: "USD"}
			m.DeliverBy = now.AddDate(0, 0, 5)
			m.Date = clock
		})
	}
	queue := send(p.Receive(clock, in("inventory", "procurement", mailbox.Request, "t", func(m *mailbox.Message) { m.DeliverBy = now.AddDate(0, 0, 8) })))
	queue = nil
	for _, v := range []string{"vendor-a", "vendor-b", "vendor-c"} {
		queue = append(queue, send(p.Receive(clock, quote(v)))...)
	}
	waited := false
	for steps := 0; steps < 1000; steps++ {
		if len(queue) == 0 {
			d := p.Deals["t"]
			if d.Phase != "pressing" || d.NextRound.IsZero() {
				break
			}
			waited = true
			clock = d.NextRound
			queue = send(p.Tick(clock))
			continue
		}
		m := queue[0]
		queue = queue[1:]
		clock = clock.Add(100 * time.Millisecond)
		if m.Verb == mailbox.Counter {
			queue = append(queue, send(p.Receive(clock, quote(m.To)))...)
		}
	}
	if !waited {
		t.Fatal("no round waited for the rate")
	}
	for i := range sent {
		n := 0
		for _, at := range sent[i:] {
			if at.Sub(sent[i]) <= time.Minute {
				n++
			}
		}
		if n > p.Rate {
			t.Fatalf("%d messages within a minute of %s; the rate is %d", n, sent[i].Format(time.TimeOnly), p.Rate)
		}
	}
	if d := p.Deals["t"]; d.Phase != "approving" || !asksFinance {
		t.Fatalf("the deal did not close: phase %s, finance asked %v", d.Phase, asksFinance)
	}
}
