package agents

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
)

var now = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC) // a Thursday

func defaultTeam(t *testing.T) *Team {
	t.Helper()
	team, err := ParseTeam("parley.toml", DefaultTeam)
	if err != nil {
		t.Fatal(err)
	}
	return team
}

func role(t *testing.T, name string) Role {
	t.Helper()
	team := defaultTeam(t)
	r, err := NewRole(team.Agent(name), team, "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var ids int

// in makes an incoming message, with an id.
func in(from, to string, verb mailbox.Verb, thread string, set func(m *mailbox.Message)) *mailbox.Message {
	ids++
	m := &mailbox.Message{ID: fmt.Sprintf("<%d@test>", ids), From: from, To: to, Thread: thread, Verb: verb, Item: "widget", Quantity: 500}
	if set != nil {
		set(m)
	}
	return m
}

func price(s string) func(m *mailbox.Message) {
	return func(m *mailbox.Message) { m.UnitPrice = mailbox.MustMoney(s) }
}

func summary(out []*mailbox.Message) []string {
	var s []string
	for _, m := range out {
		line := fmt.Sprintf("%s %s", m.To, m.Verb)
		if !m.UnitPrice.IsZero() {
			line += " " + m.UnitPrice.String()
		}
		if !m.Amount.IsZero() {
			line += " = " + m.Amount.String()
		}
		s = append(s, line)
	}
	return s
}

func TestVendor(t *testing.T) {
	v := role(t, "vendor-b").(*Vendor) // list 5.10, floor 4.60, capacity 800, lead 2 days, linear
	rfq := func(q int64, by time.Time) *mailbox.Message {
		return in("procurement", "vendor-b", mailbox.Request, "t", func(m *mailbox.Message) { m.Quantity, m.DeliverBy = q, by })
	}
	tests := []struct {
		name string
		m    *mailbox.Message
		want string
	}{
		{"quotes the list price", rfq(500, now.AddDate(0, 0, 7)), "procurement QUOTE 5.10 USD"},
		{"quotes for what it can make", rfq(900, now.AddDate(0, 0, 7)), "procurement QUOTE 5.10 USD"},
		{"declines what it cannot deliver in time", rfq(500, now.AddDate(0, 0, 1)), "procurement DECLINE"},
		{"declines another item", in("procurement", "vendor-b", mailbox.Request, "t", func(m *mailbox.Message) { m.Item = "gadget" }), "procurement DECLINE"},
		{"confirms an order to buyer and finance", in("procurement", "vendor-b", mailbox.Order, "t", func(m *mailbox.Message) { m.Amount = mailbox.MustMoney("2400.00 USD") }),
			"procurement CONFIRMED = 2400.00 USD|finance CONFIRMED = 2400.00 USD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(summary(v.Receive(now, tt.m)), "|"); !strings.HasPrefix(got, tt.want) {
				t.Errorf("Receive = %q, want %q", got, tt.want)
			}
		})
	}
	part := v.Receive(now, rfq(900, now.AddDate(0, 0, 7)))[0]
	if part.Quantity != 800 || !strings.HasPrefix(part.Subject, "QUOTE: 800 of the 900 widget asked") {
		t.Errorf("a request above capacity: quantity %d, %q; want a quote for its 800", part.Quantity, part.Subject)
	}
	order := in("procurement", "vendor-b", mailbox.Order, "t2", func(m *mailbox.Message) { m.Amount = mailbox.MustMoney("2400.00 USD") })
	if out := v.Receive(now, order); len(out) != 2 {
		t.Fatalf("an order: %v", summary(out))
	}
	again := in("procurement", "vendor-b", mailbox.Order, "t2", func(m *mailbox.Message) { m.Amount = mailbox.MustMoney("2400.00 USD") })
	if out := v.Receive(now, again); len(out) != 0 {
		t.Fatalf("a second order on one thread was confirmed: %v", summary(out))
	}
	q := v.Receive(now, rfq(500, time.Time{}))[0]
	if got, want := q.DeliverBy, time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("quote delivers %v, want %v (two days' lead)", got, want)
	}
}

