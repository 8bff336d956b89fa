package policy

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
)

// bkDeal is one need, bought in one to three parts.
type bkDeal struct {
	thread, item string
	whole        bool // finance approves the thread once, naming no vendor
	approved     bool // ...and it was allowed
	refused      int  // ...or denied, this many times
	deadline     time.Time
	parts        []*bkDealPart
	humanSpoke   bool
}

type bkDealPart struct {
	vendor                                   string
	qty                                      int64
	amount                                   bkCents
	approved, ordered, confirmed, paid, fell bool
	refused                                  int // approvals denied
	order, confirm                           *mailbox.Message
}

// bkAsked is an action escalated to the human: retried after an answer,
// and answered with what the ESCALATE asks to cover.
type bkAsked struct {
	agent  string
	m      *mailbox.Message
	covers bkCents
	esc    *mailbox.Message
	done   func(Outcome)
}

// bkHistory plays one generated history against the system and the model.
type bkHistory struct {
	rng      *rand.Rand
	seed     uint64
	r        bkRules
	p        *Policy
	clock    time.Time
	s        *State
	model    *bkModel
	entries  []mailbox.Entry
	deals    []*bkDeal
	asked    []*bkAsked
	ids      int
	steps    int
	restarts int
	failure  *bkFailure
}

// bkFailure is the first disagreement of a history, with what reproduces it.
type bkFailure struct {
	kind, detail string
	seed         uint64
	policy       string
	entries      []mailbox.Entry
	action       string
}

var bkStarts = []time.Time{
	time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC),
	time.Date(2026, 11, 30, 20, 30, 0, 0, time.UTC), // the month ends tonight
	time.Date(2026, 12, 31, 21, 0, 0, 0, time.UTC),  // and the year
	time.Date(2027, 2, 28, 23, 10, 0, 0, time.UTC),
}

var (
	bkItems   = []string{"widget", "bolt", "gear"}
	bkVendors = []string{"vendor-a", "vendor-b", "vendor-c", "vendor-d"}
)

func newBkHistory(seed uint64, rules []bkRules, pols []*Policy) *bkHistory {
	rng := rand.New(rand.NewPCG(seed, 15))
	i := rng.IntN(len(rules))
	h := &bkHistory{rng: rng, seed: seed, r: rules[i], p: pols[i], s: NewState(), model: newBkModel(rules[i])}
	h.s.Follow(h.p)
	h.clock = bkStarts[rng.IntN(len(bkStarts))].Add(time.Duration(rng.IntN(90)) * time.Minute)
	for d := range 1 + rng.IntN(3) {
		deal := &bkDeal{thread: fmt.Sprintf("deal-%d", d), item: bkItems[rng.IntN(len(bkItems))], whole: rng.IntN(5) == 0,
			deadline: h.clock.Truncate(24 * time.Hour).Add(time.Duration(3+rng.IntN(8)) * 24 * time.Hour)}
		vendors := rng.Perm(len(bkVendors))
		for k := range 1 + rng.IntN(3) {
			deal.parts = append(deal.parts, &bkDealPart{vendor: bkVendors[vendors[k]], qty: int64(10 * (1 + rng.IntN(50))), amount: h.amount()})
		}
		h.deals = append(h.deals, deal)
	}
	return h
}

// amount draws a part's price: mostly below the sign-off threshold, often
// enough above it, now and then near the cap.
func (h *bkHistory) amount() bkCents {
	switch n := h.rng.IntN(20); {
	case n < 12:
		return bkCents(5000 + h.rng.IntN(235000))
	case n < 18:
		return bkCents(240000 + h.rng.IntN(240000))
	default:
		return bkCents(100 + h.rng.IntN(510000))
	}
}

func (h *bkHistory) message(from, to string, verb mailbox.Verb, thread string) *mailbox.Message {
	h.ids++
	return &mailbox.Message{Version: "1", ID: fmt.Sprintf("<h%d-%d@prop>", h.seed, h.ids), Date: h.clock, From: from, To: to,
		Thread: thread, Verb: verb, Subject: string(verb)}
}

func (h *bkHistory) fail(kind, format string, args ...any) {
	if h.failure == nil {
		h.failure = &bkFailure{kind: kind, detail: fmt.Sprintf(format, args...), seed: h.seed, policy: h.r.name,
			entries: append([]mailbox.Entry(nil), h.entries...)}
	}
}

