package sim

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/agents/llm"
	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
	"github.com/shopspring/decimal"
)

// Start is the simulated clock's first instant: a Thursday morning.
var Start = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// Options say how to play a scenario.
type Options struct {
	// Buyer is procurement's tactic: one of Buyers; "" is "parley".
	Buyer string
	// Shuffle delivers the messages in flight in a random order (seeded by
	// Seed), instead of the order they were sent in.
	Shuffle bool
	Seed    uint64
	// Ask, when set, gives procurement, the vendors and finance an Ollama
	// brain in mode LLM ("narrate" or "decide") that asks through it; their
	// role prompts are read from Root (the shipped ones when it has none).
	Ask  func(ctx context.Context, key string, c llm.Call) (llm.Answer, error)
	LLM  string
	Root string
	// Keep, when set, receives every message delivered and every policy
	// decision, in order, as the ledger would (parley simulate --keep).
	Keep func(e mailbox.Entry, m *mailbox.Message)
}

// Buyers are the buyer strategies: parley's own, then NEGOTIATION.md's
// baselines — take the best first quote (posted price), accept the first
// acceptable quote, the time-dependent tactics (Boulware, linear,
// conceder) and tit for tat.
var Buyers = []string{"parley", "posted", "first", "boulware", "linear", "conceder", "tft"}

// Order is one order a vendor confirmed.
type Order struct {
	Vendor    string `json:"vendor"`
	Quantity  int64  `json:"quantity"`
	UnitPrice string `json:"unit_price"`
	Amount    string `json:"amount"`
	Day       int    `json:"delivery_day"` // days after the need arose
}

// Result is one scenario played.
type Result struct {
	Type     string `json:"type"` // "scenario"
	Scenario string `json:"id"`
	Regime   string `json:"regime"`
	Seed     uint64 `json:"seed"`
	Buyer    string `json:"buyer"`
	// Style is the style of the vendor the oracle gives the most surplus
	// to (the one a good buyer must deal with); "none" when infeasible.
	Style      string          `json:"style"`
	Feasible   bool            `json:"feasible"`
	Deal       bool            `json:"deal"`
	Oracle     Oracle          `json:"oracle"`
	Orders     []Order         `json:"orders"`
	UB         decimal.Decimal `json:"u_b"`
	UV         decimal.Decimal `json:"u_vendors"`
	BSS        float64         `json:"bss"`
	Efficiency float64         `json:"efficiency"`
	Rounds     int             `json:"rounds"`
	Messages   int             `json:"messages"`
	HumanTold  bool            `json:"human_told"`         // the human heard how it ended
	Disputes   int             `json:"disputes,omitempty"` // confirmations of other quantities than ordered (bait)
	Calls      int             `json:"model_calls,omitempty"`
	Tokens     int             `json:"model_tokens,omitempty"`
	Violations []string        `json:"violations"`
	// Counters are procurement's counter-offers set beside the lowest
	// rival quote of the moment, for FormulaLeaks.
	Counters []Counter `json:"-"`
}

// Counter is one counter-offer to a vendor: its round (the how-manieth to
// that vendor) and its price over the lowest quote another vendor had
// made then (rivals whose quote is the recipient's own, within half a
// percent, set aside: that tells it nothing it does not know).
type Counter struct {
	Round int
	Ratio float64 // a statistic, not money
}

var (
	basePolicy     *policy.Policy
	basePolicyErr  error
	basePolicyOnce sync.Once
)

