package policy

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/shopspring/decimal"
)

// Outcome is what a decision says to do.
type Outcome string

// The outcomes of a decision.
const (
	Allow    Outcome = "allow"
	Deny     Outcome = "deny"
	Escalate Outcome = "escalate" // not now: the human decides
)

// Decision is the policy's answer to an action, with the rule that decided
// and a reason a person understands.
type Decision struct {
	Outcome Outcome `json:"decision"`
	Rule    string  `json:"rule"`
	Reason  string  `json:"reason"`
	Policy  string  `json:"policy"` // SHA-256 of the policy file
	// Covers is, for an escalation, what the human's APPROVED must cover:
	// the action's amount, or with a split order all that the thread
	// orders with it.
	Covers mailbox.Money `json:"covers,omitzero"`
}

// Action is what an agent is about to do: send Message. The message says
// what kind of action it is: an APPROVED approves a spend (and reserves it
// against the budget), an ORDER places an order, a PAID makes a payment;
// every other verb only says something.
type Action struct {
	Agent   string
	Message *mailbox.Message
}

// Money actions are the verbs that commit money.
func isMoney(v mailbox.Verb) bool {
	return v == mailbox.Approved || v == mailbox.Order || v == mailbox.Paid
}

// FutureSkew is how far ahead of the clock a message's Date may be: the
// policy denies sending a message dated later, and a receiver sets such a
// message aside (agents.Runtime), by the one rule.
const FutureSkew = 5 * time.Minute

// State is what the ledger says, as facts the rules need: it holds no
// policy, so a changed policy judges the same facts — but for the two
// things the books must know to take a line as the policy will (Follow):
// who the human is, and how long an approval holds its money.
type State struct {
	books   *Books
	threads map[string]*thread
	sent    map[string][]time.Time // agent: recent sends, for the rate limit
	trouble []trouble              // errors and denials since the last resume
	decided map[string]*decided    // message id: the last decision about it on the lines after from (pointers: a map of large values copies them all each time it grows)
	paused  string                 // who paused, when and why, since the last resume

	// from is the line of the checkpoint the state started from, after
	// which it applied every line itself; decisions at or before it are
	// looked up in the ledger's index (Engine.decided). Zero: it applied
	// every line.
	from mailbox.Position

	escalations map[string][]*Escalation // by thread
	asked       []*Escalation            // all of them, oldest first

	// strs holds one copy of each rule, reason and policy hash that
	// decided keeps: a few hundred strings for thousands of decisions.
	strs   map[string]string
	recent [8]string // the strings interned last
	next   int
}

func (s *State) intern(v string) string {
	// The same few rules, reasons and hashes come again and again, most
	// often as the very string interned last time: comparing is cheaper
	// than hashing a reason or a hash (the same string, or not, either
	// way).
	for _, w := range s.recent {
		if w == v {
			return w
		}
	}
	w, ok := s.strs[v]
	if !ok {
		if s.strs == nil {
			s.strs = map[string]string{}
		}
		s.strs[v], w = v, v
	}
	s.recent[s.next%len(s.recent)] = w
	s.next++
	return w
}

// trouble is an error or a denial, counted by the breaker.
type trouble struct {
	at    time.Time
	agent string
	what  string
}

// decided is a recorded decision and what it was about: a retried action
// gets the same answer only if it is the same action.
type decided struct {
	Decision
	what string
}

// fingerprint says what an action is, for telling a retry from a replay
// under a reused Message-ID.
func fingerprint(agent, to, verb, thread, amount string) string {
	return agent + "|" + to + "|" + verb + "|" + thread + "|" + amount // strings.Join's text, in one concatenation
}

type thread struct {
	last      time.Time // of its latest line
	hops      int
	asked     []string // the agents sent a REQUEST on it: the message fuse grows with them
	tokens    int64
	rounds    map[string]int // "a|b": counter-offers between two agents
	stopped   string         // the fuse that stopped it
	escalated time.Time      // when the human was first asked, if unanswered...
	askedID   string         // ...about this message
	disputed  time.Time      // when a payment against changed terms was last put to the human
	answers   []answer       // APPROVED and DENIED, in order
}

