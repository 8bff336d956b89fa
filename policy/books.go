package policy

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/shopspring/decimal"
)

// Books are parley's one set of accounts: every figure of money that the
// policy decides on and that a command shows (status, books, policy test and
// explain, the human's notices) is computed here, from the ledger's lines,
// and nowhere else.
//
// The words, per thread and per vendor (a "part" of the thread's need):
//   - approved: what an APPROVED allows; it holds its money against the
//     budget for reserve_for, or until it is ordered on;
//   - held: approved, not yet ordered;
//   - committed: ordered, not yet paid;
//   - spent: paid;
//   - released: held money given back (the deal fell through), or what an
//     approval did not use once all that was ordered on it was paid;
//   - lapsed: held money of an approval never ordered on within
//     reserve_for.
//
// A thread's approval that names no vendor covers the thread once: while
// any vendor of the thread has an approval of its own, it holds nothing on
// top of them. The human's APPROVED is an answer, not an approval: it
// holds nothing and nothing is ordered on it.
//
// Invariants: every amount is a decimal in the policy's currency; held,
// committed and spent are never negative; an approval holds money only
// while it is in force (not released, not settled by the payment of all
// that was ordered on it, and ordered on or younger than reserve_for); an
// order draws on the approval in force when it is placed; for each
// approval, approved = held + ordered on it + released + lapsed.
type Books struct {
	// human is who answers escalations: an APPROVED of theirs is an
	// answer, which lets an agent's action through; it holds no money and
	// no order draws on it. reserve is how long an approval holds its
	// money unless ordered on (the policy's reserve_for), to tell which
	// approval was in force when an order or a payment came.
	human   string
	reserve time.Duration

	accounts map[string]*Account
	threads  []string            // in the order their money first moved
	open     map[string]*Account // accounts that may still hold or owe money
	byAgent  map[string]decimal.Decimal
	byItem   map[string]decimal.Decimal // item|vendor|day: ordered
	paid     map[string]decimal.Decimal // day and month: paid in all

	// The accounts of threads retired from the state (retire.go): how
	// many, and their figures in all, which cannot change while retired.
	retired      Figures
	retiredCount int
}

// Account is one thread's money.
type Account struct {
	Thread string
	// Whole is the thread's latest approval that names no vendor: orders to
	// a vendor with no approval of its own draw on it.
	Whole *Approval
	Parts map[string]*Part // by vendor
	order []string         // vendors in the order they appeared
}

// Approval is an APPROVED allowed by the policy.
type Approval struct {
	By       string
	Amount   decimal.Decimal
	At       time.Time
	Vendor   string // "" for the whole thread
	Item     string // the mandate, when it says: this item...
	Quantity int64  // ...at most this many
	Released bool
	// What was drawn on it: the orders placed while it was in force, and
	// what was paid on them.
	ordered, paid decimal.Decimal
}

// Terms are what an ORDER or a CONFIRMED says.
type Terms struct {
	Amount    decimal.Decimal
	Quantity  int64
	Item      string
	DeliverBy string // a calendar day, 2026-12-03; "" when not said
	At        time.Time
	By        string
	MsgID     string
}

// Part is what a thread bought, or means to buy, from one vendor.
type Part struct {
	Vendor    string
	Approval  *Approval // the vendor's own approval; nil when it draws on the thread's whole
	Ordered   decimal.Decimal
	Order     *Terms // the last ORDER
	Confirmed *Terms // the vendor's last CONFIRMED
	Paid      decimal.Decimal
	Payments  int
	// PaidBeyond is what was paid above the order, with a person's
	// approval of the exact amount; beyondOf what was ordered then.
	PaidBeyond decimal.Decimal
	beyondOf   decimal.Decimal
}

// NewBooks returns the books of an empty ledger.
func NewBooks() *Books {
	return &Books{human: "human", reserve: 24 * time.Hour, accounts: map[string]*Account{}, open: map[string]*Account{},
		byAgent: map[string]decimal.Decimal{}, byItem: map[string]decimal.Decimal{}, paid: map[string]decimal.Decimal{}}
}

func (b *Books) account(thread string) *Account {
	a := b.accounts[thread]
	if a == nil {
		a = &Account{Thread: thread, Parts: map[string]*Part{}}
		b.accounts[thread] = a
		b.threads = append(b.threads, thread)
	}
	b.open[thread] = a
	return a
}

// Account returns a thread's account, or nil when no money moved on it.
func (b *Books) Account(thread string) *Account { return b.accounts[thread] }

