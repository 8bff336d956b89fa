package policy

// A model of the books for the property test of issue 15
// (TestBooksProperty): what every figure and every money decision should
// be, written from the words and docs/POLICY.md in integer cents,
// sharing no code with books.go or eval.go. It reads the same ledger lines
// the system does, and predicts each decision before it is made.

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/shopspring/decimal"
)

// bkCents is an amount of money in cents: the model's arithmetic is exact
// without sharing the system's decimals.
type bkCents int64

func (c bkCents) String() string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

func (c bkCents) money() mailbox.Money { return mailbox.MustMoney(c.String() + " USD") }

// bkCentsOf reads a decimal the system computed; a figure that is not a
// whole number of cents is itself a difference.
func bkCentsOf(d decimal.Decimal) bkCents {
	// coefficient × 10^exponent, read with integers: the test reads a
	// great many under -race. Its amounts are far below 2^63 cents.
	if exp := d.Exponent(); exp >= -2 && exp <= 6 {
		c := d.CoefficientInt64()
		for ; exp > -2; exp-- {
			c *= 10
		}
		return bkCents(c)
	}
	c := d.Shift(2)
	if !c.IsInteger() {
		panic(fmt.Sprintf("%s is not a whole number of cents", d))
	}
	return bkCents(c.IntPart())
}

func bkParse(s string) bkCents {
	if s == "" {
		return 0
	}
	return bkCentsOf(decimal.RequireFromString(s))
}

// bkRules are the policy of a history, as the model reads it; toml writes
// the same rules as policy.toml for the system.
type bkRules struct {
	name                                                    string
	perTx, approvalOver, budget, perDay, perMonth, maxSpend bkCents
	period                                                  string // day, month
	reserve, timeout                                        time.Duration
	onTimeout                                               string
}

// bkAllow is the [[allow]] table of every history: the default one, and
// procurement may pay what it ordered (so a payer pays its own order).
var bkAllow = []struct{ from, verbs, to string }{
	{"inventory", "REQUEST NOTIFY", "procurement human"},
	{"procurement", "REQUEST COUNTER ACCEPT DECLINE ORDER NOTIFY ESCALATE", "vendor-* finance human inventory"},
	{"vendor-*", "QUOTE COUNTER DECLINE CONFIRMED ERROR", "procurement finance"},
	{"finance", "APPROVED DENIED PAID ESCALATE NOTIFY", "procurement vendor-* human"},
	{"human", "*", "*"},
	{"procurement", "PAID", "vendor-*"},
}

const bkHuman = "human"

func (r bkRules) toml() string {
	var b strings.Builder
	amount := func(key string, c bkCents) {
		if c > 0 {
			fmt.Fprintf(&b, "%s = \"%s USD\"\n", key, c)
		}
	}
	b.WriteString("version = 1\ncurrency = \"USD\"\n\n[limits]\n")
	amount("per_transaction", r.perTx)
	amount("per_agent_per_day", r.perDay)
	amount("per_agent_per_month", r.perMonth)
	fmt.Fprintf(&b, "\n[budget]\nperiod = %q\nreserve_for = %q\n", r.period, r.reserve)
	amount("amount", r.budget)
	fmt.Fprintf(&b, "\n[human]\nagent = %q\ndecision_timeout = %q\non_timeout = %q\n", bkHuman, r.timeout, r.onTimeout)
	amount("approval_over", r.approvalOver)
	b.WriteString("\n[fuses]\n")
	amount("max_spend", r.maxSpend)
	quote := func(s string) string { return `"` + strings.Join(strings.Fields(s), `", "`) + `"` }
	for _, a := range bkAllow {
		fmt.Fprintf(&b, "\n[[allow]]\nfrom = %q\nverbs = [%s]\nto = [%s]\n", a.from, quote(a.verbs), quote(a.to))
	}
	return b.String()
}