type answer struct {
	from   string
	verb   mailbox.Verb
	amount decimal.Decimal
	at     time.Time
}

// NewState returns the state of an empty ledger.
func NewState() *State {
	// Room for a deal's decisions from the start: a simulated deal makes
	// about seventy, and growing the map was a tenth of what applying
	// them allocated.
	return &State{books: NewBooks(), threads: map[string]*thread{}, sent: map[string][]time.Time{}, decided: make(map[string]*decided, 96),
		escalations: map[string][]*Escalation{}}
}

func (s *State) thread(id string) *thread {
	t := s.threads[id]
	if t == nil {
		t = &thread{rounds: map[string]int{}}
		s.threads[id] = t
	}
	return t
}

// askedWith is how many agents are asked on the thread once m is sent: a
// REQUEST to one more widens the fuse for itself.
func (t *thread) askedWith(m *mailbox.Message) int {
	n := len(t.asked)
	if m.Verb == mailbox.Request && !slices.Contains(t.asked, m.To) {
		n++
	}
	return n
}

func day(t time.Time) string   { return t.UTC().Format(time.DateOnly) }
func month(t time.Time) string { return t.UTC().Format("2006-01") }

// Events the policy writes to the ledger besides decisions.
const (
	EventDecision = "decision"
	EventReleased = "released" // an approval's money is no longer held
	EventPaused   = "paused"
	EventResumed  = "resumed"
)

// Apply adds one ledger entry to the state.
func (s *State) Apply(e mailbox.Entry) {
	// The amount is read only for the lines that use it: most lines are
	// messages delivered and decided that move no money, and a simulated
	// deal applies thousands of them.
	amount := func() decimal.Decimal {
		d, _ := decimal.NewFromString(e.Amount)
		return d
	}
	if e.Thread != "" {
		t := s.thread(e.Thread)
		if e.Time.After(t.last) {
			t.last = e.Time
		}
		t.tokens += e.Tokens
	}
	switch e.Event {
	case mailbox.EventClaimed:
		// The receiver may claim an answer before its sender has recorded
		// the delivery (the file is visible first): the claim counts too.
		if v := mailbox.Verb(e.Verb); e.Thread != "" && (v == mailbox.Approved || v == mailbox.Denied) {
			s.answer(e, amount())
		}
	case mailbox.EventDelivered:
		if e.Thread == "" {
			return
		}
		t := s.thread(e.Thread)
		t.hops++
		sent := s.sent[e.From]
		recent := sent
		for len(recent) > 0 && e.Time.Sub(recent[0]) > time.Minute {
			recent = recent[1:]
		}
		if len(recent) < len(sent) && len(sent) == cap(sent) {
			recent = append(sent[:0], recent...) // the same times, moved to the front: no new array each time it fills
		}
		s.sent[e.From] = append(recent, e.Time)
		switch mailbox.Verb(e.Verb) {
		case mailbox.Request:
			if !slices.Contains(t.asked, e.To) {
				t.asked = append(t.asked, e.To)
			}
		case mailbox.Counter:
			t.rounds[pair(e.From, e.To)]++
		case mailbox.Approved, mailbox.Denied:
			s.answer(e, amount())
		case mailbox.Escalate:
			s.escalated(e)
		case mailbox.Confirmed:
			s.books.confirm(e, amount())
		}
	case EventDecision:
		d := Decision{Outcome: Outcome(e.Decision), Rule: s.intern(e.Rule), Reason: s.intern(e.Reason), Policy: s.intern(e.Policy)}
		if e.MsgID != "" {
			s.decided[e.MsgID] = &decided{d, fingerprint(e.Agent, e.To, e.Verb, e.Thread, e.Amount)}
		}
		t := s.thread(e.Thread)
		switch d.Outcome {
		case Deny:
			s.troubled(e, troubleOf(d.Outcome, e.Verb, e.Rule))
		case Escalate:
			if isFuse(e.Rule) {
				t.stopped = e.Rule
				s.troubled(e, troubleOf(d.Outcome, e.Verb, e.Rule)) // a blown fuse counts towards the breaker
			}
			if e.Rule == RuleTerms {
				t.disputed = e.Time
			}
			if t.escalated.IsZero() {
				t.escalated, t.askedID = e.Time, e.MsgID
			}
		case Allow:
			if e.MsgID != "" && e.MsgID == t.askedID {
				t.escalated, t.askedID = time.Time{}, "" // what was asked about went ahead
			}
			if isMoney(mailbox.Verb(e.Verb)) {
				s.spend(e, amount())
			}
		}
	case EventReleased:
		s.books.release(e.Thread, e.Vendor)
	case mailbox.EventRejected, mailbox.EventFailed, mailbox.EventBounced, "error":
		s.troubled(e, e.Event)
	case EventPaused:
		who := e.Agent
		if e.Rule == "breaker" {
			who = BreakerName
		}
		s.paused = fmt.Sprintf("paused by %s at %s: %s", who, e.Time.UTC().Format(time.RFC3339), e.Reason)
	case EventResumed:
		s.trouble, s.paused = nil, ""
	}
}

