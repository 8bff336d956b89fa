package agents

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/parley-dev/parley/internal/fakeollama"
	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
)

// fakeClock is a clock that moves only when told: by a model call that
// takes a long fake time, or by a second between two ticks.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// stepped is an agent's runtime driven step by step, as its Run loop
// drives it, on the fake clock: a tick when one is due, else the oldest
// message waiting.
type stepped struct {
	rt     *Runtime
	claims *mailbox.Claims
	next   time.Time // when the next tick is due
}

func stepRuntime(t *testing.T, r *mailbox.Root, team *Team, name string) *stepped {
	t.Helper()
	rt := &Runtime{Root: r, Team: team, Name: name, Every: time.Second, Log: func(l string) { t.Logf("%s %s: %s", r.Now().Format(time.TimeOnly), name, l) }}
	rt.agent, rt.ctx = team.Agent(name), context.Background()
	rt.engine = policy.NewEngine(r)
	t.Cleanup(func() { rt.engine.Close() })
	if err := rt.reset(); err != nil {
		t.Fatal(err)
	}
	claims, err := r.Claims(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { claims.Close() })
	return &stepped{rt: rt, claims: claims}
}

// step takes one turn of the agent's loop, and reports whether it did
// anything.
func (s *stepped) step(t *testing.T) bool {
	t.Helper()
	if now := s.rt.Root.Now(); !now.Before(s.next) {
		if err := s.rt.tick(s.claims); err != nil {
			t.Fatal(err)
		}
		s.next = s.rt.Root.Now().Add(s.rt.Every)
		return true
	}
	names, err := s.rt.Root.Inbox(s.rt.Name).Pending()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		c, err := s.claims.Take(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.rt.handle(c); err != nil {
			t.Fatal(err)
		}
		return true
	}
	return false
}

// slowNarrator is a fake Ollama server whose every call takes delay on
// clock, and answers with a plain text for each message.
func slowNarrator(t *testing.T, clock *fakeClock, delay time.Duration) *fakeollama.Server {
	srv := fakeollama.Start(func(req api.ChatRequest) fakeollama.Reply {
		clock.Advance(delay)
		var s struct {
			Properties map[string]struct{ MinItems int } `json:"properties"`
		}
		json.Unmarshal(req.Format, &s)
		texts := make([]string, max(s.Properties["texts"].MinItems, 1))
		for i := range texts {
			texts[i] = "Thank you; the details are in the fields of this message."
		}
		data, _ := json.Marshal(map[string][]string{"texts": texts})
		return fakeollama.Reply{Content: string(data)}
	}, "fake")
	t.Cleanup(srv.Close)
	return srv
}

// dealOutcome plays needs restocks of widget, asked at once, through procurement, the
// three vendors and finance, each driven by its runtime on a fake clock,
// and returns how procurement's deals ended. Set changes the team (the
// brains) and may start a fake model on the clock.
func dealOutcome(t *testing.T, needs int, opt dealOpts, set func(team *Team, clock *fakeClock)) string {
	t.Helper()
	_, got := dealPlayed(t, needs, opt, set)
	return got
}