// TestVendorConcedes: by style, the vendor's price falls over the rounds
// from its list price to its floor, never below it; an offer at or above its
// price is taken as it is.
func TestVendorConcedes(t *testing.T) {
	for style, e := range Styles {
		t.Run(style, func(t *testing.T) {
			v := &Vendor{Name: "v", Item: "widget", List: mailbox.MustMoney("5.00 USD"), Floor: mailbox.MustMoney("4.00 USD"),
				Capacity: 1000, E: e, Rounds: map[string]int{}}
			last := v.List
			for round := 1; round <= 6; round++ {
				out := v.Receive(now, in("p", "v", mailbox.Counter, "t", price("1.00 USD")))
				p := out[0].UnitPrice
				if p.Amount.GreaterThan(last.Amount) || p.Amount.LessThan(v.Floor.Amount) {
					t.Fatalf("round %d: %s after %s; want a price that falls and stays at or above the floor 4.00", round, p, last)
				}
				last = p
			}
			if !last.Amount.Equal(v.Floor.Amount) {
				t.Errorf("after every round the price is %s, want the floor", last)
			}
			fresh := &Vendor{Name: "v", Item: "widget", List: v.List, Floor: v.Floor, Capacity: 1000, E: e, Rounds: map[string]int{}}
			meets := fresh.target(1)
			if got := fresh.Receive(now, in("p", "v", mailbox.Counter, "u", price(meets.String())))[0].UnitPrice; !got.Amount.Equal(meets.Amount) {
				t.Errorf("an offer of %s, its own price in round 1, got %s, want it taken", meets, got)
			}
		})
	}
	// Boulware holds out longer than a conceder.
	b := &Vendor{List: mailbox.MustMoney("5.00 USD"), Floor: mailbox.MustMoney("4.00 USD"), E: Styles["boulware"]}
	c := &Vendor{List: mailbox.MustMoney("5.00 USD"), Floor: mailbox.MustMoney("4.00 USD"), E: Styles["conceder"]}
	if !b.target(2).Amount.GreaterThan(c.target(2).Amount) {
		t.Errorf("round 2: boulware %s, conceder %s; want boulware higher", b.target(2), c.target(2))
	}
}

// dealTo plays procurement through a deal with the default vendors' terms
// answering in the given order, and returns procurement and what it sent.
func dealTo(t *testing.T, order []string) (*Procurement, []*mailbox.Message) {
	t.Helper()
	team := defaultTeam(t)
	p := role(t, "procurement").(*Procurement)
	vendors := map[string]Role{}
	for _, n := range []string{"vendor-a", "vendor-b", "vendor-c"} {
		r, _ := NewRole(team.Agent(n), team, "")
		vendors[n] = r
	}
	req := in("inventory", "procurement", mailbox.Request, "restock-1", func(m *mailbox.Message) { m.DeliverBy = now.AddDate(0, 0, 8) })
	rfqs := p.Receive(now, req)
	if got := summary(rfqs); !slices.Equal(got, []string{"vendor-a REQUEST", "vendor-b REQUEST", "vendor-c REQUEST"}) {
		t.Fatalf("RFQs = %v", got)
	}
	answers := map[string]*mailbox.Message{}
	for _, rfq := range rfqs {
		rfq.ID = fmt.Sprintf("<rfq-%s@test>", rfq.To)
		answers[rfq.To] = vendors[rfq.To].Receive(now, rfq)[0]
	}
	var sent []*mailbox.Message
	var queue []*mailbox.Message
	for _, v := range order {
		queue = append(queue, p.Receive(now, answers[v])...)
	}
	// Negotiate until procurement asks finance.
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		sent = append(sent, m)
		if vr, ok := vendors[m.To]; ok {
			m.ID = fmt.Sprintf("<%d@p>", len(sent))
			for _, r := range vr.Receive(now, m) {
				r.ID = fmt.Sprintf("<%d@v>", len(sent))
				queue = append(queue, p.Receive(now, r)...)
			}
		}
	}
	return p, sent
}

// TestProcurementFirstProposalBias: the same quotes arriving in every order
// pick the same winner, at the same price.
func TestProcurementFirstProposalBias(t *testing.T) {
	orders := [][]string{
		{"vendor-a", "vendor-b", "vendor-c"}, {"vendor-c", "vendor-b", "vendor-a"}, {"vendor-b", "vendor-a", "vendor-c"},
		{"vendor-b", "vendor-c", "vendor-a"}, {"vendor-a", "vendor-c", "vendor-b"}, {"vendor-c", "vendor-a", "vendor-b"},
	}
	var first string
	for _, o := range orders {
		p, sent := dealTo(t, o)
		d := p.Deals["restock-1"]
		last := sent[len(sent)-1]
		got := fmt.Sprintf("%s %s %s, %s", d.Vendor, d.Phase, d.Agreed, strings.Join(summary([]*mailbox.Message{last}), ""))
		if first == "" {
			first = got
			if d.Vendor != "vendor-b" || d.Phase != "approving" || last.To != "finance" || last.Verb != mailbox.Request {
				t.Fatalf("deal = %s; want vendor-b agreed and finance asked", got)
			}
			if v, _ := last.Get("Vendor"); v != "vendor-b" {
				t.Errorf("finance is not told the vendor: %q", v)
			}
		}
		if got != first {
			t.Errorf("order %v: %s; order %v gave %s", o, got, orders[0], first)
		}
	}
}

