package policy

import (
	"fmt"
	"sort"
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

// futureSkew is how far ahead of the clock a message's Date may be.
const futureSkew = 5 * time.Minute

// State is what the ledger says, as facts the rules need: it holds no
// policy, so a changed policy judges the same facts.
type State struct {
	agentDay   map[string]decimal.Decimal // agent|2026-11-26: ordered and paid
	agentMonth map[string]decimal.Decimal // agent|2026-11
	paid       map[string]decimal.Decimal // 2026-11-26 and 2026-11: paid in all
	itemDay    map[string]decimal.Decimal // item|to|2026-11-26: ordered
	approvals  map[string]approval        // thread|vendor: an approval holding money (vendor "" when it names none)
	threads    map[string]*thread
	sent       map[string][]time.Time // agent: recent sends, for the rate limit
	trouble    []time.Time            // errors and denials since the last resume
	decided    map[string]decided     // message id: the last decision about it
	paused     string                 // who paused, when and why, since the last resume
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
	return strings.Join([]string{agent, to, verb, thread, amount}, "|")
}

// approval is money an APPROVED holds on a thread: orders draw on it, up
// to its amount in all; once something is ordered it no longer lapses.
type approval struct {
	amount  decimal.Decimal
	ordered decimal.Decimal
	at      time.Time
	// What the approval is for, when it says: a mandate for this vendor,
	// this item, at most this quantity.
	vendor, item string
	quantity     int64
}

// inForce reports whether the approval still holds its money at now.
func (a approval) inForce(p *Policy, now time.Time) bool {
	return a.ordered.IsPositive() || now.Sub(a.at) <= p.Budget.ReserveFor.Duration
}

type thread struct {
	hops      int
	spend     decimal.Decimal // ordered in this thread
	tokens    int64
	rounds    map[string]int  // "a|b": counter-offers between two agents
	stopped   string          // the fuse that stopped it
	escalated time.Time       // when the human was first asked, if unanswered
	answers   []answer        // APPROVED and DENIED, in order
	vendors   map[string]bool // whom the thread ordered from: who may be paid
}

type answer struct {
	from   string
	verb   mailbox.Verb
	amount decimal.Decimal
	at     time.Time
}

// NewState returns the state of an empty ledger.
func NewState() *State {
	return &State{
		agentDay: map[string]decimal.Decimal{}, agentMonth: map[string]decimal.Decimal{},
		paid: map[string]decimal.Decimal{}, itemDay: map[string]decimal.Decimal{},
		approvals: map[string]approval{}, threads: map[string]*thread{},
		sent: map[string][]time.Time{}, decided: map[string]decided{},
	}
}

func (s *State) thread(id string) *thread {
	t := s.threads[id]
	if t == nil {
		t = &thread{rounds: map[string]int{}}
		s.threads[id] = t
	}
	return t
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
	amount, _ := decimal.NewFromString(e.Amount)
	if e.Tokens > 0 && e.Thread != "" {
		s.thread(e.Thread).tokens += e.Tokens
	}
	switch e.Event {
	case mailbox.EventClaimed:
		// The receiver may claim an answer before its sender has recorded
		// the delivery (the file is visible first): the claim counts too.
		if v := mailbox.Verb(e.Verb); e.Thread != "" && (v == mailbox.Approved || v == mailbox.Denied) {
			t := s.thread(e.Thread)
			t.answers = append(t.answers, answer{from: e.From, verb: v, amount: amount, at: e.Time})
		}
	case mailbox.EventDelivered:
		if e.Thread == "" {
			return
		}
		t := s.thread(e.Thread)
		t.hops++
		recent := s.sent[e.From]
		for len(recent) > 0 && e.Time.Sub(recent[0]) > time.Minute {
			recent = recent[1:]
		}
		s.sent[e.From] = append(recent, e.Time)
		switch mailbox.Verb(e.Verb) {
		case mailbox.Counter:
			t.rounds[pair(e.From, e.To)]++
		case mailbox.Approved, mailbox.Denied:
			t.answers = append(t.answers, answer{from: e.From, verb: mailbox.Verb(e.Verb), amount: amount, at: e.Time})
		}
	case EventDecision:
		d := Decision{Outcome: Outcome(e.Decision), Rule: e.Rule, Reason: e.Reason, Policy: e.Policy}
		if e.MsgID != "" {
			s.decided[e.MsgID] = decided{d, fingerprint(e.Agent, e.To, e.Verb, e.Thread, e.Amount)}
		}
		t := s.thread(e.Thread)
		switch d.Outcome {
		case Deny:
			s.trouble = append(s.trouble, e.Time)
		case Escalate:
			if isFuse(e.Rule) {
				t.stopped = e.Rule
				s.trouble = append(s.trouble, e.Time) // a blown fuse counts towards the breaker
			}
			if t.escalated.IsZero() {
				t.escalated = e.Time
			}
		case Allow:
			s.applySpend(e, t, amount)
		}
	case EventReleased:
		for _, k := range s.held(e.Thread, e.Vendor) {
			delete(s.approvals, k)
		}
	case mailbox.EventRejected, mailbox.EventFailed, mailbox.EventBounced, "error":
		s.trouble = append(s.trouble, e.Time)
	case EventPaused:
		s.paused = fmt.Sprintf("paused by %s at %s: %s", e.Agent, e.Time.UTC().Format(time.RFC3339), e.Reason)
	case EventResumed:
		s.trouble, s.paused = nil, ""
	}
}

func (s *State) applySpend(e mailbox.Entry, t *thread, amount decimal.Decimal) {
	switch mailbox.Verb(e.Verb) {
	case mailbox.Approved:
		s.approvals[approvalKey(e.Thread, e.Vendor)] = approval{amount: amount, at: e.Time, vendor: e.Vendor, item: e.Item, quantity: e.Quantity}
		if e.Vendor != "" {
			// An approval for a vendor replaces one for none on the thread
			// (the human's, given before finance's held approval went out).
			delete(s.approvals, approvalKey(e.Thread, ""))
		}
	case mailbox.Order:
		if k, ok := s.approvalFor(e.Thread, e.To); ok {
			a := s.approvals[k]
			a.ordered = a.ordered.Add(amount)
			s.approvals[k] = a
		}
		if t.vendors == nil {
			t.vendors = map[string]bool{}
		}
		t.vendors[e.To] = true
		s.agentDay[e.Agent+"|"+day(e.Time)] = s.agentDay[e.Agent+"|"+day(e.Time)].Add(amount)
		s.agentMonth[e.Agent+"|"+month(e.Time)] = s.agentMonth[e.Agent+"|"+month(e.Time)].Add(amount)
		s.itemDay[e.Item+"|"+e.To+"|"+day(e.Time)] = s.itemDay[e.Item+"|"+e.To+"|"+day(e.Time)].Add(amount)
		t.spend = t.spend.Add(amount)
	case mailbox.Paid:
		s.agentDay[e.Agent+"|"+day(e.Time)] = s.agentDay[e.Agent+"|"+day(e.Time)].Add(amount)
		s.agentMonth[e.Agent+"|"+month(e.Time)] = s.agentMonth[e.Agent+"|"+month(e.Time)].Add(amount)
		s.paid[day(e.Time)] = s.paid[day(e.Time)].Add(amount)
		s.paid[month(e.Time)] = s.paid[month(e.Time)].Add(amount)
		if k, ok := s.approvalFor(e.Thread, e.To); ok {
			delete(s.approvals, k) // the money held is now spent
		}
	}
	if !t.escalated.IsZero() && mailbox.Verb(e.Verb) != mailbox.Escalate {
		t.escalated = time.Time{} // decided: nobody waits any more
	}
}

// approvalKey is where an approval is kept: by thread and the vendor it
// names, so that one need split between vendors holds one approval each.
func approvalKey(thread, vendor string) string { return thread + "|" + vendor }

// approvalFor finds the approval an order to (or a payment of) vendor on
// thread draws on: the one for that vendor, else one that names none.
func (s *State) approvalFor(thread, vendor string) (string, bool) {
	for _, k := range []string{approvalKey(thread, vendor), approvalKey(thread, "")} {
		if _, ok := s.approvals[k]; ok {
			return k, true
		}
	}
	return "", false
}

// held are the keys of thread's approvals: the one for vendor (and one
// that names none), or with vendor "" all of them.
func (s *State) held(thread, vendor string) []string {
	var out []string
	for k := range s.approvals {
		th, v, _ := strings.Cut(k, "|")
		if th == thread && (vendor == "" || v == vendor || v == "") {
			out = append(out, k)
		}
	}
	return out
}

// approvedVendors are the vendors the thread's approvals name, sorted.
func (s *State) approvedVendors(thread string) []string {
	var out []string
	for k := range s.approvals {
		if th, v, _ := strings.Cut(k, "|"); th == thread && v != "" {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

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
	if m.Date.After(now.Add(futureSkew)) {
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
	if n := p.Fuses.MaxHops; n > 0 && t.hops+1 > n && !toHuman {
		return Decision{Outcome: Escalate, Rule: "fuses.max_hops",
			Reason: fmt.Sprintf("thread %s already has %d messages; the fuse is %d", m.Thread, t.hops, n)}
	}
	if n := p.Fuses.MaxTokens; n > 0 && t.tokens > n && !toHuman {
		return Decision{Outcome: Escalate, Rule: "fuses.max_tokens",
			Reason: fmt.Sprintf("thread %s has spent %d model tokens; the fuse is %d", m.Thread, t.tokens, n)}
	}
	if n := p.Negotiation.MaxRounds; n > 0 && m.Verb == mailbox.Counter {
		if r := t.rounds[pair(m.From, m.To)]; r >= n {
			return deny("negotiation.max_rounds", "%s and %s have exchanged %d counter-offers on %s; the limit is %d", m.From, m.To, r, m.Thread, n)
		}
	}
	allowed := Decision{Outcome: Allow, Rule: fmt.Sprintf("allow.%d", rule),
		Reason: fmt.Sprintf("[[allow]] rule %d lets %s send %s to %s", rule, p.Allow[rule-1].From, m.Verb, strings.Join(p.Allow[rule-1].To, " "))}
	if total := m.Total(); !total.IsZero() {
		if total.Currency != p.Currency {
			return deny("currency", "%s is not in %s, the policy's currency", total, p.Currency)
		}
		if total.Amount.IsNegative() || (total.Amount.IsZero() && isMoney(m.Verb)) {
			return deny("amount", "%s is not an amount that can be spent or asked", total)
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

// money holds the rules for actions that commit money.
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
	if human != nil && human.verb == mailbox.Denied && !isHuman {
		return deny("human.denied", "%s denied thread %s", p.Human.Agent, m.Thread)
	}
	// Above the threshold, or past it with what was already ordered in this
	// thread or from this vendor today (one need split into small orders),
	// the human decides.
	if !isHuman {
		over, rule, why := false, "", ""
		switch {
		case amt.GreaterThan(p.Human.ApprovalOver.Amount):
			over, rule, why = true, "human.approval_over", fmt.Sprintf("%s is above %s, the amount the human signs off", total, p.Human.ApprovalOver)
		case m.Verb == mailbox.Order && t.spend.Add(amt).GreaterThan(p.Human.ApprovalOver.Amount):
			over, rule, why = true, "human.split", fmt.Sprintf("with %s already ordered in thread %s this makes %s, above %s",
				p.money(t.spend), m.Thread, p.money(t.spend.Add(amt)), p.Human.ApprovalOver)
		case m.Verb == mailbox.Order && s.itemDay[m.Item+"|"+m.To+"|"+day(now)].Add(amt).GreaterThan(p.Human.ApprovalOver.Amount):
			done := s.itemDay[m.Item+"|"+m.To+"|"+day(now)]
			over, rule, why = true, "human.split", fmt.Sprintf("with %s of %s already ordered from %s today this makes %s, above %s",
				p.money(done), m.Item, m.To, p.money(done.Add(amt)), p.Human.ApprovalOver)
		}
		if over {
			switch {
			case human != nil && human.verb == mailbox.Approved && !human.amount.LessThan(cumulative(m.Verb, t, amt)):
				allowed = Decision{Outcome: Allow, Rule: "human.approved",
					Reason: fmt.Sprintf("%s approved up to %s on thread %s (%s)", p.Human.Agent, p.money(human.amount), m.Thread, why)}
			case !t.escalated.IsZero() && p.Human.DecisionTimeout.Duration > 0 && now.Sub(t.escalated) > p.Human.DecisionTimeout.Duration && p.Human.OnTimeout == "deny":
				return deny("human.timeout", "%s did not answer within %v (asked at %s)", p.Human.Agent, p.Human.DecisionTimeout.Duration, t.escalated.Format(time.RFC3339))
			default:
				return Decision{Outcome: Escalate, Rule: rule, Reason: why, Covers: p.money(cumulative(m.Verb, t, amt))}
			}
		}
	}
	dayKey, monthKey := a.Agent+"|"+day(now), a.Agent+"|"+month(now)
	switch m.Verb {
	case mailbox.Approved:
		if lim := p.Budget.Amount; !lim.IsZero() {
			vendor, _ := m.Get("Vendor")
			used := s.budgetUsed(p, now, m.Thread, vendor)
			if used.Add(amt).GreaterThan(lim.Amount) {
				return deny("budget", "%s with %s already spent or held this %s makes %s, above the budget of %s",
					total, p.money(used), p.Budget.Period, p.money(used.Add(amt)), lim)
			}
		}
	case mailbox.Order, mailbox.Paid:
		if lim := p.Limits.PerAgentPerDay; !lim.IsZero() && s.agentDay[dayKey].Add(amt).GreaterThan(lim.Amount) {
			return deny("limits.per_agent_per_day", "%s has committed %s today; %s more is above %s", a.Agent, p.money(s.agentDay[dayKey]), total, lim)
		}
		if lim := p.Limits.PerAgentPerMonth; !lim.IsZero() && s.agentMonth[monthKey].Add(amt).GreaterThan(lim.Amount) {
			return deny("limits.per_agent_per_month", "%s has committed %s this month; %s more is above %s", a.Agent, p.money(s.agentMonth[monthKey]), total, lim)
		}
		if !isHuman {
			rule := strings.ToLower(string(m.Verb)) + ".unapproved"
			k, ok := s.approvalFor(m.Thread, m.To)
			held := s.approvals[k]
			if others := s.approvedVendors(m.Thread); !ok && m.Verb == mailbox.Order && len(others) > 0 {
				return deny("order.vendor", "thread %s's approval is for %s, not %s", m.Thread, strings.Join(others, " and "), m.To)
			}
			if !ok || !held.inForce(p, now) {
				return deny(rule, "thread %s has no approval in force for a %s", m.Thread, m.Verb)
			}
			if m.Verb == mailbox.Order {
				switch {
				case held.vendor != "" && m.To != held.vendor:
					return deny("order.vendor", "thread %s's approval is for %s, not %s", m.Thread, held.vendor, m.To)
				case held.item != "" && m.Item != held.item:
					return deny("order.item", "thread %s's approval is for %s, not %s", m.Thread, held.item, m.Item)
				case held.quantity > 0 && m.Quantity > held.quantity:
					return deny("order.quantity", "thread %s's approval is for %d %s, not %d", m.Thread, held.quantity, held.item, m.Quantity)
				}
			}
			if m.Verb == mailbox.Order && held.ordered.Add(amt).GreaterThan(held.amount) {
				return deny(rule, "%s with %s already ordered on thread %s is above the %s approved", total, p.money(held.ordered), m.Thread, p.money(held.amount))
			}
			if amt.GreaterThan(held.amount) {
				return deny(rule, "%s is above the %s approved on thread %s", total, p.money(held.amount), m.Thread)
			}
			if m.Verb == mailbox.Paid && !t.vendors[m.To] {
				return deny("paid.unordered", "thread %s ordered nothing from %s", m.Thread, m.To)
			}
			if m.Verb == mailbox.Paid && amt.GreaterThan(held.ordered) {
				return deny("paid.unordered", "%s is more than the %s ordered on thread %s", total, p.money(held.ordered), m.Thread)
			}
		}
		if lim := p.Fuses.MaxSpend; m.Verb == mailbox.Order && !lim.IsZero() && t.spend.Add(amt).GreaterThan(lim.Amount) {
			return Decision{Outcome: Escalate, Rule: "fuses.max_spend",
				Reason: fmt.Sprintf("thread %s would commit %s; the fuse is %s", m.Thread, p.money(t.spend.Add(amt)), lim)}
		}
	}
	return allowed
}

// cumulative is what a human's approval on the thread must cover: for an
// order, all that the thread has ordered with it.
func cumulative(v mailbox.Verb, t *thread, amt decimal.Decimal) decimal.Decimal {
	if v == mailbox.Order {
		return t.spend.Add(amt)
	}
	return amt
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

// budgetUsed is what was paid this period plus the approvals still holding
// money, but for those a new approval for vendor on thread replaces: the
// thread's for that vendor, and the thread's for none.
func (s *State) budgetUsed(p *Policy, now time.Time, thread, vendor string) decimal.Decimal {
	period := month(now)
	if p.Budget.Period == "day" {
		period = day(now)
	}
	used := s.paid[period]
	named := map[string]bool{} // threads whose approvals name their vendors
	for k := range s.approvals {
		if th, v, _ := strings.Cut(k, "|"); v != "" {
			named[th] = true
		}
	}
	for k, a := range s.approvals {
		th, v, _ := strings.Cut(k, "|")
		replaced := thread != "" && (k == approvalKey(thread, vendor) || k == approvalKey(thread, ""))
		// A human's answer on a thread whose money finance's approvals
		// already hold, vendor by vendor, holds nothing more.
		covered := v == "" && named[th]
		if !replaced && !covered && a.inForce(p, now) {
			used = used.Add(a.amount)
		}
	}
	return used
}

// Trouble counts the errors and denials within the breaker's window since
// the last resume.
func (s *State) Trouble(p *Policy, now time.Time) int {
	n := 0
	for _, t := range s.trouble {
		if now.Sub(t) <= p.Breaker.Window.Duration {
			n++
		}
	}
	return n
}

// Decided returns the decision already recorded about this very action
// (the same Message-ID, sender, recipient, verb, thread and amount).
func (s *State) Decided(a Action) (Decision, bool) {
	m := a.Message
	d, ok := s.decided[m.ID]
	if !ok || m.ID == "" {
		return Decision{}, false
	}
	amount := ""
	if t := m.Total(); !t.IsZero() {
		amount = t.Decimal()
	}
	return d.Decision, d.what == fingerprint(a.Agent, m.To, string(m.Verb), m.Thread, amount)
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
	return s.agentDay[agent+"|"+day(now)], s.agentMonth[agent+"|"+month(now)]
}

// BudgetUsed is what was paid this budget period plus what approvals hold.
func (s *State) BudgetUsed(p *Policy, now time.Time) decimal.Decimal {
	return s.budgetUsed(p, now, "", "")
}
