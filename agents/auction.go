package agents

import (
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/shopspring/decimal"
)

// The auction is how procurement negotiates when it may counter (issue 17):
// every vendor that quoted something it could use is pressed, all at once,
// round after round, each with its own offer — from the buyer's own ceiling
// and that vendor's own quotes, never from another vendor's — and an offer
// to a vendor never goes below one made to it before. The last round a
// vendor may get is a sealed best-and-final round. Then the best quotes
// standing, weighed by their delivery, are bought: the whole need, or as
// much of it as each can deliver, cheapest first; within the budget.
//
// The baselines of parley simulate (Tactic) play the same auction with
// their own offers, and stop at the first quote as good as their next
// offer.

// anchor is how far under a vendor's first quote the buyer opens: low
// enough to leave room, not so low that a vendor ends the talks.
var anchor = decimal.RequireFromString("0.85")

var cent = decimal.New(1, -2)

// auctions reports whether procurement negotiates by the auction.
func (r *Procurement) auctions() bool {
	if r.Rounds == 0 || r.Serial {
		return false
	}
	switch r.Tactic {
	case "", "boulware", "linear", "conceder", "tft":
		return true
	}
	return false
}

// rounds is how many counter-offers a vendor may get on a thread: the
// team's rounds, within the policy's max_rounds.
func (r *Procurement) rounds() int {
	n := r.Rounds
	if r.MaxRounds > 0 && n > r.MaxRounds {
		n = r.MaxRounds
	}
	return n
}

// lateDays is how many days after the need's deadline o delivers.
func lateDays(d *Deal, o *Offer) int64 {
	if d.DeliverBy.IsZero() || !o.DeliverBy.After(d.DeliverBy) {
		return 0
	}
	return int64(math.Ceil(o.DeliverBy.Sub(d.DeliverBy).Hours() / 24))
}

// usableLate reports whether o may be bought despite its delivery: on time,
// or late where a late penalty weighs it.
func (r *Procurement) usableLate(d *Deal, o *Offer) bool {
	return lateDays(d, o) == 0 || (!r.LatePenalty.IsZero() && r.LatePenalty.Currency == o.UnitPrice.Currency)
}

// penalty is what o's late delivery costs a unit.
func (r *Procurement) penalty(d *Deal, o *Offer) decimal.Decimal {
	n := lateDays(d, o)
	if n == 0 || r.LatePenalty.IsZero() {
		return decimal.Zero
	}
	return r.LatePenalty.Amount.Mul(decimal.NewFromInt(n))
}

// effective is what a unit from o costs the buyer: its price and the
// penalty of its delivery.
func (r *Procurement) effective(d *Deal, o *Offer) decimal.Decimal {
	if p := r.penalty(d, o); !p.IsZero() {
		return o.UnitPrice.Amount.Add(p)
	}
	return o.UnitPrice.Amount // the same number: only compared (ranked, best)
}

// cap is the most the buyer pays a unit from o: its ceiling — or, with
// none configured, a cent under the budget spread over the need, its only
// sense of value — less o's late penalty. Zero: no cap known.
func (r *Procurement) cap(d *Deal, o *Offer) decimal.Decimal {
	c := decimal.Zero
	switch {
	case !r.Ceiling.IsZero() && r.Ceiling.Currency == o.UnitPrice.Currency:
		c = r.Ceiling.Amount
	case !r.Limit.IsZero() && r.Limit.Currency == o.UnitPrice.Currency && d.Quantity > 0:
		// Strictly under: a unit bought for all it is worth gains nothing.
		c = r.memo(d).limitCap
	default:
		return decimal.Zero
	}
	if p := r.penalty(d, o); !p.IsZero() {
		c = c.Sub(p)
	}
	if c.Sign() <= 0 {
		return decimal.New(-1, 0) // worth nothing to the buyer
	}
	return c
}

// affordable reports whether o's price is at most the buyer's cap.
func (r *Procurement) affordable(d *Deal, o *Offer) bool {
	c := r.cap(d, o)
	return c.IsZero() || (c.Sign() > 0 && !o.UnitPrice.Amount.GreaterThan(c))
}