// Threads lists the threads on which money moved, in the order it first
// did, but those retired from the state (Retired).
func (b *Books) Threads() []string { return b.threads }

// Retired is how many threads on which money moved are retired from the
// state (retire.go), and their figures in all.
func (b *Books) Retired() (int, Figures) { return b.retiredCount, b.retired }

func (a *Account) part(vendor string) *Part {
	p := a.Parts[vendor]
	if p == nil {
		p = &Part{Vendor: vendor}
		a.Parts[vendor] = p
		a.order = append(a.order, vendor)
	}
	return p
}

// Vendors lists the account's parts in the order they appeared.
func (a *Account) Vendors() []string { return a.order }

func termsOf(e mailbox.Entry, amount decimal.Decimal) *Terms {
	return &Terms{Amount: amount, Quantity: e.Quantity, Item: e.Item, DeliverBy: e.DeliverBy, At: e.Time, By: e.Agent, MsgID: e.MsgID}
}

// approve records an allowed APPROVED; the human's is an answer, not an
// approval.
func (b *Books) approve(e mailbox.Entry, amount decimal.Decimal) {
	if e.Agent == b.human {
		return
	}
	a := b.account(e.Thread)
	ap := &Approval{By: e.Agent, Amount: amount, At: e.Time, Vendor: e.Vendor, Item: e.Item, Quantity: e.Quantity}
	if e.Vendor == "" {
		a.Whole = ap
		return
	}
	a.part(e.Vendor).Approval = ap // a new approval for a vendor replaces the one before
}

// order records an allowed ORDER, by agent, to vendor: it draws on the
// approval in force for the vendor then, if any (the human orders on
// none).
func (b *Books) order(e mailbox.Entry, amount decimal.Decimal) {
	a := b.account(e.Thread)
	if ap := a.inForce(e.To, b.reserve, e.Time); ap != nil {
		ap.ordered = ap.ordered.Add(amount)
	}
	p := a.part(e.To)
	p.Ordered = p.Ordered.Add(amount)
	p.Order = termsOf(e, amount)
	b.add(b.byAgent, e.Agent+"|"+day(e.Time), amount)
	b.add(b.byAgent, e.Agent+"|"+month(e.Time), amount)
	b.add(b.byItem, e.Item+"|"+e.To+"|"+day(e.Time), amount)
}

// confirm records a vendor's CONFIRMED, as delivered.
func (b *Books) confirm(e mailbox.Entry, amount decimal.Decimal) {
	b.account(e.Thread).part(e.From).Confirmed = termsOf(e, amount)
}

// pay records an allowed PAID, by agent, to vendor. A payer that placed the
// order itself committed the money once, when it ordered. What is paid
// above what was owed paid changed terms a person approved, not a later
// order.
func (b *Books) pay(e mailbox.Entry, amount decimal.Decimal) {
	a := b.account(e.Thread)
	ap := a.inForce(e.To, b.reserve, e.Time)
	p := a.part(e.To)
	if owed := p.Committed(); amount.GreaterThan(owed) {
		p.PaidBeyond = p.PaidBeyond.Add(amount.Sub(owed))
		p.beyondOf = p.Ordered
	}
	p.Paid = p.Paid.Add(amount)
	p.Payments++
	if ap != nil {
		ap.paid = ap.paid.Add(amount)
	}
	if p.Order == nil || p.Order.By != e.Agent {
		b.add(b.byAgent, e.Agent+"|"+day(e.Time), amount)
		b.add(b.byAgent, e.Agent+"|"+month(e.Time), amount)
	}
	b.add(b.paid, day(e.Time), amount)
	b.add(b.paid, month(e.Time), amount)
}

// holds reports whether a release of vendor's approval on thread (vendor ""
// for all of them) would give anything back.
func (b *Books) holds(thread, vendor string) bool {
	a := b.accounts[thread]
	if a == nil {
		return false
	}
	if a.Whole != nil && !a.Whole.Released {
		return true
	}
	for v, p := range a.Parts {
		if p.Approval != nil && !p.Approval.Released && (vendor == "" || v == vendor) {
			return true
		}
	}
	return false
}

// release gives back what a thread's approvals hold: the vendor's (and the
// whole thread's), or with vendor "" all of them.
func (b *Books) release(thread, vendor string) {
	a := b.accounts[thread]
	if a == nil {
		return
	}
	if a.Whole != nil {
		a.Whole.Released = true
	}
	for v, p := range a.Parts {
		if p.Approval != nil && (vendor == "" || v == vendor) {
			p.Approval.Released = true
		}
	}
}