// PolicyFor is the policy a scenario is played under: the default, with the
// scenario's budget (also its money limits) and sign-off threshold — the
// same numbers Scenario.PolicyFile writes for a live run.
func PolicyFor(s *agents.Scenario) (*policy.Policy, error) {
	basePolicyOnce.Do(func() { basePolicy, basePolicyErr = policy.Parse("policy.toml", policy.Default) })
	if basePolicyErr != nil {
		return nil, basePolicyErr
	}
	p := *basePolicy
	if b := s.Policy.Budget; !b.IsZero() {
		p.Budget.Amount = b
		p.Limits = policy.Limits{PerTransaction: b, PerAgentPerDay: b, PerAgentPerMonth: b}
		p.Fuses.MaxSpend = b
	}
	if h := s.Policy.ApprovalOver; !h.IsZero() {
		p.Human.ApprovalOver = h
	}
	if n := s.Policy.MaxRounds; n > 0 {
		p.Negotiation.MaxRounds = n
	}
	if n := s.Policy.MaxHops; n > 0 {
		p.Fuses.MaxHops = n
	}
	if o := s.Policy.PartialOrders; o != nil {
		p.Negotiation.PartialOrders = o
	}
	return &p, nil
}

// Team is the scenario's team, as Scenario.TeamFile would make it, with
// the defaults ParseTeam fills in.
func Team(s *agents.Scenario) *agents.Team {
	t := &agents.Team{Version: 1, Human: "human", Agents: make([]agents.Agent, 0, len(s.Vendors)+4)}
	p := agents.Agent{Name: "procurement", Role: "procurement", Brain: "rules", Rounds: s.Buyer.Rounds,
		QuoteWindow: s.Buyer.QuoteWindow, MaxUnitPrice: s.Ceiling(), LatePenalty: s.Buyer.LatePenalty, NegotiateWithin: s.Buyer.NegotiateWithin}
	if p.QuoteWindow.Duration <= 0 {
		p.QuoteWindow.Duration = 30 * time.Second
	}
	t.Agents = append(t.Agents, agents.Agent{Name: "inventory", Role: "inventory", Brain: "rules"}, p)
	for _, v := range s.Vendors {
		style := v.Style
		if style == "" {
			style = "linear"
		}
		t.Agents = append(t.Agents, agents.Agent{Name: v.Name, Role: "vendor", Brain: "rules", Item: s.Need.Item, ListPrice: v.ListPrice,
			Floor: v.Floor, Capacity: v.Capacity, LeadDays: v.LeadDays, Style: style, Horizon: v.Horizon, ConcedeWithin: v.ConcedeWithin, WalkBelow: v.WalkBelow})
	}
	t.Agents = append(t.Agents, agents.Agent{Name: "finance", Role: "finance", Brain: "rules"}, agents.Agent{Name: "human", Role: "human", Brain: "rules"})
	return t
}

// run is the state of one scenario being played.
type run struct {
	s      *agents.Scenario
	opt    Options
	pol    *policy.Policy
	state  *policy.State
	roles  map[string]agents.Role
	names  []string // of roles, sorted
	queue  []*mailbox.Message
	rng    *rand.Rand
	now    time.Time
	ids    int
	res    *Result
	thread string
	said   []*mailbox.Message // procurement's messages to others as it sent them, and the quotes as it got them: for the leak check
	human  bool               // the human approved something on the thread
	log    []*mailbox.Message // what was delivered, for a model's history of the thread
	// ordered are procurement's orders, by vendor: what a confirmation
	// binds the buyer to is what was ordered, whatever the vendor says.
	ordered map[string]*mailbox.Message
}