// auction starts pressing every usable vendor at once.
func (r *Procurement) auction(now time.Time, d *Deal, vs []string) []*mailbox.Message {
	d.Auctioned, d.Phase, d.Round, d.Pressing = true, "pressing", 0, vs
	for _, v := range vs {
		if o := d.Quotes[v]; len(o.Quoted) == 0 {
			o.Quoted = []decimal.Decimal{o.UnitPrice.Amount}
		}
	}
	return r.bid(now, d)
}

// bid decides the round that just ended: the next round to the vendors
// still worth pressing, or the close.
func (r *Procurement) bid(now time.Time, d *Deal) []*mailbox.Message {
	for _, v := range d.Pressing {
		if d.Quotes[v].Pressed {
			return nil // the round is still on: it is decided when all have answered
		}
	}
	open := make([]string, 0, len(d.Pressing))
	for _, v := range d.Pressing {
		if o := d.Quotes[v]; !o.Declined && r.usableLate(d, o) {
			open = append(open, v)
		}
	}
	if len(open) == 0 {
		return r.close(now, d)
	}
	k := r.rounds()
	next := make([]string, 0, len(open))
	var met []string
	for _, v := range open {
		o := d.Quotes[v]
		if o.Rounds >= k {
			continue // its quote stands
		}
		if r.Tactic != "" {
			// A baseline takes a quote as good as its own next offer.
			if p := r.offerFor(d, v, o.Rounds+1); p.Sign() > 0 && !o.UnitPrice.Amount.GreaterThan(p) && r.affordable(d, o) {
				met = append(met, v)
			}
		} else if !o.Offered.IsZero() && !o.UnitPrice.Amount.GreaterThan(o.Offered.Amount) {
			continue // it met our offer: no lower offer can follow
		}
		next = append(next, v)
	}
	if len(met) > 0 {
		return r.win(now, d, r.best(d, met), "as good as our next offer")
	}
	if r.Tactic == "" && d.Final {
		return r.close(now, d) // the best and final is answered
	}
	if r.Tactic == "" {
		// A vendor that has stopped coming down is left at its price until
		// the best and final; when every one has, that round comes now.
		moving := make([]string, 0, len(next))
		for _, v := range next {
			if !settled(d.Quotes[v]) {
				moving = append(moving, v)
			}
		}
		if len(moving) == 0 && len(next) > 0 {
			d.Final = true
		} else {
			next = moving
		}
	}
	if len(next) > 0 && r.roomFor(d, 2*len(next)) {
		if r.Pace > 0 && !d.LastRound.IsZero() {
			// Rounds spread over the time the buyer gives the talks: a
			// vendor that concedes with time gets it.
			if at := d.LastRound.Add(r.Pace / time.Duration(max(1, r.rounds()))); now.Before(at) {
				d.NextRound = at
				return nil
			}
		}
		if at := r.rateRoom(now, len(next)); now.Before(at) {
			// The policy's rate would refuse a round now: it waits for room.
			d.NextRound = at
			return nil
		}
		d.NextRound = time.Time{}
		if out := r.counterEach(now, d, next); len(out) > 0 {
			d.LastRound = now
			return out
		}
	}
	return r.close(now, d)
}

// rateReserve is what procurement keeps of its rate for the messages that
// close a deal: the request to finance, the order, the notices.
const rateReserve = ending + 2

// rateRoom is when procurement may send n more messages within the
// policy's messages_per_minute and keep rateReserve for closing (zero: now,
// or never better than now). A round paced so is not refused, and the
// refusal not counted against the breaker.
func (r *Procurement) rateRoom(now time.Time, n int) time.Time {
	if r.Rate <= 0 {
		return time.Time{}
	}
	r.sends = recentSends(r.sends, now)
	over := len(r.sends) + n + rateReserve - r.Rate
	if over <= 0 || over > len(r.sends) {
		return time.Time{}
	}
	// The policy counts a message by its ledger line, a moment after it
	// was sent: a second more.
	return r.sends[over-1].Add(time.Minute + time.Second)
}

// recentSends are the times of sends within a minute of now.
func recentSends(sends []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(sends) && now.Sub(sends[i]) > time.Minute {
		i++
	}
	return sends[i:]
}

