package agents

import (
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
)

// TestVendorStyles: each style of the pool answers counter-offers as
// NEGOTIATION.md describes it, never below its floor and never rising.
func TestVendorStyles(t *testing.T) {
	offers := []string{"3.00 USD", "3.00 USD", "3.20 USD", "3.50 USD", "3.50 USD", "3.50 USD"}
	tests := []struct {
		name   string
		v      Vendor
		offers []string
		want   []string // its quotes, one per offer ("DECLINE" for a decline)
	}{
		{"hardliner never moves", Vendor{Style: "hardliner"}, offers, []string{"5.00", "5.00", "5.00", "5.00", "5.00", "5.00"}},
		{"cartel holds its price", Vendor{Style: "cartel"}, offers, []string{"5.00", "5.00", "5.00", "5.00", "5.00", "5.00"}},
		{"linear over its own horizon of 2", Vendor{E: 1, Horizon: 2}, offers, []string{"4.50", "4.00", "4.00", "4.00", "4.00", "4.00"}},
		{"tit for tat mirrors the offer's rise", Vendor{Style: "tft", Horizon: 4}, offers, []string{"4.75", "4.75", "4.55", "4.25", "4.25", "4.25"}},
		{"walkaway ends the talks under its line", Vendor{Style: "walkaway", E: 1, WalkBelow: mailbox.MustMoney("3.10 USD")}, offers, []string{"DECLINE", "DECLINE", "DECLINE", "DECLINE", "DECLINE", "DECLINE"}},
		{"walkaway above its line concedes", Vendor{Style: "walkaway", E: 1, WalkBelow: mailbox.MustMoney("2.90 USD")}, offers, []string{"4.75", "4.50", "4.25", "4.00", "4.00", "4.00"}},
		{"an offer above its price is taken", Vendor{E: 1}, []string{"4.90 USD"}, []string{"4.90"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.v
			v.Name, v.Item, v.List, v.Floor, v.Capacity = "v", "widget", mailbox.MustMoney("5.00 USD"), mailbox.MustMoney("4.00 USD"), 1000
			v.init()
			for i, o := range tt.offers {
				out := v.Receive(now, in("p", "v", mailbox.Counter, "t", price(o)))
				got := "DECLINE"
				if out[0].Verb == mailbox.Quote {
					got = out[0].UnitPrice.Amount.StringFixed(2)
				}
				if got != tt.want[i] {
					t.Fatalf("offer %d of %s: %s, want %s", i+1, o, got, tt.want[i])
				}
			}
		})
	}
}

// TestVendorRandomStaysWithin: random concession never goes below the
// floor or up, and is the same for the same messages.
func TestVendorRandomStaysWithin(t *testing.T) {
	play := func() []string {
		v := Vendor{Name: "v", Item: "widget", Style: "random", List: mailbox.MustMoney("5.00 USD"), Floor: mailbox.MustMoney("4.00 USD"), Capacity: 1000}
		v.init()
		var got []string
		last := v.List.Amount
		for range 8 {
			p := v.Receive(now, in("p", "v", mailbox.Counter, "t", price("1.00 USD")))[0].UnitPrice.Amount
			if p.GreaterThan(last) || p.LessThan(v.Floor.Amount) {
				t.Fatalf("%s after %s: want it between the floor 4.00 and its last price", p, last)
			}
			last = p
			got = append(got, p.String())
		}
		return got
	}
	if a, b := play(), play(); len(a) != len(b) || a[7] != b[7] {
		t.Errorf("two plays differ: %v, %v", a, b)
	}
}

// TestVendorByTimeSlowBait: a vendor whose horizon is a time concedes with
// the time since the request; a slow one holds its answer until two thirds
// of the time given are gone; bait confirms a tenth more than ordered.
func TestVendorByTimeSlowBait(t *testing.T) {
	v := Vendor{Name: "v", Item: "widget", E: 1, Within: time.Hour, List: mailbox.MustMoney("5.00 USD"), Floor: mailbox.MustMoney("4.00 USD"), Capacity: 1000}
	v.init()
	v.Receive(now, in("p", "v", mailbox.Request, "t", nil))
	if got := v.Receive(now.Add(30*time.Minute), in("p", "v", mailbox.Counter, "t", price("1.00 USD")))[0].UnitPrice.String(); got != "4.50 USD" {
		t.Errorf("half way through its hour: %s, want 4.50 USD", got)
	}

	s := Vendor{Name: "s", Item: "widget", Style: "slow", E: 1, List: mailbox.MustMoney("5.00 USD"), Floor: mailbox.MustMoney("4.00 USD"), Capacity: 1000}
	s.init()
	req := in("p", "s", mailbox.Request, "t", func(m *mailbox.Message) { m.Expires = now.Add(30 * time.Second) })
	if out := s.Receive(now, req); len(out) != 0 {
		t.Fatalf("a slow vendor answered at once: %v", summary(out))
	}
	if got := s.Wake(); !got.Equal(now.Add(20 * time.Second)) {
		t.Errorf("Wake() = %v, want 20s on", got)
	}
	if out := s.Tick(now.Add(19 * time.Second)); len(out) != 0 {
		t.Errorf("answered before its time: %v", summary(out))
	}
	if out := s.Tick(now.Add(20 * time.Second)); len(out) != 1 || out[0].Verb != mailbox.Quote {
		t.Errorf("at its time: %v, want the quote", summary(out))
	}

	b := Vendor{Name: "b", Item: "widget", Style: "bait", E: 1, List: mailbox.MustMoney("5.00 USD"), Floor: mailbox.MustMoney("4.00 USD"), Capacity: 1000, Finance: "finance"}
	b.init()
	out := b.Receive(now, in("p", "b", mailbox.Order, "t", func(m *mailbox.Message) {
		m.UnitPrice, m.Amount = mailbox.MustMoney("4.50 USD"), mailbox.MustMoney("2250.00 USD")
	}))
	if got := out[0]; got.Quantity != 550 || got.Amount.String() != "2475.00 USD" {
		t.Errorf("bait confirmed %d for %s, want 550 for 2475.00 USD", got.Quantity, got.Amount)
	}
}
