package agents

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
	"github.com/shopspring/decimal"
)

// Role is an agent's brain: pure functions of its own state (the Role
// value, saved as JSON after every step), one message or a tick of the
// clock, and the time. It returns the messages to send; the runtime does all
// I/O and puts every message through the policy first.
type Role interface {
	// Receive handles one message from the inbox.
	Receive(now time.Time, m *mailbox.Message) []*mailbox.Message
	// Tick is called on the agent's timer, for deadlines and triggers.
	Tick(now time.Time) []*mailbox.Message
	// Denied tells the role that the policy refused to send m.
	Denied(now time.Time, m *mailbox.Message, d policy.Decision) []*mailbox.Message
}

// NewRole makes the rule-based brain of agent a of team (stockFile is the
// inventory's stock file).
func NewRole(a *Agent, team *Team, stockFile string) (Role, error) {
	switch a.Role {
	case "inventory":
		return &Inventory{Name: a.Name, Procurement: team.first("procurement"), Human: team.Human, StockFile: stockFile, Needs: map[string]int{}, Open: map[string]string{}, Retry: map[string]time.Time{}}, nil
	case "procurement":
		return &Procurement{Name: a.Name, Human: team.Human, Finance: team.first("finance"), Vendors: team.named("vendor"),
			Window: a.QuoteWindow.Duration, Rounds: a.Rounds, Ceiling: a.MaxUnitPrice, LatePenalty: a.LatePenalty, Pace: a.NegotiateWithin.Duration, Deals: map[string]*Deal{}}, nil
	case "vendor":
		v := &Vendor{Name: a.Name, Item: a.Item, List: a.ListPrice, Floor: a.Floor, Capacity: a.Capacity,
			LeadDays: a.LeadDays, E: Styles[a.Style], Style: a.Style, Horizon: a.Horizon, Within: a.ConcedeWithin.Duration, WalkBelow: a.WalkBelow, Finance: team.first("finance")}
		v.init()
		return v, nil
	case "finance":
		return &Finance{Name: a.Name, Asked: map[string]*mailbox.Message{}}, nil
	}
	if spec := team.Spec(a); spec != nil {
		return &Declared{Name: a.Name, Spec: spec, Team: team}, nil
	}
	return nil, fmt.Errorf("agent %s: the %s role has no brain to run; a person reads its inbox", a.Name, a.Role)
}

func (t *Team) first(role string) string {
	if n := t.named(role); len(n) > 0 {
		return n[0]
	}
	return ""
}

func (t *Team) named(role string) []string {
	var out []string
	for _, a := range t.Agents {
		if a.Role == role {
			out = append(out, a.Name)
		}
	}
	return out
}

// reply starts a message answering m.
func reply(from string, m *mailbox.Message, verb mailbox.Verb) *mailbox.Message {
	return &mailbox.Message{From: from, To: m.From, Thread: m.Thread, InReplyTo: m.ID, Verb: verb, Item: m.Item, Quantity: m.Quantity}
}

func days(t time.Time, n int) time.Time {
	y, mo, d := t.UTC().Date()
	return time.Date(y, mo, d+n, 0, 0, 0, 0, time.UTC)
}

// atEach is fmt.Sprintf("%s: %d %s at %s each", head, q, item, price),
// joined: every offer and quote says it (TestAtEach).
func atEach(head string, q int64, item string, price mailbox.Money) string {
	var buf [128]byte
	b := append(append(buf[:0], head...), ": "...)
	b = strconv.AppendInt(b, q, 10)
	b = append(append(append(b, ' '), item...), " at "...)
	return string(append(price.AppendTo(b), " each"...))
}

func unit(m mailbox.Money, q int64) string {
	return fmt.Sprintf("%d %s at %s", q, "units", m)
}

// roundCents rounds a unit price to the currency's cents, as people quote.
func roundCents(d decimal.Decimal) decimal.Decimal { return d.Round(2) }

// Inventory watches the stock file a person edits and asks procurement for
// a restock once per need, not once per change: when an item is below its
// reorder point one REQUEST goes out, and the need stays open — whatever the
// stock does meanwhile — until the stock is back at or above the reorder
// point (the goods arrived and were counted). A need that could not be met
// is asked again after a while.
type Inventory struct {
	Name        string               `json:"-"`
	Procurement string               `json:"-"`
	Human       string               `json:"-"`
	StockFile   string               `json:"-"`
	Bad         string               // what is wrong with the stock file, as last told to the human
	Needs       map[string]int       // item: how many needs it had
	Open        map[string]string    // item: the thread of its open need
	Retry       map[string]time.Time // item: when a failed need is asked again
	seen        string               // the error of the last look at the stock file
	stock       func() ([]StockItem, error)
}

// retryAfter is how long a need that could not be met waits before it is
// asked again.
const retryAfter = time.Hour

// Receive learns that a need could not be met.
func (r *Inventory) Receive(now time.Time, m *mailbox.Message) []*mailbox.Message {
	failed := m.Verb == mailbox.Denied || m.Verb == mailbox.Error || (m.Verb == mailbox.Notify && m.DeliverBy.IsZero())
	for item, th := range r.Open {
		if th == m.Thread && failed {
			r.Retry[item] = now.Add(retryAfter)
		}
	}
	return nil
}

// Tick reads the stock, closes the needs that were met and asks for what is
// short.
func (r *Inventory) Tick(now time.Time) []*mailbox.Message {
	read := r.stock
	if read == nil {
		read = func() ([]StockItem, error) { return LoadStock(r.StockFile) }
	}
	items, err := read()
	if err != nil {
		// The person who edits the file is told once what to fix; the file
		// is read again at every tick. An error seen once may be an editor
		// half-way through saving: it counts when the next look sees it too.
		if err.Error() == r.Bad || err.Error() != r.seen {
			r.seen = err.Error()
			return nil
		}
		r.Bad = err.Error()
		sum := sha256.Sum256([]byte(r.Bad))
		return []*mailbox.Message{{From: r.Name, To: r.Human, Thread: "stock-file-" + hex.EncodeToString(sum[:4]), Verb: mailbox.Notify,
			Subject: "The stock file cannot be read: " + firstLine(err.Error()),
			Body:    fmt.Sprintf("%v\n\nFix %s; I read it again every second.\n", err, r.StockFile)}}
	}
	r.Bad, r.seen = "", ""
	var out []*mailbox.Message
	for _, it := range items {
		if it.Stock >= it.ReorderPoint {
			delete(r.Open, it.Name)
			delete(r.Retry, it.Name)
			continue
		}
		if r.Open[it.Name] != "" {
			if retry, ok := r.Retry[it.Name]; !ok || now.Before(retry) {
				continue
			}
			delete(r.Retry, it.Name)
		}
		// The thread is numbered, not drawn: after a crash before the state
		// was saved, the same need gets the same thread, and its REQUEST the
		// same id.
		r.Needs[it.Name]++
		th := fmt.Sprintf("restock-%s-%d", it.Name, r.Needs[it.Name])
		r.Open[it.Name] = th
		by := days(now, it.DeliverWithinDays)
		out = append(out, &mailbox.Message{From: r.Name, To: r.Procurement, Thread: th, Verb: mailbox.Request,
			Item: it.Name, Quantity: it.ReorderQuantity, DeliverBy: by,
			Subject: fmt.Sprintf("REQUEST: need %d %s by %s", it.ReorderQuantity, it.Name, by.Weekday()),
			Body:    fmt.Sprintf("Stock of %s is %d, below the reorder point of %d.\n", it.Name, it.Stock, it.ReorderPoint)})
	}
	return out
}