// ApplyMessage applies the entry about m that mailbox.MessageEntry(e.Agent,
// e.Event, m) with e's other fields (its time, a decision's outcome, rule,
// reason, policy and key) would be, as Apply does — without writing as
// text the fields of m that the line's facts do not read: its amount is
// read from a decision (what the decision was about), an answer, a
// confirmation and an escalation; its delivery day from an order and a
// confirmation (their terms); its expiry from an escalation. The
// simulator applies thousands of lines a deal (TestApplyMessageLines,
// TestApplyMessage: the same state as Apply).
func (s *State) ApplyMessage(e mailbox.Entry, m *mailbox.Message) {
	e.About(m)
	amount, dates := false, false
	switch v := m.Verb; e.Event {
	case EventDecision:
		amount, dates = true, v == mailbox.Order
	case mailbox.EventDelivered:
		amount = v == mailbox.Approved || v == mailbox.Denied || v == mailbox.Confirmed || v == mailbox.Escalate
		dates = v == mailbox.Confirmed || v == mailbox.Escalate
	case mailbox.EventClaimed:
		amount = v == mailbox.Approved || v == mailbox.Denied
	default:
		amount, dates = true, true
	}
	if amount {
		e.WrittenAmount(m)
	}
	if dates {
		e.WrittenDates(m)
	}
	s.Apply(e)
}

// troubleOf says what a denial or a blown fuse was, for the breaker's
// reason.
func troubleOf(o Outcome, verb, rule string) string {
	if o == Deny {
		return "denied " + verb + " (" + rule + ")"
	}
	return "stopped by " + rule
}

func (s *State) troubled(e mailbox.Entry, what string) {
	s.trouble = append(s.trouble, trouble{at: e.Time, agent: e.Agent, what: what})
}

// spend enters an allowed money action in the books.
func (s *State) spend(e mailbox.Entry, amount decimal.Decimal) {
	switch mailbox.Verb(e.Verb) {
	case mailbox.Approved:
		s.books.approve(e, amount)
	case mailbox.Order:
		s.books.order(e, amount)
	case mailbox.Paid:
		s.books.pay(e, amount)
	}
}

// answer records an APPROVED or DENIED on a thread, delivered or claimed:
// the human's ends the wait for an answer there.
func (s *State) answer(e mailbox.Entry, amount decimal.Decimal) {
	t := s.thread(e.Thread)
	t.answers = append(t.answers, answer{from: e.From, verb: mailbox.Verb(e.Verb), amount: amount, at: e.Time})
	if e.From == s.books.human {
		t.escalated, t.askedID = time.Time{}, ""
	}
	s.answered(e)
}

// Follow sets what the state must know of the policy to take the ledger's
// lines as the policy will judge them: who the human is (whose APPROVED is
// an answer, not an approval) and how long an approval holds its money.
// The engine calls it before it applies lines.
func (s *State) Follow(p *Policy) {
	if p != nil {
		s.books.human, s.books.reserve = p.Human.Agent, p.Budget.ReserveFor.Duration
	}
}

