package agents

import (
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
	"github.com/shopspring/decimal"
)

// Vendor quotes its list price, concedes by its style over its own horizon
// (a target price from the list price towards its floor, NEGOTIATION.md's
// p(t) = a + (c - a)·t^(1/e), or one of the other styles of VendorStyles),
// declines what it cannot serve and confirms orders with a delivery day.
// Its price never rises on a thread and never goes below its floor.
type Vendor struct {
	Name     string        `json:"-"`
	Item     string        `json:"-"`
	List     mailbox.Money `json:"-"`
	Floor    mailbox.Money `json:"-"`
	Capacity int64         `json:"-"`
	LeadDays int           `json:"-"`
	E        float64       `json:"-"`
	Style    string        `json:"-"` // one of VendorStyles; "" concedes by E
	Horizon  int           `json:"-"` // counter-offers it concedes over; 0 is defaultHorizon
	// Within, when set, is its horizon by time instead: it concedes over
	// this long from the request, whatever the count of counter-offers.
	Within    time.Duration              `json:"-"`
	WalkBelow mailbox.Money              `json:"-"` // walkaway: an offer under this ends the talks
	Finance   string                     `json:"-"`
	Pitch     string                     `json:"-"` // words added to every quote (a simulated vendor's sales talk)
	Rounds    map[string]int             // thread: counter-offers received
	Confirmed map[string]bool            // thread: an order confirmed
	Quoted    map[string]decimal.Decimal `json:",omitempty"` // thread: its last quote
	Offers    map[string]decimal.Decimal `json:",omitempty"` // thread: the buyer's last offer (tit for tat)
	Gone      map[string]bool            `json:",omitempty"` // thread: it walked away
	Opened    map[string]time.Time       `json:",omitempty"` // thread: when it was asked (a horizon by time)
	Pending   []Pending                  `json:",omitempty"` // a slow vendor's answers, held
}

// Pending is an answer a slow vendor holds until its time.
type Pending struct {
	At      time.Time
	Message *mailbox.Message
}

// defaultHorizon is how many counter-offers a vendor spreads its
// concession over when its terms do not say.
const defaultHorizon = 4

// Receive answers requests, counter-offers, orders and payments.
func (r *Vendor) Receive(now time.Time, m *mailbox.Message) []*mailbox.Message {
	out := r.receive(now, m)
	if r.Style != "slow" || len(out) == 0 || (m.Verb != mailbox.Request && m.Verb != mailbox.Counter) {
		return out
	}
	// Slow: it answers when two thirds of the time the buyer gave are gone
	// (five minutes, when the message gives none).
	at := now.Add(5 * time.Minute)
	if !m.Expires.IsZero() && m.Expires.After(now) {
		at = now.Add(m.Expires.Sub(now) * 2 / 3)
	}
	for _, o := range out {
		r.Pending = append(r.Pending, Pending{At: at, Message: o})
	}
	return nil
}

func (r *Vendor) receive(now time.Time, m *mailbox.Message) []*mailbox.Message {
	r.init()
	switch m.Verb {
	case mailbox.Request:
		if why := r.cannot(now, m); why != "" {
			return []*mailbox.Message{r.decline(m, why)}
		}
		if _, ok := r.Opened[m.Thread]; !ok {
			r.Opened[m.Thread] = now
		}
		return []*mailbox.Message{r.quote(now, m, r.List)}
	case mailbox.Counter:
		th := m.Thread
		if r.Gone[th] {
			return []*mailbox.Message{r.decline(m, "we ended these talks")}
		}
		offer, ok := decimal.Zero, !m.UnitPrice.IsZero() && m.UnitPrice.Currency == r.List.Currency
		if ok {
			offer = m.UnitPrice.Amount
		}
		if r.Style == "walkaway" && ok && !r.WalkBelow.IsZero() && offer.LessThan(r.WalkBelow.Amount) {
			r.Gone[th] = true
			return []*mailbox.Message{r.decline(m, "you pressed too hard; we end these talks")}
		}
		r.Rounds[th]++
		k := float64(r.Rounds[th]) / float64(r.horizon())
		if r.Within > 0 {
			opened, ok := r.Opened[th]
			if !ok {
				opened, r.Opened[th] = now, now
			}
			k = float64(now.Sub(opened)) / float64(r.Within)
		}
		price := r.concede(th, r.Rounds[th], k, offer)
		if ok && !offer.LessThan(price) {
			price = offer // their offer meets ours
		}
		if last, seen := r.Quoted[th]; seen && price.GreaterThan(last) {
			price = last // a vendor never raises its own price
		}
		if ok {
			r.Offers[th] = offer
		}
		r.Quoted[th] = price
		return []*mailbox.Message{r.quote(now, m, mailbox.Money{Amount: price, Currency: r.List.Currency})}
	case mailbox.Order:
		if r.Confirmed[m.Thread] {
			return nil // one order a thread: a second is a repeat, not more business
		}
		if m.Quantity > r.Capacity || m.Item != r.Item {
			d := reply(r.Name, m, mailbox.Decline)
			d.Subject = fmt.Sprintf("DECLINE: cannot deliver %d %s", m.Quantity, m.Item)
			return []*mailbox.Message{d}
		}
		// The day ordered, when the vendor can make it: a confirmation
		// repeats the order's terms (bait's excepted).
		when := days(now, r.LeadDays)
		if !m.DeliverBy.IsZero() && !when.After(m.DeliverBy) {
			when = m.DeliverBy
		}
		r.Confirmed[m.Thread] = true
		qty, total := m.Quantity, m.Total()
		if r.Style == "bait" && !m.UnitPrice.IsZero() {
			// Bait: it confirms a tenth more than was ordered, and bills it.
			qty += max(1, m.Quantity/10)
			total = m.UnitPrice.Times(qty)
		}
		var out []*mailbox.Message
		for _, to := range []string{m.From, r.Finance} {
			c := reply(r.Name, m, mailbox.Confirmed)
			c.To, c.Quantity, c.Amount, c.DeliverBy = to, qty, total, when
			c.Subject = fmt.Sprintf("CONFIRMED: %d %s, %s, delivery %s %s", qty, m.Item, total, when.Weekday(), when.Format(time.DateOnly))
			out = append(out, c)
		}
		return out
	}
	return nil
}