func (b *Books) add(m map[string]decimal.Decimal, k string, d decimal.Decimal) { m[k] = m[k].Add(d) }

// Committed is what was ordered from the vendor and not yet paid: a
// payment beyond what was owed paid changed terms, not a later order.
func (p *Part) Committed() decimal.Decimal {
	return decimal.Max(p.Ordered.Sub(p.Paid.Sub(p.PaidBeyond)), decimal.Zero)
}

// settled reports whether all that was ordered on the approval was paid:
// it holds nothing more.
func (ap *Approval) settled() bool {
	return ap.ordered.IsPositive() && !ap.paid.LessThan(ap.ordered)
}

// InForce reports whether the approval may be ordered on, and holds money,
// at now: not released, not settled, and ordered on or younger than
// reserve.
func (ap *Approval) InForce(reserve time.Duration, now time.Time) bool {
	if ap == nil || ap.Released || ap.settled() {
		return false
	}
	return ap.ordered.IsPositive() || now.Sub(ap.At) <= reserve
}

// lapsed reports whether the approval ran out unused.
func (ap *Approval) lapsed(reserve time.Duration, now time.Time) bool {
	return ap != nil && !ap.Released && !ap.ordered.IsPositive() && now.Sub(ap.At) > reserve
}

// Drawn is what was ordered on the approval.
func (ap *Approval) Drawn() decimal.Decimal { return ap.ordered }

// hasOwnApprovals reports whether any vendor of the thread has an approval
// of its own: then the whole approval holds nothing on top of them, and is
// for them, not for another vendor.
func (a *Account) hasOwnApprovals() bool {
	for _, p := range a.Parts {
		if p.Approval != nil {
			return true
		}
	}
	return false
}

// approvalFor is the approval an order to vendor would draw on: the
// vendor's own, else the thread's whole one while no vendor has its own.
func (a *Account) approvalFor(vendor string) *Approval {
	if p := a.Parts[vendor]; p != nil && p.Approval != nil {
		return p.Approval
	}
	if a.hasOwnApprovals() {
		return nil
	}
	return a.Whole
}

// inForce is the approval for vendor when it is in force at now, or nil.
func (a *Account) inForce(vendor string, reserve time.Duration, now time.Time) *Approval {
	if ap := a.approvalFor(vendor); ap.InForce(reserve, now) {
		return ap
	}
	return nil
}

// Mandate is the approval that an order to vendor draws on at now, or nil
// when there is none in force.
func (a *Account) Mandate(vendor string, reserve time.Duration, now time.Time) *Approval {
	if a == nil {
		return nil
	}
	return a.inForce(vendor, reserve, now)
}