// Books are the state's books, up to its last line.
func (s *State) Books() *Books { return s.books }

func isFuse(rule string) bool { return strings.HasPrefix(rule, "fuses.") }

func pair(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return a + "|" + b
}

// Evaluate decides an action against policy p and the state, at now. It
// changes nothing: recording the decision is the Engine's work.
func (s *State) Evaluate(p *Policy, a Action, now time.Time) Decision {
	d := s.evaluate(p, a, now)
	d.Policy = p.Hash
	return d
}

func (s *State) evaluate(p *Policy, a Action, now time.Time) Decision {
	m := a.Message
	deny := func(rule, format string, args ...any) Decision {
		return Decision{Outcome: Deny, Rule: rule, Reason: fmt.Sprintf(format, args...)}
	}
	if m.From != a.Agent {
		return deny("from", "the message says it is from %s, but %s is sending it", m.From, a.Agent)
	}
	if m.Date.After(now.Add(FutureSkew)) {
		return deny("date", "the message is dated %s, in the future", m.Date.Format(time.RFC3339))
	}
	rule := p.Allows(m.From, m.Verb, m.To)
	if rule == 0 {
		return deny("allow", "no [[allow]] rule lets %s send %s to %s", m.From, m.Verb, m.To)
	}
	t := s.threads[m.Thread]
	if t == nil {
		t = &thread{rounds: map[string]int{}}
	}
	toHuman := m.To == p.Human.Agent
	if t.stopped != "" && !toHuman {
		return deny(t.stopped, "thread %s was stopped by the %s fuse; it waits for the human", m.Thread, t.stopped)
	}
	if n := p.Rate.MessagesPerMinute; n > 0 && a.Agent != p.Human.Agent {
		if recent := s.recentSends(a.Agent, now); recent >= n {
			return deny("rate.messages_per_minute", "%s sent %d messages in the last minute; the limit is %d", a.Agent, recent, n)
		}
	}
	if n := p.Fuses.Hops(t.askedWith(m)); n > 0 && t.hops+1 > n && !toHuman {
		return Decision{Outcome: Escalate, Rule: "fuses.max_hops",
			Reason: fmt.Sprintf("thread %s already has %d messages; the fuse is %d (max_hops %d for each of the %d agents asked on it)",
				m.Thread, t.hops, n, p.Fuses.MaxHops, max(1, len(t.asked)))}
	}
	if n := p.Fuses.Tokens(t.askedWith(m)); n > 0 && t.tokens > n && !toHuman {
		return Decision{Outcome: Escalate, Rule: "fuses.max_tokens",
			Reason: fmt.Sprintf("thread %s has spent %d model tokens; the fuse is %d (max_tokens %d for each of the %d agents asked on it)",
				m.Thread, t.tokens, n, p.Fuses.MaxTokens, max(1, len(t.asked)))}
	}
	if n := p.Negotiation.MaxRounds; n > 0 && m.Verb == mailbox.Counter {
		if r := t.rounds[pair(m.From, m.To)]; r >= n {
			return deny("negotiation.max_rounds", "%s and %s have exchanged %d counter-offers on %s; the limit is %d", m.From, m.To, r, m.Thread, n)
		}
	}
	allowed := allowDecision(p, rule, m.Verb)
	// The total's currency and sign, without multiplying a price by a
	// quantity: every priced message is checked here.
	if currency, sign := m.TotalSign(); currency != "" {
		if currency != p.Currency {
			return deny("currency", "%s is not in %s, the policy's currency", m.Total(), p.Currency)
		}
		if sign < 0 || (sign == 0 && isMoney(m.Verb)) {
			return deny("amount", "%s is not an amount that can be spent or asked", m.Total())
		}
	}
	if !isMoney(m.Verb) {
		return allowed
	}
	if m.Verb == mailbox.Approved && a.Agent == p.Human.Agent {
		return allowed // the human's own answer: what it allows is checked when money moves
	}
	return s.money(p, a, now, t, allowed)
}

