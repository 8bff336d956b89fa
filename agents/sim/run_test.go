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