// Denied: a request the policy refused is asked again after a while.
func (r *Inventory) Denied(now time.Time, m *mailbox.Message, d policy.Decision) []*mailbox.Message {
	for item, th := range r.Open {
		if th == m.Thread {
			r.Retry[item] = now.Add(retryAfter)
		}
	}
	return nil
}

// Offer is a vendor's terms on the table.
type Offer struct {
	UnitPrice mailbox.Money
	DeliverBy time.Time
	Quantity  int64             // how many it can deliver, when fewer than asked
	Quoted    []decimal.Decimal // every unit price it quoted, in order: none is ever said to another vendor
	Offered   mailbox.Money     // our last counter-offer to it, when pressed with others
	Rounds    int               // counter-offers sent to it on the thread
	Pressed   bool              // a counter-offer to it awaits its answer
	Declined  bool
	Ordered   bool   // a part of the need was ordered from it
	Why       string // why it is out, when Declined
	Model     string // the model that walked away from it, in decide mode
	// Raised is how much our last offer to it rose over the one before;
	// Probes, how often it rose to see whether the vendor follows.
	Raised decimal.Decimal `json:",omitempty"`
	Probes int             `json:",omitempty"`
	// Stalls counts its answers in a row that did not come down; Moved,
	// that it ever came down.
	Stalls int  `json:",omitempty"`
	Moved  bool `json:",omitempty"`

	quotedMicros []int64 // Quoted in millionths, for apart
}

// price is the offer's unit price; nothing for no offer.
func (o *Offer) price() mailbox.Money {
	if o == nil {
		return mailbox.Money{}
	}
	return o.UnitPrice
}

// Deal is one need procurement works on, from request to delivery.
type Deal struct {
	Thread    string
	Requester string
	Item      string
	Quantity  int64
	DeliverBy time.Time
	Phase     string // quoting, negotiating, approving, ordering, done, failed
	Quotes    map[string]*Offer
	Closes    time.Time // when the quote window closes
	Vendor    string    // the one negotiated with, then ordered from
	Round     int
	Offered   mailbox.Money // procurement's last counter-offer
	// A need no one vendor can serve is bought in parts, one vendor after
	// another, cheapest first: Lot is the part being bought now; Bought,
	// Spent and Parts what the confirmed parts came to.
	Lot    int64
	Bought int64
	Spent  mailbox.Money
	Parts  []string
	// Pressing are the vendors pressed with counter-offers all at once,
	// round by round (phase "pressing"); Auctioned, that the auction was
	// held (auction.go).
	Pressing  []string
	Auctioned bool `json:",omitempty"`
	Final     bool `json:",omitempty"` // the best-and-final round was sent
	// LastRound and NextRound: when the auction's last round went out,
	// and, while it waits, when the next one goes.
	LastRound time.Time `json:",omitempty"`
	NextRound time.Time `json:",omitempty"`
	// Hops counts the thread's messages procurement sent and got, and Parts
	// the confirmations and payments it did not see: against the policy's
	// message fuse.
	Hops   int
	Anchor mailbox.Money // a baseline tactic's first offer
	Last   mailbox.Money // the vendor's quote before its latest (tit-for-tat)
	Agreed mailbox.Money // the unit price agreed
	Why    string        // why the winner won
	// Disputes are the parts whose vendor confirmed other terms than
	// ordered, said in the human's notice.
	Disputes []string `json:",omitempty"`
	// The message an answer is awaited to, by when, and whether it was
	// already sent again as a reminder.
	Awaiting *mailbox.Message
	Due      time.Time
	Reminded bool

	memo *dealMemo // the auction's figures from the buyer's, worked out once
}

// Procurement asks every vendor for a quote, compares them when the
// sealed-bid window closes (in an order that does not favour whoever
// answered first), negotiates with the best, asks finance, orders only with
// finance's APPROVED in hand, and reports.
type Procurement struct {
	Name    string        `json:"-"`
	Human   string        `json:"-"`
	Finance string        `json:"-"`
	Vendors []string      `json:"-"`
	Window  time.Duration `json:"-"`
	Rounds  int           `json:"-"`
	Ceiling mailbox.Money `json:"-"` // private: never offered or revealed
	// LatePenalty is what a unit costs for each day after the need's
	// deadline it arrives: with one, a late quote is weighed, not refused.
	LatePenalty mailbox.Money `json:"-"`
	// MaxRounds is the policy's negotiation.max_rounds: counter-offers to
	// one vendor on a thread.
	MaxRounds int `json:"-"`
	// Pace is how long the auction's rounds may be spread over (the
	// team's negotiate_within; 0: no waiting between rounds).
	Pace time.Duration `json:"-"`
	// ReplyWithin is how long an answer is awaited before a reminder, and
	// as long again before the human is told (the policy's
	// negotiation.reply_within; 0 waits for ever).
	ReplyWithin time.Duration `json:"-"`
	// Limit is the policy's per_transaction limit: no total above it is
	// ever offered or accepted by a model's choice.
	Limit mailbox.Money `json:"-"`
	// Tactic is how it negotiates: "" is parley's own; the others are
	// NEGOTIATION.md's baselines, played by parley simulate --buyer.
	Tactic string `json:"-"`
	// Serial negotiates with one vendor at a time (a model that decides
	// chooses on one vendor's quote at a time).
	Serial bool `json:"-"`
	// MaxHops is the policy's fuses.max_hops: the messages a thread may
	// carry for each agent asked on it (policy.Fuses.Hops). A
	// counter-offer that would leave too few to close the deal is not
	// sent; the quote standing is taken or left.
	MaxHops int `json:"-"`
	// Whole buys a need whole or not at all: the policy's
	// negotiation.partial_orders turned off.
	Whole bool `json:"-"`
	// Rate is the policy's rate.messages_per_minute: the auction's rounds
	// wait for room within it (rateRoom), and sends are when procurement
	// sent in the last minute.
	Rate  int         `json:"-"`
	sends []time.Time // in the last minute or so, oldest first
	Deals map[string]*Deal
	asked map[string]time.Time // where the human's decisions stand, by thread (Asked)

	quotes []int64 // apart's scratch: the other vendors' quotes
}

// await notes that out (the message just sent in deal d) needs an answer.
func (r *Procurement) await(now time.Time, d *Deal, out []*mailbox.Message) []*mailbox.Message {
	if len(out) == 1 && r.ReplyWithin > 0 {
		d.Awaiting, d.Due, d.Reminded = out[0], now.Add(r.ReplyWithin), false
	}
	return out
}

// overdue handles a deal whose awaited answer did not come: a reminder
// first; then, from a vendor, the next best offer, and from anyone else,
// the human is asked to look.
// Chasing reports whether a deal awaits an answer past its due time.
func (r *Procurement) Chasing(now time.Time) bool {
	for _, d := range r.Deals {
		if d.Awaiting != nil && now.After(d.Due) && d.Phase != "done" && d.Phase != "failed" {
			return true
		}
	}
	return false
}

// Asked tells procurement where the human's decisions stand, by thread
// (the runtime reads it from the ledger before each tick).
func (r *Procurement) Asked(asked map[string]time.Time) { r.asked = asked }

// due is when what deal d awaits is overdue: an answer that waits for the
// human's decision (finance's approval above the sign-off threshold, our
// own order held) is not chased while the human decides, and is given
// reply_within from the human's answer.
func (r *Procurement) due(d *Deal) time.Time {
	at, ok := r.asked[d.Thread]
	switch {
	case !ok:
		return d.Due
	case at.IsZero():
		return maxTime
	}
	if after := at.Add(r.ReplyWithin); after.After(d.Due) {
		return after
	}
	return d.Due
}