// bkPolicies are the policies histories are played under.
var bkPolicies = []bkRules{
	{name: "month", perTx: 500000, approvalOver: 250000, budget: 2000000, perDay: 1200000, perMonth: 4000000, maxSpend: 900000,
		period: "month", reserve: 24 * time.Hour, timeout: 4 * time.Hour, onTimeout: "deny"},
	{name: "day", perTx: 500000, approvalOver: 250000, budget: 900000, perDay: 700000, perMonth: 4000000,
		period: "day", reserve: 2 * time.Hour, timeout: 30 * time.Minute, onTimeout: "deny"},
	{name: "no-budget", perTx: 400000, approvalOver: 250000, perDay: 1500000, perMonth: 2500000, maxSpend: 800000,
		period: "month", reserve: 24 * time.Hour, timeout: time.Hour, onTimeout: "escalate"},
	{name: "no-timeout", perTx: 500000, approvalOver: 250000, budget: 1500000, perDay: 2000000, perMonth: 1500000,
		period: "month", reserve: 6 * time.Hour, onTimeout: "deny"},
	{name: "low-threshold", perTx: 500000, approvalOver: 100000, budget: 1200000, perDay: 900000, perMonth: 3000000, maxSpend: 700000,
		period: "month", reserve: 12 * time.Hour, timeout: 2 * time.Hour, onTimeout: "deny"},
}

// The model.

// bkApproval is an APPROVED that was allowed: a mandate and, while in
// force, money held.
type bkApproval struct {
	amount   bkCents
	at       time.Time
	item     string
	qty      int64
	released bool
	// ordered and paid on it: while it was the approval the thread's orders
	// and payments to its vendor (or, for the whole thread, to any vendor)
	// drew on.
	ordered, paid bkCents
	by            string
}

type bkTerms struct {
	amount bkCents
	qty    int64
	item   string
	by     string // deliver by, a day; "" when not said
}

// bkPart is what a thread buys from one vendor.
type bkPart struct {
	own           *bkApproval // the vendor's own approval, the latest
	ordered, paid bkCents
	beyond        bkCents // paid above what was owed, with a person's approval
	order         *bkTerms
	confirm       *bkTerms
	orderedBy     map[string]bool
}

type bkAnswer struct {
	verb   mailbox.Verb
	amount bkCents
	at     time.Time
}

type bkThread struct {
	inBooks  bool // money moved on it, or a vendor confirmed
	parts    map[string]*bkPart
	whole    *bkApproval // the latest approval naming no vendor
	human    *bkAnswer   // the human's last answer
	asked    time.Time   // the human was asked, and has not answered
	askedID  string
	disputed time.Time // a payment against changed terms was last put to the human
	stopped  string    // the fuse that stopped it
	escs     []*bkEscalation
	paidIn   map[int]bkCents // a day or a month: paid on the thread
}

type bkEscalation struct {
	id, from            string
	expires             time.Time
	answered, withdrawn bool
}

func (x *bkEscalation) state(now time.Time) string {
	switch {
	case x.answered:
		return Answered
	case x.withdrawn:
		return Withdrawn
	case !x.expires.IsZero() && now.After(x.expires):
		return Expired
	}
	return Waiting
}

type bkModel struct {
	r       bkRules
	threads map[string]*bkThread
	order   []string
	spentBy map[bkKey]bkCents // agent in a day or a month: ordered, and paid of others' orders
	paidIn  map[int]bkCents   // a day or a month: paid
	itemDay map[bkKey]bkCents // item from vendor in a day: ordered
}

// bkKey is what a tally is kept by: an agent (or an item and a vendor) in a
// day (20261126) or a month (202611).
type bkKey struct {
	a, b string
	when int
}

func newBkModel(r bkRules) *bkModel {
	return &bkModel{r: r, threads: map[string]*bkThread{}, spentBy: map[bkKey]bkCents{}, paidIn: map[int]bkCents{}, itemDay: map[bkKey]bkCents{}}
}

func bkDay(t time.Time) int {
	y, mo, d := t.UTC().Date()
	return y*10000 + int(mo)*100 + d
}

func bkMonth(t time.Time) int {
	y, mo, _ := t.UTC().Date()
	return y*100 + int(mo)
}

func (m *bkModel) period(t time.Time) int {
	if m.r.period == "day" {
		return bkDay(t)
	}
	return bkMonth(t)
}

func (m *bkModel) thread(id string) *bkThread {
	t := m.threads[id]
	if t == nil {
		t = &bkThread{parts: map[string]*bkPart{}, paidIn: map[int]bkCents{}}
		m.threads[id] = t
	}
	return t
}

