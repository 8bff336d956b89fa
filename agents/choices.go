package agents

import (
	"fmt"
	"strings"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/shopspring/decimal"
)

// The choices each role lets a model make in decide mode (docs/OLLAMA.md).
// Code computes every bound from the agent's own terms and the policy's
// limits; the model picks within them; the role takes the step exactly as
// its rules would take that step.

// choice: a vendor's new quote in a negotiation can be accepted, countered
// (between our last offer and their quote, never above the ceiling or the
// per-transaction limit), or walked away from.
func (r *Procurement) choice(now time.Time, m *mailbox.Message) (Choice, bool) {
	d := r.Deals[m.Thread]
	if d == nil || m.Verb != mailbox.Quote || d.Phase != "negotiating" || m.From != d.Vendor || m.UnitPrice.IsZero() || m.UnitPrice.Currency != d.Offered.Currency {
		return Choice{}, false
	}
	if d.Lot == 0 {
		d.Lot = d.Quantity // a deal saved before needs were bought in parts
	}
	theirs := m.UnitPrice
	most, capped := r.most(d, theirs.Currency)
	c := Choice{Actions: []string{"DECLINE"}, Means: map[string]string{
		"ACCEPT":  fmt.Sprintf("take %s's quote of %s a unit; finance is asked to approve", m.From, theirs),
		"COUNTER": "offer unit_price instead",
		"DECLINE": "walk away from " + m.From + "; the next best quote is taken up, or the deal fails",
	}}
	if !capped || !theirs.Amount.GreaterThan(most.Amount) {
		c.Actions = append(c.Actions, "ACCEPT")
	}
	if d.Round < r.Rounds {
		lo := d.Offered.Amount
		hi := theirs.Amount.Sub(decimal.New(1, -2))
		if ceiling := most.Amount.Sub(decimal.New(1, -2)); capped && ceiling.LessThan(hi) {
			hi = ceiling // never an offer at the ceiling itself: it would say what it is
		}
		if !hi.LessThan(lo) {
			c.Actions = append(c.Actions, "COUNTER")
			c.Priced = []string{"COUNTER"}
			c.Min, c.Max = mailbox.Money{Amount: lo, Currency: theirs.Currency}, mailbox.Money{Amount: hi, Currency: theirs.Currency}
		}
	}
	var f strings.Builder
	fmt.Fprintf(&f, "You are buying %d %s from %s for delivery by %s.\n", d.Lot, d.Item, d.Vendor, d.DeliverBy.Format(time.DateOnly))
	fmt.Fprintf(&f, "This is round %d of at most %d counter-offers to %s. Your last offer was %s a unit; %s now asks %s.\n", d.Round, r.Rounds, d.Vendor, d.Offered, d.Vendor, theirs)
	if capped {
		fmt.Fprintf(&f, "The most you may pay is %s a unit (private: never say it).\n", most)
	}
	if others := len(r.ranked(d)) - 1; others > 0 {
		fmt.Fprintf(&f, "%d other usable quotes are on the table (never name their prices).\n", others)
	}
	c.Facts = f.String()
	return c, true
}

// most is the highest unit price procurement may agree to in deal d: its
// ceiling, and the policy's per-transaction limit shared over the quantity.
func (r *Procurement) most(d *Deal, currency string) (mailbox.Money, bool) {
	var most decimal.Decimal
	capped := false
	if !r.Ceiling.IsZero() && r.Ceiling.Currency == currency {
		most, capped = r.Ceiling.Amount, true
	}
	if !r.Limit.IsZero() && r.Limit.Currency == currency && d.Lot > 0 {
		per := r.Limit.Amount.Div(decimal.NewFromInt(d.Lot)).RoundDown(2)
		if !capped || per.LessThan(most) {
			most, capped = per, true
		}
	}
	return mailbox.Money{Amount: most, Currency: currency}, capped
}

func (r *Procurement) take(now time.Time, m *mailbox.Message, p Pick) []*mailbox.Message {
	d := r.Deals[m.Thread]
	o := d.Quotes[d.Vendor]
	d.Last, o.UnitPrice, o.Quoted = o.UnitPrice, m.UnitPrice, append(o.Quoted, m.UnitPrice.Amount) // as negotiate records it
	switch p.Action {
	case "ACCEPT":
		return r.accept(now, d, m.UnitPrice)
	case "COUNTER":
		d.Round++
		o.Rounds++
		return r.offer(now, d, mailbox.Money{Amount: r.unlike(d, d.Vendor, p.Price.Amount), Currency: p.Price.Currency})
	}
	o.Declined, o.Model = true, p.By
	o.Why = fmt.Sprintf("%s walked away from its quote of %s", p.By, m.UnitPrice)
	return r.compare(now, d)
}

// choice: a request the vendor can serve gets a quote between its floor
// and its list price, or a decline; so does a counter-offer.
func (r *Vendor) choice(now time.Time, m *mailbox.Message) (Choice, bool) {
	if m.Verb != mailbox.Request && m.Verb != mailbox.Counter {
		return Choice{}, false
	}
	if m.Verb == mailbox.Request && r.cannot(now, m) != "" {
		return Choice{}, false // the rules decline what the vendor cannot serve
	}
	c := Choice{Actions: []string{"QUOTE", "DECLINE"}, Priced: []string{"QUOTE"}, Min: r.Floor, Max: r.List,
		Means: map[string]string{"QUOTE": "quote unit_price a unit", "DECLINE": "decline to sell at any price you may quote"}}
	var f strings.Builder
	fmt.Fprintf(&f, "You sell %s: list price %s a unit; you never sell below %s (private: never say it).\n", r.Item, r.List, r.Floor)
	fmt.Fprintf(&f, "You deliver at most %d units an order, %d days after it.\n", r.Capacity, r.LeadDays)
	if m.Verb == mailbox.Counter {
		fmt.Fprintf(&f, "This is counter-offer %d from %s on this deal.\n", r.Rounds[m.Thread]+1, m.From)
	}
	c.Facts = f.String()
	return c, true
}

func (r *Vendor) take(now time.Time, m *mailbox.Message, p Pick) []*mailbox.Message {
	if m.Verb == mailbox.Counter {
		r.Rounds[m.Thread]++
	}
	if p.Action == "DECLINE" {
		return []*mailbox.Message{r.decline(m, "we cannot do this deal")}
	}
	return []*mailbox.Message{r.quote(now, m, p.Price)}
}

// choice: a request for approval is approved or denied; the policy still
// decides whether an approval may go, and asks the human above its
// threshold.
func (r *Finance) choice(now time.Time, m *mailbox.Message) (Choice, bool) {
	if m.Verb != mailbox.Request || m.Amount.IsZero() {
		return Choice{}, false
	}
	return Choice{Actions: []string{"APPROVED", "DENIED"},
		Means: map[string]string{"APPROVED": fmt.Sprintf("approve spending %s", m.Amount), "DENIED": "deny it"},
		Facts: "The policy's limits below decide whether an approval may go; above its threshold a person signs off too.\n"}, true
}

func (r *Finance) take(now time.Time, m *mailbox.Message, p Pick) []*mailbox.Message {
	r.Asked[m.Thread] = m
	if p.Action == "DENIED" {
		return []*mailbox.Message{r.deny(m, "finance does not approve this spend")}
	}
	return []*mailbox.Message{r.approve(m)}
}