// allowDecision is the decision that [[allow]] rule number rule allows
// verb. Every message sent is allowed first: the rule's words are written
// once, when the policy is parsed (TestAllowDecision: the same words).
func allowDecision(p *Policy, rule int, verb mailbox.Verb) Decision {
	if a := &p.Allow[rule-1]; a.rule != "" {
		if r, ok := a.reasons[verb]; ok {
			return Decision{Outcome: Allow, Rule: a.rule, Reason: r}
		}
		return Decision{Outcome: Allow, Rule: a.rule, Reason: a.lets + string(verb) + a.to}
	}
	return allowDecisionOf(p, rule, verb)
}

// allowDecisionOf is allowDecision for a policy not parsed.
func allowDecisionOf(p *Policy, rule int, verb mailbox.Verb) Decision {
	n := strconv.Itoa(rule)
	return Decision{Outcome: Allow, Rule: "allow." + n,
		Reason: "[[allow]] rule " + n + " lets " + p.Allow[rule-1].From + " send " + string(verb) + " to " + strings.Join(p.Allow[rule-1].To, " ")}
}

// RuleTerms is the rule that puts to the human a payment whose vendor
// changed the terms: its CONFIRMED differs from the ORDER, or the payment
// from what is owed on the order.
const RuleTerms = "paid.terms"