func (m *bkModel) book(id string) *bkThread {
	t := m.thread(id)
	if !t.inBooks {
		t.inBooks = true
		m.order = append(m.order, id)
	}
	return t
}

func (t *bkThread) part(v string) *bkPart {
	p := t.parts[v]
	if p == nil {
		p = &bkPart{orderedBy: map[string]bool{}}
		t.parts[v] = p
	}
	return p
}

func (t *bkThread) hasOwn() bool {
	for _, p := range t.parts {
		if p.own != nil {
			return true
		}
	}
	return false
}

func (t *bkThread) ordered() bkCents {
	var n bkCents
	for _, p := range t.parts {
		n += p.ordered
	}
	return n
}

// settled: everything ordered on it was paid; it holds nothing more.
func (a *bkApproval) settled() bool { return a.ordered > 0 && a.paid >= a.ordered }

// inForce: it may be ordered on and holds money — not released, not
// settled, and ordered on or younger than reserve_for.
func (m *bkModel) inForce(a *bkApproval, now time.Time) bool {
	return a != nil && !a.released && !a.settled() && (a.ordered > 0 || now.Sub(a.at) <= m.r.reserve)
}

// lapsed: never ordered on within reserve_for, nor released.
func (m *bkModel) lapsed(a *bkApproval, now time.Time) bool {
	return a != nil && !a.released && a.ordered == 0 && now.Sub(a.at) > m.r.reserve
}

// mandate is the approval an order or payment to vendor draws on: its own,
// else the thread's whole one when no vendor of the thread has its own.
func (m *bkModel) mandate(t *bkThread, vendor string, now time.Time) *bkApproval {
	if a := t.approvalFor(vendor); m.inForce(a, now) {
		return a
	}
	return nil
}

func (t *bkThread) approvalFor(vendor string) *bkApproval {
	if p := t.parts[vendor]; p != nil && p.own != nil {
		return p.own
	} else if !t.hasOwn() {
		return t.whole
	}
	return nil
}

// drawsOn is the approval an allowed order or payment draws on: the one
// in force then, if any (the human orders on none).
func (m *bkModel) drawsOn(t *bkThread, vendor string, now time.Time) *bkApproval {
	return m.mandate(t, vendor, now)
}

// committed is what was ordered and not paid; a payment beyond what was
// owed paid changed terms, not a later order.
func (p *bkPart) committed() bkCents {
	return max(p.ordered-(p.paid-p.beyond), 0)
}

func (p *bkPart) owed() bkCents { return p.committed() }

type bkFigs [8]bkCents

const (
	fApproved = iota
	fHeld
	fOrdered
	fConfirmed
	fCommitted
	fSpent
	fReleased
	fLapsed
)

var bkFigNames = [...]string{"approved", "held", "ordered", "confirmed", "committed", "spent", "released", "lapsed"}

func (f *bkFigs) add(o bkFigs) {
	for i := range f {
		f[i] += o[i]
	}
}

func (m *bkModel) hold(f *bkFigs, a *bkApproval, now time.Time) {
	if a == nil {
		return
	}
	f[fApproved] += a.amount
	rest := max(a.amount-a.ordered, 0)
	switch {
	case m.inForce(a, now):
		f[fHeld] += rest
	case a.released:
		f[fReleased] += rest
	case m.lapsed(a, now):
		f[fLapsed] += rest
	default:
		f[fReleased] += rest // closed by its payment: what it did not use is given back
	}
}

func (m *bkModel) partFigs(p *bkPart, now time.Time) bkFigs {
	var f bkFigs
	f[fOrdered], f[fSpent] = p.ordered, p.paid
	f[fCommitted] = p.owed()
	if p.confirm != nil {
		f[fConfirmed] = p.confirm.amount
	}
	m.hold(&f, p.own, now)
	return f
}

func (m *bkModel) threadFigs(t *bkThread, now time.Time) bkFigs {
	var f bkFigs
	for _, p := range t.parts {
		f.add(m.partFigs(p, now))
	}
	if !t.hasOwn() {
		m.hold(&f, t.whole, now) // the thread's approval, once: never on top of its parts'
	}
	return f
}

