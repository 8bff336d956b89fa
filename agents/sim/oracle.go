// Package sim plays procurement deals in one process, over an in-memory
// mailbox with a simulated clock, through the same roles and the same
// policy checks as a live run, and scores them against the exact optimum
// (../shared/NEGOTIATION.md; docs/SIMULATION.md).
package sim

import (
	"maps"
	"slices"
	"sort"

	"github.com/parley-dev/parley/agents"
	"github.com/shopspring/decimal"
)

// Oracle is what a scenario allows, computed before any agent runs. All
// amounts are in the scenario's currency, exact.
type Oracle struct {
	// WStar is the largest total surplus over all allocations of the need to
	// vendors (capacity, lead time and the budget at the vendors' floors
	// respected). Prices only move money between the sides, so it does not
	// depend on them. The scenario is feasible when it is above zero.
	WStar decimal.Decimal `json:"w_star"`
	// VCG is the buyer's utility in a truthful sealed-bid reverse auction,
	// the multi-unit form: W* less every winner's marginal contribution.
	VCG decimal.Decimal `json:"u_b_vcg"`
	// Posted is the buyer's utility from accepting the best list quote,
	// with no negotiation.
	Posted decimal.Decimal `json:"u_b_post"`
	// Capable counts the vendors with a positive standalone surplus.
	Capable int `json:"capable"`
	// Alloc is an allocation that reaches WStar: vendor to units.
	Alloc map[string]int64 `json:"alloc"`
}

// Feasible reports whether a deal is possible at all.
func (o Oracle) Feasible() bool { return o.WStar.Sign() > 0 }

// late is how many days after the deadline vendor v delivers, ordering on
// day 0.
func late(s *agents.Scenario, v agents.ScenarioVendor) int64 {
	return int64(max(0, v.LeadDays-s.Need.DeliverWithinDays))
}

// worth is what one unit from v is worth to the buyer: its value, less the
// late penalty. Without a late penalty the deadline is hard: a late unit is
// worth nothing (and parley's vendors decline what they cannot deliver in
// time).
func worth(s *agents.Scenario, v agents.ScenarioVendor) decimal.Decimal {
	return unitWorth(s, late(s, v))
}

func unitWorth(s *agents.Scenario, lateDays int64) decimal.Decimal {
	if lateDays > 0 && s.Buyer.LatePenalty.IsZero() {
		return decimal.Zero
	}
	if lateDays == 0 {
		return decimal.Max(s.Buyer.Value.Amount, decimal.Zero) // the value less no penalty: the same number
	}
	w := s.Buyer.Value.Amount.Sub(s.Buyer.LatePenalty.Amount.Mul(decimal.NewFromInt(lateDays)))
	return decimal.Max(w, decimal.Zero)
}

// usable reports whether a vendor can be part of a deal: it answers, in the
// buyer's currency, at a floor the buyer's ceiling allows.
func usable(s *agents.Scenario, v agents.ScenarioVendor) bool {
	if v.Silent || v.Floor.Currency != s.Buyer.Value.Currency || v.Capacity <= 0 {
		return false
	}
	c := s.Ceiling()
	return c.IsZero() || !v.Floor.Amount.GreaterThan(c.Amount)
}

// affordable is how many units at price fit in budget (all, when there is
// no budget).
func affordable(budget, price decimal.Decimal, want int64) int64 {
	if budget.Sign() <= 0 || price.Sign() <= 0 {
		return want
	}
	return min(want, budget.Div(price).Floor().IntPart())
}

