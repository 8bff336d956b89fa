package sim

import (
	"testing"

	"github.com/shopspring/decimal"
)

// TestOracleByHand: the oracle of small scenarios, against the values
// worked out by hand in their files' comments and in docs/SIMULATION.md.
func TestOracleByHand(t *testing.T) {
	tests := []struct {
		file               string
		wStar, vcg, posted string
		capable            int
		feasible           bool
	}{
		{"../../testdata/scenarios/restock-widget.toml", "1700", "1525", "1450", 2, true},
		{"../../testdata/scenarios/no-vendor-fits.toml", "0", "0", "0", 0, false},
		{"../../testdata/sim/two-vendors-split.toml", "3600", "600", "1800", 2, true}, // multi-unit VCG: 3600 − 1800 − 1200
		{"../../testdata/sim/budget-binds.toml", "2571", "1542", "1713", 2, true},
	}
	for _, tt := range tests {
		o := Solve(load(t, tt.file))
		if o.WStar.String() != tt.wStar || o.VCG.String() != tt.vcg || o.Posted.String() != tt.posted || o.Capable != tt.capable || o.Feasible() != tt.feasible {
			t.Errorf("%s: W* %s, VCG %s, posted %s, capable %d, feasible %v; want %s, %s, %s, %d, %v",
				tt.file, o.WStar, o.VCG, o.Posted, o.Capable, o.Feasible(), tt.wStar, tt.vcg, tt.posted, tt.capable, tt.feasible)
		}
	}
}

// TestOracleBudgetSpent: a budget spent to the cent by the first vendor
// leaves nothing for the next.
func TestOracleBudgetSpent(t *testing.T) {
	s := load(t, "../../testdata/sim/budget-binds.toml")
	s.Policy.Budget.Amount = decimal.RequireFromString("3600") // x's 600 at 6.00, exactly
	if o := Solve(s); o.WStar.String() != "2400" {
		t.Errorf("W* = %s, want 2400 (x's 600 and nothing more)", o.WStar)
	}
}
