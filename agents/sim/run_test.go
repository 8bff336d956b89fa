package sim

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/parley-dev/parley/agents"
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
	for i := range n {
		s := Generate(42, i)
		regimes[s.Regime]++
		res, err := Run(s, Options{Seed: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
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
	t.Logf("feasible %d: agreement %.3f, mean BSS %.3f; infeasible %d, walked away %d", feasible, float64(deals)/float64(feasible), bss/float64(feasible), infeasible, walked)

	a, _ := json.Marshal(Generate(7, 3))
	b, _ := json.Marshal(Generate(7, 3))
	if string(a) != string(b) {
		t.Error("the same seed and index made two scenarios")
	}
	r1, _ := Run(Generate(7, 3), Options{Shuffle: true, Seed: 9})
	r2, _ := Run(Generate(7, 3), Options{Shuffle: true, Seed: 9})
	j1, _ := json.Marshal(r1)
	j2, _ := json.Marshal(r2)
	if string(j1) != string(j2) {
		t.Errorf("the same run twice came out differently:\n%s\n%s", j1, j2)
	}
}