// Solve computes the oracle of a scenario.
//
// W* is found greedily, twice — units to the vendors with the largest
// surplus per unit first, and with the largest surplus per unit of money
// first — and the better kept. The first is exact when the budget does not
// bind at the floors; the second when the budget binds before the need
// does (the budget-binds regime); both are allocations that exist, so in
// a hand-written scenario where both bind W* is a lower bound.
//
// The VCG benchmark is the multi-unit one: each winner is paid its cost
// plus its marginal contribution W* − W*₋ᵢ (the best total without it),
// and the buyer keeps W* − Σ (W* − W*₋ᵢ), at least 0. With one winner that
// is the best that others could do without it: the second-best vendor's
// standalone surplus, when it alone can serve the need.
func Solve(s *agents.Scenario) Oracle {
	o := Oracle{VCG: decimal.Zero, Posted: decimal.Zero}
	all := candidates(s) // worked out once for W* and every W*₋ᵢ
	o.WStar, o.Alloc = best(s, all, "")
	budget := s.Policy.Budget.Amount
	n := s.Need.Quantity
	for _, v := range s.Vendors {
		if !usable(s, v) {
			continue
		}
		w := worth(s, v)
		if w.Sub(v.Floor.Amount).Sign() > 0 {
			o.Capable++
		}
		// The posted price: the best list quote taken as it is.
		q := affordable(budget, v.ListPrice.Amount, min(v.Capacity, n))
		if u := w.Sub(v.ListPrice.Amount).Mul(decimal.NewFromInt(q)); u.GreaterThan(o.Posted) {
			o.Posted = u
		}
	}
	if o.Capable >= 2 {
		o.VCG = o.WStar
		for _, v := range slices.Sorted(maps.Keys(o.Alloc)) {
			without, _ := best(s, all, v)
			o.VCG = o.VCG.Sub(o.WStar.Sub(without))
		}
		o.VCG = decimal.Max(o.VCG, decimal.Zero)
	}
	return o
}

// cand is a vendor that makes a surplus at its floor.
type cand struct {
	v       agents.ScenarioVendor
	surplus decimal.Decimal // per unit, at the floor
	ratio   decimal.Decimal // per unit of money paid at the floor
}

// candidates are the scenario's usable vendors that make a surplus at
// their floor, in the scenario's order.
func candidates(s *agents.Scenario) []cand {
	var cs []cand
	for _, v := range s.Vendors {
		if !usable(s, v) {
			continue
		}
		if per := worth(s, v).Sub(v.Floor.Amount); per.Sign() > 0 {
			cs = append(cs, cand{v, per, per.DivRound(v.Floor.Amount, 12)})
		}
	}
	return cs
}

// best is the largest total surplus over the allocations of the need to
// the candidates but except, and one allocation that reaches it.
func best(s *agents.Scenario, all []cand, except string) (decimal.Decimal, map[string]int64) {
	cs := make([]cand, 0, len(all)) // a copy: the greedy passes sort it
	for _, c := range all {
		if c.v.Name != except {
			cs = append(cs, c)
		}
	}
	greedy := func(by func(c cand) decimal.Decimal) (decimal.Decimal, map[string]int64) {
		sort.SliceStable(cs, func(i, j int) bool {
			if c := by(cs[i]).Cmp(by(cs[j])); c != 0 {
				return c > 0
			}
			return cs[i].v.Name < cs[j].v.Name
		})
		budget := s.Policy.Budget.Amount
		total, alloc := decimal.Zero, map[string]int64{}
		left, spend := s.Need.Quantity, budget
		for _, c := range cs {
			if left == 0 {
				break
			}
			q := min(c.v.Capacity, left)
			if budget.Sign() > 0 {
				if spend.Sign() <= 0 {
					break // the budget is spent
				}
				q = affordable(spend, c.v.Floor.Amount, q)
				spend = spend.Sub(c.v.Floor.Amount.Mul(decimal.NewFromInt(q)))
			}
			if q <= 0 {
				continue
			}
			alloc[c.v.Name] = q
			total = total.Add(c.surplus.Mul(decimal.NewFromInt(q)))
			left -= q
		}
		return total, alloc
	}
	w1, a1 := greedy(func(c cand) decimal.Decimal { return c.surplus })
	w2, a2 := greedy(func(c cand) decimal.Decimal { return c.ratio })
	if w2.GreaterThan(w1) {
		return w2, a2
	}
	return w1, a1
}