// settled reports whether a vendor seems to have reached its last price:
// three answers in a row without coming down, once it came down before
// or after six rounds (a vendor that holds out long moves late).
func settled(o *Offer) bool {
	return o.Stalls >= 3 && (o.Moved || o.Rounds >= 6)
}

// best is the vendor of vs whose unit costs the buyer least, its delivery
// weighed; then the earliest delivery; then the name.
func (r *Procurement) best(d *Deal, vs []string) string {
	b := vs[0]
	for _, v := range vs[1:] {
		x, y := d.Quotes[v], d.Quotes[b]
		c := r.effective(d, x).Cmp(r.effective(d, y))
		if c < 0 || (c == 0 && (x.DeliverBy.Before(y.DeliverBy) || (x.DeliverBy.Equal(y.DeliverBy) && v < b))) {
			b = v
		}
	}
	return b
}

// close ends the auction: the best quote standing within the buyer's cap
// takes the need, or as much as it delivers (the rest goes to the next
// best, by compare, once this part is confirmed).
func (r *Procurement) close(now time.Time, d *Deal) []*mailbox.Message {
	d.Phase = "closing"
	return r.compare(now, d)
}

// standing picks the next part after the auction: the best quote standing
// that the buyer can pay.
func (r *Procurement) standing(now time.Time, d *Deal, vs []string) []*mailbox.Message {
	var ok []string
	for _, v := range vs {
		if o := d.Quotes[v]; r.affordable(d, o) && r.usableLate(d, o) {
			ok = append(ok, v)
		} else {
			o.Declined, o.Why = true, "above what we can pay, after every round"
		}
	}
	if len(ok) == 0 {
		return r.compare(now, d)
	}
	b := r.best(d, ok)
	r.choose(d, b)
	o := d.Quotes[b]
	d.Why = fmt.Sprintf("lowest price %s after %d rounds with %d vendors", o.UnitPrice, o.Rounds, len(d.Pressing))
	if p := r.penalty(d, o); p.Sign() > 0 {
		d.Why += fmt.Sprintf(", %s a unit with its late delivery", o.UnitPrice.Amount.Add(p).StringFixed(2))
	}
	return r.accept(now, d, o.UnitPrice)
}

// counterEach sends this round's counter-offer to each vendor of vs, each
// its own; a vendor's last is its best and final.
func (r *Procurement) counterEach(now time.Time, d *Deal, vs []string) []*mailbox.Message {
	d.Round++
	var out []*mailbox.Message
	for _, v := range vs {
		o := d.Quotes[v]
		p := r.offerFor(d, v, o.Rounds+1)
		if p.Sign() <= 0 {
			continue // no offer that tells it nothing: its quote stands this round
		}
		price := mailbox.Money{Amount: p, Currency: o.UnitPrice.Currency}
		if r.Tactic == "" && !o.Offered.IsZero() {
			if r.probes(d, o) {
				o.Probes++
			}
			o.Raised = rise(p, o.Offered.Amount)
		}
		o.Offered, o.Pressed = price, true
		o.Rounds++
		lot := d.Quantity - d.Bought
		if o.Quantity > 0 && o.Quantity < lot {
			lot = o.Quantity
		}
		m := r.counterTo(d, v, lot, price)
		if r.ReplyWithin > 0 {
			m.Expires = now.Add(r.ReplyWithin)
		}
		if o.Rounds >= r.rounds() || d.Final {
			m.Subject = atEach("BEST AND FINAL", lot, d.Item, price)
			m.Body = "This is our last round: every vendor gets it at once, and the best answers win. Your best price?\n"
		}
		out = append(out, m)
	}
	if r.ReplyWithin > 0 {
		d.Due = now.Add(r.ReplyWithin)
	}
	return out
}

// offerFor is the offer to vendor v in its round k: from the buyer's own
// cap and v's own quotes — never another vendor's — and never below an
// offer made to v before, nor at or above the cap.
func (r *Procurement) offerFor(d *Deal, v string, k int) decimal.Decimal {
	if r.Tactic == "" {
		if p, ok := r.parleyOfferMicros(d, v); ok {
			return fromMicros(p)
		}
	}
	return r.offerForDecimal(d, v, k)
}