func (h *bkHistory) record(e mailbox.Entry) {
	e.Seq = uint64(len(h.entries) + 1)
	for _, l := range h.model.allowedLimits(e) {
		h.fail("limit: "+strings.SplitN(l, " ", 3)[1], "%s", l)
	}
	h.entries = append(h.entries, e)
	h.s.Apply(e)
	h.model.apply(e)
}

// send decides agent's m as the Engine does — the decision recorded, then
// the message delivered when allowed, or the ESCALATE to the human — and
// checks the decision against the model's.
func (h *bkHistory) send(agent string, m *mailbox.Message) Decision {
	now := h.clock
	wantO, wantR := h.model.decide(agent, m, now)
	a := Action{Agent: agent, Message: m}
	d := h.s.Evaluate(h.p, a, now)
	if d.Outcome != wantO || d.Rule != wantR {
		h.fail(fmt.Sprintf("decision %s: %s by %s, model %s by %s", m.Verb, d.Outcome, d.Rule, wantO, wantR),
			"%s %s %s to %s on %s at %s: %s by %s (%s); the model says %s by %s",
			agent, m.Verb, m.Total(), m.To, m.Thread, now.Format(time.RFC3339), d.Outcome, d.Rule, d.Reason, wantO, wantR)
		h.failure.action = bkAction(agent, m)
	}
	e := mailbox.MessageEntry(agent, EventDecision, m)
	e.Time, e.Decision, e.Rule, e.Reason, e.Policy, e.Key = now, string(d.Outcome), d.Rule, d.Reason, d.Policy, m.ID
	h.record(e)
	switch d.Outcome {
	case Allow:
		h.record(bkEntry(agent, mailbox.EventDelivered, m, now))
	case Escalate:
		x := EscalationMessage(h.p, a, d, now)
		h.ids++
		x.ID = fmt.Sprintf("<h%d-%d@escalate>", h.seed, h.ids)
		h.record(bkEntry(agent, mailbox.EventDelivered, x, now))
		h.asked = append(h.asked, &bkAsked{agent: agent, m: m, covers: bkCentsOf(x.Amount.Amount), esc: x})
	}
	return d
}

func bkEntry(agent, event string, m *mailbox.Message, at time.Time) mailbox.Entry {
	e := mailbox.MessageEntry(agent, event, m)
	e.Time = at
	return e
}

func bkAction(agent string, m *mailbox.Message) string {
	v, _ := m.Get("Vendor")
	s := fmt.Sprintf("%s sends %s %s to %s on %s (item %s, quantity %d", agent, m.Verb, m.Total(), m.To, m.Thread, m.Item, m.Quantity)
	if v != "" {
		s += ", vendor " + v
	}
	return s + ")"
}

// check compares every figure of the books with the model's, and the limits.
func (h *bkHistory) check(s *State, what string) {
	if h.failure != nil {
		return
	}
	got, want := bkSystemSnap(s, h.p, h.clock), h.model.snap(h.clock)
	if diffs := bkDiff(got, want); len(diffs) > 0 {
		kind := diffs[0]
		if i := strings.IndexAny(kind, "0123456789"); i > 0 && !strings.HasPrefix(kind, "thread") && !strings.HasPrefix(kind, "part") {
			kind = kind[:i]
		} else if f := strings.Fields(kind); len(f) > 3 {
			kind = f[0] + " " + f[2] // "part held"
		}
		h.fail(what+": "+kind, "at %s:\n\t%s", h.clock.Format(time.RFC3339), strings.Join(diffs, "\n\t"))
		return
	}
	for _, l := range h.model.limits(h.clock) {
		h.fail("limit: "+strings.Fields(l)[0], "at %s: %s", h.clock.Format(time.RFC3339), l)
	}
}

type bkMove struct {
	weight int
	do     func()
}