// maxTime is a time no clock reaches.
var maxTime = time.Unix(1<<62, 0)

func (r *Procurement) overdue(now time.Time, d *Deal) []*mailbox.Message {
	m := d.Awaiting
	if !d.Reminded {
		// A reminder is a NOTIFY that points at the message: sending the
		// message itself again would be a second order, not a reminder.
		d.Reminded, d.Due = true, now.Add(r.ReplyWithin)
		return []*mailbox.Message{{From: r.Name, To: m.To, Thread: d.Thread, Verb: mailbox.Notify, Item: d.Item, Quantity: d.Quantity,
			Subject: fmt.Sprintf("REMINDER: I await your answer to my %s %s", m.Verb, m.ID),
			Body:    fmt.Sprintf("On %s I sent you: %s\nPlease answer it.\n", m.Date.Format(time.RFC3339), m.Subject)}}
	}
	d.Awaiting = nil
	if d.Phase == "negotiating" {
		d.Quotes[d.Vendor].Declined = true
		d.Quotes[d.Vendor].Why = "did not answer"
		return r.compare(now, d)
	}
	return []*mailbox.Message{{From: r.Name, To: r.Human, Thread: d.Thread, Verb: mailbox.Escalate, Item: d.Item, Quantity: d.Quantity,
		Subject: fmt.Sprintf("ESCALATE: %s has not answered my %s on %s, even after a reminder", m.To, m.Verb, d.Thread),
		Body: fmt.Sprintf("I sent %s a %s at %s (%s) and reminded it; no answer. Is %s running? (parley status, parley agent %s)\n",
			m.To, m.Verb, m.Date.Format(time.RFC3339), m.Subject, m.To, m.To)}}
}

// Receive moves a deal on.
func (r *Procurement) Receive(now time.Time, m *mailbox.Message) []*mailbox.Message {
	if d := r.Deals[m.Thread]; d != nil {
		d.Hops++
	}
	return r.counted(r.receive(now, m))
}

// Bind takes what procurement must know of the policy: how long an answer
// is awaited, the per-transaction limit, and the thread's message fuse.
func (r *Procurement) Bind(p *policy.Policy) {
	if p != nil {
		r.ReplyWithin, r.Limit, r.MaxHops = p.Negotiation.ReplyWithin.Duration, p.Limits.PerTransaction, p.Fuses.MaxHops
		r.MaxRounds, r.Whole, r.Rate = p.Negotiation.MaxRounds, !p.Negotiation.Partial(), p.Rate.MessagesPerMinute
	}
}

// counted adds what procurement sends to its deals' message counts.
func (r *Procurement) counted(out []*mailbox.Message) []*mailbox.Message {
	for _, m := range out {
		if d := r.Deals[m.Thread]; d != nil {
			d.Hops++
		}
	}
	return out
}

// A part, once its price is agreed, takes six more messages: the request
// to finance and its answer, the order, the confirmations to procurement
// and finance, the payment. The deal ends with four more at most: the
// notices, and an escalation to the human and the answer.
const (
	perPart = 6
	ending  = 4
)

// roomFor reports whether the thread can carry n more messages (a
// counter-offer and its answer, to one vendor or to those pressed) and
// still close every part it will take, by the quotes on the table.
func (r *Procurement) roomFor(d *Deal, n int) bool {
	// The policy's fuse grows with the agents asked on the thread: at
	// least every vendor (finance and procurement may be asked too).
	fuse := policy.Fuses{MaxHops: r.MaxHops}.Hops(len(r.Vendors))
	if fuse == 0 || d.Hops+n+perPart*max(1, len(d.Quotes))+ending <= fuse {
		return true // room even if every vendor that answered takes a part
	}
	return d.Hops+n+perPart*r.partsLeft(d)+ending <= fuse
}

// partsLeft is how many parts the rest of the need will take, cheapest
// quotes first: one, when a vendor can deliver it all.
func (r *Procurement) partsLeft(d *Deal) int {
	left, parts := d.Quantity-d.Bought, 0
	for _, v := range r.ranked(d) {
		if left <= 0 {
			break
		}
		q := d.Quotes[v].Quantity
		if q == 0 || q > left {
			q = left
		}
		left -= q
		parts++
	}
	return max(parts, 1)
}

func (r *Procurement) receive(now time.Time, m *mailbox.Message) []*mailbox.Message {
	if m.Verb == mailbox.Request && m.Quantity > 0 && m.Item != "" {
		return r.open(now, m)
	}
	if m.Verb == mailbox.Counter && !m.UnitPrice.IsZero() && slices.Contains(r.Vendors, m.From) {
		// A vendor's counter-offer (PROTOCOL.md: from either side) is its
		// price now: read as its quote, as a vendor program written
		// without parley may answer.
		q := *m
		q.Verb = mailbox.Quote
		m = &q
	}
	d := r.Deals[m.Thread]
	if d == nil {
		return nil
	}
	if d.Lot == 0 && d.Phase != "quoting" {
		d.Lot = d.Quantity // a deal saved before needs were bought in parts
	}
	switch m.Verb {
	case mailbox.Quote:
		if _, seen := d.Quotes[m.From]; !seen && d.Phase != "quoting" && d.Phase != "done" && d.Phase != "failed" && !m.UnitPrice.IsZero() {
			// A quote that came after the deal moved on (the first
			// acceptable one was taken): kept, for the rest of the need.
			d.Quotes[m.From] = &Offer{UnitPrice: m.UnitPrice, DeliverBy: m.DeliverBy, Quantity: min(m.Quantity, d.Quantity), Quoted: []decimal.Decimal{m.UnitPrice.Amount}}
			if d.Auctioned && d.Phase == "pressing" && r.usableLate(d, d.Quotes[m.From]) {
				d.Pressing = append(d.Pressing, m.From) // a slow vendor joins the auction
			}
			return nil
		}
		if m.UnitPrice.IsZero() {
			// A quote in words no one read into a price: not an offer to take.
			return r.Receive(now, &mailbox.Message{From: m.From, Thread: m.Thread, Verb: mailbox.Decline, Subject: "a quote in words, with no Unit-Price"})
		}
		if d.Phase == "quoting" {
			d.Quotes[m.From] = &Offer{UnitPrice: m.UnitPrice, DeliverBy: m.DeliverBy, Quantity: min(m.Quantity, d.Quantity), Quoted: []decimal.Decimal{m.UnitPrice.Amount}}
			if r.Tactic == "first" && slices.Contains(r.ranked(d), m.From) && r.affordable(d, d.Quotes[m.From]) {
				r.choose(d, m.From)
				d.Why = "the first acceptable quote"
				return r.accept(now, d, m.UnitPrice)
			}
			if r.allAnswered(d) {
				return r.compare(now, d)
			}
		}
		if d.Phase == "negotiating" && m.From == d.Vendor {
			return r.negotiate(now, d, m)
		}
		if o := d.Quotes[m.From]; d.Phase == "pressing" && o != nil && o.Pressed {
			if m.UnitPrice.Amount.LessThan(o.UnitPrice.Amount) {
				o.Stalls, o.Moved = 0, true
			} else {
				o.Stalls++
			}
			o.UnitPrice, o.Pressed = m.UnitPrice, false
			o.Quoted = append(o.Quoted, m.UnitPrice.Amount)
			if !m.DeliverBy.IsZero() {
				o.DeliverBy = m.DeliverBy
			}
			if !r.usableLate(d, o) {
				o.Declined, o.Why = true, "can no longer deliver in time"
			}
			return r.round(now, d)
		}
	case mailbox.Decline:
		if o := d.Quotes[m.From]; d.Phase == "pressing" && o != nil && o.Pressed {
			o.Declined, o.Pressed, o.Why = true, false, strings.TrimSpace(m.Subject)
			return r.round(now, d)
		}
		if d.Phase == "quoting" {
			d.Quotes[m.From] = &Offer{Declined: true, Why: strings.TrimSpace(m.Subject)}
			if r.allAnswered(d) {
				return r.compare(now, d)
			}
		}
		if d.Phase == "negotiating" && m.From == d.Vendor {
			d.Quotes[m.From].Declined = true
			return r.compare(now, d) // the next best
		}
	case mailbox.Approved:
		if d.Phase == "approving" && m.From == r.Finance {
			d.Phase = "ordering"
			total := d.Agreed.Times(d.Lot)
			return r.await(now, d, []*mailbox.Message{{From: r.Name, To: d.Vendor, Thread: d.Thread, InReplyTo: m.ID, Verb: mailbox.Order,
				Item: d.Item, Quantity: d.Lot, UnitPrice: d.Agreed, Amount: total, DeliverBy: d.Quotes[d.Vendor].DeliverBy,
				Subject: fmt.Sprintf("ORDER: %d %s at %s, %s", d.Lot, d.Item, d.Agreed, total)}})
		}
	case mailbox.Denied:
		// Finance's answer; the human's DENIED closes a question asked
		// without a spend (a silent agent), and ends no deal.
		if d.Phase == "approving" && m.From == r.Finance {
			return r.fail(now, d, fmt.Sprintf("finance denied %s: %s", d.Agreed.Times(d.Lot), firstLine(m.Body, m.Subject)))
		}
	case mailbox.Confirmed:
		if d.Phase == "ordering" && m.From == d.Vendor {
			return r.confirmed(now, d, m)
		}
	}
	return nil
}