// offerForDecimal is offerFor in decimals, for every tactic and any
// figures.
func (r *Procurement) offerForDecimal(d *Deal, v string, k int) decimal.Decimal {
	o := d.Quotes[v]
	first, cur := o.Quoted[0], o.UnitPrice.Amount
	c := r.cap(d, o)
	a := roundCents(first.Mul(anchor))
	if c.Sign() > 0 {
		// Under the cap too, by a share of it drawn from the buyer's own
		// secret (its name and the thread): no fixed multiple of the cap
		// that a vendor could divide out.
		a = decimal.Min(a, roundCents(c.Mul(r.share(d, v))))
	}
	t := math.Min(float64(k)/float64(max(1, r.rounds())), 1)
	var p decimal.Decimal
	switch r.Tactic {
	case "boulware", "linear", "conceder":
		// p(t) = a + (c − a)·t^(1/e), from 10% under its first quote to the
		// ceiling (its quote, with none).
		a = roundCents(first.Mul(decimal.RequireFromString("0.90")))
		top := c
		if top.Sign() <= 0 {
			top = cur
		}
		p = a.Add(top.Sub(a).Mul(decimal.NewFromFloat(math.Pow(t, 1/tactics[r.Tactic])).Round(4)))
	case "tft":
		// Tit for tat: as much as the vendor conceded last.
		a = roundCents(first.Mul(decimal.RequireFromString("0.90")))
		p = a
		if n := len(o.Quoted); n >= 2 && !o.Offered.IsZero() {
			p = o.Offered.Amount.Add(decimal.Max(o.Quoted[n-2].Sub(cur), decimal.Zero))
		}
	default:
		p, _ = r.parleyOffer(o, a, c)
	}
	p = roundCents(p)
	if c.Sign() > 0 && !p.LessThan(c) {
		p = c.Sub(cent) // never the cap itself: an offer at it would say what it is
	}
	if !o.Offered.IsZero() && p.LessThan(o.Offered.Amount) {
		p = o.Offered.Amount
	}
	p = r.apart(d, v, p, o.Offered.Amount, c)
	// Nor any of the buyer's own numbers, even by chance: its ceiling,
	// its budget per unit.
	for _, secret := range r.secrets(d) {
		if p.Equal(secret) {
			if q := p.Sub(cent); q.GreaterThanOrEqual(o.Offered.Amount) {
				p = q
			} else {
				p = p.Add(cent)
			}
		}
	}
	return p
}

// secrets are the buyer's numbers an offer must never state.
func (r *Procurement) secrets(d *Deal) []decimal.Decimal { return r.memo(d).secrets }

// secretsOf is secrets, worked out.
func (r *Procurement) secretsOf(d *Deal) []decimal.Decimal {
	var out []decimal.Decimal
	if !r.Ceiling.IsZero() {
		out = append(out, r.Ceiling.Amount)
	}
	if !r.Limit.IsZero() && d.Quantity > 0 {
		out = append(out, r.Limit.Amount, r.Limit.Amount.Div(decimal.NewFromInt(d.Quantity)).Round(2))
	}
	return out
}

// dealMemo is what the auction works out from the buyer's own figures
// for a deal, every round for every vendor: kept while the figures are
// the ones it was worked out from (compared with ==: the same decimals;
// a policy bound anew gives new ones, and it is worked out again).
type dealMemo struct {
	name, thread   string
	ceiling, limit mailbox.Money
	quantity       int64
	secrets        []decimal.Decimal
	limitCap       decimal.Decimal            // a cent under the budget per unit, rounded up
	shares         map[string]decimal.Decimal // by vendor
}

func (r *Procurement) memo(d *Deal) *dealMemo {
	if m := d.memo; m != nil && m.name == r.Name && m.thread == d.Thread && m.ceiling == r.Ceiling && m.limit == r.Limit && m.quantity == d.Quantity {
		return m
	}
	m := &dealMemo{name: r.Name, thread: d.Thread, ceiling: r.Ceiling, limit: r.Limit, quantity: d.Quantity,
		secrets: r.secretsOf(d), shares: map[string]decimal.Decimal{}}
	if d.Quantity > 0 {
		m.limitCap = r.Limit.Amount.Div(decimal.NewFromInt(d.Quantity)).RoundUp(2).Sub(cent)
	}
	d.memo = m
	return m
}