// budgetUsed is what the budget period has used at now: paid in it, and
// what every thread holds or owes.
func (m *bkModel) budgetUsed(now time.Time) bkCents {
	used := m.paidIn[m.period(now)]
	for _, t := range m.threads {
		f := m.threadFigs(t, now)
		used += f[fHeld] + f[fCommitted]
	}
	return used
}

// replaced is what a new approval for vendor on t takes the place of: the
// vendor's own approval's hold, or the thread's whole one's.
func (m *bkModel) replaced(t *bkThread, vendor string, now time.Time) bkCents {
	var f bkFigs
	if p := t.parts[vendor]; vendor != "" && p != nil && p.own != nil {
		m.hold(&f, p.own, now)
	}
	if !t.hasOwn() {
		m.hold(&f, t.whole, now)
	}
	return f[fHeld]
}

func bkGlob(pattern, name string) bool {
	if pattern == "*" {
		return true
	}
	if strings.HasSuffix(pattern, "*") {
		return strings.HasPrefix(name, strings.TrimSuffix(pattern, "*"))
	}
	return pattern == name
}

func bkAllowRule(from string, verb mailbox.Verb, to string) int {
	for i, a := range bkAllow {
		if !bkGlob(a.from, from) {
			continue
		}
		verbOK := false
		for _, v := range strings.Fields(a.verbs) {
			verbOK = verbOK || v == "*" || v == string(verb)
		}
		for _, t := range strings.Fields(a.to) {
			if verbOK && bkGlob(t, to) {
				return i + 1
			}
		}
	}
	return 0
}

func bkIsMoney(v mailbox.Verb) bool {
	return v == mailbox.Approved || v == mailbox.Order || v == mailbox.Paid
}

func (m *bkModel) timedOut(t *bkThread, now time.Time) bool {
	return !t.asked.IsZero() && m.r.timeout > 0 && now.Sub(t.asked) > m.r.timeout && m.r.onTimeout == "deny"
}

func bkTermsDiffer(o, c *bkTerms) bool {
	return o.amount != c.amount || o.qty != c.qty || o.item != c.item || (o.by != "" && c.by > o.by)
}