func firstLine(texts ...string) string {
	for _, t := range texts {
		if t = strings.TrimSpace(t); t != "" {
			line, _, _ := strings.Cut(t, "\n")
			return line
		}
	}
	return ""
}

func (r *Procurement) open(now time.Time, m *mailbox.Message) []*mailbox.Message {
	if _, seen := r.Deals[m.Thread]; seen {
		return nil
	}
	d := &Deal{Thread: m.Thread, Requester: m.From, Item: m.Item, Quantity: m.Quantity, DeliverBy: m.DeliverBy,
		Phase: "quoting", Quotes: map[string]*Offer{}, Closes: now.Add(r.Window)}
	r.Deals[m.Thread] = d
	var out []*mailbox.Message
	for _, v := range r.Vendors {
		q := &mailbox.Message{From: r.Name, To: v, Thread: d.Thread, Verb: mailbox.Request, Item: d.Item, Quantity: d.Quantity,
			DeliverBy: d.DeliverBy, Expires: d.Closes, Subject: fmt.Sprintf("REQUEST: quote for %d %s", d.Quantity, d.Item)}
		if !d.DeliverBy.IsZero() {
			q.Subject += " delivered by " + d.DeliverBy.Format(time.DateOnly)
			if !r.LatePenalty.IsZero() {
				q.Extra = []mailbox.Header{{Name: AcceptLate, Value: "yes"}}
			}
		}
		out = append(out, q)
	}
	if len(out) == 0 {
		return r.fail(now, d, "there are no vendors in the team")
	}
	return out
}

func (r *Procurement) allAnswered(d *Deal) bool { return len(d.Quotes) == len(r.Vendors) }

// Tick closes the quote windows that are due: a vendor that never answers
// does not stop a deal.
func (r *Procurement) Tick(now time.Time) []*mailbox.Message {
	return r.counted(r.tick(now))
}

