package sim

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/shopspring/decimal"
)

// Summary aggregates the results of one buyer strategy (NEGOTIATION.md's
// metrics). Rates and shares are fractions; each interval is a 95%
// bootstrap interval of the mean.
type Summary struct {
	Type           string     `json:"type"` // "summary"
	Buyer          string     `json:"buyer"`
	Regime         string     `json:"regime,omitempty"` // empty: every scenario
	Style          string     `json:"style,omitempty"`  // the best vendor's style, when summarised by style
	Scenarios      int        `json:"scenarios"`
	Feasible       int        `json:"feasible"`
	Deals          int        `json:"deals"`
	AgreementRate  float64    `json:"agreement_rate"` // deals on feasible scenarios
	AgreementCI    [2]float64 `json:"agreement_ci"`
	WalkawayRate   float64    `json:"walkaway_rate"` // no deal and the human told, on infeasible ones
	BSS            float64    `json:"buyer_surplus_share"`
	BSSCI          [2]float64 `json:"buyer_surplus_share_ci"`
	VCGRatio       float64    `json:"vcg_ratio"`  // Σ U_b / Σ U_b^VCG where two or more vendors are capable
	Efficiency     float64    `json:"efficiency"` // mean over feasible scenarios
	Violations     int        `json:"violations"`
	Rounds         float64    `json:"rounds_per_deal"`
	Messages       float64    `json:"messages_per_deal"`
	Calls          float64    `json:"model_calls_per_deal,omitempty"`
	Tokens         float64    `json:"model_tokens_per_deal,omitempty"`
	DealsPerSecond float64    `json:"deals_per_second,omitempty"`
	// VsParley is parley's record against this buyer, deal by deal (with
	// --compare).
	VsParley *PerDeal `json:"parley_vs_this,omitempty"`
}