// decide is the model's decision about agent sending msg at now: the rules
// of docs/POLICY.md, in their order.
func (m *bkModel) decide(agent string, msg *mailbox.Message, now time.Time) (Outcome, string) {
	v := msg.Verb
	t := m.threads[msg.Thread]
	if t == nil {
		t = &bkThread{parts: map[string]*bkPart{}}
	}
	if msg.From != agent {
		return Deny, "from"
	}
	n := bkAllowRule(agent, v, msg.To)
	if n == 0 {
		return Deny, "allow"
	}
	if t.stopped != "" && msg.To != bkHuman {
		return Deny, t.stopped
	}
	allowed := fmt.Sprintf("allow.%d", n)
	amt := bkCentsOf(msg.Total().Amount)
	if amt < 0 || (amt == 0 && bkIsMoney(v)) {
		return Deny, "amount"
	}
	if !bkIsMoney(v) || (v == mailbox.Approved && agent == bkHuman) {
		return Allow, allowed
	}
	if amt > m.r.perTx {
		return Deny, "limits.per_transaction"
	}
	isHuman := agent == bkHuman
	// A DENIED answering a payment on changed terms stops that payment
	// only; any other stops the thread's money.
	if t.human != nil && t.human.verb == mailbox.Denied && !isHuman && (t.disputed.IsZero() || t.human.at.Before(t.disputed)) {
		return Deny, "human.denied"
	}
	ordered := t.ordered()
	if !isHuman {
		rule := ""
		switch {
		case amt > m.r.approvalOver:
			rule = "human.approval_over"
		case v == mailbox.Order && ordered+amt > m.r.approvalOver:
			rule = "human.split" // the thread's orders together
		case v == mailbox.Order && m.itemDay[bkKey{msg.Item, msg.To, bkDay(now)}]+amt > m.r.approvalOver:
			rule = "human.split" // the item from the vendor today, over threads
		}
		covers := amt
		if v == mailbox.Order {
			covers = ordered + amt
		}
		if rule != "" {
			switch {
			case t.human != nil && t.human.verb == mailbox.Approved && t.human.amount >= covers:
				allowed = "human.approved"
			case m.timedOut(t, now):
				return Deny, "human.timeout"
			default:
				return Escalate, rule
			}
		}
	}
	if v == mailbox.Approved {
		vendor, _ := msg.Get("Vendor")
		if m.r.budget > 0 && m.budgetUsed(now)-m.replaced(t, vendor, now)+amt > m.r.budget {
			return Deny, "budget"
		}
		return Allow, allowed
	}
	p := t.parts[msg.To]
	if own := v == mailbox.Paid && p != nil && p.orderedBy[agent]; !own {
		if m.r.perDay > 0 && m.spentBy[bkKey{agent, "", bkDay(now)}]+amt > m.r.perDay {
			return Deny, "limits.per_agent_per_day"
		}
		if m.r.perMonth > 0 && m.spentBy[bkKey{agent, "", bkMonth(now)}]+amt > m.r.perMonth {
			return Deny, "limits.per_agent_per_month"
		}
	}
	if isHuman {
		return Allow, allowed
	}
	a := m.mandate(t, msg.To, now)
	if a == nil {
		if v == mailbox.Order {
			for _, o := range t.parts {
				if m.inForce(o.own, now) {
					return Deny, "order.vendor"
				}
			}
		}
		return Deny, strings.ToLower(string(v)) + ".unapproved"
	}
	if v == mailbox.Order {
		switch {
		case a.item != "" && msg.Item != a.item:
			return Deny, "order.item"
		case a.qty > 0 && msg.Quantity > a.qty:
			return Deny, "order.quantity"
		case a.ordered+amt > a.amount:
			return Deny, "order.unapproved"
		case m.r.maxSpend > 0 && ordered+amt > m.r.maxSpend:
			return Escalate, "fuses.max_spend"
		}
		return Allow, allowed
	}
	if p == nil || p.order == nil {
		return Deny, "paid.unordered"
	}
	owed := p.owed()
	if (p.confirm == nil || !bkTermsDiffer(p.order, p.confirm)) && amt == owed {
		return Allow, allowed
	}
	// The vendor changed the terms, or the payment is not what is owed: only
	// a person's approval of this exact amount, given after the question was
	// put, lets it go.
	if h := t.human; h != nil && h.verb == mailbox.Approved && !t.disputed.IsZero() && !h.at.Before(t.disputed) {
		if h.amount != amt {
			return Escalate, RuleTerms // not an approval of this payment: asked again
		}
		if m.r.budget > 0 && amt > owed && m.budgetUsed(now)+amt-owed > m.r.budget {
			return Deny, "budget"
		}
		return Allow, "human.approved"
	}
	if m.timedOut(t, now) && !t.disputed.IsZero() {
		return Deny, "human.timeout"
	}
	return Escalate, RuleTerms
}

func bkTermsOf(e mailbox.Entry) *bkTerms {
	return &bkTerms{amount: bkParse(e.Amount), qty: e.Quantity, item: e.Item, by: e.DeliverBy}
}