// ApprovedVendors are the vendors with an approval of their own in force.
func (a *Account) ApprovedVendors(reserve time.Duration, now time.Time) []string {
	var out []string
	if a == nil {
		return nil
	}
	for v, p := range a.Parts {
		if p.Approval.InForce(reserve, now) {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// Figures are an account's money at a moment, each defined once (see
// Books).
type Figures struct {
	Approved  decimal.Decimal `json:"approved"`
	Held      decimal.Decimal `json:"held"`
	Ordered   decimal.Decimal `json:"ordered"`
	Confirmed decimal.Decimal `json:"confirmed"`
	Committed decimal.Decimal `json:"committed"`
	Spent     decimal.Decimal `json:"spent"`
	Released  decimal.Decimal `json:"released"`
	Lapsed    decimal.Decimal `json:"lapsed"`
}

// Sub takes o from f.
func (f *Figures) Sub(o Figures) {
	f.Approved, f.Held, f.Ordered = f.Approved.Sub(o.Approved), f.Held.Sub(o.Held), f.Ordered.Sub(o.Ordered)
	f.Confirmed, f.Committed, f.Spent = f.Confirmed.Sub(o.Confirmed), f.Committed.Sub(o.Committed), f.Spent.Sub(o.Spent)
	f.Released, f.Lapsed = f.Released.Sub(o.Released), f.Lapsed.Sub(o.Lapsed)
}

// Add adds o to f.
func (f *Figures) Add(o Figures) {
	f.Approved, f.Held, f.Ordered = f.Approved.Add(o.Approved), f.Held.Add(o.Held), f.Ordered.Add(o.Ordered)
	f.Confirmed, f.Committed, f.Spent = f.Confirmed.Add(o.Confirmed), f.Committed.Add(o.Committed), f.Spent.Add(o.Spent)
	f.Released, f.Lapsed = f.Released.Add(o.Released), f.Lapsed.Add(o.Lapsed)
}

// hold splits an approval's unordered rest into held, released or lapsed:
// an approval settled by the payment of all that was ordered on it gives
// back what it did not use.
func hold(f *Figures, ap *Approval, reserve time.Duration, now time.Time) {
	if ap == nil {
		return
	}
	f.Approved = f.Approved.Add(ap.Amount)
	rest := decimal.Max(ap.Amount.Sub(ap.ordered), decimal.Zero)
	switch {
	case ap.InForce(reserve, now):
		f.Held = f.Held.Add(rest)
	case ap.lapsed(reserve, now):
		f.Lapsed = f.Lapsed.Add(rest)
	default: // released, or settled
		f.Released = f.Released.Add(rest)
	}
}

// Figures are the part's money at now; its approval's, when it has one.
func (p *Part) Figures(reserve time.Duration, now time.Time) Figures {
	f := Figures{Ordered: p.Ordered, Committed: p.Committed(), Spent: p.Paid}
	if p.Confirmed != nil {
		f.Confirmed = p.Confirmed.Amount
	}
	hold(&f, p.Approval, reserve, now)
	return f
}

// Figures are the thread's money at now: its parts', and what its whole
// approval holds on top of them (nothing, while a vendor has its own).
func (a *Account) Figures(reserve time.Duration, now time.Time) Figures {
	var f Figures
	for _, p := range a.Parts {
		f.Add(p.Figures(reserve, now))
	}
	if !a.hasOwnApprovals() {
		hold(&f, a.Whole, reserve, now)
	}
	return f
}

// Outstanding is what an account still holds or owes at now: its held and
// committed money, which the budget counts besides what was spent.
func (a *Account) Outstanding(reserve time.Duration, now time.Time) decimal.Decimal {
	f := a.Figures(reserve, now)
	return f.Held.Add(f.Committed)
}

// AgentSpent is what agent ordered and paid in the day and the month of
// now (a payment of its own order counted once).
func (b *Books) AgentSpent(agent string, now time.Time) (today, thisMonth decimal.Decimal) {
	return b.byAgent[agent+"|"+day(now)], b.byAgent[agent+"|"+month(now)]
}

// ItemOrderedToday is what was ordered of item from vendor on now's day.
func (b *Books) ItemOrderedToday(item, vendor string, now time.Time) decimal.Decimal {
	return b.byItem[item+"|"+vendor+"|"+day(now)]
}

// Paid is what was paid in all in the period ("day" or "month") of now.
func (b *Books) Paid(period string, now time.Time) decimal.Decimal {
	if period == "day" {
		return b.paid[day(now)]
	}
	return b.paid[month(now)]
}

// BudgetUsed is the budget period's use at now: what was paid in it, and
// what every thread holds or owes. An approval about to be given for
// vendor on thread (vendor "" for the whole) replaces what the thread's
// approval for it holds, and with a vendor, what its whole approval holds.
func (b *Books) BudgetUsed(period string, reserve time.Duration, now time.Time, thread, vendor string) decimal.Decimal {
	used := b.Paid(period, now)
	for id, a := range b.open {
		if a.closed() {
			delete(b.open, id) // nothing it holds can hold money again
			continue
		}
		out := a.Outstanding(reserve, now)
		if id == thread {
			out = out.Sub(a.replaced(vendor, reserve, now))
		}
		used = used.Add(out)
	}
	return used
}

// replaced is what the account's approval for vendor holds, and the whole
// approval's hold, which a new approval for vendor takes the place of.
func (a *Account) replaced(vendor string, reserve time.Duration, now time.Time) decimal.Decimal {
	var f Figures
	if p := a.Parts[vendor]; vendor != "" && p != nil {
		hold(&f, p.Approval, reserve, now)
	}
	if !a.hasOwnApprovals() {
		hold(&f, a.Whole, reserve, now)
	}
	return f.Held
}

// closed reports whether the account can hold or owe nothing at any time:
// every approval released or settled, and nothing committed. (A lapse is
// not: at an earlier moment the approval still held its money.)
func (a *Account) closed() bool {
	if a.Whole != nil && !a.Whole.Released && !a.Whole.settled() {
		return false
	}
	for _, p := range a.Parts {
		if p.Committed().IsPositive() || (p.Approval != nil && !p.Approval.Released && !p.Approval.settled()) {
			return false
		}
	}
	return true
}

// Mismatch is a figure of a part that does not reconcile.
type Mismatch struct {
	Thread string `json:"thread"`
	Vendor string `json:"vendor"`
	Kind   string `json:"kind"` // confirmed≠ordered, paid≠confirmed, paid-without-order, paid-beyond-order, approval-unused
	Detail string `json:"detail"`
}

// Mismatches lists what does not reconcile on the account at now.
func (a *Account) Mismatches(currency string, reserve time.Duration, now time.Time) []Mismatch {
	money := func(d decimal.Decimal) string { return mailbox.Money{Amount: d, Currency: currency}.String() }
	var out []Mismatch
	add := func(vendor, kind, detail string) {
		out = append(out, Mismatch{Thread: a.Thread, Vendor: vendor, Kind: kind, Detail: detail})
	}
	for _, v := range a.order {
		p := a.Parts[v]
		if p.Order != nil && p.Confirmed != nil {
			if diff := TermsDiffer(p.Order, p.Confirmed, currency); diff != "" {
				add(v, "confirmed≠ordered", diff)
			}
		}
		switch {
		case p.Paid.IsPositive() && !p.Ordered.IsPositive():
			add(v, "paid-without-order", "paid "+money(p.Paid)+" with nothing ordered")
		case p.Paid.IsPositive() && p.Confirmed == nil:
			add(v, "paid≠confirmed", "paid "+money(p.Paid)+" with no confirmation from "+v)
		case p.Paid.IsPositive() && !p.Paid.Equal(p.Confirmed.Amount):
			add(v, "paid≠confirmed", "paid "+money(p.Paid)+", confirmed "+money(p.Confirmed.Amount))
		}
		if p.PaidBeyond.IsPositive() {
			add(v, "paid-beyond-order", "paid "+money(p.PaidBeyond)+" more than the "+money(p.beyondOf)+" ordered")
		}
		if p.Approval.lapsed(reserve, now) {
			add(v, "approval-unused", "approved "+money(p.Approval.Amount)+" at "+p.Approval.At.UTC().Format(time.RFC3339)+"; nothing ordered, lapsed")
		}
	}
	if a.Whole.lapsed(reserve, now) && !a.hasOwnApprovals() {
		add("", "approval-unused", "approved "+money(a.Whole.Amount)+" at "+a.Whole.At.UTC().Format(time.RFC3339)+"; nothing ordered, lapsed")
	}
	return out
}

// TermsDiffer says how a confirmation differs from its order ("" when it
// does not): the amount, the quantity, the item, or a delivery later than
// the order asked.
func TermsDiffer(order, confirmed *Terms, currency string) string {
	money := func(d decimal.Decimal) string { return mailbox.Money{Amount: d, Currency: currency}.String() }
	var diffs []string
	if !order.Amount.Equal(confirmed.Amount) {
		diffs = append(diffs, "amount "+money(confirmed.Amount)+" (ordered "+money(order.Amount)+")")
	}
	if order.Quantity != confirmed.Quantity {
		diffs = append(diffs, "quantity "+itoa(confirmed.Quantity)+" (ordered "+itoa(order.Quantity)+")")
	}
	if order.Item != confirmed.Item {
		diffs = append(diffs, "item "+confirmed.Item+" (ordered "+order.Item+")")
	}
	if order.DeliverBy != "" && confirmed.DeliverBy > order.DeliverBy {
		diffs = append(diffs, "delivery "+confirmed.DeliverBy+" (ordered by "+order.DeliverBy+")")
	}
	return joinAnd(diffs)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// joinAnd joins phrases as a person would: "a", "a and b", "a, b and c".
func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// orderedBy is who placed the order to vendor on thread, or "".
func (b *Books) orderedBy(thread, vendor string) string {
	if a := b.accounts[thread]; a != nil {
		if p := a.Parts[vendor]; p != nil && p.Order != nil {
			return p.Order.By
		}
	}
	return ""
}

// Totals are the figures of every thread at now, the retired ones'
// among them.
func (b *Books) Totals(reserve time.Duration, now time.Time) Figures {
	f := b.retired
	for _, id := range b.threads {
		f.Add(b.accounts[id].Figures(reserve, now))
	}
	return f
}

// Agents lists the agents that ordered or paid, sorted.
func (b *Books) Agents() []string {
	seen := map[string]bool{}
	for k := range b.byAgent {
		agent, _, _ := strings.Cut(k, "|")
		seen[agent] = true
	}
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