// share is a fraction from 0.86 to 0.94, drawn from the buyer, the
// thread and the vendor: the same for the same deal, after a crash too,
// and unknown to the vendor.
func (r *Procurement) share(d *Deal, v string) decimal.Decimal {
	m := r.memo(d)
	x, ok := m.shares[v]
	if !ok {
		x = r.shareOf(d, v)
		m.shares[v] = x
	}
	return x
}

// shareOf is share, worked out.
func (r *Procurement) shareOf(d *Deal, v string) decimal.Decimal {
	h := fnv.New64a()
	h.Write([]byte(r.Name + "\x00" + d.Thread + "\x00" + v + "\x00" + r.Ceiling.String()))
	return decimal.New(8600+int64(h.Sum64()%801), -4)
}

// parleyOffer is parley's offer to a vendor whose offer o is, opening at a
// under its first quote, under the cap c (zero: none); probe says the
// offer rises to see whether the vendor follows.
//
// It holds its offer. A vendor that concedes by the round comes down
// whatever we offer, and one that meets our offer takes it where it would
// have gone lower: a higher offer only costs. But a vendor that did not
// move may be waiting for us (tit for tat): the offer rises once, a
// little, and if the vendor's next concession is exactly that rise, it
// follows us, and the offer rises by a third of the gap each round after.
func (r *Procurement) parleyOffer(o *Offer, a, c decimal.Decimal) (p decimal.Decimal, probe bool) {
	cur := o.UnitPrice.Amount
	top := cur.Sub(cent)
	if c.Sign() > 0 && c.LessThanOrEqual(top) {
		top = c.Sub(cent)
	}
	if o.Offered.IsZero() {
		return decimal.Min(a, top), false
	}
	prev := o.Offered.Amount
	var conceded decimal.Decimal
	if n := len(o.Quoted); n >= 2 {
		conceded = o.Quoted[n-2].Sub(o.Quoted[n-1])
	}
	gap := top.Sub(prev)
	if gap.Sign() <= 0 {
		return prev, false
	}
	switch {
	case o.Raised.Sign() > 0 && conceded.Equal(o.Raised):
		p = prev.Add(roundCents(gap.Div(decimal.NewFromInt(3))))
	case conceded.Sign() <= 0 && o.Probes < 2:
		p, probe = prev.Add(decimal.Max(cent, roundCents(gap.Div(decimal.NewFromInt(20))))), true
	default:
		p = prev
	}
	return decimal.Min(p, top), probe
}

// The auction's own offer (parleyOfferMicros) is worked out in whole
// millionths: the decimals' big.Int arithmetic and allocations were a
// fifth of a simulated deal. Every figure it starts from must be a whole
// number of millionths under 10^8 (prices), or it is worked out in
// decimals; TestOfferMicros holds the two to the same offers.
const (
	centMicros = 10_000
	maxMicros  = 100_000_000 * 1_000_000 // 10^8 in millionths: a product with a share (10^4) stays under 2^63
)

// exactMicros is d in millionths when that is exact and small enough for
// the auction's integer arithmetic.
func exactMicros(d decimal.Decimal) (int64, bool) {
	if e := d.Exponent(); e < -6 || e > 0 || d.NumDigits() > 12 {
		return 0, false
	}
	m := d.CoefficientInt64() * pow10[d.Exponent()+6]
	return m, m < maxMicros && m > -maxMicros
}

// roundCentsMicros is roundCents of x·10^-k (k from 3 to 18) in
// millionths: as decimal.Round(2), it truncates to three decimals, then
// rounds half away from zero.
func roundCentsMicros(x int64, k int) int64 {
	neg := x < 0
	if neg {
		x = -x
	}
	for ; k > 3; k-- {
		x /= 10 // to thousandths, truncated
	}
	c := (x + 5) / 10 * centMicros
	if neg {
		return -c
	}
	return c
}

// fromMicros is an amount of millionths as a decimal: in cents when it
// is whole cents, as the decimal offers were.
func fromMicros(m int64) decimal.Decimal {
	if m%centMicros == 0 {
		return decimal.New(m/centMicros, -2)
	}
	return decimal.New(m, -6)
}