// apply adds one ledger line to the model.
func (m *bkModel) apply(e mailbox.Entry) {
	amt := bkParse(e.Amount)
	switch e.Event {
	case EventDecision:
		t := m.thread(e.Thread)
		switch Outcome(e.Decision) {
		case Escalate:
			if strings.HasPrefix(e.Rule, "fuses.") {
				t.stopped = e.Rule
			}
			if e.Rule == RuleTerms {
				t.disputed = e.Time
			}
			if t.asked.IsZero() {
				t.asked, t.askedID = e.Time, e.MsgID
			}
		case Allow:
			if e.MsgID == t.askedID {
				t.asked, t.askedID = time.Time{}, "" // what was asked about went ahead
			}
			switch mailbox.Verb(e.Verb) {
			case mailbox.Approved:
				if e.Agent == bkHuman {
					break // the human's is an answer: it holds no money, and nothing is ordered on it
				}
				t = m.book(e.Thread)
				a := &bkApproval{amount: amt, at: e.Time, item: e.Item, qty: e.Quantity, by: e.Agent}
				if e.Vendor == "" {
					t.whole = a
				} else {
					t.part(e.Vendor).own = a
				}
			case mailbox.Order:
				t = m.book(e.Thread)
				if a := m.drawsOn(t, e.To, e.Time); a != nil {
					a.ordered += amt
				}
				p := t.part(e.To)
				p.ordered += amt
				p.order = bkTermsOf(e)
				p.orderedBy[e.Agent] = true
				m.spentBy[bkKey{e.Agent, "", bkDay(e.Time)}] += amt
				m.spentBy[bkKey{e.Agent, "", bkMonth(e.Time)}] += amt
				m.itemDay[bkKey{e.Item, e.To, bkDay(e.Time)}] += amt
			case mailbox.Paid:
				t = m.book(e.Thread)
				a := m.drawsOn(t, e.To, e.Time)
				p := t.part(e.To)
				if owed := p.owed(); amt > owed {
					p.beyond += amt - owed
				}
				p.paid += amt
				if a != nil {
					a.paid += amt
				}
				if !p.orderedBy[e.Agent] { // a payer's own order counted when it ordered
					m.spentBy[bkKey{e.Agent, "", bkDay(e.Time)}] += amt
					m.spentBy[bkKey{e.Agent, "", bkMonth(e.Time)}] += amt
				}
				m.paidIn[bkDay(e.Time)] += amt
				m.paidIn[bkMonth(e.Time)] += amt
				t.paidIn[bkDay(e.Time)] += amt
				t.paidIn[bkMonth(e.Time)] += amt
			}
		}
	case mailbox.EventDelivered:
		t := m.thread(e.Thread)
		switch mailbox.Verb(e.Verb) {
		case mailbox.Confirmed:
			m.book(e.Thread).part(e.From).confirm = bkTermsOf(e)
		case mailbox.Approved, mailbox.Denied:
			if e.From != bkHuman {
				return
			}
			t.human = &bkAnswer{verb: mailbox.Verb(e.Verb), amount: amt, at: e.Time}
			t.asked, t.askedID = time.Time{}, ""
			for _, x := range t.escs {
				if x.state(e.Time) == Waiting {
					x.answered = true
				}
			}
		case mailbox.Escalate:
			if e.To != bkHuman {
				return
			}
			x := &bkEscalation{id: e.MsgID, from: e.From}
			if e.Expires != "" {
				x.expires, _ = time.Parse(time.RFC3339, e.Expires)
			}
			for _, old := range t.escs {
				if old.id == x.id {
					return
				}
				if old.from == x.from && !old.answered && old.state(e.Time) == Waiting {
					old.withdrawn = true // a newer question takes its place
				}
			}
			t.escs = append(t.escs, x)
		}
	case EventReleased:
		t := m.threads[e.Thread]
		if t == nil {
			return
		}
		// The vendor's approval, or all of them; and the thread's whole one.
		if t.whole != nil {
			t.whole.released = true
		}
		for v, p := range t.parts {
			if p.own != nil && (e.Vendor == "" || v == e.Vendor) {
				p.own.released = true
			}
		}
	}
}

// Snapshots: every figure, as the system shows it and as the model has it.

type bkSnap struct {
	threads []string
	figs    []bkFigs // by thread, in threads' order
	parts   []bkPartFigs
	totals  bkFigs
	budget  bkCents
	agents  [3][2]bkCents // bkAgents': today, this month
	mism    []bkRow       // thread, vendor, kind
	escs    []bkRow       // thread, message id, state
}

type bkPartFigs struct {
	thread, vendor string
	figs           bkFigs
}

type bkRow struct{ a, b, c string }

func bkSortRows(r []bkRow) {
	sort.Slice(r, func(i, j int) bool {
		if r[i].a != r[j].a {
			return r[i].a < r[j].a
		}
		if r[i].b != r[j].b {
			return r[i].b < r[j].b
		}
		return r[i].c < r[j].c
	})
}

func bkSortParts(p []bkPartFigs) {
	sort.Slice(p, func(i, j int) bool {
		if p[i].thread != p[j].thread {
			return p[i].thread < p[j].thread
		}
		return p[i].vendor < p[j].vendor
	})
}

var bkAgents = [3]string{"finance", "procurement", bkHuman}