// step plays one generated move.
func (h *bkHistory) step() {
	var moves []bkMove
	add := func(w int, f func()) { moves = append(moves, bkMove{w, f}) }
	for _, d := range h.deals {
		h.dealMoves(d, add)
	}
	for _, x := range h.asked {
		if x.esc != nil {
			add(6, func() { h.answer(x) })
		}
		if x.done != nil && x.esc != nil {
			add(1, func() { h.retry(x) }) // asked again before the answer
		} else if x.done != nil {
			add(8, func() { h.retry(x) })
		}
	}
	add(8, func() { h.clock = h.clock.Add(time.Duration(1+h.rng.IntN(120)) * time.Minute) })
	add(2, func() { h.clock = h.clock.Add(h.r.reserve + time.Duration(h.rng.IntN(3))*time.Minute) })
	if h.r.timeout > 0 {
		add(2, func() { h.clock = h.clock.Add(h.r.timeout + time.Minute) })
	}
	add(2, func() { // to either side of the next midnight; a process's clock only goes on
		next := h.clock.Truncate(24 * time.Hour).Add(24*time.Hour + time.Duration(h.rng.IntN(5)-3)*time.Minute)
		if !next.After(h.clock) {
			next = next.Add(24 * time.Hour)
		}
		h.clock = next
	})
	add(2, h.restart)
	total := 0
	for _, m := range moves {
		total += m.weight
	}
	n := h.rng.IntN(total)
	for _, m := range moves {
		if n -= m.weight; n < 0 {
			m.do()
			break
		}
	}
	h.steps++
	h.check(h.s, "books")
}

func (d *bkDeal) total() bkCents {
	var n bkCents
	for _, p := range d.parts {
		if !p.fell {
			n += p.amount
		}
	}
	return n
}

func (h *bkHistory) dealMoves(d *bkDeal, add func(int, func())) {
	if d.whole && !d.approved && d.total() > 0 {
		add(8>>min(d.refused, 3), func() { h.approve(d, nil) })
	}
	if !d.humanSpoke && d.total() > 0 {
		add(1, func() { h.early(d) })
	}
	for _, p := range d.parts {
		if p.fell {
			continue
		}
		switch {
		case !d.whole && !p.approved:
			add(8>>min(p.refused, 3), func() { h.approve(d, p) })
		case !d.whole && !p.ordered:
			add(1, func() { h.approve(d, p) }) // approved again, before the order
		}
		if !p.ordered {
			w := 1 // ordered with no approval
			if p.approved || d.approved {
				w = 10
			}
			add(w, func() { h.order(d, p) })
		}
		if p.ordered && !p.confirmed {
			add(10, func() { h.confirm(d, p) })
		}
		if p.ordered && !p.paid {
			w := 2
			if p.confirmed {
				w = 12
			}
			add(w, func() { h.pay(d, p, p.vendor) })
		}
		if p.paid {
			add(1, func() { h.pay(d, p, p.vendor) }) // paid twice
		}
		if p.ordered {
			add(1, func() { h.order(d, p) }) // more from the same vendor
		}
		if !p.paid {
			add(1, func() { h.release(d, p) })
		}
	}
	add(1, func() { // a payment to a vendor nothing was ordered from
		p := d.parts[h.rng.IntN(len(d.parts))]
		h.pay(d, p, bkVendors[h.rng.IntN(len(bkVendors))])
	})
}

// wiggle changes an amount now and then: agents make mistakes, and
// vendors change their minds.
func (h *bkHistory) wiggle(c bkCents, oneIn int) bkCents {
	if h.rng.IntN(oneIn) != 0 {
		return c
	}
	if h.rng.IntN(2) == 0 {
		return c + bkCents(1+h.rng.IntN(60000))
	}
	return max(c-bkCents(1+h.rng.IntN(60000)), 1)
}

// approve is finance's APPROVED: for a part (Vendor header), or with p nil
// for the whole thread.
func (h *bkHistory) approve(d *bkDeal, p *bkDealPart) {
	m := h.message("finance", "procurement", mailbox.Approved, d.thread)
	if h.rng.IntN(6) > 0 {
		m.Item = d.item
	}
	if p == nil {
		m.Amount = h.wiggle(d.total(), 6).money()
	} else {
		m.Extra = []mailbox.Header{{Name: "Vendor", Value: p.vendor}}
		m.Amount = h.wiggle(p.amount, 6).money()
		if h.rng.IntN(3) > 0 {
			m.Quantity = p.qty
		}
	}
	done := func(o Outcome) {
		switch {
		case o == Allow && p == nil:
			d.approved = true
		case o == Allow:
			p.approved = true
		case o == Deny && p == nil:
			d.refused++
		case o == Deny:
			p.refused++
		}
	}
	h.act("finance", m, done)
}