// parleyOfferMicros is offerForDecimal for parley's own tactic, in
// millionths; ok is false when a figure it starts from is not exact in
// them (then offerFor works in decimals).
func (r *Procurement) parleyOfferMicros(d *Deal, v string) (p int64, ok bool) {
	o := d.Quotes[v]
	c := r.cap(d, o)
	f, ok := r.offerFigures(o, c)
	if !ok {
		return 0, false
	}
	a := roundCentsMicros(f.first*85, 8) // first × 0.85 (anchor)
	if f.cap > 0 {
		a = min(a, roundCentsMicros(f.cap*r.share(d, v).CoefficientInt64(), 10))
	}
	p, _ = f.parleyOffer(a)
	p = roundCentsMicros(p, 6)
	if f.cap > 0 && p >= f.cap {
		p = f.cap - centMicros // never the cap itself: an offer at it would say what it is
	}
	if f.offered && p < f.prev {
		p = f.prev
	}
	if x, moved := r.apartMicros(d, v, p, f.prev, f.cap); moved {
		p = x
	}
	// Nor any of the buyer's own numbers, even by chance: its ceiling,
	// its budget per unit.
	for _, secret := range r.secrets(d) {
		sm, ok := exactMicros(secret)
		if !ok {
			if !fromMicros(p).Equal(secret) {
				continue
			}
			return 0, false // a secret equal to the offer in another form: in decimals
		}
		if p == sm {
			if q := p - centMicros; q >= f.prev {
				p = q
			} else {
				p += centMicros
			}
		}
	}
	return p, true
}

// offerFigures are the figures of parley's offer to a vendor, in
// millionths.
type offerFigures struct {
	first, cur, cap  int64
	offered          bool  // an offer was made to it
	prev, raised     int64 // the last offer (0: none) and its rise
	conceded, probes int64
}

// offerFigures reads o's figures and the cap c in millionths; ok is false
// when one is not exact in them.
func (r *Procurement) offerFigures(o *Offer, c decimal.Decimal) (f offerFigures, ok bool) {
	if len(o.Quoted) == 0 {
		return f, false
	}
	all := true
	get := func(d decimal.Decimal) int64 {
		m, ok := exactMicros(d)
		all = all && ok
		return m
	}
	f.first, f.cur, f.cap = get(o.Quoted[0]), get(o.UnitPrice.Amount), get(c)
	f.offered, f.prev, f.raised, f.probes = !o.Offered.IsZero(), get(o.Offered.Amount), get(o.Raised), int64(o.Probes)
	if n := len(o.Quoted); n >= 2 {
		f.conceded = get(o.Quoted[n-2]) - get(o.Quoted[n-1])
	}
	return f, all
}

// parleyOffer is Procurement.parleyOffer in millionths.
func (f *offerFigures) parleyOffer(a int64) (p int64, probe bool) {
	top := f.cur - centMicros
	if f.cap > 0 && f.cap <= top {
		top = f.cap - centMicros
	}
	if !f.offered {
		return min(a, top), false
	}
	gap := top - f.prev
	if gap <= 0 {
		return f.prev, false
	}
	switch {
	case f.raised > 0 && f.conceded == f.raised:
		p = f.prev + roundCentsMicros(gap/3, 6) // gap/3 has no run of nines to round up: its thousandths are gap/3000's
	case f.conceded <= 0 && f.probes < 2:
		p, probe = f.prev+max(centMicros, roundCentsMicros(gap/20, 6)), true
	default:
		p = f.prev
	}
	return min(p, top), probe
}

// rise is p − prev: in millionths when both are exact in them, as the
// auction's offers are (TestRise).
func rise(p, prev decimal.Decimal) decimal.Decimal {
	if pm, ok := exactMicros(p); ok {
		if qm, ok := exactMicros(prev); ok {
			return fromMicros(pm - qm)
		}
	}
	return p.Sub(prev)
}

// probes reports whether parley's next offer to o rises to see whether
// the vendor follows.
func (r *Procurement) probes(d *Deal, o *Offer) bool {
	c := r.cap(d, o)
	if f, ok := r.offerFigures(o, c); ok {
		_, probe := f.parleyOffer(0)
		return probe
	}
	_, probe := r.parleyOffer(o, decimal.Zero, c)
	return probe
}