func bkFigsOf(f Figures) bkFigs {
	return bkFigs{bkCentsOf(f.Approved), bkCentsOf(f.Held), bkCentsOf(f.Ordered), bkCentsOf(f.Confirmed),
		bkCentsOf(f.Committed), bkCentsOf(f.Spent), bkCentsOf(f.Released), bkCentsOf(f.Lapsed)}
}

func bkSystemSnap(s *State, p *Policy, at time.Time) bkSnap {
	b, reserve := s.Books(), p.Budget.ReserveFor.Duration
	var sn bkSnap
	for _, id := range b.Threads() {
		a := b.Account(id)
		sn.threads = append(sn.threads, id)
		sn.figs = append(sn.figs, bkFigsOf(a.Figures(reserve, at)))
		for _, v := range a.Vendors() {
			sn.parts = append(sn.parts, bkPartFigs{id, v, bkFigsOf(a.Parts[v].Figures(reserve, at))})
		}
		for _, mm := range a.Mismatches(p.Currency, reserve, at) {
			sn.mism = append(sn.mism, bkRow{mm.Thread, mm.Vendor, mm.Kind})
		}
	}
	sn.totals = bkFigsOf(b.Totals(reserve, at))
	sn.budget = bkCentsOf(s.BudgetUsed(p, at))
	for i, ag := range bkAgents {
		d, mo := s.Spent(ag, at)
		sn.agents[i] = [2]bkCents{bkCentsOf(d), bkCentsOf(mo)}
	}
	for _, x := range s.Escalations(bkHuman, "") {
		sn.escs = append(sn.escs, bkRow{x.Thread, x.MsgID, x.State(at)})
	}
	bkSortParts(sn.parts)
	bkSortRows(sn.mism)
	bkSortRows(sn.escs)
	return sn
}

func (m *bkModel) snap(at time.Time) bkSnap {
	var sn bkSnap
	for _, id := range m.order {
		t := m.threads[id]
		f := m.threadFigs(t, at)
		sn.threads = append(sn.threads, id)
		sn.figs = append(sn.figs, f)
		sn.totals.add(f)
		for v, p := range t.parts {
			sn.parts = append(sn.parts, bkPartFigs{id, v, m.partFigs(p, at)})
			if p.order != nil && p.confirm != nil && bkTermsDiffer(p.order, p.confirm) {
				sn.mism = append(sn.mism, bkRow{id, v, "confirmed≠ordered"})
			}
			switch {
			case p.paid > 0 && p.ordered == 0:
				sn.mism = append(sn.mism, bkRow{id, v, "paid-without-order"})
			case p.paid > 0 && (p.confirm == nil || p.paid != p.confirm.amount):
				sn.mism = append(sn.mism, bkRow{id, v, "paid≠confirmed"})
			}
			if p.beyond > 0 {
				sn.mism = append(sn.mism, bkRow{id, v, "paid-beyond-order"})
			}
			if m.lapsed(p.own, at) {
				sn.mism = append(sn.mism, bkRow{id, v, "approval-unused"})
			}
		}
		if !t.hasOwn() && m.lapsed(t.whole, at) {
			sn.mism = append(sn.mism, bkRow{id, "", "approval-unused"})
		}
	}
	sn.budget = m.budgetUsed(at)
	for i, ag := range bkAgents {
		sn.agents[i] = [2]bkCents{m.spentBy[bkKey{ag, "", bkDay(at)}], m.spentBy[bkKey{ag, "", bkMonth(at)}]}
	}
	for id, t := range m.threads {
		for _, x := range t.escs {
			sn.escs = append(sn.escs, bkRow{id, x.id, x.state(at)})
		}
	}
	bkSortParts(sn.parts)
	bkSortRows(sn.mism)
	bkSortRows(sn.escs)
	return sn
}

func (f bkFigs) String() string {
	var parts []string
	for i, n := range bkFigNames {
		parts = append(parts, fmt.Sprintf("%s %s", n, f[i]))
	}
	return strings.Join(parts, ", ")
}