// act sends, and keeps an escalated action to try again after the human
// answers.
func (h *bkHistory) act(agent string, m *mailbox.Message, done func(Outcome)) {
	n := len(h.asked)
	o := h.send(agent, m).Outcome
	if o == Escalate {
		h.asked[n].done = done
	}
	done(o)
}

// retry sends an escalated action again: a new ESCALATE, if it is
// escalated again, takes its place.
func (h *bkHistory) retry(x *bkAsked) {
	done := x.done
	x.done = nil
	h.act(x.agent, x.m, done)
	h.tidy()
}

// answer is the human's answer to an ESCALATE: what it asks (most often),
// less, more, or no.
func (h *bkHistory) answer(x *bkAsked) {
	m := h.message(bkHuman, x.agent, mailbox.Approved, x.m.Thread)
	m.InReplyTo, m.Item = x.esc.ID, x.esc.Item
	switch n := h.rng.IntN(20); {
	case n < 14:
		m.Amount = x.covers.money()
	case n < 16:
		m.Amount = max(x.covers-bkCents(1+h.rng.IntN(50000)), 1).money()
	case n < 17:
		m.Amount = (x.covers + bkCents(1+h.rng.IntN(50000))).money()
	default:
		m.Verb = mailbox.Denied
	}
	h.send(bkHuman, m)
	for _, d := range h.deals {
		if d.thread == x.m.Thread {
			d.humanSpoke = true
		}
	}
	// The thread's questions are answered; what was asked about is tried
	// again later.
	for _, y := range h.asked {
		if y.m.Thread == x.m.Thread {
			y.esc = nil
		}
	}
	h.tidy()
}

// tidy forgets what is neither waiting for an answer nor to be retried.
func (h *bkHistory) tidy() {
	var left []*bkAsked
	for _, y := range h.asked {
		if y.esc != nil || y.done != nil {
			left = append(left, y)
		}
	}
	h.asked = left
}

// early is the human approving a thread before anyone asked.
func (h *bkHistory) early(d *bkDeal) {
	m := h.message(bkHuman, "finance", mailbox.Approved, d.thread)
	m.Item, m.Amount = d.item, h.wiggle(d.total(), 4).money()
	h.send(bkHuman, m)
	d.humanSpoke = true
}

func (h *bkHistory) order(d *bkDeal, p *bkDealPart) {
	to := p.vendor
	if h.rng.IntN(25) == 0 {
		to = bkVendors[h.rng.IntN(len(bkVendors))]
	}
	m := h.message("procurement", to, mailbox.Order, d.thread)
	m.Item, m.Quantity, m.Amount = d.item, p.qty, h.wiggle(p.amount, 8).money()
	if h.rng.IntN(15) == 0 {
		m.Item = bkItems[h.rng.IntN(len(bkItems))]
	}
	if h.rng.IntN(15) == 0 {
		m.Quantity += 10
	}
	if h.rng.IntN(4) > 0 {
		m.DeliverBy = d.deadline
	}
	orderer := "procurement"
	if h.rng.IntN(40) == 0 {
		orderer = bkHuman // a person buys, and may pay, themselves
	}
	m.From = orderer
	h.act(orderer, m, func(o Outcome) {
		if o == Allow && to == p.vendor {
			p.ordered, p.order = true, m
			p.confirmed, p.confirm, p.paid = false, nil, false
		}
	})
}

// confirm is the vendor's CONFIRMED: most often the terms ordered,
// sometimes another amount, quantity, item or a later delivery.
func (h *bkHistory) confirm(d *bkDeal, p *bkDealPart) {
	m := h.message(p.vendor, "procurement", mailbox.Confirmed, d.thread)
	m.Item, m.Quantity, m.Amount, m.DeliverBy = p.order.Item, p.order.Quantity, p.order.Amount, p.order.DeliverBy
	if h.rng.IntN(3) == 0 {
		switch h.rng.IntN(4) {
		case 0:
			m.Amount = h.wiggle(bkCentsOf(p.order.Amount.Amount), 1).money()
		case 1:
			m.Quantity -= 5
		case 2:
			m.Item = "substitute-" + m.Item
		case 3:
			m.DeliverBy = d.deadline.Add(time.Duration(1+h.rng.IntN(3)) * 24 * time.Hour)
		}
	}
	if h.send(p.vendor, m).Outcome == Allow {
		p.confirmed, p.confirm = true, m
	}
}

