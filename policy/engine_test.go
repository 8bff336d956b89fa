package policy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/proctest"
	"github.com/parley-dev/parley/mailbox"
	"github.com/shopspring/decimal"
)

// Tests that cross processes re-execute the test binary as a helper.
func TestMain(m *testing.M) {
	proctest.Main(m, map[string]func(args []string) error{
		"approve": func(args []string) error { // ROOT THREAD AMOUNT (in USD): decide one approval, print the outcome
			r, err := mailbox.OpenRoot(args[0], func() time.Time { return now })
			if err != nil {
				return err
			}
			defer r.Close()
			e := NewEngine(r)
			if _, _, err := e.State(); err != nil { // read the ledger before the race starts
				return err
			}
			proctest.WaitGo()
			m := msg("finance", "procurement", mailbox.Approved, args[1], args[2]+" USD")
			m.ID = mailbox.NewMessageID(now, "finance")
			d, err := e.Decide(Action{Agent: "finance", Message: m})
			if err != nil {
				return err
			}
			fmt.Println(d.Outcome)
			return nil
		},
	})
}

// newEngine makes a root with the default policy, or policy text if given.
func newEngine(t testing.TB, policyText ...string) (*Engine, *mailbox.Root) {
	t.Helper()
	dir := t.TempDir()
	text := string(Default)
	if len(policyText) > 0 {
		text = policyText[0]
	}
	if err := os.WriteFile(filepath.Join(dir, File), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := mailbox.OpenRoot(dir, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return NewEngine(r), r
}

func entries(t testing.TB, r *mailbox.Root) []mailbox.Entry {
	t.Helper()
	f, err := os.Open(filepath.Join(r.Dir, mailbox.LedgerFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var es []mailbox.Entry
	if err := mailbox.ReadEntries(f, func(_ int, e mailbox.Entry) error { es = append(es, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return es
}

func count(es []mailbox.Entry, event string) int {
	n := 0
	for _, e := range es {
		if e.Event == event {
			n++
		}
	}
	return n
}

func TestDecideRecords(t *testing.T) {
	e, r := newEngine(t)
	m := msg("finance", "procurement", mailbox.Approved, "t", "2400.00 USD")
	d, err := e.Decide(Action{Agent: "finance", Message: m})
	if err != nil {
		t.Fatal(err)
	}
	if d.Outcome != Allow {
		t.Fatalf("Decide = %+v, want allow", d)
	}
	// The same message again: the same answer, nothing counted twice.
	if d2, err := e.Decide(Action{Agent: "finance", Message: m}); err != nil || d2 != d {
		t.Fatalf("Decide again = %+v, %v; want %+v", d2, err, d)
	}
	es := entries(t, r)
	if len(es) != 1 {
		t.Fatalf("ledger has %d entries, want 1 decision", len(es))
	}
	got := es[0]
	p := defaultPolicy(t)
	if got.Event != EventDecision || got.Decision != "allow" || got.Rule != "allow.4" || got.Policy != p.Hash ||
		got.Amount != "2400.00" || got.Thread != "t" || got.Key != m.ID || got.Agent != "finance" {
		t.Errorf("decision entry = %+v", got)
	}
	// Explain decides the same and records nothing.
	if d3, err := e.Explain(Action{Agent: "finance", Message: msg("finance", "procurement", mailbox.Approved, "u", "2400.00 USD")}); err != nil || d3.Outcome != Allow {
		t.Errorf("Explain = %+v, %v", d3, err)
	}
	if n := len(entries(t, r)); n != 1 {
		t.Errorf("Explain recorded something: %d entries", n)
	}
}

// TestReusedMessageIDIsNotARetry: a different action under the Message-ID of
// an allowed one is judged afresh, not waved through.
func TestReusedMessageIDIsNotARetry(t *testing.T) {
	e, _ := newEngine(t)
	ok := msg("finance", "procurement", mailbox.Approved, "t", "100.00 USD")
	if d, _ := e.Decide(Action{Agent: "finance", Message: ok}); d.Outcome != Allow {
		t.Fatalf("first approval: %+v", d)
	}
	replay := msg("finance", "procurement", mailbox.Approved, "t", "4900.00 USD")
	replay.ID = ok.ID
	if d, _ := e.Decide(Action{Agent: "finance", Message: replay}); d.Outcome != Escalate {
		t.Errorf("a larger approval under the same id: %+v, want it judged afresh (escalate)", d)
	}
}

func TestUnreadablePolicyDeniesEverything(t *testing.T) {
	e, r := newEngine(t)
	os.WriteFile(filepath.Join(r.Dir, File), []byte("version = 1\nnonsense = [\n"), 0o644)
	d, err := e.Decide(Action{Agent: "inventory", Message: msg("inventory", "procurement", mailbox.Request, "t", "")})
	if err != nil {
		t.Fatal(err)
	}
	if d.Outcome != Deny || d.Rule != "policy" || !strings.Contains(d.Reason, "policy.toml:2") {
		t.Errorf("Decide with a broken policy = %+v, want deny by policy naming the line", d)
	}
	// Fixed, it is read again without a restart.
	os.WriteFile(filepath.Join(r.Dir, File), Default, 0o644)
	os.Chtimes(filepath.Join(r.Dir, File), now, now.Add(time.Second))
	if d, _ := e.Decide(Action{Agent: "inventory", Message: msg("inventory", "procurement", mailbox.Request, "t", "")}); d.Outcome != Allow {
		t.Errorf("Decide after the fix = %+v, want allow", d)
	}
}

// TestBreaker trips the breaker with denials, shows that nothing is acted
// on while paused and nothing is lost, and that resume lets the waiting
// messages through.
func TestBreaker(t *testing.T) {
	e, r := newEngine(t)
	for _, a := range []string{"vendor-b", "procurement"} {
		if err := r.Inbox(a).Create(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ { // vendor-b tries to pay itself, ten times
		d, err := e.Decide(Action{Agent: "vendor-b", Message: msg("vendor-b", "finance", mailbox.Paid, fmt.Sprint("t", i), "10.00 USD")})
		if err != nil || d.Outcome != Deny {
			t.Fatalf("Decide = %+v, %v; want deny", d, err)
		}
	}
	why, paused := e.Paused()
	if !paused || !strings.Contains(why, "paused by the circuit breaker") || !strings.Contains(why, "10 errors or denials within 5m0s (vendor-b: 10 denied PAID (allow))") {
		t.Fatalf("Paused() = %q, %v; want paused by the breaker", why, paused)
	}
	// Messages still arrive, and wait; no action is allowed.
	waiting := msg("vendor-b", "procurement", mailbox.Quote, "q", "")
	waiting.UnitPrice = mailbox.MustMoney("4.80 USD")
	if _, err := r.Deliver("vendor-b", waiting); err != nil {
		t.Fatal(err)
	}
	act := Action{Agent: "procurement", Message: msg("procurement", "vendor-b", mailbox.Counter, "q", "")}
	if d, _ := e.Decide(act); d.Outcome != Deny || d.Rule != "breaker.paused" {
		t.Fatalf("Decide while paused = %+v, want deny by breaker.paused", d)
	}
	if names, _ := r.Inbox("procurement").Pending(); len(names) != 1 {
		t.Errorf("procurement's inbox holds %v while paused, want the waiting quote", names)
	}
	if err := e.Resume("human", "checked vendor-b"); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.Decide(Action{Agent: "procurement", Message: msg("procurement", "vendor-b", mailbox.Counter, "q", "")}); d.Outcome != Allow {
		t.Fatalf("Decide after resume = %+v, want allow", d)
	}
	if err := e.Resume("human", ""); !errors.Is(err, ErrNotPaused) {
		t.Errorf("Resume twice: %v, want ErrNotPaused", err)
	}
	es := entries(t, r)
	if count(es, EventPaused) != 1 || count(es, EventResumed) != 1 {
		t.Errorf("ledger: %d paused, %d resumed; want 1 and 1", count(es, EventPaused), count(es, EventResumed))
	}
}

func TestPauseByHand(t *testing.T) {
	e, _ := newEngine(t)
	if err := e.Pause("human", "audit"); err != nil {
		t.Fatal(err)
	}
	d, _ := e.Decide(Action{Agent: "inventory", Message: msg("inventory", "procurement", mailbox.Request, "t", "")})
	if d.Outcome != Deny || d.Rule != "breaker.paused" || !strings.Contains(d.Reason, "audit") {
		t.Errorf("Decide while paused by hand = %+v", d)
	}
}

// TestLastOfTheBudgetRace has two processes approve at once what only one
// of them can have: the budget holds 1500.00 USD more and each asks 1000.
func TestLastOfTheBudgetRace(t *testing.T) {
	for round := 0; round < 5; round++ {
		e, r := newEngine(t)
		for i := 0; i < 40; i++ { // 98500.00 USD paid this month, two payments a day
			day := now.Add(time.Duration(i/2-20) * 24 * time.Hour)
			r.Now = func() time.Time { return day }
			for _, m := range []*mailbox.Message{
				msg("finance", "procurement", mailbox.Approved, fmt.Sprint("p", i), "2462.50 USD"),
				msg("procurement", fmt.Sprint("vendor-", i), mailbox.Order, fmt.Sprint("p", i), "2462.50 USD"),
				msg("finance", fmt.Sprint("vendor-", i), mailbox.Paid, fmt.Sprint("p", i), "2462.50 USD"),
			} {
				m.Date = day
				if d, err := e.Decide(Action{Agent: m.From, Message: m}); err != nil || d.Outcome != Allow {
					t.Fatalf("setup %s: %+v %v", m.Verb, d, err)
				}
			}
		}
		outs := proctest.Start(t, 2, "approve", func(i int) string { return fmt.Sprintf("%s race%d 1000.00", r.Dir, i) })()
		allowed := 0
		for _, o := range outs {
			if strings.TrimSpace(o) == "allow" {
				allowed++
			}
		}
		if allowed != 1 {
			t.Fatalf("round %d: %d of 2 racing approvals allowed (%q), want exactly 1", round, allowed, outs)
		}
	}
}

// TestRandomSpendsNeverPassALimit plays random approvals, orders and
// payments from several agents through several engines on one ledger (as
// separate agents would), then adds up what the ledger says was allowed:
// no tally may be over its limit.
func TestRandomSpendsNeverPassALimit(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			e, r := newEngine(t)
			engines := []*Engine{e, NewEngine(r), NewEngine(r)}
			rng := rand.New(rand.NewPCG(seed, 7))
			clock := now
			r.Now = func() time.Time { return clock }
			for i := 0; i < 150; i++ {
				clock = clock.Add(time.Duration(rng.IntN(180)) * time.Minute)
				thread := fmt.Sprint("t", rng.IntN(12))
				amount := fmt.Sprintf("%d.%02d USD", rng.IntN(6000), rng.IntN(100))
				var a Action
				switch rng.IntN(4) {
				case 0, 1:
					a = Action{Agent: "finance", Message: msg("finance", "procurement", mailbox.Approved, thread, amount)}
				case 2:
					a = Action{Agent: "procurement", Message: msg("procurement", fmt.Sprint("vendor-", rng.IntN(3)), mailbox.Order, thread, amount)}
				case 3:
					a = Action{Agent: "finance", Message: msg("finance", "vendor-b", mailbox.Paid, thread, amount)}
				}
				a.Message.Date = clock
				if _, err := engines[rng.IntN(len(engines))].Decide(a); err != nil {
					t.Fatal(err)
				}
			}
			checkLimits(t, defaultPolicy(t), entries(t, r))
		})
	}
}

// checkLimits adds up the allowed money in a ledger, the hard way.
func checkLimits(t *testing.T, p *Policy, es []mailbox.Entry) {
	t.Helper()
	perDay := map[string]decimal.Decimal{}
	perMonth := map[string]decimal.Decimal{}
	paid := map[string]decimal.Decimal{}
	for _, e := range es {
		if e.Event != EventDecision || e.Decision != "allow" || e.Amount == "" {
			continue
		}
		amt := decimal.RequireFromString(e.Amount)
		if amt.GreaterThan(p.Limits.PerTransaction.Amount) {
			t.Errorf("seq %d: %s allowed above the per-transaction limit", e.Seq, e.Amount)
		}
		if amt.GreaterThan(p.Human.ApprovalOver.Amount) && e.Rule != "human.approved" {
			t.Errorf("seq %d: %s allowed above the sign-off threshold without the human", e.Seq, e.Amount)
		}
		if e.Verb == "ORDER" || e.Verb == "PAID" {
			perDay[e.Agent+day(e.Time)] = perDay[e.Agent+day(e.Time)].Add(amt)
			perMonth[e.Agent+month(e.Time)] = perMonth[e.Agent+month(e.Time)].Add(amt)
		}
		if e.Verb == "PAID" {
			paid[month(e.Time)] = paid[month(e.Time)].Add(amt)
		}
	}
	for k, v := range perDay {
		if v.GreaterThan(p.Limits.PerAgentPerDay.Amount) {
			t.Errorf("%s: %s in a day, above %s", k, v, p.Limits.PerAgentPerDay)
		}
	}
	for k, v := range perMonth {
		if v.GreaterThan(p.Limits.PerAgentPerMonth.Amount) {
			t.Errorf("%s: %s in a month, above %s", k, v, p.Limits.PerAgentPerMonth)
		}
	}
	for k, v := range paid {
		if v.GreaterThan(p.Budget.Amount.Amount) {
			t.Errorf("%s: %s paid, above the budget %s", k, v, p.Budget.Amount)
		}
	}
}

// TestLoopStoppedByHopFuse: agents that answer each other for ever —
// directly, in a triangle, or one asking another again and again — are
// stopped by the hop fuse, which escalates to the human and keeps the thread
// stopped; the fuse is max_hops (40) for each agent asked on the thread, so
// a deal put to twenty vendors is not stopped by its own quotes.
func TestLoopStoppedByHopFuse(t *testing.T) {
	type step struct {
		from, to string
		verb     mailbox.Verb
	}
	ring := func(verb mailbox.Verb, agents ...string) func(i int) step {
		return func(i int) step { return step{agents[i%len(agents)], agents[(i+1)%len(agents)], verb} }
	}
	vendors := make([]string, 20)
	for i := range vendors {
		vendors[i] = fmt.Sprintf("agent-v%02d", i)
	}
	tests := []struct {
		name string
		next func(i int) step
		want int // messages sent before the fuse
	}{
		{"two agents notifying each other", ring(mailbox.Notify, "agent-a", "agent-b"), 40},
		{"one agent asking another again and again", func(i int) step { return step{"agent-a", "agent-b", mailbox.Request} }, 40},
		{"a triangle of requests: three agents asked", ring(mailbox.Request, "agent-a", "agent-b", "agent-c"), 3 * 40},
		{"twenty vendors asked, quoting, then a loop", func(i int) step {
			switch {
			case i < 20:
				return step{"agent-a", vendors[i], mailbox.Request}
			case i < 40:
				return step{vendors[i-20], "agent-a", mailbox.Notify}
			}
			return ring(mailbox.Notify, "agent-a", vendors[0])(i)
		}, 20 * 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(string(Default), "[[allow]]", "[[allow]]\nfrom = \"agent-*\"\nverbs = [\"REQUEST\", \"NOTIFY\"]\nto = [\"agent-*\"]\n\n[[allow]]", 1)
			text = strings.Replace(text, "messages_per_minute = 300", "messages_per_minute = 0", 1)
			e, r := newEngine(t, text)
			made := map[string]bool{}
			sent := 0
			var last Decision
			var s step
			for i := 0; i < 2000; i++ {
				s = tt.next(i)
				for _, a := range []string{s.from, s.to} {
					if !made[a] {
						if err := r.Inbox(a).Create(); err != nil {
							t.Fatal(err)
						}
						made[a] = true
					}
				}
				m := msg(s.from, s.to, s.verb, "loop", "")
				d, err := e.Decide(Action{Agent: s.from, Message: m})
				if err != nil {
					t.Fatal(err)
				}
				last = d
				if d.Outcome != Allow {
					break
				}
				if _, err := r.Deliver(s.from, m); err != nil {
					t.Fatal(err)
				}
				sent++
			}
			if sent != tt.want || last.Outcome != Escalate || last.Rule != "fuses.max_hops" {
				t.Fatalf("the loop sent %d messages and ended with %+v; want %d and an escalation by fuses.max_hops", sent, last, tt.want)
			}
			d, _ := e.Decide(Action{Agent: s.to, Message: msg(s.to, s.from, mailbox.Notify, "loop", "")})
			if d.Outcome != Deny || d.Rule != "fuses.max_hops" {
				t.Errorf("after the fuse: %+v, want deny by fuses.max_hops", d)
			}
			if d, _ := e.Decide(Action{Agent: s.from, Message: msg(s.from, s.to, s.verb, "other", "")}); d.Outcome != Allow {
				t.Errorf("another thread: %+v, want allow", d)
			}
		})
	}
}

func TestEscalationMessage(t *testing.T) {
	p := defaultPolicy(t)
	a := Action{Agent: "finance", Message: msg("finance", "procurement", mailbox.Approved, "restock-1", "3000.00 USD")}
	d := NewState().Evaluate(p, a, now)
	m := EscalationMessage(p, a, d, now)
	if err := m.Validate(); err != nil {
		t.Fatalf("escalation does not validate: %v\n%s", err, m.Marshal())
	}
	text := string(m.Marshal())
	for _, want := range []string{"To: human", "Verb: ESCALATE", "Thread: restock-1", "Amount: 3000.00 USD",
		"finance wants to send procurement APPROVED for 3000.00 USD (500 widget)", "rule human.approval_over",
		"parley approve restock-1", "parley deny restock-1 --reason", "the answer is: deny"} {
		if !strings.Contains(text, want) {
			t.Errorf("escalation lacks %q:\n%s", want, text)
		}
	}
}

// TestReplayUnderAChangedPolicy records decisions under the default policy
// and replays them under a stricter one.
func TestReplayUnderAChangedPolicy(t *testing.T) {
	e, r := newEngine(t)
	for i, amount := range []string{"2000.00 USD", "2400.00 USD", "1000.00 USD"} {
		th := fmt.Sprint("t", i)
		for _, m := range []*mailbox.Message{
			msg("finance", "procurement", mailbox.Approved, th, amount),
			msg("procurement", "vendor-"+th, mailbox.Order, th, amount),
			msg("finance", "vendor-"+th, mailbox.Paid, th, amount),
		} {
			if d, err := e.Decide(Action{Agent: m.From, Message: m}); err != nil || d.Outcome != Allow {
				t.Fatalf("setup: %+v %v", d, err)
			}
		}
	}
	stricter, err := Parse("new.toml", []byte(strings.Replace(string(Default), `approval_over = "2500.00 USD"`, `approval_over = "1500.00 USD"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	w := Replay(entries(t, r), stricter)
	if w.Decisions != 9 || len(w.Changes) != 6 {
		t.Fatalf("Replay: %d decisions, %d changes, want 9 and 6: %+v", w.Decisions, len(w.Changes), w.Changes)
	}
	for _, c := range w.Changes {
		if c.Thread == "t2" || c.Would.Outcome != Escalate || c.Would.Rule != "human.approval_over" {
			t.Errorf("change %+v, want the approvals and payments above 1500 escalated", c)
		}
	}
	// Each deal's money is spent once: not its approval, order and payment
	// added up.
	if got, want := w.WasBooks.Spent.String(), "5400"; got != want {
		t.Errorf("spent as recorded: %s, want %s", got, want)
	}
	if got, want := w.WouldBooks.Spent.String(), "1000"; got != want {
		t.Errorf("spent under the stricter policy: %s, want %s", got, want)
	}
	if same := Replay(entries(t, r), defaultPolicy(t)); len(same.Changes) != 0 {
		t.Errorf("replay under the same policy changed %+v", same.Changes)
	}
}

// TestEnginesOnOneRootEachSeeAll: several engines of one process (as a CLI
// command and an agent's intake have) each read the whole ledger.
func TestEnginesOnOneRootEachSeeAll(t *testing.T) {
	e, r := newEngine(t, strings.Replace(string(Default), `amount = "100000.00 USD"`, `amount = "6000.00 USD"`, 1))
	approve := func(eng *Engine, th string) Outcome {
		d, err := eng.Decide(Action{Agent: "finance", Message: msg("finance", "procurement", mailbox.Approved, th, "2400.00 USD")})
		if err != nil {
			t.Fatal(err)
		}
		return d.Outcome
	}
	if approve(e, "t1") != Allow || approve(e, "t2") != Allow {
		t.Fatal("the first two approvals were not allowed")
	}
	b := NewEngine(r)
	defer b.Close()
	if _, err := b.Explain(Action{Agent: "inventory", Message: msg("inventory", "procurement", mailbox.Request, "x", "")}); err != nil {
		t.Fatal(err)
	}
	if got := approve(e, "t3"); got != Deny {
		t.Errorf("a third approval of 2400 against a budget of 6000: %s, want deny", got)
	}
	c := NewEngine(r)
	defer c.Close()
	if got := approve(c, "t4"); got != Deny {
		t.Errorf("a new engine's approval past the budget: %s, want deny", got)
	}
}

// TestRetryAfterACheckpoint: an action decided before the state's
// checkpoint — its decision no longer held in memory but in the ledger's
// index — retried gets the same answer and adds no line, whether the
// index is there, gone, or the engine is a new one; a different action
// under its id is judged afresh.
func TestRetryAfterACheckpoint(t *testing.T) {
	tests := []struct {
		name  string
		after func(t *testing.T, e *Engine, r *mailbox.Root) *Engine // what happens after the checkpoint
	}{
		{"the same engine", func(t *testing.T, e *Engine, r *mailbox.Root) *Engine { return e }},
		{"a new engine", func(t *testing.T, e *Engine, r *mailbox.Root) *Engine {
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			return NewEngine(r)
		}},
		{"the index thrown away", func(t *testing.T, e *Engine, r *mailbox.Root) *Engine {
			if err := mailbox.RemoveIndex(r.Dir); err != nil {
				t.Fatal(err)
			}
			return e
		}},
		{"the index overwritten", func(t *testing.T, e *Engine, r *mailbox.Root) *Engine {
			writeFile(t, filepath.Join(r.Dir, mailbox.CheckpointDir, mailbox.IndexFile), "not a database")
			return e
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, r := newEngine(t)
			ok := msg("finance", "procurement", mailbox.Approved, "t", "100.00 USD")
			d, err := e.Decide(Action{Agent: "finance", Message: ok})
			if err != nil || d.Outcome != Allow {
				t.Fatalf("first approval: %+v, %v", d, err)
			}
			if _, err := e.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			if n := len(e.state.decided); n != 0 {
				t.Fatalf("after the checkpoint the state holds %d decisions by id, want them in the index", n)
			}
			e = tt.after(t, e, r)
			lines := len(entries(t, r))
			if d2, err := e.Decide(Action{Agent: "finance", Message: ok}); err != nil || d2 != d {
				t.Fatalf("the same approval again = %+v, %v; want %+v", d2, err, d)
			}
			if n := len(entries(t, r)); n != lines {
				t.Errorf("the retry added %d lines, want none", n-lines)
			}
			replay := msg("finance", "procurement", mailbox.Approved, "t", "4900.00 USD")
			replay.ID = ok.ID
			if d, err := e.Decide(Action{Agent: "finance", Message: replay}); err != nil || d.Outcome != Escalate {
				t.Errorf("a larger approval under the same id: %+v, %v; want it judged afresh (escalate)", d, err)
			}
		})
	}
}