// Micros is d in millionths, truncated toward zero: d.Shift(6).IntPart().
// A price has two decimals, and Shift(6) gives it a positive exponent,
// which IntPart turns into big.Int arithmetic; with at most six decimals
// and twelve digits the coefficient times a power of ten is the same
// number (under 10^18: no overflow) in a few nanoseconds, and the
// auction and the simulator's leak check convert every price they
// compare.
func Micros(d decimal.Decimal) int64 {
	if e := d.Exponent(); e >= -6 && e <= 0 && d.NumDigits() <= 12 {
		return d.CoefficientInt64() * pow10[e+6]
	}
	return d.Shift(6).IntPart()
}

var pow10 = [...]int64{1, 10, 100, 1_000, 10_000, 100_000, 1_000_000}

// appendMicros appends the prices o quoted to qs, in millionths (Quoted
// converted once), and its unit price when it is not the last of them.
func (o *Offer) appendMicros(qs []int64) []int64 {
	for _, q := range o.Quoted[len(o.quotedMicros):] {
		o.quotedMicros = append(o.quotedMicros, Micros(q))
	}
	qs = append(qs, o.quotedMicros...)
	if n := len(o.Quoted); o.UnitPrice.Amount.Sign() > 0 && (n == 0 || !o.Quoted[n-1].Equal(o.UnitPrice.Amount)) {
		qs = append(qs, Micros(o.UnitPrice.Amount))
	}
	return qs
}

// apart moves an offer away from every other vendor's quote: one within
// half a percent of it would tell v what another asked. It moves to the
// nearest price below that is clear of them all, when that is not below
// floor (an offer made before), else to the nearest above under the cap
// (zero: none); zero when there is no such price. (In millionths, whole
// numbers: it runs for every offer against every quote.)
func (r *Procurement) apart(d *Deal, v string, p, floor, cap decimal.Decimal) decimal.Decimal {
	x, moved := r.apartMicros(d, v, Micros(p), Micros(floor), Micros(cap))
	switch {
	case !moved:
		return p
	case x == 0:
		return decimal.Zero // no offer to v this round that tells nothing
	}
	return decimal.New(x, -6)
}

// apartMicros is apart in millionths: moved is false when p is clear of
// every other quote; x, where it moved to (0: nowhere).
func (r *Procurement) apartMicros(d *Deal, v string, pm, fm, capm int64) (x int64, moved bool) {
	qs := r.quotes[:0] // reused: an offer to every vendor, every round
	for w, o := range d.Quotes {
		if w != v {
			qs = o.appendMicros(qs)
		}
	}
	r.quotes = qs
	clear := func(p int64) bool {
		for _, q := range qs {
			if diff := p - q; 200*diff <= q && -200*diff <= q {
				return false
			}
		}
		return true
	}
	if clear(pm) {
		return pm, false
	}
	const c = 10000 // a cent
	var below, above int64
	for _, q := range qs {
		band := (q + 199) / 200 // half a percent, rounded up
		lo := q - band - c
		lo -= lo % c // down to a cent
		hi := q + band + c
		if hi%c != 0 {
			hi += c - hi%c // up to a cent
		}
		if lo < pm && lo >= fm && lo > below && clear(lo) {
			below = lo
		}
		if hi > pm && (above == 0 || hi < above) && clear(hi) {
			above = hi
		}
	}
	switch {
	case below > 0:
		return below, true
	case above > 0 && (capm <= 0 || above < capm):
		return above, true
	}
	return 0, true
}

// Wake is when procurement next has something to do on its own: a quote
// window that closes, a round or an answer whose time is up (zero:
// nothing). The simulator moves its clock there.
func (r *Procurement) Wake() time.Time {
	var at time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	for _, d := range r.Deals {
		switch {
		case d.Phase == "quoting":
			earlier(d.Closes)
		case d.Phase == "pressing" && !d.NextRound.IsZero():
			earlier(d.NextRound)
		case d.Phase == "pressing" && !d.Due.IsZero():
			earlier(d.Due)
		case d.Awaiting != nil && d.Phase != "done" && d.Phase != "failed":
			earlier(d.Due)
		}
	}
	return at
}