// TestProcurementNeverRevealsOrExceeds: counter-offers name no other
// vendor's quote and never go above procurement's private ceiling.
func TestProcurementNeverRevealsOrExceeds(t *testing.T) {
	p, sent := dealTo(t, []string{"vendor-a", "vendor-b", "vendor-c"})
	for _, m := range sent {
		text := string(m.Marshal())
		for _, secret := range []string{"5.40", "4.95", "4.60"} { // vendor-a's quote; the vendors' floors
			if m.Verb == mailbox.Counter && strings.Contains(text, secret) {
				t.Errorf("counter-offer to %s states %s:\n%s", m.To, secret, text)
			}
		}
	}
	if p.Deals["restock-1"].Round == 0 {
		t.Errorf("procurement did not negotiate")
	}
	ceil := role(t, "procurement").(*Procurement)
	ceil.Ceiling = mailbox.MustMoney("4.50 USD")
	ceil.Receive(now, in("inventory", "procurement", mailbox.Request, "c", nil))
	ceil.Receive(now, in("vendor-a", "procurement", mailbox.Quote, "c", price("5.40 USD")))
	ceil.Receive(now, in("vendor-c", "procurement", mailbox.Decline, "c", nil))
	out := ceil.Receive(now, in("vendor-b", "procurement", mailbox.Quote, "c", price("5.10 USD")))
	if len(out) == 0 {
		t.Errorf("with a ceiling of 4.50: no counter-offer")
	}
	for _, m := range out {
		if m.Verb != mailbox.Counter || !m.UnitPrice.Amount.LessThan(ceil.Ceiling.Amount) {
			t.Errorf("with a ceiling of 4.50: %v", summary(out))
		}
	}
}

func TestProcurementAfterTheAgreement(t *testing.T) {
	p, _ := dealTo(t, []string{"vendor-a", "vendor-b", "vendor-c"})
	d := p.Deals["restock-1"]
	order := p.Receive(now, in("finance", "procurement", mailbox.Approved, "restock-1", func(m *mailbox.Message) { m.Amount = d.Agreed.Times(500) }))
	if got := summary(order); len(got) != 1 || !strings.HasPrefix(got[0], "vendor-b ORDER "+d.Agreed.String()) {
		t.Fatalf("after APPROVED: %v", got)
	}
	done := p.Receive(now, in("vendor-b", "procurement", mailbox.Confirmed, "restock-1", func(m *mailbox.Message) {
		m.Amount, m.DeliverBy = d.Agreed.Times(500), time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	}))
	want := fmt.Sprintf("Ordered 500 widget for %s from vendor-b. Delivery Saturday.", d.Agreed.Times(500))
	if len(done) != 2 || done[0].To != "human" || done[0].Subject != want || done[1].To != "inventory" {
		t.Fatalf("after CONFIRMED: %v %q, want the human told %q", summary(done), done[0].Subject, want)
	}
}