// dealPlayed is dealOutcome, with the root the deal was played in.
func dealPlayed(t *testing.T, needs int, opt dealOpts, set func(team *Team, clock *fakeClock)) (*mailbox.Root, string) {
	t.Helper()
	clock := &fakeClock{t: now}
	team := defaultTeam(t)
	if set != nil {
		set(team, clock)
	}
	r := rootAt(t, team, "", clock.Now)
	var agents []*stepped
	for _, name := range []string{"procurement", "vendor-a", "vendor-b", "vendor-c", "finance"} {
		if name != opt.down {
			agents = append(agents, stepRuntime(t, r, team, name))
		}
	}
	priv, err := r.PrivateKey("inventory")
	if err != nil {
		t.Fatal(err)
	}
	var threads []string
	for i := 1; i <= needs; i++ {
		th := fmt.Sprintf("restock-widget-%d", i)
		qty := int64(1000 / (2 * needs)) // under the human's approval_over, all of it from one vendor in a day
		if opt.qty > 0 {
			qty = opt.qty
		}
		threads = append(threads, th)
		req := &mailbox.Message{Version: mailbox.Version, ID: fmt.Sprintf("<restock-%d@test>", i), Date: clock.Now(), From: "inventory", To: "procurement",
			Thread: th, Verb: mailbox.Request, Item: "widget", Quantity: qty, DeliverBy: days(now, 8), Subject: "REQUEST: need widget"}
		mailbox.Sign(req, priv)
		if _, err := r.Inbox("procurement").Deliver(req.Marshal(), clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var stopped time.Time // when procurement was stopped, to be started again
	answered := map[string]bool{}
	for turns := 0; turns < 20000; turns++ {
		busy := false
		for i, a := range agents {
			if i == 0 && !stopped.IsZero() {
				if clock.Now().Before(stopped.Add(25 * time.Minute)) {
					continue // down, past every reply_within and reminder
				}
				a = stepRuntime(t, r, team, "procurement")
				agents[0], stopped = a, time.Time{}
				opt.restart = false
			}
			busy = a.step(t) || busy
		}
		rules := agents[0].rt.role
		if b, ok := rules.(*Model); ok {
			rules = b.Rules
		}
		var ends []string
		for _, th := range threads {
			switch d := rules.(*Procurement).Deals[th]; {
			case d == nil || (d.Phase != "done" && d.Phase != "failed"):
			case d.Phase == "failed":
				ends = append(ends, fmt.Sprintf("%s failed: %s", th, notice(t, r, th)))
			default:
				ends = append(ends, fmt.Sprintf("%s done: %d from %s at %s, %s", th, d.Bought, d.Vendor, d.Agreed, d.Spent))
			}
		}
		if len(ends) == len(threads) {
			for _, a := range agents {
				for _, th := range threads {
					replayed(t, r, team, a.rt.Name, th)
				}
			}
			return r, strings.Join(ends, "; ")
		}
		if opt.restart && stopped.IsZero() && waitsForVendors(rules.(*Procurement)) {
			stopped = clock.Now()
		}
		if opt.human > 0 {
			busy = humanApproves(t, r, clock.Now(), opt.human, answered) || busy
		}
		if !busy {
			clock.Advance(time.Second)
		}
	}
	t.Fatalf("the deal did not end by %s", clock.Now())
	return nil, ""
}

// dealOpts are the ways a deal is played: with an agent down all along,
// or procurement stopped while it waits for the vendors' answers, and
// started again long after they came.
type dealOpts struct {
	down    string
	restart bool
	qty     int64         // units a deal needs; 0: all of it from one vendor, under the human's approval_over
	human   time.Duration // how long the human takes to approve what is escalated; 0: never asked
}

// humanApproves answers, as the human would with parley approve, each
// ESCALATE in the human's inbox that asks for a spend and has waited after.
func humanApproves(t *testing.T, r *mailbox.Root, now time.Time, after time.Duration, answered map[string]bool) bool {
	t.Helper()
	names, err := r.Inbox("human").Pending()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := r.PrivateKey("human")
	if err != nil {
		t.Fatal(err)
	}
	did := false
	for _, n := range names {
		data, _ := os.ReadFile(r.Inbox("human").Path("new", n))
		m, err := mailbox.Parse(data)
		if err != nil || m.Verb != mailbox.Escalate || m.Amount.IsZero() || answered[m.ID] || now.Before(m.Date.Add(after)) {
			continue
		}
		answered[m.ID] = true
		ok := &mailbox.Message{Version: mailbox.Version, ID: "<approve-" + strconv.Itoa(len(answered)) + "@test>", Date: now, From: "human", To: m.From,
			Thread: m.Thread, InReplyTo: m.ID, Verb: mailbox.Approved, Item: m.Item, Amount: m.Amount, Subject: "APPROVED"}
		mailbox.Sign(ok, priv)
		if _, err := r.Inbox(m.From).Deliver(ok.Marshal(), now); err != nil {
			t.Fatal(err)
		}
		did = true
	}
	return did
}

// waitsForVendors reports whether a deal awaits the vendors' answers to
// counter-offers.
func waitsForVendors(p *Procurement) bool {
	for _, d := range p.Deals {
		if d.Phase == "pressing" || (d.Phase == "negotiating" && d.Awaiting != nil) {
			return true
		}
	}
	return false
}

// replayed replays agent name's decisions on thread, clock steps
// included, and fails the test on every one that comes out differently.
func replayed(t *testing.T, r *mailbox.Root, team *Team, name, thread string) {
	t.Helper()
	steps, _, err := Replay(r, team, name, thread, ledgerOf(t, r))
	if err != nil {
		t.Fatalf("replay %s on %s: %v", name, thread, err)
	}
	for _, s := range steps {
		if !s.Same {
			t.Errorf("replay %s on %s: %s differs:\n  then: %q\n  now:  %q\n  model: %q", name, thread, s.Message, s.Recorded, s.Replayed, s.Model)
		}
	}
}

// ledgerOf reads the whole ledger of r.
func ledgerOf(t *testing.T, r *mailbox.Root) []mailbox.Entry {
	t.Helper()
	path, err := r.LedgerPath()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entries []mailbox.Entry
	if err := mailbox.ReadEntries(f, func(_ int, e mailbox.Entry) error { entries = append(entries, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return entries
}

// notice is the subject of the last NOTIFY on thread in the human's inbox.
func notice(t *testing.T, r *mailbox.Root, thread string) string {
	t.Helper()
	names, err := r.Inbox("human").Pending()
	if err != nil {
		t.Fatal(err)
	}
	for i := len(names) - 1; i >= 0; i-- {
		data, _ := os.ReadFile(r.Inbox("human").Path("new", names[i]))
		if m, err := mailbox.Parse(data); err == nil && m.Verb == mailbox.Notify && m.Thread == thread {
			return m.Subject
		}
	}
	return ""
}

// TestSlowModelKeepsTheRulesDeal: in narrate mode, with model calls of 1
// to 40 s on the clock, every deal ends as the rules end it — the quotes
// that arrived while procurement waited on its model are weighed before
// the window closes, and the window counts from when the requests went out.
func TestSlowModelKeepsTheRulesDeal(t *testing.T) {
	want := map[int]string{1: dealOutcome(t, 1, dealOpts{}, nil), 2: dealOutcome(t, 2, dealOpts{}, nil)}
	for _, w := range want {
		if strings.Contains(w, "failed") {
			t.Fatalf("the rules' deals: %s", w)
		}
	}
	narrate := func(delay, window time.Duration, who ...string) func(*Team, *fakeClock) {
		return func(team *Team, clock *fakeClock) {
			srv := slowNarrator(t, clock, delay)
			for _, name := range who {
				a := team.Agent(name)
				a.Brain, a.Model, a.Host, a.LLM, a.Fallback = "ollama", "fake", srv.URL, "narrate", "rules"
				a.Timeout.Duration, a.MaxTokens = time.Minute, 512
			}
			team.Agent("procurement").QuoteWindow.Duration = window
		}
	}
	for _, delay := range []time.Duration{time.Second, 5 * time.Second, 20 * time.Second, 31 * time.Second, 40 * time.Second} {
		for _, tc := range []struct {
			name   string
			needs  int
			window time.Duration
			who    []string
		}{
			// The default window, shorter than one call: the requests go out
			// after the model wrote them.
			{"procurement", 1, 30 * time.Second, []string{"procurement"}},
			// Two needs at once: the first deal's quotes arrive while
			// procurement waits on its model for the second.
			{"procurement, two deals", 2, 30 * time.Second, []string{"procurement"}},
			// The vendors' calls queue on one server: the window leaves them
			// time for theirs, as a team on a laptop must set it.
			{"procurement and vendors", 1, 5 * time.Minute, []string{"procurement", "vendor-a", "vendor-b", "vendor-c"}},
			{"everyone, two deals", 2, 5 * time.Minute, []string{"procurement", "vendor-a", "vendor-b", "vendor-c", "finance"}},
		} {
			t.Run(fmt.Sprintf("%s %v", tc.name, delay), func(t *testing.T) {
				if got := dealOutcome(t, tc.needs, dealOpts{}, narrate(delay, tc.window, tc.who...)); got != want[tc.needs] {
					t.Errorf("deals = %s\nwant the rules' %s", got, want[tc.needs])
				}
			})
		}
	}
}

// TestReplayEveryDeal: replaying every agent of a deal, clock steps
// included, reports every decision the same — the rules' deal, one with a
// vendor down (its quote window closes on the clock), and both on a model
// that narrates. (TestSlowModelKeepsTheRulesDeal replays its deals too.)
func TestReplayEveryDeal(t *testing.T) {
	narrate := func(team *Team, clock *fakeClock) {
		srv := slowNarrator(t, clock, 3*time.Second)
		for _, a := range team.Agents {
			if a.Role == "procurement" || a.Role == "vendor" || a.Role == "finance" {
				a.Brain, a.Model, a.Host, a.LLM, a.Fallback = "ollama", "fake", srv.URL, "narrate", "rules"
				a.Timeout.Duration, a.MaxTokens = time.Minute, 512
			}
		}
	}
	for _, tc := range []struct {
		name  string
		needs int
		opt   dealOpts
		set   func(*Team, *fakeClock)
	}{
		{"rules", 1, dealOpts{}, nil},
		{"rules, vendor-c down", 1, dealOpts{down: "vendor-c"}, nil},
		{"rules, two deals", 2, dealOpts{}, nil},
		{"narrate", 1, dealOpts{}, narrate},
		{"narrate, vendor-c down", 1, dealOpts{down: "vendor-c"}, narrate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dealOutcome(t, tc.needs, tc.opt, tc.set); strings.Contains(got, "failed") {
				t.Errorf("deal = %s", got)
			}
		})
	}
}

// TestRestartRemindsOnlyTheUnanswered: procurement stops while the vendors
// answer its counter-offers and starts again long after reply_within: the
// answers waiting in its inbox are read before its clock looks for
// silence, so no vendor is reminded of what it answered, none is dropped
// for "not answering", and the deal ends as it does without the stop.
func TestRestartRemindsOnlyTheUnanswered(t *testing.T) {
	want := dealOutcome(t, 1, dealOpts{}, nil)
	got := dealOutcome(t, 1, dealOpts{restart: true}, nil)
	if got != want {
		t.Errorf("after a restart: %s\nwant %s", got, want)
	}
}

// TestHeldOrderIsNotChased: an order above the human's sign-off threshold
// waits for the human, who answers an hour later, past reply_within twice
// over. The vendor is not reminded of an order it has not been sent, nor
// reported as not answering; the order goes when approved, and the deal
// ends.
func TestHeldOrderIsNotChased(t *testing.T) {
	r, got := dealPlayed(t, 1, dealOpts{qty: 700, human: time.Hour}, nil)
	if !strings.Contains(got, "done: 700 from") {
		t.Fatalf("deal = %s", got)
	}
	for _, e := range ledgerOf(t, r) {
		if e.Event == mailbox.EventDelivered && (strings.HasPrefix(e.Subject, "REMINDER") || strings.Contains(e.Subject, "has not answered")) {
			t.Errorf("seq %d: %s → %s %s: chased while the human decided", e.Seq, e.From, e.To, e.Subject)
		}
	}
}

// TestSlowModelDecidesWithinThePolicy: in decide mode, a model that
// chooses at random among what each step offers, with calls of 1 to 40 s
// on the clock, never gets an action past the policy: no amount allowed
// above the per-transaction limit, no more than one order a deal, no
// payment without its order, and every deal ends.
func TestSlowModelDecidesWithinThePolicy(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(seed, 7))
			var mu sync.Mutex
			r, got := dealPlayed(t, 1, dealOpts{human: time.Minute}, func(team *Team, clock *fakeClock) {
				srv := fakeollama.Start(func(req api.ChatRequest) fakeollama.Reply {
					mu.Lock()
					defer mu.Unlock()
					clock.Advance([]time.Duration{time.Second, 5 * time.Second, 20 * time.Second, 40 * time.Second}[rnd.IntN(4)])
					return fakeollama.Follow(req, func(field string, enum []string) string {
						if len(enum) > 0 {
							return enum[rnd.IntN(len(enum))]
						}
						return "Noted."
					})
				}, "fake")
				t.Cleanup(srv.Close)
				for _, name := range []string{"procurement", "vendor-a", "vendor-b", "vendor-c", "finance"} {
					a := team.Agent(name)
					a.Brain, a.Model, a.Host, a.LLM, a.Fallback = "ollama", "fake", srv.URL, "decide", "rules"
					a.Timeout.Duration, a.MaxTokens = time.Minute, 512
				}
				team.Agent("procurement").QuoteWindow.Duration = 5 * time.Minute
			})
			pol, err := policy.Parse("policy.toml", policy.Default)
			if err != nil {
				t.Fatal(err)
			}
			orders, paid := 0, 0
			for _, e := range ledgerOf(t, r) {
				if e.Event != policy.EventDecision || e.Decision != "allow" {
					continue
				}
				if e.Amount != "" && mailbox.MustMoney(e.Amount+" "+e.Currency).Amount.GreaterThan(pol.Limits.PerTransaction.Amount) {
					t.Errorf("seq %d: %s of %s %s allowed, above the limit", e.Seq, e.Verb, e.Amount, e.Currency)
				}
				switch e.Verb {
				case "ORDER":
					orders++
				case "PAID":
					paid++
				}
			}
			t.Logf("deal: %s", got)
			if orders > 1 || paid > orders {
				t.Errorf("%d orders, %d payments allowed; deal %s", orders, paid, got)
			}
		})
	}
}