// pay is a PAID to vendor: by finance most often, by procurement for its
// own order; what was confirmed (as finance pays), or what was ordered.
func (h *bkHistory) pay(d *bkDeal, p *bkDealPart, vendor string) {
	payer := "finance"
	switch n := h.rng.IntN(40); {
	case n < 8:
		payer = "procurement"
	case n < 9:
		payer = bkHuman
	}
	m := h.message(payer, vendor, mailbox.Paid, d.thread)
	m.Item, m.Quantity, m.Amount = d.item, p.qty, p.amount.money()
	switch {
	case p.confirm != nil && h.rng.IntN(5) > 0:
		m.Amount, m.Quantity, m.Item = p.confirm.Amount, p.confirm.Quantity, p.confirm.Item
	case p.order != nil:
		m.Amount = p.order.Amount
	}
	m.Amount = h.wiggle(bkCentsOf(m.Amount.Amount), 12).money()
	h.act(payer, m, func(o Outcome) {
		if o == Allow && vendor == p.vendor {
			p.paid = true
		}
	})
}

// release is the deal, or a part of it, falling through: finance's agent
// releases the vendor's approval, or all of the thread's.
func (h *bkHistory) release(d *bkDeal, p *bkDealPart) {
	vendor := p.vendor
	if d.whole || h.rng.IntN(4) == 0 {
		vendor = ""
	}
	h.record(mailbox.Entry{Time: h.clock, Agent: "finance", Event: EventReleased, Thread: d.thread, Vendor: vendor, Reason: "the deal fell through"})
	for _, q := range d.parts {
		if vendor == "" || q == p {
			q.fell = !q.paid
		}
	}
}

// restart is a process starting again: its state rebuilt from the whole
// ledger must agree with the one kept line by line, and goes on from there.
func (h *bkHistory) restart() {
	h.restarts++
	fresh := NewState()
	fresh.Follow(h.p)
	for _, e := range h.entries {
		fresh.Apply(e)
	}
	h.check(fresh, "restart")
	if h.failure == nil {
		if diffs := bkDiff(bkSystemSnap(fresh, h.p, h.clock), bkSystemSnap(h.s, h.p, h.clock)); len(diffs) > 0 {
			h.fail("restart: rebuilt state differs", "%s", strings.Join(diffs, "\n\t"))
		}
	}
	h.s = fresh
}

// finish is parley policy test under the same policy: nothing changes, and
// the books as recorded and as replayed are the model's.
func (h *bkHistory) finish() {
	if h.failure != nil || len(h.entries) == 0 {
		return
	}
	w := Replay(h.entries, h.p)
	if len(w.Changes) > 0 {
		c := w.Changes[0]
		h.fail(fmt.Sprintf("replay: %s %s by %s, was %s by %s", c.Verb, c.Would.Outcome, c.Would.Rule, c.Was.Outcome, c.Was.Rule),
			"Replay under the same policy changed %d decisions; the first, line %d: %s %s %s to %s on %s: was %s by %s, would be %s by %s (%s)",
			len(w.Changes), c.Seq, c.Agent, c.Verb, c.Amount, c.To, c.Thread, c.Was.Outcome, c.Was.Rule, c.Would.Outcome, c.Would.Rule, c.Would.Reason)
		return
	}
	last := h.entries[len(h.entries)-1].Time
	want := h.model.snap(last).totals
	if was, would := bkFigsOf(w.WasBooks), bkFigsOf(w.WouldBooks); was != want || would != want {
		h.fail("replay: books", "WasBooks %v\n\tWouldBooks %v\n\tmodel %v", was, would, want)
	}
}

// play plays a history of n steps at most.
func (h *bkHistory) play(n int) *bkFailure {
	for range n {
		h.step()
		if h.failure != nil {
			return h.failure
		}
	}
	h.finish()
	return h.failure
}

func bkPolicy(t testing.TB, r bkRules) *Policy {
	t.Helper()
	p, err := Parse("policy.toml", []byte(r.toml()))
	if err != nil {
		t.Fatalf("policy %s: %v\n%s", r.name, err, r.toml())
	}
	return p
}