func TestProcurementWindowAndFailures(t *testing.T) {
	t.Run("a vendor that never answers", func(t *testing.T) {
		p := role(t, "procurement").(*Procurement)
		p.Receive(now, in("inventory", "procurement", mailbox.Request, "w", nil))
		p.Receive(now, in("vendor-b", "procurement", mailbox.Quote, "w", price("5.10 USD")))
		if out := p.Tick(now.Add(10 * time.Second)); len(out) != 0 {
			t.Fatalf("before the window closes: %v", summary(out))
		}
		out := p.Tick(now.Add(31 * time.Second))
		if got := summary(out); len(got) != 1 || !strings.HasPrefix(got[0], "vendor-b COUNTER") {
			t.Fatalf("when the window closes: %v", got)
		}
	})
	t.Run("no vendor can", func(t *testing.T) {
		p := role(t, "procurement").(*Procurement)
		p.Receive(now, in("inventory", "procurement", mailbox.Request, "n", nil))
		p.Receive(now, in("vendor-a", "procurement", mailbox.Decline, "n", nil))
		p.Receive(now, in("vendor-b", "procurement", mailbox.Decline, "n", nil))
		out := p.Receive(now, in("vendor-c", "procurement", mailbox.Decline, "n", nil))
		if got := summary(out); !slices.Equal(got, []string{"human NOTIFY", "inventory NOTIFY"}) || !strings.HasPrefix(out[0].Subject, "Could not buy 500 widget: no vendor can deliver") {
			t.Fatalf("all declined: %v %q", got, out[0].Subject)
		}
	})
	t.Run("no quote in time", func(t *testing.T) {
		p := role(t, "procurement").(*Procurement)
		p.Receive(now, in("inventory", "procurement", mailbox.Request, "q", nil))
		out := p.Tick(now.Add(31 * time.Second))
		if got := summary(out); !slices.Equal(got, []string{"human NOTIFY", "inventory NOTIFY"}) ||
			out[0].Subject != "Could not buy 500 widget: no vendor quoted before the quote window closed at 10:00:30 UTC (no answer from vendor-a, vendor-b, vendor-c)." {
			t.Fatalf("no answers: %v %q", got, out[0].Subject)
		}
		p = role(t, "procurement").(*Procurement)
		p.Receive(now, in("inventory", "procurement", mailbox.Request, "q", nil))
		p.Receive(now, in("vendor-a", "procurement", mailbox.Decline, "q", nil))
		out = p.Tick(now.Add(31 * time.Second))
		if !strings.Contains(out[0].Subject, "no vendor that quoted can deliver") || !strings.Contains(out[0].Subject, "vendor-b, vendor-c did not quote before the quote window closed") {
			t.Fatalf("one declined, two silent: %q", out[0].Subject)
		}
	})
	t.Run("the human closes a question", func(t *testing.T) {
		p, _ := dealTo(t, []string{"vendor-b", "vendor-a", "vendor-c"})
		out := p.Receive(now, in("human", "procurement", mailbox.Denied, "restock-1", func(m *mailbox.Message) { m.Body = "..." }))
		if d := p.Deals["restock-1"]; len(out) != 0 || d.Phase != "approving" {
			t.Fatalf("the human's DENIED of an escalation with no spend: %v, phase %s; want nothing, the deal going on", summary(out), d.Phase)
		}
	})
	t.Run("finance denies", func(t *testing.T) {
		p, _ := dealTo(t, []string{"vendor-b", "vendor-a", "vendor-c"})
		out := p.Receive(now, in("finance", "procurement", mailbox.Denied, "restock-1", func(m *mailbox.Message) { m.Body = "over the budget" }))
		if got := summary(out); !slices.Equal(got, []string{"human NOTIFY", "inventory NOTIFY", "finance NOTIFY"}) || !strings.Contains(out[0].Subject, "over the budget") {
			t.Fatalf("denied: %v, want the human, the requester and finance told", got)
		}
	})
}

func TestFinance(t *testing.T) {
	f := role(t, "finance").(*Finance)
	req := in("procurement", "finance", mailbox.Request, "t", func(m *mailbox.Message) {
		m.Amount = mailbox.MustMoney("2400.00 USD")
		m.Extra = []mailbox.Header{{Name: "Vendor", Value: "vendor-b"}}
	})
	out := f.Receive(now, req)
	if got := summary(out); !slices.Equal(got, []string{"procurement APPROVED = 2400.00 USD"}) || out[0].InReplyTo != req.ID {
		t.Fatalf("request: %v", got)
	}
	denied := f.Denied(now, out[0], policy.Decision{Outcome: policy.Deny, Rule: "budget", Reason: "above the budget"})
	if got := summary(denied); !slices.Equal(got, []string{"procurement DENIED = 2400.00 USD"}) || !strings.Contains(denied[0].Subject, "above the budget (policy rule budget)") {
		t.Fatalf("denied by policy: %v %q", got, denied[0].Subject)
	}
	f.Receive(now, in("procurement", "finance", mailbox.Notify, "t", func(m *mailbox.Message) {
		m.Extra = []mailbox.Header{{Name: "Fell-Through", Value: "yes"}, {Name: "Vendor", Value: "vendor-b"}}
	}))
	if !slices.Equal(f.Release, []Release{{"t", "vendor-b"}}) {
		t.Errorf("a deal that fell through: Release = %v, want vendor-b's approval on t", f.Release)
	}
	paid := f.Receive(now, in("vendor-b", "finance", mailbox.Confirmed, "t", func(m *mailbox.Message) { m.Amount = mailbox.MustMoney("2400.00 USD") }))
	if got := summary(paid); !slices.Equal(got, []string{"vendor-b PAID = 2400.00 USD"}) {
		t.Fatalf("confirmed: %v", got)
	}
}