func (r *Procurement) tick(now time.Time) []*mailbox.Message {
	var out []*mailbox.Message
	for _, th := range sortedKeys(r.Deals) {
		d := r.Deals[th]
		switch {
		case d.Phase == "quoting" && !now.Before(d.Closes):
			out = append(out, r.compare(now, d)...)
		case d.Phase == "pressing" && !d.NextRound.IsZero():
			if !now.Before(d.NextRound) {
				out = append(out, r.round(now, d)...)
			}
		case d.Phase == "pressing" && !d.Due.IsZero() && now.After(d.Due):
			// Who has not answered this round is out of it; the others' quotes
			// decide it.
			for _, v := range d.Pressing {
				if o := d.Quotes[v]; o.Pressed {
					o.Declined, o.Pressed, o.Why = true, false, "did not answer"
				}
			}
			out = append(out, r.round(now, d)...)
		case d.Awaiting != nil && now.After(r.due(d)) && d.Phase != "done" && d.Phase != "failed":
			out = append(out, r.overdue(now, d)...)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ranked are the usable offers, best first: lowest price, then earliest
// delivery, then vendor name — never the order they arrived in.
func (r *Procurement) ranked(d *Deal) []string {
	var vs []string
	for v, o := range d.Quotes {
		if o.Declined || o.Ordered || o.UnitPrice.IsZero() || !r.usableLate(d, o) {
			continue
		}
		if !r.affordable(d, o) && (r.Rounds == 0 || r.Tactic == "posted" || r.Tactic == "first") {
			continue
		}
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool {
		a, b := d.Quotes[vs[i]], d.Quotes[vs[j]]
		if c := r.effective(d, a).Cmp(r.effective(d, b)); c != 0 {
			return c < 0
		}
		if !a.DeliverBy.Equal(b.DeliverBy) {
			return a.DeliverBy.Before(b.DeliverBy)
		}
		return vs[i] < vs[j]
	})
	return vs
}

// compare closes the window: the best offer wins, and is pressed with a
// counter-offer; with none, the human is told.
func (r *Procurement) compare(now time.Time, d *Deal) []*mailbox.Message {
	vs := r.ranked(d)
	if len(vs) == 0 {
		if d.Bought > 0 {
			return r.finish(now, d, fmt.Sprintf("no other vendor can deliver the other %d in time at an acceptable price", d.Quantity-d.Bought))
		}
		return r.fail(now, d, r.noneUsable(d))
	}
	if r.auctions() {
		if !d.Auctioned && d.Bought == 0 {
			return r.auction(now, d, vs)
		}
		return r.standing(now, d, vs)
	}
	if r.Rounds > 0 && r.Tactic == "" && !r.Serial && d.Bought == 0 && r.covers(d, vs[0]) {
		var whole []string // only vendors that can deliver all of it are pressed
		for _, v := range vs {
			if r.covers(d, v) && d.Quotes[v].Rounds < r.Rounds {
				whole = append(whole, v)
			}
		}
		if len(whole) > 1 {
			return r.press(now, d, whole)
		}
	}
	best := vs[0]
	o := d.Quotes[best]
	r.choose(d, best)
	d.Why = fmt.Sprintf("lowest price %s", o.UnitPrice)
	if len(vs) > 1 {
		d.Why += fmt.Sprintf(" of %d usable quotes (next %s from %s)", len(vs), d.Quotes[vs[1]].UnitPrice, vs[1])
	} else {
		d.Why += " and the only usable quote"
	}
	if r.Rounds == 0 || r.Tactic == "posted" || r.Tactic == "first" {
		return r.accept(now, d, o.UnitPrice)
	}
	if o.Rounds >= r.Rounds || !r.roomFor(d, 2) {
		// It had all the counter-offers the policy allows on this thread,
		// or the thread has no room for more: its quote stands, to take
		// or to leave.
		if r.affordable(d, o) {
			return r.accept(now, d, o.UnitPrice)
		}
		o.Declined, o.Why = true, "above what we can pay, after every round"
		return r.compare(now, d)
	}
	d.Phase = "negotiating"
	return r.counter(now, d, o.UnitPrice)
}

// noneUsable says why no quote of deal d can be taken: a vendor that did
// not quote before the window closed is named as such, not counted among
// those that cannot deliver.
func (r *Procurement) noneUsable(d *Deal) string {
	var silent []string
	for _, v := range r.Vendors {
		if d.Quotes[v] == nil {
			silent = append(silent, v)
		}
	}
	closed := d.Closes.UTC().Format(time.TimeOnly)
	var byModel []string
	priced := 0
	for _, v := range r.Vendors {
		o := d.Quotes[v]
		if o != nil && !o.UnitPrice.IsZero() {
			priced++
		}
		if o != nil && o.Model != "" {
			byModel = append(byModel, fmt.Sprintf("%s at %s", v, o.UnitPrice))
		}
	}
	switch {
	case len(byModel) > 0 && len(byModel) == priced:
		return fmt.Sprintf("the model walked away from every quote (%s)", strings.Join(byModel, ", "))
	case len(byModel) > 0:
		return fmt.Sprintf("the model walked away from %s, and no other vendor can deliver %d %s by %s at an acceptable price",
			strings.Join(byModel, ", "), d.Quantity, d.Item, d.DeliverBy.Format(time.DateOnly))
	case len(silent) == 0:
		return fmt.Sprintf("no vendor can deliver %d %s by %s at an acceptable price", d.Quantity, d.Item, d.DeliverBy.Format(time.DateOnly))
	case len(silent) == len(r.Vendors):
		return fmt.Sprintf("no vendor quoted before the quote window closed at %s UTC (no answer from %s)", closed, strings.Join(silent, ", "))
	}
	return fmt.Sprintf("no vendor that quoted can deliver %d %s by %s at an acceptable price, and %s did not quote before the quote window closed at %s UTC",
		d.Quantity, d.Item, d.DeliverBy.Format(time.DateOnly), strings.Join(silent, ", "), closed)
}

// whyNot says, a line a vendor, why none of its terms were taken: the
// person told that a deal failed sees each vendor's part, and the model's
// where it walked away.
func (r *Procurement) whyNot(d *Deal) string {
	var b strings.Builder
	b.WriteString("Why no vendor's terms were taken:\n")
	for _, v := range r.Vendors {
		o := d.Quotes[v]
		quoted := ""
		if o != nil && !o.UnitPrice.IsZero() {
			quoted = fmt.Sprintf("quoted %s a unit; ", o.UnitPrice)
		}
		switch {
		case o == nil:
			fmt.Fprintf(&b, "- %s: no quote before the quote window closed at %s UTC\n", v, d.Closes.UTC().Format(time.TimeOnly))
		case o.Declined && o.Model != "":
			fmt.Fprintf(&b, "- %s: %s\n", v, o.Why)
		case o.Declined:
			fmt.Fprintf(&b, "- %s: %s%s\n", v, quoted, cmp.Or(o.Why, "declined"))
		case o.UnitPrice.IsZero():
			fmt.Fprintf(&b, "- %s: no usable price\n", v)
		case !d.DeliverBy.IsZero() && o.DeliverBy.After(d.DeliverBy):
			fmt.Fprintf(&b, "- %s: %sdelivers on %s, after %s\n", v, quoted, o.DeliverBy.Format(time.DateOnly), d.DeliverBy.Format(time.DateOnly))
		default:
			fmt.Fprintf(&b, "- %s: %sstill on the table\n", v, quoted)
		}
	}
	return b.String()
}

// Sent tells procurement when the messages of its last step went out: the
// quote window and the wait for an answer count from then, not from when
// the step began, which a model writing the text may have made a minute
// earlier. A deadline only moves later.
func (r *Procurement) Sent(at time.Time, out []*mailbox.Message) {
	if r.Rate > 0 {
		r.sends = recentSends(r.sends, at)
		for range out {
			r.sends = append(r.sends, at)
		}
	}
	for _, m := range out {
		d := r.Deals[m.Thread]
		if d == nil {
			continue
		}
		if d.Phase == "quoting" && m.Verb == mailbox.Request && m.To != r.Finance {
			if c := at.Add(r.Window); c.After(d.Closes) {
				d.Closes = c
			}
			m.Expires = d.Closes
		}
		if r.ReplyWithin > 0 && !d.Due.IsZero() && (d.Awaiting == m || (d.Phase == "pressing" && m.Verb == mailbox.Counter)) {
			if due := at.Add(r.ReplyWithin); due.After(d.Due) {
				d.Due = due
			}
		}
	}
}

// choose turns deal d to vendor for as much of what is still needed as it
// can deliver: the rest goes to the next best once this part is confirmed.
func (r *Procurement) choose(d *Deal, vendor string) {
	d.Vendor, d.Round = vendor, d.Quotes[vendor].Rounds // the policy counts every counter-offer to it on the thread
	d.Offered, d.Anchor, d.Last = mailbox.Money{}, mailbox.Money{}, mailbox.Money{}
	d.Lot = d.Quantity - d.Bought
	if q := d.Quotes[vendor].Quantity; q > 0 && q < d.Lot {
		d.Lot = q
	}
}

// counter offers the next price of a Boulware-like concession from an
// anchor 10% under the vendor's quote towards the quote itself, never above
// the private ceiling, and never naming it or another vendor's price.
func (r *Procurement) counter(now time.Time, d *Deal, theirs mailbox.Money) []*mailbox.Message {
	d.Round++
	d.Quotes[d.Vendor].Rounds++
	if d.Anchor.IsZero() {
		d.Anchor = mailbox.Money{Amount: roundCents(theirs.Amount.Mul(decimal.RequireFromString("0.90"))), Currency: theirs.Currency}
	}
	price := r.target(d, theirs, d.Round)
	if !r.Ceiling.IsZero() && !price.LessThan(r.Ceiling.Amount) {
		// Never the ceiling itself: an offer at it would say what it is.
		price = r.Ceiling.Amount.Sub(decimal.New(1, -2))
	}
	return r.offer(now, d, mailbox.Money{Amount: atLeast(r.unlike(d, d.Vendor, price), d.Offered), Currency: theirs.Currency})
}

// atLeast is price, or the offer made before when price is below it: an
// offer, once made to a vendor, stands (the target moves with the
// vendor's quote, and unlike moves down).
func atLeast(price decimal.Decimal, before mailbox.Money) decimal.Decimal {
	if !before.IsZero() && price.LessThan(before.Amount) {
		return before.Amount
	}
	return price
}

// pressed is how many vendors parley presses at once: the best few quotes.
const pressed = 2

// press puts the best few quotes in competition: each vendor gets a
// counter-offer every round, and the lowest that meets ours takes the need
// (or as much of it as it can deliver). Who answers first does not matter:
// a round is decided when every vendor in it has answered, or its time is
// up.
func (r *Procurement) press(now time.Time, d *Deal, vs []string) []*mailbox.Message {
	d.Phase, d.Round, d.Pressing = "pressing", 0, vs[:min(pressed, len(vs))]
	return r.round(now, d)
}

// round decides the round that just ended — a vendor that met our offer
// wins, the lowest first — or presses again while rounds remain, or takes
// the best quote standing.
func (r *Procurement) round(now time.Time, d *Deal) []*mailbox.Message {
	if d.Auctioned {
		return r.bid(now, d)
	}
	var open, met []string
	for _, v := range d.Pressing {
		o := d.Quotes[v]
		if o.Pressed {
			return nil // the round is still on
		}
		if o.Declined {
			continue
		}
		open = append(open, v)
		if !o.Offered.IsZero() && !o.UnitPrice.Amount.GreaterThan(o.Offered.Amount) {
			met = append(met, v)
		}
	}
	if len(met) > 0 {
		return r.win(now, d, r.cheapest(d, met), "met our offer")
	}
	if len(open) == 0 {
		return r.compare(now, d) // every vendor pressed declined: the others, or the end
	}
	if d.Round < r.Rounds && r.roomFor(d, 2*len(open)) {
		if out := r.counterAll(now, d, open); len(out) > 0 {
			return out
		}
	}
	var within []string
	for _, v := range open {
		if r.within(d.Quotes[v].UnitPrice) {
			within = append(within, v)
		}
	}
	if len(within) > 0 {
		return r.win(now, d, r.cheapest(d, within), "the best quote standing")
	}
	for _, v := range open {
		d.Quotes[v].Declined, d.Quotes[v].Why = true, "above what we can pay"
	}
	return r.compare(now, d) // the vendors not pressed yet, or the end
}

// counterAll sends this round's counter-offer to each vendor that may
// still get one.
func (r *Procurement) counterAll(now time.Time, d *Deal, open []string) []*mailbox.Message {
	d.Round++
	// One price for all, from under the lowest quote towards it: the vendor
	// that can go lowest is the first to meet it.
	low := d.Quotes[r.cheapest(d, open)].UnitPrice
	price := r.target(d, low, d.Round)
	if !r.Ceiling.IsZero() && !price.LessThan(r.Ceiling.Amount) {
		price = r.Ceiling.Amount.Sub(decimal.New(1, -2))
	}
	var out []*mailbox.Message
	for _, v := range open {
		o := d.Quotes[v]
		if o.Rounds >= r.Rounds {
			continue // no more counter-offers to it on this thread: its quote stands
		}
		o.Offered = mailbox.Money{Amount: atLeast(r.unlike(d, v, price), o.Offered), Currency: o.UnitPrice.Currency}
		o.Rounds++
		o.Pressed = true
		lot := d.Quantity - d.Bought
		if o.Quantity > 0 && o.Quantity < lot {
			lot = o.Quantity
		}
		out = append(out, r.counterTo(d, v, lot, o.Offered))
	}
	if len(out) > 0 && r.ReplyWithin > 0 {
		d.Due = now.Add(r.ReplyWithin)
	}
	return out
}

// covers reports whether vendor can deliver all that the deal still needs.
func (r *Procurement) covers(d *Deal, vendor string) bool {
	q := d.Quotes[vendor].Quantity
	return q == 0 || q >= d.Quantity-d.Bought
}

// cheapest is the best of vs: lowest price, then earliest delivery, then
// name.
func (r *Procurement) cheapest(d *Deal, vs []string) string {
	best := vs[0]
	for _, v := range vs[1:] {
		a, b := d.Quotes[v], d.Quotes[best]
		if c := a.UnitPrice.Amount.Cmp(b.UnitPrice.Amount); c < 0 || (c == 0 && (a.DeliverBy.Before(b.DeliverBy) || (a.DeliverBy.Equal(b.DeliverBy) && v < best))) {
			best = v
		}
	}
	return best
}

// win takes vendor's quote for as much of the need as it can deliver.
func (r *Procurement) win(now time.Time, d *Deal, vendor, how string) []*mailbox.Message {
	o := d.Quotes[vendor]
	r.choose(d, vendor)
	d.Round = o.Rounds
	d.Why = fmt.Sprintf("lowest price %s (%s) of %d quotes pressed together", o.UnitPrice, how, len(d.Pressing))
	return r.accept(now, d, o.UnitPrice)
}

// tactics are the time-dependent baselines' concession exponents
// (NEGOTIATION.md: Boulware e = 0.2, linear e = 1, conceder e = 2).
var tactics = map[string]float64{"boulware": 0.2, "linear": 1, "conceder": 2}

// target is the offer of round k against the vendor's quote theirs.
func (r *Procurement) target(d *Deal, theirs mailbox.Money, k int) decimal.Decimal {
	if e, ok := tactics[r.Tactic]; ok {
		// p(t) = a + (c − a)·t^(1/e), from the anchor to the ceiling (or
		// their quote, with no ceiling) over the rounds.
		a, c := d.Anchor.Amount, theirs.Amount
		if !r.Ceiling.IsZero() {
			c = r.Ceiling.Amount
		}
		t := math.Pow(math.Min(float64(k)/float64(r.Rounds), 1), 1/e)
		return roundCents(a.Add(c.Sub(a).Mul(decimal.NewFromFloat(t).Round(4))))
	}
	if r.Tactic == "tft" {
		// Tit for tat: concede as much as the vendor did last.
		if k == 1 || d.Last.IsZero() {
			return d.Anchor.Amount
		}
		return d.Offered.Amount.Add(decimal.Max(d.Last.Amount.Sub(theirs.Amount), decimal.Zero))
	}
	// parley's: from 10% under their quote towards it, slowly at first and
	// faster near the end.
	anchor := theirs.Amount.Mul(decimal.RequireFromString("0.90"))
	t := math.Pow(float64(k)/float64(r.Rounds+1), 1/0.5)
	return roundCents(anchor.Add(theirs.Amount.Sub(anchor).Mul(decimal.NewFromFloat(t).Round(4))))
}

// within reports whether a unit price is at most the ceiling.
func (r *Procurement) within(p mailbox.Money) bool {
	return r.Ceiling.IsZero() || p.Currency != r.Ceiling.Currency || !p.Amount.GreaterThan(r.Ceiling.Amount)
}

// unlike moves an offer away from every other vendor's quote: an offer
// within half a percent of one would tell this vendor what another asked.
// It moves down, so the buyer never pays for the care.
func (r *Procurement) unlike(d *Deal, to string, price decimal.Decimal) decimal.Decimal {
	half := decimal.RequireFromString("0.005")
	for moved := true; moved; {
		moved = false
		for v, o := range d.Quotes {
			if v == to {
				continue
			}
			for _, q := range append(o.Quoted, o.UnitPrice.Amount) {
				if q.Sign() > 0 && price.Sub(q).Abs().LessThanOrEqual(q.Mul(half)) {
					price, moved = q.Sub(q.Mul(half)).Sub(decimal.New(1, -2)).RoundDown(2), true
				}
			}
		}
	}
	return price
}

// offer sends the counter-offer of this round.
func (r *Procurement) offer(now time.Time, d *Deal, price mailbox.Money) []*mailbox.Message {
	d.Offered = price
	return r.await(now, d, []*mailbox.Message{r.counterTo(d, d.Vendor, d.Lot, price)})
}

// counterTo is a counter-offer to vendor for lot units at price.
func (r *Procurement) counterTo(d *Deal, vendor string, lot int64, price mailbox.Money) *mailbox.Message {
	return &mailbox.Message{From: r.Name, To: vendor, Thread: d.Thread, Verb: mailbox.Counter, Item: d.Item,
		Quantity: lot, UnitPrice: price, DeliverBy: d.Quotes[vendor].DeliverBy,
		Subject: atEach("COUNTER", lot, d.Item, price),
		Body:    "Your quote is above what we can do with the offers we have. Can you meet this price?\n"}
}

// negotiate answers the vendor's new quote: take it if it meets our offer,
// counter again while rounds remain, else take it if it is still the best
// and under the ceiling.
func (r *Procurement) negotiate(now time.Time, d *Deal, m *mailbox.Message) []*mailbox.Message {
	theirs := m.UnitPrice
	d.Last = d.Quotes[d.Vendor].UnitPrice
	d.Quotes[d.Vendor].UnitPrice = theirs
	d.Quotes[d.Vendor].Quoted = append(d.Quotes[d.Vendor].Quoted, theirs.Amount)
	if !theirs.Amount.GreaterThan(d.Offered.Amount) {
		return r.accept(now, d, theirs)
	}
	if _, timed := tactics[r.Tactic]; timed && d.Round < r.Rounds && r.within(theirs) && !theirs.Amount.GreaterThan(r.target(d, theirs, d.Round+1)) {
		return r.accept(now, d, theirs) // as good as our next offer would be
	}
	if d.Round < r.Rounds && r.roomFor(d, 2) {
		return r.counter(now, d, theirs)
	}
	if !r.affordable(d, d.Quotes[d.Vendor]) {
		d.Quotes[d.Vendor].Declined = true
		return r.compare(now, d)
	}
	if vs := r.ranked(d); len(vs) > 0 && vs[0] != d.Vendor {
		return r.compare(now, d) // another offer is better now
	}
	return r.accept(now, d, theirs)
}

func (r *Procurement) accept(now time.Time, d *Deal, price mailbox.Money) []*mailbox.Message {
	if !r.Limit.IsZero() && r.Limit.Currency == price.Currency && price.Amount.Sign() > 0 {
		// Where the budget cannot buy the lot, the part it can.
		left := r.Limit.Amount
		if !d.Spent.IsZero() {
			left = left.Sub(d.Spent.Amount)
		}
		if r.Whole && d.Bought == 0 && r.wholeCost(d).GreaterThan(left) {
			return r.fail(now, d, "the budget cannot pay for the whole need at the best prices, and the policy allows no partial order (negotiation.partial_orders)")
		}
		if can := left.Div(price.Amount).Floor().IntPart(); can < d.Lot {
			if can <= 0 {
				if d.Bought > 0 {
					return r.finish(now, d, "the budget is spent")
				}
				return r.fail(now, d, "the budget cannot pay one unit at the best price")
			}
			if r.Whole {
				// Only where a later part came dearer than the best
				// prices wholeCost counted on: what is bought stays bought.
				return r.finish(now, d, "the budget cannot pay the rest, and the policy allows no partial order")
			}
			d.Lot = can
		}
	}
	d.Agreed, d.Phase = price, "approving"
	total := price.Times(d.Lot)
	ask := &mailbox.Message{From: r.Name, To: r.Finance, Thread: d.Thread, Verb: mailbox.Request, Item: d.Item,
		Quantity: d.Lot, UnitPrice: price, Amount: total,
		Extra:   []mailbox.Header{{Name: "Vendor", Value: d.Vendor}},
		Subject: fmt.Sprintf("REQUEST: approve %s to %s for %d %s", total, d.Vendor, d.Lot, d.Item),
		Body:    fmt.Sprintf("Best terms: %s, from %s. %s.\n", unit(price, d.Lot), d.Vendor, d.Why)}
	return r.await(now, d, []*mailbox.Message{ask})
}

// wholeCost is the least the whole need costs at the quotes standing that
// the buyer could take: the cheapest first, each up to what it offers.
// With negotiation.partial_orders off, a deal whose first part already
// shows the need unaffordable ends before anything is ordered.
func (r *Procurement) wholeCost(d *Deal) decimal.Decimal {
	var os []*Offer
	for _, o := range d.Quotes {
		if o != nil && !o.Declined && o.UnitPrice.Amount.Sign() > 0 && r.affordable(d, o) {
			os = append(os, o)
		}
	}
	slices.SortFunc(os, func(a, b *Offer) int { return a.UnitPrice.Amount.Cmp(b.UnitPrice.Amount) })
	need, cost := d.Quantity, decimal.Zero
	for _, o := range os {
		if need <= 0 {
			break
		}
		q := need
		if o.Quantity > 0 && o.Quantity < q {
			q = o.Quantity
		}
		cost = cost.Add(o.UnitPrice.Amount.Mul(decimal.NewFromInt(q)))
		need -= q
	}
	return cost
}

// confirmed records a part the vendor confirmed, and buys the rest from
// the next best vendor, or ends the deal.
func (r *Procurement) confirmed(now time.Time, d *Deal, m *mailbox.Message) []*mailbox.Message {
	total := d.Agreed.Times(d.Lot)
	ordered := d.Quotes[d.Vendor].DeliverBy
	when := m.DeliverBy
	if when.IsZero() {
		when = ordered
	}
	if diff := changedTerms(m, total, d.Lot, d.Item, ordered); diff != "" {
		// The vendor changed the terms: what was ordered stands, and the
		// payment waits for a person (the policy's paid.terms).
		d.Disputes = append(d.Disputes, fmt.Sprintf("%s confirmed %s, not what was ordered (%d %s for %s): finance's payment waits for your answer",
			d.Vendor, diff, d.Lot, d.Item, total))
	}
	d.Quotes[d.Vendor].Ordered, d.Quotes[d.Vendor].DeliverBy = true, when
	d.Bought += d.Lot
	d.Hops += 2 // the vendor's confirmation to finance, and finance's payment
	if d.Spent.IsZero() {
		d.Spent = total
	} else {
		d.Spent = mailbox.Money{Amount: d.Spent.Amount.Add(total.Amount), Currency: total.Currency}
	}
	d.Parts = append(d.Parts, fmt.Sprintf("%d from %s at %s (%s)", d.Lot, d.Vendor, d.Agreed, d.Why))
	d.Awaiting = nil
	if d.Bought < d.Quantity {
		return r.compare(now, d)
	}
	return r.finish(now, d, "")
}

// finish ends a deal that bought something: the human and the requester
// are told what, from whom, and when it arrives.
func (r *Procurement) finish(now time.Time, d *Deal, short string) []*mailbox.Message {
	d.Phase, d.Awaiting = "done", nil
	var when time.Time
	var from []string
	for _, v := range sortedKeys(d.Quotes) {
		if o := d.Quotes[v]; o.Ordered {
			from = append(from, v)
			if o.DeliverBy.After(when) {
				when = o.DeliverBy
			}
		}
	}
	text := fmt.Sprintf("Ordered %d %s for %s from %s. Delivery %s.", d.Bought, d.Item, d.Spent, strings.Join(from, " and "), when.Weekday())
	if d.Bought < d.Quantity {
		text = fmt.Sprintf("Ordered %d of the %d %s needed, for %s from %s: %s. Delivery %s.", d.Bought, d.Quantity, d.Item, d.Spent, strings.Join(from, " and "), short, when.Weekday())
	}
	why := fmt.Sprintf("Why %s: %s\n", d.Vendor, d.Why)
	if len(d.Parts) > 1 {
		why = "In parts, cheapest first:\n  " + strings.Join(d.Parts, "\n  ") + "\n"
	}
	if len(d.Disputes) > 0 {
		why += "\nNot as ordered:\n  " + strings.Join(d.Disputes, "\n  ") + "\n"
		text += fmt.Sprintf(" %d part(s) confirmed on other terms: see below.", len(d.Disputes))
	}
	note := &mailbox.Message{From: r.Name, To: r.Human, Thread: d.Thread, Verb: mailbox.Notify, Item: d.Item,
		Quantity: d.Bought, Amount: d.Spent, DeliverBy: when, Subject: text, Body: text + "\n\n" + why}
	if d.Requester == "" || d.Requester == r.Human {
		return []*mailbox.Message{note} // one notice a deal
	}
	back := &mailbox.Message{From: r.Name, To: d.Requester, Thread: d.Thread, Verb: mailbox.Notify, Item: d.Item,
		Quantity: d.Bought, DeliverBy: when, Subject: text}
	return []*mailbox.Message{note, back}
}

// changedTerms says how a vendor's CONFIRMED differs from what was ordered
// ("" when it does not): its amount, quantity or item, or a delivery later
// than ordered.
func changedTerms(m *mailbox.Message, total mailbox.Money, lot int64, item string, by time.Time) string {
	var diffs []string
	if got := m.Total(); got.Currency != total.Currency || !got.Amount.Equal(total.Amount) {
		diffs = append(diffs, got.String())
	}
	if m.Quantity != lot {
		diffs = append(diffs, fmt.Sprintf("%d units", m.Quantity))
	}
	if m.Item != item {
		diffs = append(diffs, "item "+m.Item)
	}
	if !by.IsZero() && m.DeliverBy.After(by) {
		diffs = append(diffs, "delivery "+m.DeliverBy.Format(time.DateOnly))
	}
	return strings.Join(diffs, ", ")
}

func (r *Procurement) fail(now time.Time, d *Deal, why string) []*mailbox.Message {
	asked := d.Phase == "approving" || d.Phase == "ordering" // finance may hold money for it
	vendor := d.Vendor
	var out []*mailbox.Message
	text := fmt.Sprintf("Could not buy %d %s: %s.", d.Quantity, d.Item, why)
	if d.Bought > 0 {
		// Some of it was bought: that much is done, and said so.
		out = r.finish(now, d, why)
		text = fmt.Sprintf("Could not buy the other %d %s from %s: %s.", d.Quantity-d.Bought, d.Item, vendor, why)
	} else {
		d.Phase, d.Awaiting = "failed", nil
		out = append(out, &mailbox.Message{From: r.Name, To: r.Human, Thread: d.Thread, Verb: mailbox.Notify, Item: d.Item, Quantity: d.Quantity, Subject: text, Body: r.whyNot(d)})
		if d.Requester != "" && d.Requester != r.Human {
			out = append(out, &mailbox.Message{From: r.Name, To: d.Requester, Thread: d.Thread, Verb: mailbox.Notify, Item: d.Item, Subject: text})
		}
	}
	if asked && r.Finance != "" {
		out = append(out, &mailbox.Message{From: r.Name, To: r.Finance, Thread: d.Thread, Verb: mailbox.Notify, Item: d.Item,
			Subject: "FELL THROUGH: " + text, Extra: []mailbox.Header{{Name: "Fell-Through", Value: "yes"}, {Name: "Vendor", Value: vendor}}})
	}
	return out
}

// Denied turns a refused step into the next best thing: a deal whose
// request or order the policy refuses is reported to the human.
func (r *Procurement) Denied(now time.Time, m *mailbox.Message, dec policy.Decision) []*mailbox.Message {
	if d := r.Deals[m.Thread]; d != nil {
		d.Hops-- // counted as sent, and it was not
	}
	return r.counted(r.denied(now, m, dec))
}

func (r *Procurement) denied(now time.Time, m *mailbox.Message, dec policy.Decision) []*mailbox.Message {
	d := r.Deals[m.Thread]
	if d == nil || d.Phase == "failed" || m.Verb == mailbox.Notify {
		return nil
	}
	if o := d.Quotes[m.To]; d.Phase == "pressing" && m.Verb == mailbox.Counter && o != nil && o.Pressed {
		// One vendor's counter-offer refused: that vendor is out of the
		// round, the other's answer still counts.
		o.Declined, o.Pressed, o.Why = true, false, "the policy refused our counter-offer ("+dec.Rule+")"
		return r.round(now, d)
	}
	return r.fail(now, d, fmt.Sprintf("the policy refused %s to %s (%s: %s)", m.Verb, m.To, dec.Rule, dec.Reason))
}

// Finance approves spends (the policy decides whether it may, and asks the
// human above the threshold: the runtime sends the approval once the human
// has said yes), denies with the reason, and pays a confirmed order.
type Finance struct {
	Name    string                      `json:"-"`
	Release []Release                   // approvals no longer needed, for the runtime to release
	Asked   map[string]*mailbox.Message // thread: the request for approval
}

// Release is an approval finance no longer needs: a thread's, for one
// vendor or (Vendor "") all of them.
type Release struct{ Thread, Vendor string }

// Receive handles requests, the human's answers and confirmations.
func (r *Finance) Receive(now time.Time, m *mailbox.Message) []*mailbox.Message {
	switch {
	case m.Verb == mailbox.Request && !m.Amount.IsZero():
		r.Asked[m.Thread] = m
		return []*mailbox.Message{r.approve(m)}
	case m.Verb == mailbox.Notify && r.Asked[m.Thread] != nil:
		if v, _ := m.Get("Fell-Through"); v == "yes" {
			// The money held for it is free again: the part for that vendor,
			// or all of the thread's when the notice names none.
			vendor, _ := m.Get("Vendor")
			r.Release = append(r.Release, Release{Thread: m.Thread, Vendor: vendor})
			delete(r.Asked, m.Thread)
		}
	case m.Verb == mailbox.Confirmed && !m.Amount.IsZero():
		p := &mailbox.Message{From: r.Name, To: m.From, Thread: m.Thread, InReplyTo: m.ID, Verb: mailbox.Paid,
			Item: m.Item, Quantity: m.Quantity, Amount: m.Amount,
			Subject: fmt.Sprintf("PAID: %s for %d %s", m.Amount, m.Quantity, m.Item)}
		return []*mailbox.Message{p}
	}
	return nil
}

func (r *Finance) approve(req *mailbox.Message) *mailbox.Message {
	a := reply(r.Name, req, mailbox.Approved)
	a.Amount = req.Amount
	vendor, _ := req.Get("Vendor")
	if vendor != "" {
		// The approval is a mandate: for this vendor, item and quantity.
		a.Extra = []mailbox.Header{{Name: "Vendor", Value: vendor}}
	}
	a.Subject = fmt.Sprintf("APPROVED: %s to %s for %d %s", req.Amount, vendor, req.Quantity, req.Item)
	return a
}

func (r *Finance) deny(req *mailbox.Message, why string) *mailbox.Message {
	d := reply(r.Name, req, mailbox.Denied)
	d.Amount = req.Amount
	d.Subject, d.Body = "DENIED: "+why, why+"\n"
	return d
}

// Denied turns an approval the policy refused into a DENIED with its reason.
func (r *Finance) Denied(now time.Time, m *mailbox.Message, d policy.Decision) []*mailbox.Message {
	req := r.Asked[m.Thread]
	if m.Verb != mailbox.Approved || req == nil {
		return nil
	}
	return []*mailbox.Message{r.deny(req, fmt.Sprintf("%s (policy rule %s)", d.Reason, d.Rule))}
}

// Tick has nothing to do: the policy times out the human's answer.
func (r *Finance) Tick(time.Time) []*mailbox.Message { return nil }