func (f *bkFailure) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nseed %d, policy %q: %s\n", f.kind, f.seed, f.policy, f.detail)
	if f.action != "" {
		fmt.Fprintf(&b, "action: %s\n", f.action)
	}
	b.WriteString("ledger:\n")
	for _, e := range f.entries {
		b.WriteString("  " + bkLine(e) + "\n")
	}
	return b.String()
}

// bkLine is a ledger line as a person reads it.
func bkLine(e mailbox.Entry) string {
	s := fmt.Sprintf("%3d %s %-11s %-9s", e.Seq, e.Time.Format("01-02T15:04"), e.Agent, e.Event)
	if e.Verb != "" {
		s += fmt.Sprintf(" %s %s→%s", e.Verb, e.From, e.To)
	}
	s += " " + e.Thread
	if e.Amount != "" {
		s += " " + e.Amount
	}
	if e.Vendor != "" {
		s += " vendor=" + e.Vendor
	}
	if e.Item != "" || e.Quantity != 0 {
		s += fmt.Sprintf(" %d %s", e.Quantity, e.Item)
	}
	if e.DeliverBy != "" {
		s += " by " + e.DeliverBy
	}
	if e.Decision != "" {
		s += " ⇒ " + e.Decision + " " + e.Rule
	}
	return s
}

var bkSeed = flag.Uint64("books.seed", 0, "play only the history of this seed, and show its ledger")

// Histories are small, so that 10,000 of them stay within seconds under
// -race: long enough for a split deal to be approved, asked about,
// ordered, confirmed and paid.
const bkMinSteps, bkMaxSteps = 5, 14

// TestBooksProperty plays 10,000 generated histories (1,000 with -short)
// and checks every decision and every figure of the books against the
// model after every step, and that no limit is ever passed. Each kind of
// disagreement is reported once, with the shortest history that shows it.
func TestBooksProperty(t *testing.T) {
	histories := 10_000
	if testing.Short() {
		histories = 1_000
	}
	pols := make([]*Policy, len(bkPolicies))
	for i, r := range bkPolicies {
		pols[i] = bkPolicy(t, r)
	}
	if *bkSeed != 0 { // one history, told line by line
		h := newBkHistory(*bkSeed, bkPolicies, pols)
		f := h.play(bkMinSteps + h.rng.IntN(bkMaxSteps-bkMinSteps+1))
		t.Logf("policy %q:\n%s", h.r.name, h.r.toml())
		for _, e := range h.entries {
			t.Log(bkLine(e))
		}
		if f != nil {
			t.Fatal(f)
		}
		return
	}
	var (
		mu     sync.Mutex
		byKind = map[string]*bkFailure{}
		count  = map[string]int{}
		cover  = map[string]int{}
		steps  int
	)
	tally := func(h *bkHistory, f *bkFailure) {
		mu.Lock()
		defer mu.Unlock()
		steps += h.steps
		for _, e := range h.entries {
			switch e.Event {
			case EventDecision:
				cover[e.Verb+" "+e.Decision+" "+e.Rule]++
			case EventReleased:
				cover["released"]++
			}
		}
		if n := len(h.entries); n > 0 {
			for _, m := range h.model.snap(h.entries[n-1].Time).mism {
				cover["mismatch "+m.c]++
			}
		}
		cover["restarts"] += h.restarts
		if f == nil {
			return
		}
		count[f.kind]++
		if old := byKind[f.kind]; old == nil || len(f.entries) < len(old.entries) {
			byKind[f.kind] = f
		}
	}
	// The histories make much short-lived garbage: collect less often.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 2 { // histories are independent: one worker a core
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := uint64(1 + w); seed <= uint64(histories); seed += 2 {
				h := newBkHistory(seed, bkPolicies, pols)
				tally(h, h.play(bkMinSteps+h.rng.IntN(bkMaxSteps-bkMinSteps+1)))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	t.Logf("%d histories, %d steps in %v: %.0f histories/s", histories, steps, el.Round(time.Millisecond), float64(histories)/el.Seconds())
	if testing.Verbose() {
		var seen []string
		for k, n := range cover {
			seen = append(seen, fmt.Sprintf("%6d %s", n, k))
		}
		sort.Strings(seen)
		t.Logf("seen:\n%s", strings.Join(seen, "\n"))
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		t.Errorf("%d histories: %s", count[k], byKind[k])
	}
}
