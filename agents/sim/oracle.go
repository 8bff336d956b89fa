// Package sim plays procurement deals in one process, over an in-memory
// mailbox with a simulated clock, through the same roles and the same
// policy checks as a live run, and scores them against the exact optimum
// (../shared/NEGOTIATION.md; docs/SIMULATION.md).
package sim

import (
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
	// VCG is the buyer's utility in a truthful sealed-bid reverse auction
	// with one winner: the second-best vendor's standalone surplus.
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
// W* is found greedily: units go to the vendors with the largest surplus
// per unit first. That is exact whenever the budget does not bind at the
// floors, which the generator ensures; when it binds (a hand-written
// scenario), the greedy allocation is a lower bound.
func Solve(s *agents.Scenario) Oracle {
	o := Oracle{WStar: decimal.Zero, VCG: decimal.Zero, Posted: decimal.Zero, Alloc: map[string]int64{}}
	type cand struct {
		v       agents.ScenarioVendor
		surplus decimal.Decimal // per unit, at the floor
	}
	var cs []cand
	var alone []decimal.Decimal
	budget := s.Policy.Budget.Amount
	n := s.Need.Quantity
	for _, v := range s.Vendors {
		if !usable(s, v) {
			continue
		}
		w := worth(s, v)
		if per := w.Sub(v.Floor.Amount); per.Sign() > 0 {
			cs = append(cs, cand{v, per})
			q := affordable(budget, v.Floor.Amount, min(v.Capacity, n))
			alone = append(alone, per.Mul(decimal.NewFromInt(q)))
		}
		// The posted price: the best list quote taken as it is.
		q := affordable(budget, v.ListPrice.Amount, min(v.Capacity, n))
		if u := w.Sub(v.ListPrice.Amount).Mul(decimal.NewFromInt(q)); u.GreaterThan(o.Posted) {
			o.Posted = u
		}
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if c := cs[i].surplus.Cmp(cs[j].surplus); c != 0 {
			return c > 0
		}
		return cs[i].v.Name < cs[j].v.Name
	})
	left, spend := n, budget
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
		o.Alloc[c.v.Name] = q
		o.WStar = o.WStar.Add(c.surplus.Mul(decimal.NewFromInt(q)))
		left -= q
	}
	o.Capable = len(alone)
	sort.Slice(alone, func(i, j int) bool { return alone[i].GreaterThan(alone[j]) })
	if len(alone) >= 2 {
		o.VCG = alone[1]
	}
	return o
}