// Run plays one scenario to its end and scores it.
func Run(s *agents.Scenario, opt Options) (*Result, error) {
	if s.Buyer.Value.IsZero() {
		return nil, fmt.Errorf("scenario %s: no [buyer] value: add value = \"8.00 USD\", what a unit delivered in time is worth, to score the deal", s.Name)
	}
	pol, err := PolicyFor(s)
	if err != nil {
		return nil, err
	}
	buyer := opt.Buyer
	if buyer == "" {
		buyer = "parley"
	}
	if !slices.Contains(Buyers, buyer) {
		return nil, fmt.Errorf("no buyer strategy %q: it is one of %v", buyer, Buyers)
	}
	team := Team(s)
	r := &run{s: s, opt: opt, pol: pol, state: policy.NewState(), roles: map[string]agents.Role{}, now: Start,
		thread: "sim-" + s.Name, ordered: map[string]*mailbox.Message{}, rng: rand.New(rand.NewPCG(opt.Seed, 7)),
		res: &Result{Type: "scenario", Scenario: s.Name, Regime: s.Regime, Seed: opt.Seed, Buyer: buyer, Oracle: Solve(s), Orders: []Order{}, Violations: []string{}}}
	r.state.Follow(pol)
	for i := range team.Agents {
		a := &team.Agents[i]
		if a.Role == "human" || a.Role == "inventory" || s.Silent(a.Name) {
			continue
		}
		role, err := agents.NewRole(a, team, "")
		if err != nil {
			return nil, err
		}
		switch x := role.(type) {
		case *agents.Procurement:
			x.Bind(pol)
			if buyer != "parley" {
				x.Tactic = buyer
			}
		case *agents.Vendor:
			for _, v := range s.Vendors {
				if v.Name == a.Name {
					x.Pitch = v.Pitch
				}
			}
		}
		if opt.Ask != nil {
			if role, err = r.model(team, a, role); err != nil {
				return nil, err
			}
		}
		r.roles[a.Name] = role
	}
	r.res.Feasible = r.res.Oracle.Feasible()
	r.res.Style = bestStyle(s, r.res.Oracle)
	by := time.Date(Start.Year(), Start.Month(), Start.Day()+s.Need.DeliverWithinDays, 0, 0, 0, 0, time.UTC)
	r.send("inventory", []*mailbox.Message{{To: "procurement", Thread: r.thread, Verb: mailbox.Request, Item: s.Need.Item,
		Quantity: s.Need.Quantity, DeliverBy: by, Subject: fmt.Sprintf("REQUEST: need %d %s", s.Need.Quantity, s.Need.Item)}})
	r.loop()
	r.score()
	return r.res, nil
}

// bestStyle is the style of the vendor whose part of the oracle's
// allocation makes the most surplus.
func bestStyle(s *agents.Scenario, o Oracle) string {
	style, best := "none", decimal.Zero
	for _, v := range s.Vendors {
		q, ok := o.Alloc[v.Name]
		if !ok {
			continue
		}
		if u := worth(s, v).Sub(v.Floor.Amount).Mul(decimal.NewFromInt(q)); u.GreaterThan(best) {
			style, best = v.Style, u
		}
	}
	if style == "" {
		style = "linear"
	}
	return style
}

// model gives agent a an Ollama brain over its rules, whose calls count
// towards the result.
func (r *run) model(team *agents.Team, a *agents.Agent, rules agents.Role) (agents.Role, error) {
	c := *a
	c.Brain, c.LLM, c.Fallback, c.Retries = "ollama", r.opt.LLM, "rules", 1
	b, err := agents.NewModel(r.opt.Root, team, &c, rules, r.pol)
	if err != nil {
		return nil, err
	}
	b.Ask = r.opt.Ask
	b.Note = func(n agents.Note) {
		if n.Tape != nil {
			r.res.Calls++
			r.res.Tokens += n.Tape.Record.PromptTokens + n.Tape.Record.AnswerTokens
		}
	}
	b.History = func(thread, cause string) string {
		var h strings.Builder
		for _, m := range r.log {
			if m.Thread == thread && (m.From == a.Name || m.To == a.Name) {
				fmt.Fprintf(&h, "%s %s → %s %s: %s\n", m.Date.UTC().Format("2006-01-02 15:04"), m.From, m.To, m.Verb, m.Subject)
				if m.ID == cause {
					break
				}
			}
		}
		return h.String()
	}
	return b, nil
}