func TestInventoryAsksOncePerNeed(t *testing.T) {
	inv := role(t, "inventory").(*Inventory)
	stock := int64(40)
	inv.stock = func() ([]StockItem, error) {
		return []StockItem{{Name: "widget", Stock: stock, ReorderPoint: 100, ReorderQuantity: 500, DeliverWithinDays: 8}}, nil
	}
	out := inv.Tick(now)
	if got := summary(out); !slices.Equal(got, []string{"procurement REQUEST"}) || out[0].Quantity != 500 || out[0].Subject != "REQUEST: need 500 widget by Friday" {
		t.Fatalf("low stock: %v %q", got, out[0].Subject)
	}
	thread := out[0].Thread
	stock = 30 // it falls further: the same need
	if out := inv.Tick(now.Add(time.Second)); len(out) != 0 {
		t.Fatalf("the same need asked again: %v", summary(out))
	}
	inv.Receive(now, in("procurement", "inventory", mailbox.Notify, thread, func(m *mailbox.Message) { m.DeliverBy = now.AddDate(0, 0, 2) }))
	if out := inv.Tick(now.Add(2 * time.Second)); len(out) != 0 {
		t.Fatalf("asked again while the order is on its way: %v", summary(out))
	}
	stock = 530 // the goods arrived and were counted
	inv.Tick(now.Add(3 * time.Second))
	stock = 90 // a new need
	if out := inv.Tick(now.Add(4 * time.Second)); len(out) != 1 || out[0].Thread == thread {
		t.Fatalf("a new need: %v", summary(out))
	}
	// A need that could not be met is asked again, after a while.
	failed := inv.Open["widget"]
	inv.Receive(now, in("procurement", "inventory", mailbox.Notify, failed, func(m *mailbox.Message) { m.Subject = "Could not buy" }))
	if out := inv.Tick(now.Add(30 * time.Minute)); len(out) != 0 {
		t.Fatalf("asked again at once after a failure: %v", summary(out))
	}
	if out := inv.Tick(now.Add(2 * time.Hour)); len(out) != 1 {
		t.Fatalf("not asked again an hour after a failure: %v", summary(out))
	}
}

// TestProcurementDeadlines: an awaited answer that does not come gets one
// reminder; then a silent vendor loses the deal to the next offer, and a
// silent finance is reported to the human.
func TestProcurementDeadlines(t *testing.T) {
	p := role(t, "procurement").(*Procurement)
	p.ReplyWithin = 10 * time.Minute
	p.Serial = true // one vendor at a time, as under a model that decides
	p.Receive(now, in("inventory", "procurement", mailbox.Request, "d", nil))
	p.Receive(now, in("vendor-a", "procurement", mailbox.Quote, "d", price("5.40 USD")))
	p.Receive(now, in("vendor-c", "procurement", mailbox.Decline, "d", nil))
	counter := p.Receive(now, in("vendor-b", "procurement", mailbox.Quote, "d", price("5.10 USD")))
	if got := summary(counter); len(got) != 1 || !strings.HasPrefix(got[0], "vendor-b COUNTER") {
		t.Fatalf("counter: %v", got)
	}
	if out := p.Tick(now.Add(5 * time.Minute)); len(out) != 0 {
		t.Fatalf("before the deadline: %v", summary(out))
	}
	counter[0].ID = "<counter@p>"
	reminder := p.Tick(now.Add(11 * time.Minute))
	if len(reminder) != 1 || reminder[0].To != "vendor-b" || reminder[0].Verb != mailbox.Notify || reminder[0].Subject != "REMINDER: I await your answer to my COUNTER <counter@p>" {
		t.Fatalf("the reminder: %v %q", summary(reminder), reminder[0].Subject)
	}
	next := p.Tick(now.Add(22 * time.Minute))
	if got := summary(next); len(got) != 1 || !strings.HasPrefix(got[0], "vendor-a COUNTER") {
		t.Fatalf("after vendor-b stays silent: %v, want the next offer pressed", got)
	}
	// vendor-a agrees; finance never answers.
	ask := p.Receive(now, in("vendor-a", "procurement", mailbox.Quote, "d", price(next[0].UnitPrice.String())))
	if got := summary(ask); len(got) != 1 || !strings.HasPrefix(got[0], "finance REQUEST") {
		t.Fatalf("agreement: %v", got)
	}
	if out := p.Tick(now.Add(33 * time.Minute)); len(out) != 1 || out[0].To != "finance" || !strings.HasPrefix(out[0].Subject, "REMINDER: I await your answer to my REQUEST") {
		t.Fatalf("finance reminded: %v", summary(out))
	}
	out := p.Tick(now.Add(44 * time.Minute))
	if len(out) != 1 || out[0].To != "human" || out[0].Verb != mailbox.Escalate || !strings.Contains(out[0].Subject, "finance has not answered my REQUEST") {
		t.Fatalf("finance silent: %v", summary(out))
	}
	if out := p.Tick(now.Add(99 * time.Minute)); len(out) != 0 {
		t.Fatalf("told the human again: %v", summary(out))
	}
}