// init makes the maps of a vendor whose state was saved before it had them.
func (r *Vendor) init() {
	if r.Rounds == nil {
		r.Rounds = map[string]int{}
	}
	if r.Confirmed == nil {
		r.Confirmed = map[string]bool{}
	}
	if r.Quoted == nil {
		r.Quoted = map[string]decimal.Decimal{}
	}
	if r.Offers == nil {
		r.Offers = map[string]decimal.Decimal{}
	}
	if r.Gone == nil {
		r.Gone = map[string]bool{}
	}
	if r.Opened == nil {
		r.Opened = map[string]time.Time{}
	}
}

// concede is the vendor's price in round k of thread th, t of the way
// through its horizon, after the buyer offered offer: never below its
// floor.
func (r *Vendor) concede(th string, k int, t float64, offer decimal.Decimal) decimal.Decimal {
	last, seen := r.Quoted[th]
	if !seen {
		last = r.List.Amount
	}
	floor := r.Floor.Amount
	var p decimal.Decimal
	switch r.Style {
	case "hardliner", "cartel":
		p = r.List.Amount
	case "tft":
		// Tit for tat: as much as the buyer's offer rose since its last;
		// the first time, one step of its horizon.
		step := r.List.Amount.Sub(floor).Div(decimal.NewFromInt(int64(r.horizon())))
		if prev, ok := r.Offers[th]; ok {
			step = decimal.Max(offer.Sub(prev), decimal.Zero)
		}
		p = last.Sub(step)
	case "random":
		// Anywhere between its last price and its floor, drawn from the
		// vendor, the thread and the round: the same answer to the same
		// message, after a crash too.
		h := fnv.New64a()
		fmt.Fprintf(h, "%s\x00%s\x00%d", r.Name, th, k)
		u := decimal.New(int64(h.Sum64()%10001), -4)
		p = last.Sub(last.Sub(floor).Mul(u))
	default:
		p = r.targetAt(t).Amount
	}
	return decimal.Max(roundCents(p), floor)
}

func (r *Vendor) horizon() int {
	if r.Horizon > 0 {
		return r.Horizon
	}
	return defaultHorizon
}

// cannot says why the vendor cannot serve a request, or "".
func (r *Vendor) cannot(now time.Time, m *mailbox.Message) string {
	earliest := days(now, r.LeadDays)
	late, _ := m.Get(AcceptLate)
	switch {
	case m.Item != r.Item:
		return fmt.Sprintf("we do not sell %s", m.Item)
	case !m.DeliverBy.IsZero() && earliest.After(m.DeliverBy) && late != "yes":
		return fmt.Sprintf("we cannot deliver before %s", earliest.Format(time.DateOnly))
	}
	return ""
}

// AcceptLate is the header of a request whose buyer weighs a delivery
// after its Deliver-By rather than refusing it: a vendor that cannot make
// the day quotes its own.
const AcceptLate = "Accept-Late"

