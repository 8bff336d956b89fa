package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/agents/llm"
	"github.com/parley-dev/parley/agents/sim"
	"github.com/urfave/cli/v2"
)

func simulateCommand() *cli.Command {
	return &cli.Command{
		Name:      "simulate",
		Usage:     "play many deals in one process, with mock data, and score them",
		ArgsUsage: " ",
		Description: `Plays procurement deals in one process over an in-memory mailbox with a
simulated clock, through the same roles and the same policy checks as a live
run, and scores each against the exact optimum: whether a deal was made when
one was possible, how much of the surplus the buyer kept, and that no hard
rule was broken (docs/SIMULATION.md).

The deals are generated (--generate N --seed S), every regime in turn —
` + strings.Join(sim.Regimes, ", ") + ` —
each vendor's style drawn from the whole pool of docs/SIMULATION.md; or read
from scenario files (--scenarios DIR). The same seed plays the same deals.

With --brain ollama, procurement, the vendors and finance run on a model
(--model, --host, --llm): every call is counted, and the summary gives calls
and tokens per deal.

Example:
   parley simulate --generate 10000 --seed 1
   parley simulate --scenarios testdata/scenarios --json
   parley simulate --generate 60 --brain ollama --model llama3.2 --llm decide
   parley simulate --generate 10000 --compare
   parley simulate --generate 10000 --only gen-1-1202 --keep /tmp/sim
   parley --root /tmp/sim/gen-1-1202 thread sim-gen-1-1202`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "generate", Usage: "play N generated scenarios"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "the seed of the generated scenarios and of --order shuffle"},
			&cli.StringFlag{Name: "scenarios", Usage: "play the scenario files (*.toml) in `DIR`"},
			&cli.StringFlag{Name: "order", Value: "arrival", Usage: "the order messages in flight are delivered in: arrival or shuffle"},
			&cli.StringFlag{Name: "buyer", Value: "parley", Usage: "procurement's strategy: " + strings.Join(sim.Buyers, ", ")},
			&cli.BoolFlag{Name: "compare", Usage: "play every buyer strategy on the same deals, and compare them"},
			&cli.StringFlag{Name: "only", Usage: "play only the scenario with this `ID` (as the table or --json names it)"},
			&cli.StringFlag{Name: "keep", Usage: "write each scenario's run as a real root under `DIR` (DIR/ID/), for parley status, thread, why"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per scenario, then the summaries"},
			&cli.StringFlag{Name: "brain", Value: "rules", Usage: "rules, or ollama"},
			&cli.StringFlag{Name: "model", Usage: "with --brain ollama: the model"},
			&cli.StringFlag{Name: "host", Usage: "with --brain ollama: host:port (default OLLAMA_HOST, else 127.0.0.1:11434)"},
			&cli.StringFlag{Name: "llm", Value: "narrate", Usage: "with --brain ollama: narrate or decide"},
			&cli.DurationFlag{Name: "timeout", Value: 60 * time.Second, Usage: "with --brain ollama: for one call"},
		},
		// No root is needed: the deals are played in memory. The root's
		// prompts/ are read by --brain ollama when there are any.
		Action: func(c *cli.Context) error {
			if err := needArgs(c, 0, 0, "no arguments"); err != nil {
				return err
			}
			e := &env{stdout: c.App.Writer, stderr: c.App.ErrWriter}
			scenarios, err := simScenarios(c)
			if err != nil {
				return err
			}
			opt := sim.Options{Shuffle: c.String("order") == "shuffle", Root: c.String("root"), Buyer: c.String("buyer")}
			if !slices.Contains(sim.Buyers, opt.Buyer) {
				return usageError{fmt.Errorf("--buyer is one of %s, not %q", strings.Join(sim.Buyers, ", "), opt.Buyer)}
			}
			if o := c.String("order"); o != "arrival" && o != "shuffle" {
				return usageError{fmt.Errorf("--order is arrival or shuffle, not %q", o)}
			}
			switch c.String("brain") {
			case "rules":
			case "ollama":
				if c.String("llm") != "narrate" && c.String("llm") != "decide" {
					return usageError{fmt.Errorf("--llm is narrate or decide, not %q", c.String("llm"))}
				}
				client, err := llm.New(llm.Config{Model: c.String("model"), Host: c.String("host"), Timeout: c.Duration("timeout"), MaxTokens: 512})
				if err != nil {
					return withHint(err, "give --model, one that ollama list shows (parley doctor checks the agents' own)")
				}
				opt.Ask = func(ctx context.Context, _ string, call llm.Call) (llm.Answer, error) { return client.Ask(ctx, call) }
				opt.LLM = c.String("llm")
			default:
				return usageError{fmt.Errorf("--brain is rules or ollama, not %q", c.String("brain"))}
			}
			return simulate(c, e, scenarios, opt)
		},
	}
}