// bkDiff lists how got (the system) differs from want (the model).
func bkDiff(got, want bkSnap) []string {
	var out []string
	figs := func(what string, g, w bkFigs) {
		for i := range g {
			if g[i] != w[i] {
				out = append(out, fmt.Sprintf("%s: %s %s, model %s", what, bkFigNames[i], g[i], w[i]))
			}
		}
	}
	if !slices.Equal(got.threads, want.threads) {
		out = append(out, fmt.Sprintf("threads in the books %q, model %q", got.threads, want.threads))
	} else {
		for i, id := range got.threads {
			figs("thread "+id, got.figs[i], want.figs[i])
		}
	}
	if len(got.parts) != len(want.parts) {
		out = append(out, fmt.Sprintf("parts in the books %v, model %v", got.parts, want.parts))
	} else {
		for i, g := range got.parts {
			if w := want.parts[i]; g.thread != w.thread || g.vendor != w.vendor {
				out = append(out, fmt.Sprintf("part %s %s in the books, model %s %s", g.thread, g.vendor, w.thread, w.vendor))
			} else {
				figs("part "+g.thread+" "+g.vendor, g.figs, w.figs)
			}
		}
	}
	figs("totals", got.totals, want.totals)
	if got.budget != want.budget {
		out = append(out, fmt.Sprintf("budget used %s, model %s", got.budget, want.budget))
	}
	for i, ag := range bkAgents {
		if g, w := got.agents[i], want.agents[i]; g != w {
			out = append(out, fmt.Sprintf("%s spent today/this month %s/%s, model %s/%s", ag, g[0], g[1], w[0], w[1]))
		}
	}
	if !slices.Equal(got.mism, want.mism) {
		out = append(out, fmt.Sprintf("mismatches %v, model %v", got.mism, want.mism))
	}
	if !slices.Equal(got.escs, want.escs) {
		out = append(out, fmt.Sprintf("escalations %v, model %v", got.escs, want.escs))
	}
	return out
}

// bkLimits checks the hard limits at at, from the model's figures (which
// equal the books' when this is called): the budget counting spent, held
// and committed; each agent's day and month.
func (m *bkModel) limits(at time.Time) []string {
	var out []string
	if m.r.budget > 0 {
		used := m.budgetUsed(at)
		if used > m.r.budget {
			out = append(out, fmt.Sprintf("budget used %s, above %s", used, m.r.budget))
		}
	}
	for _, ag := range bkAgents {
		if d := m.spentBy[bkKey{ag, "", bkDay(at)}]; m.r.perDay > 0 && d > m.r.perDay {
			out = append(out, fmt.Sprintf("%s spent %s today, above %s", ag, d, m.r.perDay))
		}
		if mo := m.spentBy[bkKey{ag, "", bkMonth(at)}]; m.r.perMonth > 0 && mo > m.r.perMonth {
			out = append(out, fmt.Sprintf("%s spent %s this month, above %s", ag, mo, m.r.perMonth))
		}
	}
	for id, t := range m.threads {
		if o := t.ordered(); m.r.maxSpend > 0 && o > m.r.maxSpend {
			out = append(out, fmt.Sprintf("thread %s ordered %s, above the fuse %s", id, o, m.r.maxSpend))
		}
	}
	return out
}

// bkAllowedLimits checks one allowed money decision: no single amount above
// the cap, nothing above the sign-off threshold (for orders: the thread's
// together) without the human's approval of at least that much.
func (m *bkModel) allowedLimits(e mailbox.Entry) []string {
	v := mailbox.Verb(e.Verb)
	if e.Event != EventDecision || e.Decision != string(Allow) || !bkIsMoney(v) || e.Agent == bkHuman {
		return nil
	}
	amt := bkParse(e.Amount)
	var out []string
	if amt > m.r.perTx {
		out = append(out, fmt.Sprintf("%s %s allowed above the per-transaction cap", e.Verb, amt))
	}
	t := m.thread(e.Thread)
	total := amt
	if v == mailbox.Order {
		total += t.ordered() // before this order is applied
	}
	if total > m.r.approvalOver && (t.human == nil || t.human.verb != mailbox.Approved || t.human.amount < total) && e.Rule != RuleTerms {
		out = append(out, fmt.Sprintf("%s of %s (%s on the thread) allowed by %s without the human's approval of it", e.Verb, amt, total, e.Rule))
	}
	return out
}