// TestReplayPassesOverAStepCutShort: a stop that comes after an agent
// claimed a message and before it did anything with it (parley up
// interrupted as the human's notice lands, while finance takes the vendor's
// confirmation) leaves a claim with no finish: replay passes over it, for
// every agent and every such point of a deal, since nothing of it was done
// and the message is handled when the agent starts again.
func TestReplayPassesOverAStepCutShort(t *testing.T) {
	r, got := dealPlayed(t, 1, dealOpts{}, nil)
	if !strings.Contains(got, "done") {
		t.Fatalf("deal = %s", got)
	}
	team := defaultTeam(t)
	entries := ledgerOf(t, r)
	cuts := 0
	for i, e := range entries {
		if e.Event != mailbox.EventClaimed || e.Thread == "" {
			continue
		}
		// The ledger as a stop right after this claim leaves it: the
		// agent's later lines gone, everyone else's kept.
		var cut []mailbox.Entry
		for j, x := range entries {
			if j <= i || x.Agent != e.Agent {
				cut = append(cut, x)
			}
		}
		steps, _, err := Replay(r, team, e.Agent, e.Thread, cut)
		if err != nil {
			t.Fatalf("replay %s cut after seq %d: %v", e.Agent, e.Seq, err)
		}
		for _, s := range steps {
			if !s.Same {
				t.Errorf("replay %s cut after its claim at seq %d: %s differs:\n  then: %q\n  now:  %q", e.Agent, e.Seq, s.Message, s.Recorded, s.Replayed)
			}
		}
		cuts++
	}
	if cuts < 10 {
		t.Fatalf("only %d claims in the deal", cuts)
	}
}