// simScenarios are the scenarios to play: generated, or from files, or
// the one --only names.
func simScenarios(c *cli.Context) ([]*agents.Scenario, error) {
	all, err := allScenarios(c)
	if err != nil || c.String("only") == "" {
		return all, err
	}
	for i, s := range all {
		if s.Name == c.String("only") {
			return all[i : i+1], nil
		}
	}
	return nil, withHint(fmt.Errorf("no scenario %s among those played", c.String("only")), "the ids are in the table and in --json; a generated one needs the same --generate and --seed")
}

func allScenarios(c *cli.Context) ([]*agents.Scenario, error) {
	n, dir := c.Int("generate"), c.String("scenarios")
	switch {
	case n > 0 && dir != "":
		return nil, usageError{fmt.Errorf("give --generate or --scenarios, not both")}
	case n > 0:
		out := make([]*agents.Scenario, n)
		for i := range out {
			out[i] = sim.Generate(c.Uint64("seed"), i)
		}
		return out, nil
	case dir != "":
		files, err := filepath.Glob(filepath.Join(dir, "*.toml"))
		if err != nil || len(files) == 0 {
			return nil, withHint(fmt.Errorf("no scenario files (*.toml) in %s", dir), "testdata/scenarios has examples; docs/SCENARIOS.md describes the file")
		}
		var out []*agents.Scenario
		for _, f := range files {
			s, err := agents.LoadScenario(f)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, usageError{fmt.Errorf("say what to play: --generate N, or --scenarios DIR")}
}

// play runs every scenario with opt, seeded by its place in the list, and
// prints each result with --json.
func play(c *cli.Context, e *env, scenarios []*agents.Scenario, opt sim.Options, label string) ([]*sim.Result, time.Duration, error) {
	progress := len(scenarios) >= 1000 && isTerminal(e.stderr)
	results := make([]*sim.Result, 0, len(scenarios))
	keep := c.String("keep")
	if keep != "" && len(scenarios) > 100 {
		return nil, 0, withHint(fmt.Errorf("--keep writes a root for each of the %d scenarios", len(scenarios)), "pick one with --only ID, or play at most 100")
	}
	each := func(i int, r *sim.Result) error {
		r.Buyer = label
		results = append(results, r)
		if progress && (i+1)%500 == 0 {
			fmt.Fprintf(e.stderr, "\r%s: played %d of %d", label, i+1, len(scenarios))
		}
		return c.Context.Err()
	}
	start := time.Now()
	if keep == "" && opt.Ask == nil {
		// The runs share nothing: every core plays. (A model on one
		// server answers one call at a time; those runs go one by one.)
		if err := sim.RunAll(scenarios, opt, c.Uint64("seed"), runtime.GOMAXPROCS(0), each); err != nil {
			return nil, 0, err
		}
		scenarios = nil
	}
	for i, s := range scenarios {
		if err := c.Context.Err(); err != nil {
			return nil, 0, err
		}
		opt.Seed = c.Uint64("seed") + uint64(i)
		var k *sim.Keeper
		if keep != "" {
			dir := filepath.Join(keep, s.Name)
			if c.Bool("compare") {
				dir = filepath.Join(keep, label, s.Name)
			}
			var err error
			if k, err = sim.Keep(dir, s); err != nil {
				return nil, 0, err
			}
			opt.Keep = k.Record
		}
		r, err := sim.Run(s, opt)
		if k != nil {
			if cerr := k.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return nil, 0, err
		}
		if err := each(i, r); err != nil {
			return nil, 0, err
		}
	}
	elapsed := time.Since(start)
	// Whether offers follow a formula of rivals' quotes shows over the
	// suite, not in one deal: the results are printed once it is known.
	sim.FormulaLeaks(results)
	if c.Bool("json") {
		for _, r := range results {
			if err := printJSON(e.stdout, r); err != nil {
				return nil, 0, err
			}
		}
	}
	if progress {
		fmt.Fprintf(e.stderr, "\r%40s\r", "")
	}
	if keep != "" && !c.Bool("json") {
		fmt.Fprintf(e.stderr, "kept %d run(s) under %s: parley --root %s status\n", len(results), keep, filepath.Join(keep, results[0].Scenario))
	}
	return results, elapsed, nil
}

func simulate(c *cli.Context, e *env, scenarios []*agents.Scenario, opt sim.Options) error {
	if c.Bool("compare") {
		return compare(c, e, scenarios, opt)
	}
	buyer := opt.Buyer
	if opt.Ask != nil {
		buyer += "+" + opt.LLM
	}
	results, elapsed, err := play(c, e, scenarios, opt, buyer)
	if err != nil {
		return err
	}
	all := sim.Summarize(buyer, "", results, c.Uint64("seed"), elapsed)
	byRegime, byStyle := map[string][]*sim.Result{}, map[string][]*sim.Result{}
	for _, r := range results {
		byRegime[r.Regime] = append(byRegime[r.Regime], r)
		byStyle[r.Style] = append(byStyle[r.Style], r)
	}
	regimes, styles := slices.Sorted(maps.Keys(byRegime)), slices.Sorted(maps.Keys(byStyle))
	if c.Bool("json") {
		for _, r := range regimes {
			if r != "" {
				if err := printJSON(e.stdout, sim.Summarize(buyer, r, byRegime[r], c.Uint64("seed"), 0)); err != nil {
					return err
				}
			}
		}
		for _, st := range styles {
			sum := sim.Summarize(buyer, "", byStyle[st], c.Uint64("seed"), 0)
			sum.Style = st
			if err := printJSON(e.stdout, sum); err != nil {
				return err
			}
		}
		return printJSON(e.stdout, all)
	}
	if len(scenarios) <= 20 {
		printResults(e.stdout, results)
	}
	printSummaries(e.stdout, buyer, "REGIME", regimes, byRegime, all, c.Uint64("seed"))
	fmt.Fprintln(e.stdout)
	printSummaries(e.stdout, buyer, "BEST VENDOR'S STYLE", styles, byStyle, all, c.Uint64("seed"))
	if all.Violations > 0 {
		return fmt.Errorf("%d hard invariants broken (run with --json to see which)", all.Violations)
	}
	return nil
}

func printResults(w io.Writer, results []*sim.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tREGIME\tFEASIBLE\tDEAL\tU_B\tW*\tBSS\tROUNDS\tVIOLATIONS")
	for _, r := range results {
		deal := "no"
		if r.Deal {
			o := r.Orders[0]
			deal = fmt.Sprintf("%d from %s at %s", o.Quantity, o.Vendor, o.UnitPrice)
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\t%.3f\t%d\t%d\n", r.Scenario, r.Regime, r.Feasible, deal, r.UB.StringFixed(2), r.Oracle.WStar.StringFixed(2), r.BSS, r.Rounds, len(r.Violations))
	}
	tw.Flush()
	fmt.Fprintln(w)
}

func printSummaries(w io.Writer, buyer, by1 string, regimes []string, by map[string][]*sim.Result, all sim.Summary, seed uint64) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, by1+"\tSCENARIOS\tFEASIBLE\tAGREEMENT\tWALK-AWAY\tBSS\tVCG RATIO\tEFFICIENCY\tROUNDS\tVIOLATIONS")
	row := func(name string, s sim.Summary) {
		walk := "-"
		if s.Scenarios > s.Feasible {
			walk = fmt.Sprintf("%.3f", s.WalkawayRate)
		}
		agree, bss, vcg := "-", "-", "-"
		if s.Feasible > 0 {
			agree, bss = fmt.Sprintf("%.3f", s.AgreementRate), fmt.Sprintf("%.3f", s.BSS)
		}
		if s.VCGRatio > 0 {
			vcg = fmt.Sprintf("%.3f", s.VCGRatio)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%.3f\t%.1f\t%d\n", name, s.Scenarios, s.Feasible, agree, walk, bss, vcg, s.Efficiency, s.Rounds, s.Violations)
	}
	for _, r := range regimes {
		if r != "" {
			row(r, sim.Summarize(buyer, r, by[r], seed, 0))
		}
	}
	row("all", all)
	tw.Flush()
	if by1 != "REGIME" {
		return
	}
	fmt.Fprintf(w, "\nbuyer %s: agreement %.3f [%.3f, %.3f], buyer surplus share %.3f [%.3f, %.3f] (95%% bootstrap), %s deals/s\n",
		buyer, all.AgreementRate, all.AgreementCI[0], all.AgreementCI[1], all.BSS, all.BSSCI[0], all.BSSCI[1], rate(all.DealsPerSecond))
	if all.Calls > 0 {
		fmt.Fprintf(w, "model: %.1f calls and %.0f tokens per deal\n", all.Calls, all.Tokens)
	}
}

// compare plays every buyer strategy on the same scenarios and seeds, and
// prints one table, each strategy paired with parley's on buyer utility.
func compare(c *cli.Context, e *env, scenarios []*agents.Scenario, opt sim.Options) error {
	runs := map[string][]*sim.Result{}
	sums := map[string]sim.Summary{}
	violations := 0
	for _, b := range sim.Buyers {
		opt.Buyer = b
		results, elapsed, err := play(c, e, scenarios, opt, b)
		if err != nil {
			return err
		}
		runs[b] = results
		sum := sim.Summarize(b, "", results, c.Uint64("seed"), elapsed)
		if b != "parley" {
			pd := sim.Compare(runs["parley"], results)
			sum.VsParley = &pd
		}
		sums[b] = sum
		violations += sums[b].Violations
		if c.Bool("json") {
			if err := printJSON(e.stdout, sums[b]); err != nil {
				return err
			}
		}
	}
	if !c.Bool("json") {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "BUYER\tAGREEMENT\tWALK-AWAY\tBSS\tVCG RATIO\tEFFICIENCY\tMEAN U_B\tPARLEY'S U_B MINUS THIS [95%]\tPARLEY W/T/L\tAT LEAST AS GOOD\tROUNDS\tVIOLATIONS")
		for _, b := range sim.Buyers {
			s := sums[b]
			d, ci := sim.Paired(runs["parley"], runs[b], c.Uint64("seed"))
			paired := fmt.Sprintf("%+.2f [%+.2f, %+.2f]", d, ci[0], ci[1])
			wtl, share := "-", "-"
			if s.VsParley != nil {
				wtl = fmt.Sprintf("%d/%d/%d", s.VsParley.Wins, s.VsParley.Ties, s.VsParley.Losses)
				share = fmt.Sprintf("%.3f", s.VsParley.AtLeast())
			}
			if b == "parley" {
				paired = "-"
			}
			fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.2f\t%s\t%s\t%s\t%.1f\t%d\n", b, s.AgreementRate, s.WalkawayRate, s.BSS, s.VCGRatio, s.Efficiency, sim.MeanUB(runs[b]), paired, wtl, share, s.Rounds, s.Violations)
		}
		tw.Flush()
		fmt.Fprintf(e.stdout, "\n%d scenarios, every buyer on the same deals and seeds (--seed %d, --order %s)\n", len(scenarios), c.Uint64("seed"), c.String("order"))
	}
	if violations > 0 {
		return fmt.Errorf("%d hard invariants broken (run with --json to see which)", violations)
	}
	return nil
}

// rate writes deals per second: whole above a hundred, else with decimals
// (a model's deals take seconds each).
func rate(r float64) string {
	if r >= 100 {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.2f", r)
}