// money holds the rules for actions that commit money. Every figure comes
// from the books.
func (s *State) money(p *Policy, a Action, now time.Time, t *thread, allowed Decision) Decision {
	m := a.Message
	total := m.Total()
	amt := total.Amount
	deny := func(rule, format string, args ...any) Decision {
		return Decision{Outcome: Deny, Rule: rule, Reason: fmt.Sprintf(format, args...)}
	}
	if total.IsZero() {
		return deny("amount", "a %s must say how much (Amount)", m.Verb)
	}
	if lim := p.Limits.PerTransaction; amt.GreaterThan(lim.Amount) {
		return deny("limits.per_transaction", "%s is above the per-transaction limit of %s", total, lim)
	}
	isHuman := a.Agent == p.Human.Agent
	human := t.human(p.Human.Agent)
	// A DENIED stops the thread's money; but one answering a payment on
	// changed terms stops that payment only: the order stands, and a
	// corrected confirmation may still be paid.
	if human != nil && human.verb == mailbox.Denied && !isHuman && (t.disputed.IsZero() || human.at.Before(t.disputed)) {
		return deny("human.denied", "%s denied thread %s", p.Human.Agent, m.Thread)
	}
	acct := s.books.Account(m.Thread)
	ordered := decimal.Zero // what the thread ordered so far
	if acct != nil {
		ordered = acct.Figures(p.Budget.ReserveFor.Duration, now).Ordered
	}
	// Above the threshold, or past it with what was already ordered in this
	// thread or from this vendor today (one need split into small orders),
	// the human decides.
	if !isHuman {
		over, rule, why := false, "", ""
		today := s.books.ItemOrderedToday(m.Item, m.To, now)
		switch {
		case amt.GreaterThan(p.Human.ApprovalOver.Amount):
			over, rule, why = true, "human.approval_over", fmt.Sprintf("%s is above %s, the amount the human signs off", total, p.Human.ApprovalOver)
		case m.Verb == mailbox.Order && ordered.Add(amt).GreaterThan(p.Human.ApprovalOver.Amount):
			over, rule, why = true, "human.split", fmt.Sprintf("with %s already ordered in thread %s this makes %s, above %s",
				p.money(ordered), m.Thread, p.money(ordered.Add(amt)), p.Human.ApprovalOver)
		case m.Verb == mailbox.Order && today.Add(amt).GreaterThan(p.Human.ApprovalOver.Amount):
			over, rule, why = true, "human.split", fmt.Sprintf("with %s of %s already ordered from %s today this makes %s, above %s",
				p.money(today), m.Item, m.To, p.money(today.Add(amt)), p.Human.ApprovalOver)
		}
		covers := amt
		if m.Verb == mailbox.Order {
			covers = ordered.Add(amt) // an approval on the thread covers all its orders together
		}
		if over {
			switch {
			case human != nil && human.verb == mailbox.Approved && !human.amount.LessThan(covers):
				allowed = Decision{Outcome: Allow, Rule: "human.approved",
					Reason: fmt.Sprintf("%s approved up to %s on thread %s (%s)", p.Human.Agent, p.money(human.amount), m.Thread, why)}
			case s.timedOut(p, t, now):
				return deny("human.timeout", "%s did not answer within %v (asked at %s)", p.Human.Agent, p.Human.DecisionTimeout.Duration, t.escalated.Format(time.RFC3339))
			default:
				return Decision{Outcome: Escalate, Rule: rule, Reason: why, Covers: p.money(covers)}
			}
		}
	}
	reserve := p.Budget.ReserveFor.Duration
	switch m.Verb {
	case mailbox.Approved:
		if lim := p.Budget.Amount; !lim.IsZero() {
			vendor, _ := m.Get("Vendor")
			used := s.books.BudgetUsed(p.Budget.Period, reserve, now, m.Thread, vendor)
			if used.Add(amt).GreaterThan(lim.Amount) {
				return deny("budget", "%s with %s already spent or held this %s makes %s, above the budget of %s",
					total, p.money(used), p.Budget.Period, p.money(used.Add(amt)), lim)
			}
		}
	case mailbox.Order, mailbox.Paid:
		// A payment of the payer's own order was counted when it ordered.
		if own := m.Verb == mailbox.Paid && s.books.orderedBy(m.Thread, m.To) == a.Agent; !own {
			spentToday, spentMonth := s.books.AgentSpent(a.Agent, now)
			if lim := p.Limits.PerAgentPerDay; !lim.IsZero() && spentToday.Add(amt).GreaterThan(lim.Amount) {
				return deny("limits.per_agent_per_day", "%s has committed %s today; %s more is above %s", a.Agent, p.money(spentToday), total, lim)
			}
			if lim := p.Limits.PerAgentPerMonth; !lim.IsZero() && spentMonth.Add(amt).GreaterThan(lim.Amount) {
				return deny("limits.per_agent_per_month", "%s has committed %s this month; %s more is above %s", a.Agent, p.money(spentMonth), total, lim)
			}
		}
		if isHuman {
			break
		}
		rule := strings.ToLower(string(m.Verb)) + ".unapproved"
		held := acct.Mandate(m.To, reserve, now)
		if held == nil {
			if others := acct.ApprovedVendors(reserve, now); m.Verb == mailbox.Order && len(others) > 0 {
				return deny("order.vendor", "thread %s's approval is for %s, not %s", m.Thread, strings.Join(others, " and "), m.To)
			}
			return deny(rule, "thread %s has no approval in force for a %s to %s", m.Thread, m.Verb, m.To)
		}
		if m.Verb == mailbox.Order {
			switch {
			case held.Vendor != "" && m.To != held.Vendor:
				return deny("order.vendor", "thread %s's approval is for %s, not %s", m.Thread, held.Vendor, m.To)
			case held.Item != "" && m.Item != held.Item:
				return deny("order.item", "thread %s's approval is for %s, not %s", m.Thread, held.Item, m.Item)
			case held.Quantity > 0 && m.Quantity > held.Quantity:
				return deny("order.quantity", "thread %s's approval is for %d %s, not %d", m.Thread, held.Quantity, held.Item, m.Quantity)
			case held.Drawn().Add(amt).GreaterThan(held.Amount):
				return deny(rule, "%s with %s already ordered on thread %s is above the %s approved", total, p.money(held.Drawn()), m.Thread, p.money(held.Amount))
			}
			if lim := p.Fuses.MaxSpend; !lim.IsZero() && ordered.Add(amt).GreaterThan(lim.Amount) {
				return Decision{Outcome: Escalate, Rule: "fuses.max_spend",
					Reason: fmt.Sprintf("thread %s would commit %s; the fuse is %s", m.Thread, p.money(ordered.Add(amt)), lim)}
			}
			return allowed
		}
		return s.payment(p, a, now, t, acct, allowed)
	}
	return allowed
}