func TestInventoryBadStockFile(t *testing.T) {
	inv := role(t, "inventory").(*Inventory)
	inv.StockFile = filepath.Join(t.TempDir(), "stock.toml")
	if err := os.WriteFile(inv.StockFile, []byte("[[item]]\nname = \"widget\"\nstock = \"lots\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := inv.Tick(now); len(out) != 0 {
		t.Fatalf("told at the first look, which may be an editor half-way through a save: %v", summary(out))
	}
	out := inv.Tick(now.Add(time.Second))
	if len(out) != 1 || out[0].To != "human" || !strings.Contains(out[0].Subject, "stock.toml:3: item.stock: incompatible types") {
		t.Fatalf("a bad stock file: %v", summary(out))
	}
	if out := inv.Tick(now.Add(2 * time.Second)); len(out) != 0 {
		t.Fatalf("told again: %v", summary(out))
	}
	os.WriteFile(inv.StockFile, []byte(DefaultStock), 0o644)
	if out := inv.Tick(now.Add(3 * time.Second)); len(out) != 0 || inv.Bad != "" {
		t.Fatalf("after the fix: %v, Bad %q", summary(out), inv.Bad)
	}
}

// TestProcurementTactics: each strategy's counter-offers over three rounds
// against a vendor quoting 10.00, then 9.50, then 9.20, with a ceiling of
// 12.00, worked out by hand. The baselines go from the anchor (9.00, 10%
// under the first quote) towards the ceiling: p = a + (c − a)·(k/3)^(1/e),
// never the ceiling itself; tit for tat adds the vendor's last concession;
// parley's own starts 10% under each quote and concedes (k/4)² of the gap,
// but never offers less than it offered before: its offer holds.
func TestProcurementTactics(t *testing.T) {
	tests := []struct {
		tactic string
		want   []string // the offers of rounds 1, 2, 3
	}{
		{"", []string{"9.06", "9.06", "9.06"}},
		{"boulware", []string{"9.01", "9.40", "11.99"}},
		{"linear", []string{"10.00", "11.00", "11.99"}},
		{"conceder", []string{"10.73", "11.45", "11.99"}},
		{"tft", []string{"9.00", "9.50", "9.80"}},
	}
	for _, tt := range tests {
		p := &Procurement{Rounds: 3, Ceiling: mailbox.MustMoney("12.00 USD"), Tactic: tt.tactic}
		d := &Deal{Quotes: map[string]*Offer{}, Vendor: "v"}
		var got []string
		for _, q := range []string{"10.00 USD", "9.50 USD", "9.20 USD"} {
			theirs := mailbox.MustMoney(q)
			d.Last = d.Quotes["v"].price()
			d.Quotes["v"] = &Offer{UnitPrice: theirs}
			out := p.counter(now, d, theirs)
			got = append(got, out[0].UnitPrice.Amount.StringFixed(2))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("tactic %q offers %v, want %v", tt.tactic, got, tt.want)
		}
	}
}

// TestProcurementBuysInParts: a need no one vendor can serve is bought in
// parts, cheapest first, each approved, ordered and confirmed on its own;
// the human hears of the whole once every part is confirmed.
func TestProcurementBuysInParts(t *testing.T) {
	p := role(t, "procurement").(*Procurement)
	p.Rounds = 0 // take each quote as it is: the parts are what is tested here
	step := func(m *mailbox.Message) []string { return summary(p.Receive(now, m)) }
	step(in("inventory", "procurement", mailbox.Request, "t", func(m *mailbox.Message) { m.Quantity = 1000 }))
	step(in("vendor-b", "procurement", mailbox.Quote, "t", func(m *mailbox.Message) { m.Quantity, m.UnitPrice = 600, mailbox.MustMoney("7.00 USD") }))
	step(in("vendor-c", "procurement", mailbox.Decline, "t", nil))
	got := step(in("vendor-a", "procurement", mailbox.Quote, "t", func(m *mailbox.Message) { m.Quantity, m.UnitPrice = 600, mailbox.MustMoney("6.00 USD") }))
	want := [][]string{
		{"finance REQUEST 6.00 USD = 3600.00 USD"},
		{"vendor-a ORDER 6.00 USD = 3600.00 USD"},
		{"finance REQUEST 7.00 USD = 2800.00 USD"},
		{"vendor-b ORDER 7.00 USD = 2800.00 USD"},
		{"human NOTIFY = 6400.00 USD", "inventory NOTIFY"},
	}
	for i, w := range want {
		if !slices.Equal(got, w) {
			t.Fatalf("step %d: %v, want %v", i, got, w)
		}
		switch i {
		case 0, 2:
			got = step(in("finance", "procurement", mailbox.Approved, "t", func(m *mailbox.Message) { m.Amount = mailbox.MustMoney("1.00 USD") }))
		case 1, 3:
			vendor := []string{"", "vendor-a", "", "vendor-b"}[i]
			got = step(in(vendor, "procurement", mailbox.Confirmed, "t", func(m *mailbox.Message) { m.DeliverBy = now.AddDate(0, 0, 2+i) }))
		}
	}
	d := p.Deals["t"]
	if d.Phase != "done" || d.Bought != 1000 || len(d.Parts) != 2 {
		t.Errorf("deal: phase %s, bought %d, parts %v", d.Phase, d.Bought, d.Parts)
	}
}

// TestProcurementAuction: every vendor that quoted is pressed at once,
// each with its own offer made from its own quote — never one price for
// all, from which the dearer vendor could work out the cheaper one's — and
// no offer to a vendor is lower than one before; the last round is a best
// and final; the best quote standing wins, whichever answered first; a
// vendor silent past the round's time is out of it.
func TestProcurementAuction(t *testing.T) {
	start := func() (*Procurement, []*mailbox.Message) {
		p := role(t, "procurement").(*Procurement)
		p.ReplyWithin = 10 * time.Minute
		p.Receive(now, in("inventory", "procurement", mailbox.Request, "p", nil))
		p.Receive(now, in("vendor-c", "procurement", mailbox.Decline, "p", nil))
		p.Receive(now, in("vendor-a", "procurement", mailbox.Quote, "p", price("5.40 USD")))
		return p, p.Receive(now, in("vendor-b", "procurement", mailbox.Quote, "p", price("5.10 USD")))
	}
	p, round1 := start()
	if got, want := summary(round1), []string{"vendor-b COUNTER 4.34 USD", "vendor-a COUNTER 4.59 USD"}; !slices.Equal(got, want) {
		t.Fatalf("round 1: %v, want %v: each its own offer, from its own quote", got, want)
	}
	// vendor-a meets its offer, vendor-b comes down to 4.95, in either
	// order; vendor-b is pressed to the end, never offered less, and then
	// the best standing, vendor-a's 4.59, wins.
	for _, order := range [][]string{{"vendor-a", "vendor-b"}, {"vendor-b", "vendor-a"}} {
		p, _ := start()
		var out []*mailbox.Message
		for _, v := range order {
			q := map[string]string{"vendor-a": "4.59 USD", "vendor-b": "4.95 USD"}[v]
			out = p.Receive(now, in(v, "procurement", mailbox.Quote, "p", price(q)))
		}
		last, final := mailbox.MustMoney("4.34 USD"), false
		for len(out) == 1 && out[0].To == "vendor-b" {
			if out[0].UnitPrice.Amount.LessThan(last.Amount) {
				t.Fatalf("vendor-b offered %s after %s", out[0].UnitPrice, last)
			}
			last, final = out[0].UnitPrice, strings.HasPrefix(out[0].Subject, "BEST AND FINAL")
			out = p.Receive(now, in("vendor-b", "procurement", mailbox.Quote, "p", price("4.95 USD")))
		}
		if got := summary(out); !slices.Equal(got, []string{"finance REQUEST 4.59 USD = 2295.00 USD"}) || !final {
			t.Errorf("answers in the order %v: %v (a best and final round: %v), want vendor-a's 4.59 taken after one", order, got, final)
		}
	}
	// A vendor that answers with a COUNTER (PROTOCOL.md: from either side)
	// is read as quoting that price.
	countered, _ := start()
	countered.Receive(now, in("vendor-a", "procurement", mailbox.Quote, "p", price("5.30 USD")))
	out := countered.Receive(now, in("vendor-b", "procurement", mailbox.Counter, "p", price("4.95 USD")))
	if o := countered.Deals["p"].Quotes["vendor-b"]; !o.UnitPrice.Amount.Equal(mailbox.MustMoney("4.95 USD").Amount) || len(out) == 0 {
		t.Errorf("after vendor-b's COUNTER at 4.95: its price %s, and %v", o.UnitPrice, summary(out))
	}
	// Both decline: the deal is not made, and the human is told.
	both, _ := start()
	both.Receive(now, in("vendor-a", "procurement", mailbox.Decline, "p", nil))
	out = both.Receive(now, in("vendor-b", "procurement", mailbox.Decline, "p", nil))
	if got := summary(out); len(got) == 0 || got[0] != "human NOTIFY" || both.Deals["p"].Phase != "failed" {
		t.Errorf("both declined: %v, phase %s", got, both.Deals["p"].Phase)
	}
	// The policy refuses the counter-offer to vendor-a: vendor-a is out of
	// the auction, and vendor-b's answer decides it.
	refused, round1b := start()
	for _, m := range round1b {
		if m.To == "vendor-a" {
			refused.Denied(now, m, policy.Decision{Outcome: policy.Deny, Rule: "negotiation.max_rounds"})
		}
	}
	got := summary(refused.Receive(now, in("vendor-b", "procurement", mailbox.Quote, "p", price("4.34 USD"))))
	if !slices.Equal(got, []string{"finance REQUEST 4.34 USD = 2170.00 USD"}) || refused.Deals["p"].Phase == "failed" {
		t.Errorf("after the policy refused vendor-a's counter: %v, phase %s", got, refused.Deals["p"].Phase)
	}
	// vendor-b answers, vendor-a stays silent: after the round's time
	// vendor-a is out, and vendor-b is pressed alone.
	p.Receive(now, in("vendor-b", "procurement", mailbox.Quote, "p", price("4.95 USD")))
	if out := p.Tick(now.Add(5 * time.Minute)); len(out) != 0 {
		t.Fatalf("before the round's time: %v", summary(out))
	}
	out = p.Tick(now.Add(11 * time.Minute))
	if got := summary(out); len(got) != 1 || !strings.HasPrefix(got[0], "vendor-b COUNTER") {
		t.Fatalf("after vendor-a's silence: %v", got)
	}
	if o := p.Deals["p"].Quotes["vendor-a"]; !o.Declined || o.Why != "did not answer" {
		t.Errorf("vendor-a: %+v", o)
	}
}

// TestProcurementNoticesOnceAndTellsChangedTerms: the end of a deal is told
// once to each who needs it — to the human once, even when the human asked
// — and a part the vendor confirmed on other terms than ordered is named in
// the human's notice with both figures.
func TestProcurementNoticesOnceAndTellsChangedTerms(t *testing.T) {
	tests := []struct {
		name      string
		requester string
		confirm   func(m *mailbox.Message, ordered mailbox.Money)
		want      []string // the recipients of the notices
		says      string   // in the human's notice
	}{
		{"asked by inventory", "inventory", nil, []string{"human", "inventory"}, "Ordered 500 widget"},
		{"asked by the human", "human", nil, []string{"human"}, "Ordered 500 widget"},
		{"confirmed for more", "inventory", func(m *mailbox.Message, ordered mailbox.Money) {
			m.Amount = mailbox.MustMoney("5000.00 USD")
		}, []string{"human", "inventory"}, "vendor-b confirmed 5000.00 USD, not what was ordered"},
		{"confirmed fewer, later", "human", func(m *mailbox.Message, ordered mailbox.Money) {
			m.Quantity, m.DeliverBy = 400, now.AddDate(0, 1, 0)
		}, []string{"human"}, "vendor-b confirmed 400 units, delivery 2026-12-26, not what was ordered (500 widget"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := dealTo(t, []string{"vendor-a", "vendor-b", "vendor-c"})
			d := p.Deals["restock-1"]
			d.Requester = tt.requester
			p.Receive(now, in("finance", "procurement", mailbox.Approved, "restock-1", func(m *mailbox.Message) { m.Amount = d.Agreed.Times(500) }))
			ordered := d.Agreed.Times(500)
			done := p.Receive(now, in("vendor-b", "procurement", mailbox.Confirmed, "restock-1", func(m *mailbox.Message) {
				m.Amount, m.DeliverBy = ordered, d.Quotes["vendor-b"].DeliverBy
				if tt.confirm != nil {
					tt.confirm(m, ordered)
				}
			}))
			var to []string
			for _, m := range done {
				to = append(to, m.To)
			}
			if !slices.Equal(to, tt.want) {
				t.Fatalf("notices to %v, want %v", to, tt.want)
			}
			if !strings.Contains(done[0].Body, tt.says) {
				t.Errorf("the human's notice does not say %q:\n%s", tt.says, done[0].Body)
			}
		})
	}
}