// Summarize aggregates results; seed draws the bootstrap resamples.
func Summarize(buyer, regime string, rs []*Result, seed uint64, elapsed time.Duration) Summary {
	s := Summary{Type: "summary", Buyer: buyer, Regime: regime, Scenarios: len(rs)}
	var agreed, bss, eff []float64
	var infeasible, walked int
	var rounds, messages, calls, tokens int
	ub, vcg := decimal.Zero, decimal.Zero
	for _, r := range rs {
		s.Violations += len(r.Violations)
		if r.Deal {
			s.Deals++
			rounds += r.Rounds
			messages += r.Messages
		}
		calls += r.Calls
		tokens += r.Tokens
		if !r.Feasible {
			infeasible++
			if !r.Deal && r.HumanTold {
				walked++
			}
			continue
		}
		s.Feasible++
		agreed = append(agreed, b2f(r.Deal))
		bss = append(bss, r.BSS)
		eff = append(eff, r.Efficiency)
		if r.Oracle.Capable >= 2 {
			ub, vcg = ub.Add(r.UB), vcg.Add(r.Oracle.VCG)
		}
	}
	s.AgreementRate, s.AgreementCI = mean(agreed), bootstrap(agreed, seed)
	s.BSS, s.BSSCI = mean(bss), bootstrap(bss, seed+1)
	s.Efficiency = mean(eff)
	if infeasible > 0 {
		s.WalkawayRate = float64(walked) / float64(infeasible)
	}
	if vcg.Sign() > 0 {
		s.VCGRatio = ub.Div(vcg).InexactFloat64()
	}
	if s.Deals > 0 {
		s.Rounds = float64(rounds) / float64(s.Deals)
		s.Messages = float64(messages) / float64(s.Deals)
		s.Calls = float64(calls) / float64(s.Deals)
		s.Tokens = float64(tokens) / float64(s.Deals)
	}
	if elapsed > 0 {
		s.DealsPerSecond = float64(len(rs)) / elapsed.Seconds()
	}
	return s
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// bootstrap is the 95% percentile interval of the mean of xs over 1,000
// resamples drawn with seed.
func bootstrap(xs []float64, seed uint64) [2]float64 {
	if len(xs) == 0 {
		return [2]float64{}
	}
	rng := rand.New(rand.NewPCG(seed, 1998))
	const n = 1000
	means := make([]float64, n)
	for i := range means {
		sum := 0.0
		for range xs {
			sum += xs[rng.IntN(len(xs))]
		}
		means[i] = sum / float64(len(xs))
	}
	slices.Sort(means)
	return [2]float64{means[n*25/1000], means[n*975/1000-1]}
}

// Paired is the mean of the per-scenario difference a.U_b − b.U_b over
// the same scenarios, with its 95% bootstrap interval: how much more a
// strategy keeps than another, deal for deal.
func Paired(a, b []*Result, seed uint64) (float64, [2]float64) {
	d := make([]float64, 0, len(a))
	for i := range a {
		if i < len(b) {
			d = append(d, a[i].UB.Sub(b[i].UB).InexactFloat64())
		}
	}
	return mean(d), bootstrap(d, seed)
}

// MeanUB is the mean buyer utility over all scenarios.
func MeanUB(rs []*Result) float64 {
	sum := decimal.Zero
	for _, r := range rs {
		sum = sum.Add(r.UB)
	}
	if len(rs) == 0 {
		return 0
	}
	return sum.Div(decimal.NewFromInt(int64(len(rs)))).InexactFloat64()
}

// FormulaLeaks finds counter-offers from which a vendor could work out a
// rival's quote by a fixed public formula (NEGOTIATION.md): over the
// results of a suite, round by round, it looks for one multiple of the
// lowest rival quote (within ±0.5%) that the counter-offers of that round
// keep to — in at least a tenth of them, and 30. A buyer whose offer is
// always, say, 0.93 times the lowest quote on the table in round 2 gives
// that quote away to anyone who knows the 0.93; one whose offers come from
// its own value and each vendor's own quotes spreads its ratios wide. Each
// result with such a counter-offer gets a violation. It returns how many
// results it marked. (A suite of a few deals is too small to tell.)
func FormulaLeaks(rs []*Result) int {
	type at struct {
		ratio float64
		r     *Result
	}
	byRound := map[int][]at{}
	for _, r := range rs {
		for _, c := range r.Counters {
			byRound[c.Round] = append(byRound[c.Round], at{c.Ratio, r})
		}
	}
	marked := map[*Result]bool{}
	for _, k := range slices.Sorted(maps.Keys(byRound)) {
		xs := byRound[k]
		slices.SortFunc(xs, func(a, b at) int { return cmp.Compare(a.ratio, b.ratio) })
		need := max(30, len(xs)/10)
		j := 0
		for i := range xs {
			// xs[i:j] are within one percent of xs[i]: all within half a
			// percent of their middle.
			for j < len(xs) && xs[j].ratio <= xs[i].ratio*1.01 {
				j++
			}
			if j-i < need {
				continue
			}
			f := (xs[i].ratio + xs[j-1].ratio) / 2
			for _, x := range xs[i:j] {
				if !marked[x.r] {
					marked[x.r] = true
					x.r.Violations = append(x.r.Violations, fmt.Sprintf("a counter-offer in round %d is %.4f times the lowest rival quote, as in %d of the %d counter-offers of that round: a fixed formula gives that quote away", k, f, j-i, len(xs)))
				}
			}
		}
	}
	return len(marked)
}

// PerDeal counts, over the same scenarios, the deals where a kept more
// for the buyer than b (wins), the same to the cent (ties), and less
// (losses): "better than a baseline" stated deal by deal, not as a mean.
type PerDeal struct {
	Wins   int `json:"wins"`
	Ties   int `json:"ties"`
	Losses int `json:"losses"`
}

// AtLeast is the share of deals where a did at least as well as b.
func (p PerDeal) AtLeast() float64 {
	n := p.Wins + p.Ties + p.Losses
	if n == 0 {
		return 0
	}
	return float64(p.Wins+p.Ties) / float64(n)
}

// Compare is a's record against b, deal by deal.
func Compare(a, b []*Result) PerDeal {
	var p PerDeal
	cent := decimal.New(1, -2)
	for i := range a {
		if i >= len(b) {
			break
		}
		switch d := a[i].UB.Sub(b[i].UB); {
		case d.Abs().LessThan(cent):
			p.Ties++
		case d.Sign() > 0:
			p.Wins++
		default:
			p.Losses++
		}
	}
	return p
}