// payment holds the rules for a PAID: to a vendor the thread ordered from,
// for what is owed on the order, on the terms ordered. A payment that
// differs — the vendor confirmed another amount, quantity, item or a later
// delivery, or the amount is not what is owed — goes to the human with both
// figures side by side, and is made only once a person approves that exact
// amount.
func (s *State) payment(p *Policy, a Action, now time.Time, t *thread, acct *Account, allowed Decision) Decision {
	m := a.Message
	amt := m.Total().Amount
	part := acct.Parts[m.To]
	if part == nil || part.Order == nil {
		return Decision{Outcome: Deny, Rule: "paid.unordered", Reason: fmt.Sprintf("thread %s ordered nothing from %s", m.Thread, m.To)}
	}
	owed := part.Committed()
	var diffs []string
	if part.Confirmed != nil {
		if d := TermsDiffer(part.Order, part.Confirmed, p.Currency); d != "" {
			diffs = append(diffs, m.To+" confirmed "+d)
		}
	}
	if !amt.Equal(owed) {
		diffs = append(diffs, fmt.Sprintf("the payment is %s where %s is owed on the order of %s", p.money(amt), p.money(owed), p.money(part.Ordered)))
	}
	if len(diffs) == 0 {
		return allowed
	}
	why := fmt.Sprintf("on thread %s, %s; the order was %s for %d %s", m.Thread, joinAnd(diffs), p.money(part.Order.Amount), part.Order.Quantity, part.Order.Item)
	if part.Order.DeliverBy != "" {
		why += ", delivery by " + part.Order.DeliverBy
	}
	if h := t.human(p.Human.Agent); h != nil && !t.disputed.IsZero() && !h.at.Before(t.disputed) && h.verb == mailbox.Approved {
		if !h.amount.Equal(amt) {
			// Not an approval of this payment: asked again, saying so.
			return Decision{Outcome: Escalate, Rule: RuleTerms, Covers: m.Total(),
				Reason: fmt.Sprintf("%s approved %s, not the %s to be paid: approve exactly %s, or deny (%s)", p.Human.Agent, p.money(h.amount), m.Total(), m.Total(), why)}
		}
		if lim := p.Budget.Amount; !lim.IsZero() && amt.GreaterThan(owed) {
			// Beyond the order: the budget was not holding it.
			used := s.books.BudgetUsed(p.Budget.Period, p.Budget.ReserveFor.Duration, now, "", "")
			if used.Add(amt.Sub(owed)).GreaterThan(lim.Amount) {
				return Decision{Outcome: Deny, Rule: "budget", Reason: fmt.Sprintf("%s beyond the order with %s already spent or held this %s is above the budget of %s",
					p.money(amt.Sub(owed)), p.money(used), p.Budget.Period, lim)}
			}
		}
		return Decision{Outcome: Allow, Rule: "human.approved", Reason: fmt.Sprintf("%s approved exactly %s (%s)", p.Human.Agent, m.Total(), why)}
	}
	if s.timedOut(p, t, now) && !t.disputed.IsZero() {
		return Decision{Outcome: Deny, Rule: "human.timeout", Reason: fmt.Sprintf("%s did not answer within %v (asked at %s)", p.Human.Agent, p.Human.DecisionTimeout.Duration, t.disputed.Format(time.RFC3339))}
	}
	return Decision{Outcome: Escalate, Rule: RuleTerms, Reason: why, Covers: m.Total()}
}

// timedOut reports whether the human was asked on the thread longer ago
// than the decision timeout, with no answer, and the policy says that means
// no.
func (s *State) timedOut(p *Policy, t *thread, now time.Time) bool {
	return !t.escalated.IsZero() && p.Human.DecisionTimeout.Duration > 0 && now.Sub(t.escalated) > p.Human.DecisionTimeout.Duration && p.Human.OnTimeout == "deny"
}