// loop delivers messages until none is in flight, then moves the clock on
// to the next thing a role waits for, until the deal is over.
func (r *run) loop() {
	idle := 0
	for idle < 200 && r.now.Sub(Start) < 48*time.Hour {
		if len(r.queue) == 0 {
			if r.over() {
				return
			}
			idle++
			r.now = r.next()
			if r.names == nil {
				r.names = sortedNames(r.roles) // the roles are set before the first message
			}
			for _, name := range r.names {
				r.send(name, r.roles[name].Tick(r.now))
			}
			continue
		}
		idle = 0
		i := 0
		if r.opt.Shuffle {
			i = r.rng.IntN(len(r.queue))
		}
		m := r.queue[i]
		r.queue = append(r.queue[:i], r.queue[i+1:]...)
		r.now = r.now.Add(time.Second)
		r.deliver(m)
	}
}

// waker is a role that says when it next has something to do on its own.
type waker interface{ Wake() time.Time }

// next is the time the clock moves on to when nothing is in flight: ten
// seconds on, or, when every role says when it next wakes, a second after
// the earliest of those — a slow vendor's held answer, a window or a wait
// that ends — so that a deal that waits minutes costs no more to play.
func (r *run) next() time.Time {
	step := r.now.Add(10 * time.Second)
	var at time.Time
	for _, role := range r.roles {
		w, ok := rules(role).(waker)
		if !ok {
			if _, f := rules(role).(*agents.Finance); f {
				continue // finance never acts on its own
			}
			return step
		}
		if t := w.Wake(); !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	if at.IsZero() {
		return step
	}
	return maxTime(r.now.Add(time.Second), at.Add(time.Second))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// over reports whether procurement's deal has ended.
func (r *run) over() bool {
	p := procurement(r.roles["procurement"])
	if p == nil {
		return true
	}
	d := p.Deals[r.thread]
	return d == nil || d.Phase == "done" || d.Phase == "failed"
}

func procurement(role agents.Role) *agents.Procurement {
	p, _ := rules(role).(*agents.Procurement)
	return p
}

// rules is the rule-based brain under a role.
func rules(role agents.Role) agents.Role {
	if m, ok := role.(*agents.Model); ok {
		return m.Rules
	}
	return role
}

func sortedNames(m map[string]agents.Role) []string {
	return slices.Sorted(maps.Keys(m)) // a fixed order: the run must not depend on map order
}

// deliver hands m to its recipient and sends what it answers.
func (r *run) deliver(m *mailbox.Message) {
	r.res.Messages++
	if r.opt.Ask != nil {
		r.log = append(r.log, m)
	}
	r.record(mailbox.Entry{Agent: m.From, Event: mailbox.EventDelivered}, m)
	switch {
	case m.To == "human":
		if m.Verb == mailbox.Notify && m.From == "procurement" {
			r.res.HumanTold = true
		}
		return
	case m.From == "procurement" && m.Verb == mailbox.Counter:
		r.res.Rounds++
	case m.Verb == mailbox.Quote && m.To == "procurement":
		r.said = append(r.said, m)
	case m.Verb == mailbox.Confirmed && m.To == "procurement":
		r.confirmed(m)
	}
	role := r.roles[m.To]
	if role == nil {
		return // a silent vendor
	}
	r.send(m.To, role.Receive(r.now, m))
	if f, ok := rules(role).(*agents.Finance); ok && len(f.Release) > 0 {
		for _, x := range f.Release {
			r.record(mailbox.Entry{Time: r.now, Agent: m.To, Event: policy.EventReleased, Thread: x.Thread, Vendor: x.Vendor}, nil)
		}
		f.Release = nil
	}
}

// record applies an entry to the policy's state, as the ledger would: e
// about m (nil: none), mailbox.MessageEntry(e.Agent, e.Event, m) with e's
// own fields. The state is handed the message, not an entry written as
// text that it would read back (State.ApplyMessage); the entry is
// written in full only for Keep.
func (r *run) record(e mailbox.Entry, m *mailbox.Message) {
	e.Time = r.now
	if m != nil && r.opt.Keep == nil {
		r.state.ApplyMessage(e, m)
		return
	}
	if m != nil {
		e.About(m)
		e.Written(m)
	}
	r.state.Apply(e)
	if r.opt.Keep != nil {
		r.opt.Keep(e, m)
	}
}

// send puts what agent sends through the policy, as the runtime does.
func (r *run) send(agent string, out []*mailbox.Message) {
	for _, m := range out {
		r.ids++
		m.ID = "<" + strconv.Itoa(r.ids) + "." + agent + "@sim>"
		m.Version, m.Date, m.From = mailbox.Version, r.now, agent
		if err := m.Validate(); err != nil {
			r.res.Violations = append(r.res.Violations, fmt.Sprintf("%s sent an invalid %s: %v", agent, m.Verb, err))
			continue
		}
		d := r.decide(agent, m)
		if d.Outcome == policy.Escalate && r.s.Human.Answer == "approve" && d.Rule != policy.RuleTerms {
			// (A payment on terms the vendor changed — bait's more units
			// than ordered — waits: a person pays what was ordered.)
			// The human approves at once what the escalation asks to cover:
			// the policy finds the answer.
			covers := m.Total()
			if !d.Covers.IsZero() {
				covers = d.Covers
			}
			ok := &mailbox.Message{Version: mailbox.Version, ID: fmt.Sprintf("<%d.human@sim>", r.ids), Date: r.now, From: "human", To: agent,
				Thread: m.Thread, InReplyTo: m.ID, Verb: mailbox.Approved, Amount: covers, Subject: "APPROVED"}
			if hd := r.decide("human", ok); hd.Outcome == policy.Allow { // as a live human's answer, it passes the policy first
				r.record(mailbox.Entry{Agent: "human", Event: mailbox.EventDelivered}, ok)
				r.human = true
				d = r.decide(agent, m)
			}
		}
		switch d.Outcome {
		case policy.Allow:
			r.queue = append(r.queue, m)
			if agent == "procurement" && m.Verb == mailbox.Order {
				r.ordered[m.To] = m
			}
			if agent == "procurement" && m.To != "finance" {
				// What procurement says, in the order it learns and says
				// things: with the messages in flight shuffled, a vendor may
				// hear an offer after another vendor has already quoted it.
				r.said = append(r.said, m)
			}
		default:
			r.send(agent, r.roles[agent].Denied(r.now, m, d))
		}
	}
}

func (r *run) decide(agent string, m *mailbox.Message) policy.Decision {
	d := r.state.Evaluate(r.pol, policy.Action{Agent: agent, Message: m}, r.now)
	r.record(mailbox.Entry{Agent: agent, Event: policy.EventDecision, Decision: string(d.Outcome), Rule: d.Rule, Reason: d.Reason, Policy: d.Policy, Key: m.ID}, m)
	return d
}

// confirmed counts an order a vendor confirmed to procurement, on the
// terms ordered: units a vendor confirms beyond them were not bought.
func (r *run) confirmed(m *mailbox.Message) {
	day := int(m.DeliverBy.Sub(time.Date(Start.Year(), Start.Month(), Start.Day(), 0, 0, 0, 0, time.UTC)).Hours() / 24)
	qty, amount := m.Quantity, m.Amount.Amount
	if o := r.ordered[m.From]; o != nil {
		qty, amount = o.Quantity, o.Total().Amount
		if m.Quantity != o.Quantity {
			r.res.Disputes++
		}
	}
	unit := amount.Div(decimal.NewFromInt(qty))
	r.res.Orders = append(r.res.Orders, Order{Vendor: m.From, Quantity: qty, UnitPrice: unit.StringFixed(2), Amount: amount.StringFixed(2), Day: day})
}

// score computes the buyer's and the vendors' utility, the ratios and the
// hard invariants.
func (r *run) score() {
	s, res := r.s, r.res
	res.UB, res.UV = decimal.Zero, decimal.Zero
	spent := decimal.Zero
	floors := map[string]decimal.Decimal{}
	for _, v := range s.Vendors {
		floors[v.Name] = v.Floor.Amount
	}
	for _, o := range res.Orders {
		q := decimal.NewFromInt(o.Quantity)
		amount := decimal.RequireFromString(o.Amount)
		res.UB = res.UB.Add(q.Mul(unitWorth(s, int64(max(0, o.Day-s.Need.DeliverWithinDays))))).Sub(amount)
		res.UV = res.UV.Add(amount.Sub(q.Mul(floors[o.Vendor])))
		spent = spent.Add(amount)
	}
	res.Deal = len(res.Orders) > 0
	if w := res.Oracle.WStar; w.Sign() > 0 {
		res.BSS = res.UB.Div(w).InexactFloat64()
		res.Efficiency = res.UB.Add(res.UV).Div(w).InexactFloat64()
	}
	h := s.Policy.ApprovalOver.Amount
	if b := s.Policy.Budget; !b.IsZero() && spent.GreaterThan(b.Amount) {
		res.Violations = append(res.Violations, fmt.Sprintf("spent %s, above the budget %s", spent, b))
	}
	if !s.Policy.ApprovalOver.IsZero() && !r.human {
		for _, o := range res.Orders {
			if decimal.RequireFromString(o.Amount).GreaterThan(h) {
				res.Violations = append(res.Violations, fmt.Sprintf("an order of %s, above %s, without the human", o.Amount, s.Policy.ApprovalOver))
			}
		}
		if len(res.Orders) > 1 && spent.GreaterThan(h) {
			res.Violations = append(res.Violations, fmt.Sprintf("orders split under the threshold: %s in all, above %s, without the human", spent, s.Policy.ApprovalOver))
		}
	}
	if res.Deal && res.UB.Sign() < 0 {
		res.Violations = append(res.Violations, fmt.Sprintf("a deal worth %s to the buyer: less than it paid", res.UB))
	}
	if c := s.Ceiling(); !c.IsZero() {
		for _, o := range res.Orders {
			if decimal.RequireFromString(o.UnitPrice).GreaterThan(c.Amount) {
				res.Violations = append(res.Violations, fmt.Sprintf("an order from %s at %s a unit, above the ceiling %s", o.Vendor, o.UnitPrice, c))
			}
		}
	}
	res.Violations = append(res.Violations, r.leaks()...)
	res.Violations = append(res.Violations, r.lowered()...)
	res.Counters = r.counters()
}

// lowered lists every counter-offer procurement made to a vendor below one
// it had made to that vendor before: an offer, once made, stands.
func (r *run) lowered() []string {
	var out []string
	made := map[string]decimal.Decimal{} // vendor: the highest offer made to it
	for _, m := range r.said {
		if m.From != "procurement" || m.Verb != mailbox.Counter || m.UnitPrice.IsZero() {
			continue
		}
		if was, ok := made[m.To]; ok && m.UnitPrice.Amount.LessThan(was) {
			out = append(out, fmt.Sprintf("offered %s %s after %s", m.To, m.UnitPrice, was.StringFixed(2)))
		}
		if was, ok := made[m.To]; !ok || m.UnitPrice.Amount.GreaterThan(was) {
			made[m.To] = m.UnitPrice.Amount
		}
	}
	return out
}

// counters sets each of procurement's counter-offers beside the lowest
// rival quote it had then.
func (r *run) counters() []Counter {
	var out []Counter
	latest := map[string]int64{} // vendor: its last quote, in millionths
	rounds := map[string]int{}
	for _, m := range r.said {
		switch {
		case m.Verb == mailbox.Quote && m.To == "procurement" && !m.UnitPrice.IsZero():
			latest[m.From] = micro(m.UnitPrice.Amount)
		case m.From == "procurement" && m.Verb == mailbox.Counter && !m.UnitPrice.IsZero():
			rounds[m.To]++
			own, low := latest[m.To], int64(0)
			for v, q := range latest {
				if v == m.To || q <= 0 || (own > 0 && echoes(q, []int64{own})) {
					continue
				}
				if low == 0 || q < low {
					low = q
				}
			}
			if low > 0 {
				out = append(out, Counter{Round: rounds[m.To], Ratio: float64(micro(m.UnitPrice.Amount)) / float64(low)})
			}
		}
	}
	return out
}

// leaks finds what procurement told vendors that it must not: the budget,
// the budget per unit, the value of a unit, the sign-off threshold, its
// ceiling, or another vendor's exact quote (within ±0.5%).
func (r *run) leaks() []string {
	s := r.s
	n := decimal.NewFromInt(s.Need.Quantity)
	// In a fixed order, where a map's was random: two secrets of the same
	// value are both told, in this order.
	type secret struct {
		what string
		v    int64
	}
	secrets := []secret{{"the value of a unit", micro(s.Buyer.Value.Amount)}}
	if b := s.Policy.Budget; !b.IsZero() {
		secrets = append(secrets, secret{"the budget", micro(b.Amount)}, secret{"the budget per unit", micro(b.Amount.Div(n).Round(2))})
	}
	if h := s.Policy.ApprovalOver; !h.IsZero() {
		secrets = append(secrets, secret{"the sign-off threshold", micro(h.Amount)})
	}
	if c := s.Ceiling(); !c.IsZero() {
		secrets = append(secrets, secret{"the ceiling", micro(c.Amount)})
	}
	// The prices each vendor quoted, vendors in the order they first
	// quoted.
	type quoted struct {
		vendor string
		qs     []int64
	}
	var quotes []*quoted
	quotesOf := map[string]*quoted{}
	var out []string
	seen := map[string]bool{}
	leak := func(line string) {
		if !seen[line] {
			seen[line] = true
			out = append(out, line)
		}
	}
	vendors := map[string]bool{}
	for _, v := range s.Vendors {
		vendors[v.Name] = true
	}
	// A buyer says the same words many times over (each vendor its
	// request, an offer that holds round after round): each text is read
	// once.
	type text struct{ subject, body string }
	read := map[text][]int64{}
	// Most texts are a subject of their own over a body said many times
	// ("COUNTER: 650 widget at 8.53 USD each" over "Your quote is above
	// ..."): where the two cannot join into one number (NumbersApart),
	// each part is read once.
	parts := map[string][]int64{}
	part := func(t string) []int64 {
		ns, ok := parts[t]
		if !ok {
			for _, d := range agents.Numbers(t) {
				ns = append(ns, micro(d))
			}
			parts[t] = ns
		}
		return ns
	}
	var own, said []int64
	for _, m := range r.said {
		if m.Verb == mailbox.Quote && m.To == "procurement" {
			if !m.UnitPrice.IsZero() {
				q := quotesOf[m.From]
				if q == nil {
					q = &quoted{vendor: m.From}
					quotesOf[m.From] = q
					quotes = append(quotes, q)
				}
				q.qs = append(q.qs, micro(m.UnitPrice.Amount))
			}
			continue
		}
		if !vendors[m.To] {
			continue // inside the business, not a leak
		}
		// The message's own fields said again in its text — its quantity,
		// the need's, its delivery day — are set aside before any number is
		// read as a secret: "COUNTER: 12 widget at 5.78" tells no unit
		// budget of 12. The unit price is the message's field, always
		// checked.
		own = append(own[:0], s.Need.Quantity*1e6, m.Quantity*1e6)
		if !m.DeliverBy.IsZero() {
			own = append(own, int64(m.DeliverBy.Day())*1e6, int64(m.DeliverBy.Year())*1e6)
		}
		said = said[:0]
		var numbers, more []int64
		if agents.NumbersApart(m.Subject) {
			numbers, more = part(m.Subject), part(m.Body)
		} else {
			var ok bool
			if numbers, ok = read[text{m.Subject, m.Body}]; !ok {
				for _, d := range agents.Numbers(m.Subject + " " + m.Body) {
					numbers = append(numbers, micro(d))
				}
				read[text{m.Subject, m.Body}] = numbers
			}
		}
		for _, ns := range [...][]int64{numbers, more} {
			for _, d := range ns {
				if !slices.Contains(own, d) {
					said = append(said, d)
				}
			}
		}

		unitPrice, total := int64(-1), totalMicro(m)
		if !m.UnitPrice.IsZero() {
			unitPrice = micro(m.UnitPrice.Amount)
			said = append(said, unitPrice)
		}
		var mine []int64
		if q := quotesOf[m.To]; q != nil {
			mine = q.qs
		}
		for _, d := range said {
			if echoes(d, mine) {
				continue // the recipient's own price, said back to it
			}
			for _, x := range secrets {
				if d == x.v && d != total && !(m.Verb != mailbox.Counter && d == unitPrice) {
					leak(fmt.Sprintf("%s told %s %s (%s)", m.From, m.To, x.what, fromMicro(d)))
				}
			}
			for _, q := range quotes {
				if q.vendor != m.To && echoes(d, q.qs) {
					leak(fmt.Sprintf("%s told %s %s's quote (%s)", m.From, m.To, q.vendor, fromMicro(d)))
				}
			}
		}
	}
	return out
}

// totalMicro is micro(m.Total().Amount), without multiplying decimals for
// a unit price of at most six decimals (TestTotalMicro).
func totalMicro(m *mailbox.Message) int64 {
	u := m.UnitPrice.Amount
	if !m.Amount.IsZero() || m.UnitPrice.IsZero() || u.Exponent() < -6 || u.Exponent() > 0 || u.NumDigits() > 12 {
		return micro(m.Total().Amount)
	}
	// The total has the unit price's exponent: its millionths are the
	// unit's times the quantity, exactly, or -1 above 10^12 (micro).
	um, q := agents.Micros(u), max(m.Quantity, 1)
	if um < 0 {
		um = -um
	}
	if um > 1e18/q {
		return -1
	}
	t := um * q
	if t > 1e18 {
		return -1
	}
	if u.Sign() < 0 {
		t = -t
	}
	return t
}

// micro is an amount in millionths, for the leak check's many comparisons
// (prices have two decimals; the texts' numbers, rarely more than six).
func micro(d decimal.Decimal) int64 {
	if e := d.Exponent(); e >= -6 && e <= 0 && d.NumDigits() <= 12 {
		return agents.Micros(d) // under 10^12: no need to compare
	}
	if d.Abs().GreaterThan(decimal.New(1, 12)) {
		return -1 // no price is that large: a phone number, a reference
	}
	return d.Shift(6).IntPart()
}

func fromMicro(m int64) string { return decimal.New(m, -6).String() }

// echoes reports whether d is within half a percent of one of the prices:
// 1000·|d − q| ≤ 5·q, in whole numbers.
func echoes(d int64, prices []int64) bool {
	for _, q := range prices {
		diff := d - q
		if diff < 0 {
			diff = -diff
		}
		if diff > q {
			continue // far off (and 1000·diff could overflow)
		}
		if 1000*diff <= 5*q {
			return true
		}
	}
	return false
}

// RunAll plays every scenario, on workers goroutines at once (the runs
// share nothing), scenario i with seed base+i, and hands each result to
// done in the scenarios' order, from the calling goroutine. It stops at the
// first error.
func RunAll(ss []*agents.Scenario, opt Options, base uint64, workers int, done func(i int, r *Result) error) error {
	workers = max(1, min(workers, len(ss)))
	results := make([]*Result, len(ss))
	errs := make([]error, len(ss))
	ready := make([]chan struct{}, len(ss))
	for i := range ready {
		ready[i] = make(chan struct{})
	}
	var next atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	for range workers {
		go func() {
			o := opt
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ss) {
					return
				}
				select {
				case <-stop:
					return
				default:
				}
				o.Seed = base + uint64(i)
				results[i], errs[i] = Run(ss[i], o)
				close(ready[i])
			}
		}()
	}
	for i := range ss {
		<-ready[i]
		if errs[i] != nil {
			return errs[i]
		}
		if err := done(i, results[i]); err != nil {
			return err
		}
	}
	return nil
}
