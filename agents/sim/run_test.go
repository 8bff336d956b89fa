package sim

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/agents/llm"
	"github.com/parley-dev/parley/internal/fakeollama"
	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
)

func load(t testing.TB, path string) *agents.Scenario {
	t.Helper()
	s, err := agents.LoadScenario(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestScenarioFiles: each scenario under testdata/scenarios, played here,
// ends as its file expects — the outcome the multi-process demo test checks
// for the same file.
func TestScenarioFiles(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/scenarios/*.toml")
	if len(files) == 0 {
		t.Fatal("no scenarios")
	}
	for _, f := range files {
		s := load(t, f)
		t.Run(s.Name, func(t *testing.T) {
			res, err := Run(s, Options{})
			if err != nil {
				t.Fatal(err)
			}
			out, _ := json.Marshal(res)
			t.Logf("%s", out)
			switch s.Expect.Outcome {
			case "ordered":
				if !res.Deal || (s.Expect.Vendor != "" && res.Orders[0].Vendor != s.Expect.Vendor) {
					t.Errorf("orders %+v, want one from %s", res.Orders, s.Expect.Vendor)
				}
			case "failed":
				if res.Deal || !res.HumanTold {
					t.Errorf("deal %v, human told %v; want no deal and the human told", res.Deal, res.HumanTold)
				}
			}
			if len(res.Violations) > 0 {
				t.Errorf("violations: %v", res.Violations)
			}
		})
	}
}

// TestGeneratedSuite plays a generated suite: every hard invariant is zero,
// every regime is covered, and the generator is deterministic for a seed.
func TestGeneratedSuite(t *testing.T) {
	const n = 600
	regimes := map[string]int{}
	var feasible, deals, infeasible, walked int
	var bss float64
	var all []*Result
	for i := range n {
		s := Generate(42, i)
		regimes[s.Regime]++
		res, err := Run(s, Options{Seed: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, res)
		if len(res.Violations) > 0 {
			t.Errorf("%s (%s): %v", s.Name, s.Regime, res.Violations)
		}
		if res.Feasible {
			feasible++
			bss += res.BSS
			if res.Deal {
				deals++
			}
		} else {
			infeasible++
			if !res.Deal && res.HumanTold {
				walked++
			}
		}
		if s.Regime == "infeasible" && res.Feasible {
			t.Errorf("%s: the infeasible regime made a feasible scenario (W* %s)", s.Name, res.Oracle.WStar)
		}
	}
	for _, r := range Regimes {
		if regimes[r] == 0 {
			t.Errorf("no %s scenario", r)
		}
	}
	if walked != infeasible {
		t.Errorf("walked away correctly on %d of %d infeasible scenarios", walked, infeasible)
	}
	agreement, share := float64(deals)/float64(feasible), bss/float64(feasible)
	t.Logf("feasible %d: agreement %.3f, mean BSS %.3f; infeasible %d, walked away %d", feasible, agreement, share, infeasible, walked)
	// Issue 17's bars, over the whole vendor pool: a regression fails.
	sum := Summarize("parley", "", all, 1, 0)
	t.Logf("VCG ratio %.3f, efficiency %.3f", sum.VCGRatio, sum.Efficiency)
	// (Efficiency: 0.971 on the 10,000 deals; these 600 make 0.965.)
	if agreement < 0.98 || share < 0.80 || sum.VCGRatio < 1 || sum.Efficiency < 0.96 {
		t.Errorf("agreement %.3f (want 0.98), buyer surplus share %.3f (0.80), VCG ratio %.3f (1.0), efficiency %.3f (0.96)",
			agreement, share, sum.VCGRatio, sum.Efficiency)
	}
	if FormulaLeaks(all) != 0 {
		t.Errorf("counter-offers follow a formula of rivals' quotes")
	}

	a, _ := json.Marshal(Generate(7, 3))
	b, _ := json.Marshal(Generate(7, 3))
	if string(a) != string(b) {
		t.Error("the same seed and index made two scenarios")
	}
	// The same run twice: the same transcript, message for message, and
	// the same result.
	transcript := func() (string, string) {
		var lines []byte
		keep := func(e mailbox.Entry, m *mailbox.Message) {
			j, _ := json.Marshal(e)
			lines = append(append(lines, j...), '\n')
			if m != nil {
				lines = append(lines, m.Marshal()...)
			}
		}
		r, err := Run(Generate(7, 1), Options{Shuffle: true, Seed: 9, Keep: keep}) // a split: the longest deals
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(r)
		return string(lines), string(j)
	}
	t1, r1 := transcript()
	t2, r2 := transcript()
	if t1 != t2 || r1 != r2 || len(t1) < 1000 {
		t.Errorf("the same run twice came out differently (%d and %d bytes of transcript):\n%s\n%s", len(t1), len(t2), r1, r2)
	}
}

// TestSimulateWithAModel: the same suite with Ollama brains against a fake
// server that plays straight: the model is asked, its calls and tokens are
// counted, and the invariants hold as with the rules.
func TestSimulateWithAModel(t *testing.T) {
	srv := fakeollama.Start(func(req api.ChatRequest) fakeollama.Reply {
		return fakeollama.Follow(req, func(field string, enum []string) string {
			switch field {
			case "action":
				for _, a := range []string{"APPROVED", "QUOTE", "ACCEPT"} {
					if slices.Contains(enum, a) {
						return a
					}
				}
			case "unit_price":
				return enum[len(enum)/2]
			}
			return ""
		})
	})
	defer srv.Close()
	client, err := llm.New(llm.Config{Model: "fake", Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ask := func(ctx context.Context, _ string, c llm.Call) (llm.Answer, error) { return client.Ask(ctx, c) }
	for _, mode := range []string{"narrate", "decide"} {
		var rs []*Result
		for i := range 12 {
			res, err := Run(Generate(5, i), Options{Ask: ask, LLM: mode, Root: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Violations) > 0 {
				t.Errorf("%s %s: %v", mode, res.Scenario, res.Violations)
			}
			rs = append(rs, res)
		}
		s := Summarize("parley+"+mode, "", rs, 1, 0)
		if s.Calls == 0 || s.Tokens == 0 || s.Deals == 0 {
			t.Errorf("%s: %+v, want deals, and calls and tokens per deal", mode, s)
		}
		t.Logf("%s: %d deals of %d, %.1f calls and %.0f tokens per deal, agreement %.2f, BSS %.2f", mode, s.Deals, s.Scenarios, s.Calls, s.Tokens, s.AgreementRate, s.BSS)
	}
}

// BenchmarkSimulate plays generated deals, one after another, each
// generated first.
func BenchmarkSimulate(b *testing.B) {
	i := 0
	for b.Loop() {
		if _, err := Run(Generate(1, i), Options{Seed: uint64(i)}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deals/s")
}

// BenchmarkSimulateAll plays generated deals on every core, as parley
// simulate does.
func BenchmarkSimulateAll(b *testing.B) {
	ss := make([]*agents.Scenario, b.N)
	for i := range ss {
		ss[i] = Generate(1, i)
	}
	b.ResetTimer()
	err := RunAll(ss, Options{}, 0, runtime.GOMAXPROCS(0), func(int, *Result) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deals/s")
}

// TestRunAllIsRunInOrder: played on every core, the results are the same,
// in the same order, as played one by one.
func TestRunAllIsRunInOrder(t *testing.T) {
	ss := make([]*agents.Scenario, 60)
	for i := range ss {
		ss[i] = Generate(11, i)
	}
	var got []string
	err := RunAll(ss, Options{Shuffle: true}, 5, 4, func(i int, r *Result) error {
		j, _ := json.Marshal(r)
		got = append(got, string(j))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range ss {
		r, err := Run(s, Options{Shuffle: true, Seed: 5 + uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		if j, _ := json.Marshal(r); string(j) != got[i] {
			t.Fatalf("scenario %d differs:\n%s\n%s", i, j, got[i])
		}
	}
}

// TestPolicyForIsThePolicyFile: the policy a scenario is simulated under is
// the one its live run reads.
func TestPolicyForIsThePolicyFile(t *testing.T) {
	for i := range 12 {
		s := Generate(3, i)
		got, err := PolicyFor(s)
		if err != nil {
			t.Fatal(err)
		}
		want, err := policy.Parse("policy.toml", s.PolicyFile())
		if err != nil {
			t.Fatal(err)
		}
		got.Hash, want.Hash = "", ""
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: simulated under\n%+v\nlive\n%+v", s.Name, got, want)
		}
	}
}

// TestKeep: a kept run is a real root: its ledger verifies, and it holds
// every message of the deal, handled.
func TestKeep(t *testing.T) {
	s := load(t, "../../testdata/scenarios/restock-widget.toml")
	dir := filepath.Join(t.TempDir(), "kept")
	k, err := Keep(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(s, Options{Keep: k.Record})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, mailbox.LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := mailbox.Verify(f)
	if err != nil {
		t.Fatalf("the kept ledger: %v", err)
	}
	done, _ := filepath.Glob(filepath.Join(dir, "vendor-b", "cur", "*:2,*S*"))
	if len(done) == 0 || v.Lines < res.Messages*3 {
		t.Errorf("%d handled messages in vendor-b/cur, %d ledger lines for %d messages", len(done), v.Lines, res.Messages)
	}
	if _, err := Keep(dir, s); err == nil {
		t.Error("keeping into an existing folder was not refused")
	}
}

// TestHumanCoversASplitNeed: a need bought in parts whose total passes the
// threshold is approved by the human once, for the whole, and all of it is
// bought.
func TestHumanCoversASplitNeed(t *testing.T) {
	s := load(t, "../../testdata/sim/two-vendors-split.toml")
	s.Policy.ApprovalOver = mailbox.MustMoney("5000.00 USD")
	res, err := Run(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	units := int64(0)
	for _, o := range res.Orders {
		units += o.Quantity
	}
	if units != 1000 || len(res.Violations) > 0 {
		t.Errorf("bought %d of 1000 (%+v), violations %v", units, res.Orders, res.Violations)
	}
}

// TestPartialOrders: where the budget cannot pay for the whole need, the
// buyer buys the part it can — unless the policy's
// negotiation.partial_orders is off: then nothing, and the human is told.
func TestPartialOrders(t *testing.T) {
	no := false
	for _, tt := range []struct {
		name    string
		partial *bool
		units   int64 // bought, at least
		deal    bool
	}{
		{"default", nil, 600, true},
		{"off", &no, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := load(t, "../../testdata/sim/budget-binds.toml")
			s.Policy.PartialOrders = tt.partial
			live, err := policy.Parse("policy.toml", s.PolicyFile())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := live.Negotiation.Partial(), tt.partial == nil; got != want {
				t.Errorf("the live run's policy file: Partial()=%v, want %v", got, want)
			}
			res, err := Run(s, Options{})
			if err != nil {
				t.Fatal(err)
			}
			units := int64(0)
			for _, o := range res.Orders {
				units += o.Quantity
			}
			if res.Deal != tt.deal || units < tt.units || units >= s.Need.Quantity || len(res.Violations) > 0 {
				t.Errorf("deal %v, bought %d of %d (%+v), violations %v; want deal %v, at least %d and not all",
					res.Deal, units, s.Need.Quantity, res.Orders, res.Violations, tt.deal, tt.units)
			}
			if !tt.deal && !res.HumanTold {
				t.Error("no deal, and the human was not told")
			}
		})
	}
}

// TestFirstBuyerBuysInParts: the first-acceptable baseline takes the first
// quote, and the rest of a need no one vendor serves from those that came
// after.
func TestFirstBuyerBuysInParts(t *testing.T) {
	res, err := Run(load(t, "../../testdata/sim/two-vendors-split.toml"), Options{Buyer: "first", Shuffle: true, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	units := int64(0)
	for _, o := range res.Orders {
		units += o.Quantity
	}
	if units != 1000 {
		t.Errorf("bought %d of 1000: %+v", units, res.Orders)
	}
}

// TestParleyBeatsTheBaselinesInAnyOrder: on the same deals and seeds,
// parley's strategy keeps more for the buyer than every baseline — on
// average and at least as much in three deals of four — at an agreement
// rate within a point of the best, whether the vendors' answers arrive in
// the order they were sent or shuffled. The baselines press every vendor
// too.
func TestParleyBeatsTheBaselinesInAnyOrder(t *testing.T) {
	ss := make([]*agents.Scenario, 240)
	for i := range ss {
		ss[i] = Generate(9, i)
	}
	for _, shuffle := range []bool{false, true} {
		play := func(buyer string) (float64, float64, []*Result) {
			var rs []*Result
			err := RunAll(ss, Options{Buyer: buyer, Shuffle: shuffle}, 1, 2, func(_ int, r *Result) error {
				rs = append(rs, r)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return MeanUB(rs), Summarize(buyer, "", rs, 1, 0).AgreementRate, rs
		}
		ours, agreed, mine := play("parley")
		for _, b := range Buyers[1:] {
			theirs, theirAgreement, rs := play(b)
			if theirs >= ours || theirAgreement > agreed+0.01 {
				t.Errorf("shuffled %v: %s keeps %.2f a deal at agreement %.3f; parley %.2f at %.3f", shuffle, b, theirs, theirAgreement, ours, agreed)
			}
			// Deal for deal, not only as a mean (issue 17's bar: 75%).
			if pd := Compare(mine, rs); pd.AtLeast() < 0.75 {
				t.Errorf("shuffled %v: parley at least as good as %s in %.3f of deals (%+v), want 0.75", shuffle, b, pd.AtLeast(), pd)
			}
		}
	}
}

// TestNoCounterPastThePolicy: parley never sends a vendor more
// counter-offers on a thread than the policy allows — pressing, buying in
// parts, or one vendor at a time after the others — and no message of its
// is refused by the policy.
func TestNoCounterPastThePolicy(t *testing.T) {
	// The best quote can serve all; the second only part, and goes lower.
	s := load(t, "../../testdata/sim/two-vendors-split.toml")
	s.Vendors[0].Capacity, s.Vendors[0].ListPrice, s.Vendors[0].Floor = 1000, mailbox.MustMoney("5.00 USD"), mailbox.MustMoney("4.00 USD")
	s.Vendors[1].ListPrice, s.Vendors[1].Floor = mailbox.MustMoney("5.20 USD"), mailbox.MustMoney("3.50 USD")
	s.Buyer.Rounds = 4
	scenarios := []*agents.Scenario{s}
	for i := range 300 {
		scenarios = append(scenarios, Generate(21, i))
	}
	for _, sc := range scenarios {
		var refused []string
		keep := func(e mailbox.Entry, _ *mailbox.Message) {
			if e.Event == policy.EventDecision && e.Agent == "procurement" && e.Decision == string(policy.Deny) {
				refused = append(refused, e.Verb+" to "+e.To+": "+e.Rule)
			}
		}
		res, err := Run(sc, Options{Keep: keep})
		if err != nil {
			t.Fatal(err)
		}
		// A feasible deal may be lost to a vendor that walks away when
		// pressed (the generated pool has them); the hand-made one may not.
		if len(refused) > 0 || (res.Feasible && !res.Deal && sc == s) {
			t.Errorf("%s (%s): refused %v, deal %v", sc.Name, sc.Regime, refused, res.Deal)
		}
	}
}

// TestLeaks: the leak check reads every number an outbound message states
// after setting aside the message's own fields (its quantity, the need's,
// its delivery day): a number that is only the message's quantity tells
// nothing, whatever secret it happens to equal; a secret or a rival's
// quote stated anywhere else is a leak.
func TestLeaks(t *testing.T) {
	s := load(t, "../../testdata/sim/two-vendors-split.toml")
	s.Need.Quantity = 250
	s.Policy.Budget = mailbox.MustMoney("3000.00 USD") // 12.00 a unit
	deliver := time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC)
	counter := func(qty int64, price, text string) *mailbox.Message {
		return &mailbox.Message{From: "procurement", To: "vendor-x", Verb: mailbox.Counter, Quantity: qty,
			UnitPrice: mailbox.MustMoney(price), DeliverBy: deliver, Subject: text}
	}
	rival := &mailbox.Message{From: "vendor-y", To: "procurement", Verb: mailbox.Quote, UnitPrice: mailbox.MustMoney("5.29 USD")}
	tests := []struct {
		name string
		m    *mailbox.Message
		want string // "" for no leak
	}{
		{"a quantity equal to the unit budget", counter(12, "5.78 USD", "COUNTER: 12 widget at 5.78 USD each"), ""},
		{"a delivery day equal to the unit budget", func() *mailbox.Message {
			m := counter(200, "5.78 USD", "COUNTER: 200 widget at 5.78 USD, delivered December 12")
			m.DeliverBy = time.Date(2026, 12, 12, 0, 0, 0, 0, time.UTC)
			return m
		}(), ""},
		{"the unit budget said in the text", counter(200, "5.78 USD", "Our budget is 12.00 a unit."), "the budget per unit (12)"},
		{"the unit budget as the counter-offer", counter(200, "12.00 USD", "COUNTER: 200 widget at 12.00 USD each"), "the budget per unit (12)"},
		{"the budget said", counter(200, "5.78 USD", "We have 3000 to spend."), "the budget (3000)"},
		{"a rival's quote said", counter(200, "5.78 USD", "Another vendor offers 5.29."), "vendor-y's quote (5.29)"},
		{"a rival's quote as the quantity's neighbour", counter(5, "5.78 USD", "COUNTER: 5 widget at 5.78 USD each"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &run{s: s, said: []*mailbox.Message{rival, tt.m}}
			got := strings.Join(r.leaks(), "; ")
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("leaks() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestFormulaLeaks: counter-offers that keep to one multiple of the
// lowest rival quote in a round are found, however the quotes vary; offers
// spread wide are not; and parley's own over a generated suite are not.
func TestFormulaLeaks(t *testing.T) {
	spread := func(i int) float64 { return 0.6 + float64((i*7919)%600)/1000 } // 0.600 to 1.199
	tests := []struct {
		name            string
		ratio           func(i int) float64
		atLeast, atMost int // results marked: the wide offers that fall near 0.93 are marked too
	}{
		{"one multiple of the lowest quote, every other offer", func(i int) float64 {
			if i%2 == 0 {
				return 0.93 * (1 + float64(i%5)/2000) // 0.93, rounded to cents by the quotes
			}
			return spread(i)
		}, 100, 110},
		{"offers spread wide", spread, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rs []*Result
			for i := range 200 {
				rs = append(rs, &Result{Counters: []Counter{{Round: 2, Ratio: tt.ratio(i)}}})
			}
			if got := FormulaLeaks(rs); got < tt.atLeast || got > tt.atMost {
				t.Errorf("FormulaLeaks() marked %d results, want %d to %d", got, tt.atLeast, tt.atMost)
			}
		})
	}
	var rs []*Result
	err := RunAll(generated(17, 600), Options{}, 1, 2, func(_ int, r *Result) error {
		rs = append(rs, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	counters := 0
	for _, r := range rs {
		counters += len(r.Counters)
	}
	if got := FormulaLeaks(rs); got != 0 || counters < 5000 {
		t.Errorf("parley's %d counter-offers over 600 deals: %d deals marked, want none", counters, got)
	}
}

func generated(seed uint64, n int) []*agents.Scenario {
	ss := make([]*agents.Scenario, n)
	for i := range ss {
		ss[i] = Generate(seed, i)
	}
	return ss
}

// TestSameWinnerShuffled: the same quotes arriving in another order pick
// the same vendors (NEGOTIATION.md's first-proposal bias, which must be
// nil).
func TestSameWinnerShuffled(t *testing.T) {
	ss := generated(23, 300)
	winners := func(shuffle bool) []string {
		out := make([]string, len(ss))
		err := RunAll(ss, Options{Shuffle: shuffle}, 3, 2, func(i int, r *Result) error {
			var vs []string
			for _, o := range r.Orders {
				vs = append(vs, o.Vendor)
			}
			slices.Sort(vs)
			out[i] = strings.Join(vs, "+")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	arrival, shuffled := winners(false), winners(true)
	for i := range ss {
		if arrival[i] != shuffled[i] {
			t.Errorf("%s: %q in arrival order, %q shuffled", ss[i].Name, arrival[i], shuffled[i])
		}
	}
}

// TestScoreInvariants: the hard invariants score() finds in a deal's
// orders, case by case.
func TestScoreInvariants(t *testing.T) {
	s := load(t, "../../testdata/sim/two-vendors-split.toml") // v 10.00, budget 20,000.00
	tests := []struct {
		name   string
		orders []Order
		want   string // "" for none
	}{
		{"within everything", []Order{{Vendor: "vendor-x", Quantity: 600, UnitPrice: "6.50", Amount: "3900.00", Day: 1}}, ""},
		{"above the ceiling", []Order{{Vendor: "vendor-x", Quantity: 10, UnitPrice: "10.50", Amount: "105.00", Day: 1}}, "above the ceiling 10.00 USD"},
		{"a loss", []Order{{Vendor: "vendor-y", Quantity: 600, UnitPrice: "9.00", Amount: "5400.00", Day: 1},
			{Vendor: "vendor-x", Quantity: 400, UnitPrice: "12.00", Amount: "4800.00", Day: 1}}, "less than it paid"},
		{"above the budget", []Order{{Vendor: "vendor-x", Quantity: 3000, UnitPrice: "7.00", Amount: "21000.00", Day: 1}}, "above the budget"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &run{s: s, res: &Result{Orders: tt.orders, Violations: []string{}, Oracle: Solve(s)}}
			r.score()
			got := strings.Join(r.res.Violations, "; ")
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("violations %q, want %q", got, tt.want)
			}
		})
	}
}