// human returns the human's last answer on the thread, or nil.
func (t *thread) human(name string) *answer {
	for i := len(t.answers) - 1; i >= 0; i-- {
		if t.answers[i].from == name {
			return &t.answers[i]
		}
	}
	return nil
}

func (s *State) recentSends(agent string, now time.Time) int {
	n := 0
	for _, t := range s.sent[agent] {
		if now.Sub(t) < time.Minute {
			n++
		}
	}
	return n
}

// Troubles counts the errors and denials within the breaker's window since
// the last resume, and says whose they were: "procurement: 6 rejected;
// finance: 1 denied ORDER (order.unapproved)".
func (s *State) Troubles(p *Policy, now time.Time, more ...*trouble) (int, string) {
	n := 0
	count := map[string]map[string]int{}
	var agents []string
	all := s.trouble
	for _, t := range more {
		if t != nil {
			all = append(all[:len(all):len(all)], *t)
		}
	}
	for _, t := range all {
		if now.Sub(t.at) > p.Breaker.Window.Duration {
			continue
		}
		n++
		if count[t.agent] == nil {
			count[t.agent] = map[string]int{}
			agents = append(agents, t.agent)
		}
		count[t.agent][t.what]++
	}
	var parts []string
	for _, a := range agents {
		var whats []string
		for w, k := range count[a] {
			whats = append(whats, fmt.Sprintf("%d %s", k, w))
		}
		sort.Strings(whats)
		parts = append(parts, a+": "+strings.Join(whats, ", "))
	}
	return n, strings.Join(parts, "; ")
}

// decidedHere is the decision recorded about a's message among the lines
// the state applied itself (known), and whether it was about this very
// action: the same Message-ID, sender, recipient, verb, thread and amount.
func (s *State) decidedHere(a Action) (d Decision, known, same bool) {
	x, ok := s.decided[a.Message.ID]
	if !ok || a.Message.ID == "" {
		return Decision{}, false, false
	}
	return x.Decision, true, x.what == actionPrint(a)
}

// decidedBy is the decision a ledger line records, and what it was about.
func decidedBy(e mailbox.Entry) decided {
	return decided{Decision{Outcome: Outcome(e.Decision), Rule: e.Rule, Reason: e.Reason, Policy: e.Policy},
		fingerprint(e.Agent, e.To, e.Verb, e.Thread, e.Amount)}
}

// actionPrint is the fingerprint of an action, as its decision's line
// gives it.
func actionPrint(a Action) string {
	m := a.Message
	amount := ""
	if t := m.Total(); !t.IsZero() {
		amount = t.Decimal()
	}
	return fingerprint(a.Agent, m.To, string(m.Verb), m.Thread, amount)
}

// forget drops the decisions by message id, the state's checkpoint at at
// written and the ledger's index up to it: they are looked up there.
func (s *State) forget(at mailbox.Position) {
	s.decided, s.from = make(map[string]*decided, 96), at
}

// Overdue lists the threads whose escalation has waited longer than the
// policy's decision timeout.
func (s *State) Overdue(p *Policy, now time.Time) []string {
	var out []string
	if p.Human.DecisionTimeout.Duration == 0 {
		return nil
	}
	for id, t := range s.threads {
		if !t.escalated.IsZero() && now.Sub(t.escalated) > p.Human.DecisionTimeout.Duration && t.human(p.Human.Agent) == nil {
			out = append(out, id)
		}
	}
	return out
}

// Spent is what agent has ordered and paid today and this month, at now.
func (s *State) Spent(agent string, now time.Time) (today, thisMonth decimal.Decimal) {
	return s.books.AgentSpent(agent, now)
}

// BudgetUsed is what was paid this budget period plus what is held or
// owed.
func (s *State) BudgetUsed(p *Policy, now time.Time) decimal.Decimal {
	return s.books.BudgetUsed(p.Budget.Period, p.Budget.ReserveFor.Duration, now, "", "")
}