func (r *Vendor) decline(m *mailbox.Message, why string) *mailbox.Message {
	d := reply(r.Name, m, mailbox.Decline)
	d.Subject, d.Body = "DECLINE: "+why, why+".\n"
	return d
}

// quote answers a request or a counter-offer with a price per unit.
func (r *Vendor) quote(now time.Time, m *mailbox.Message, price mailbox.Money) *mailbox.Message {
	q := reply(r.Name, m, mailbox.Quote)
	q.UnitPrice, q.DeliverBy = price, days(now, r.LeadDays)
	if m.Quantity > r.Capacity {
		// More than it delivers on one order: it quotes for what it can.
		q.Quantity = r.Capacity
		q.Subject = fmt.Sprintf("QUOTE: %d of the %d %s asked, at %s each, delivered %s", r.Capacity, m.Quantity, r.Item, price, q.DeliverBy.Weekday())
	} else {
		q.Subject = atEach("QUOTE", m.Quantity, r.Item, price) + ", delivered " + q.DeliverBy.Weekday().String()
	}
	if r.Pitch != "" {
		q.Body = r.Pitch + "\n"
	}
	return q
}

// target is the vendor's price in round k of a time-dependent style: from
// the list price towards the floor over its horizon, never below it.
func (r *Vendor) target(k int) mailbox.Money {
	return r.targetAt(float64(k) / float64(r.horizon()))
}

// targetAt is its price t of the way through its horizon.
func (r *Vendor) targetAt(t float64) mailbox.Money {
	e := r.E
	if e <= 0 {
		e = 1
	}
	t = math.Max(0, math.Min(t, 1))
	f := math.Pow(t, 1/e)
	if p, ok := targetMicros(r.List.Amount, r.Floor.Amount, f); ok {
		return mailbox.Money{Amount: fromMicros(p), Currency: r.List.Currency}
	}
	return mailbox.Money{Amount: targetDecimal(r.List.Amount, r.Floor.Amount, f), Currency: r.List.Currency}
}

// targetDecimal is the price f of the way from list down to floor, to
// four places of f and in cents, never below the floor.
func targetDecimal(list, floor decimal.Decimal, f float64) decimal.Decimal {
	drop := list.Sub(floor).Mul(decimal.NewFromFloat(f).Round(4))
	return decimal.Max(roundCents(list.Sub(drop)), floor)
}

// targetMicros is targetDecimal in millionths, for a list price and a
// floor exact in them and f from 0 to 1 (TestTargetMicros): a vendor
// works one out for every answer.
func targetMicros(list, floor decimal.Decimal, f float64) (int64, bool) {
	l, ok1 := exactMicros(list)
	fl, ok2 := exactMicros(floor)
	f4, ok3 := round4(f)
	if !ok1 || !ok2 || !ok3 {
		return 0, false
	}
	p := roundCentsMicros(l*10_000-(l-fl)*f4, 10) // (list − (list − floor)·f4/10^4), in 10^-10
	return max(p, fl), true
}

// round4 is decimal.NewFromFloat(f).Round(4) in ten-thousandths, for f
// from 0 to 1: the shortest decimal that reads back as f (strconv's, as
// NewFromFloat's), truncated to five places, rounded half up.
func round4(f float64) (int64, bool) {
	if !(f >= 0 && f <= 1) {
		return 0, false
	}
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], f, 'f', -1, 64)
	i, whole := 0, int64(0)
	for ; i < len(b) && b[i] != '.'; i++ {
		whole = whole*10 + int64(b[i]-'0')
	}
	frac := int64(0)
	for k := 1; k <= 5; k++ {
		frac *= 10
		if i+k < len(b) {
			frac += int64(b[i+k] - '0')
		}
	}
	return (whole*100_000 + frac + 5) / 10, true
}

// Tick sends a slow vendor's answers that are due.
func (r *Vendor) Tick(now time.Time) []*mailbox.Message {
	var out []*mailbox.Message
	keep := r.Pending[:0]
	for _, p := range r.Pending {
		if now.Before(p.At) {
			keep = append(keep, p)
			continue
		}
		out = append(out, p.Message)
	}
	r.Pending = keep
	return out
}

// Wake is when the vendor next has something to do on its own: a held
// answer's time (zero: nothing).
func (r *Vendor) Wake() time.Time {
	var at time.Time
	for _, p := range r.Pending {
		if at.IsZero() || p.At.Before(at) {
			at = p.At
		}
	}
	return at
}

// Denied: a vendor's refused message is in the ledger; nothing follows.
func (r *Vendor) Denied(time.Time, *mailbox.Message, policy.Decision) []*mailbox.Message { return nil }
