package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/agents/sim"
	"github.com/shopspring/decimal"
)

// TestSimulationMatchesLiveRun: each scenario file, played by parley
// simulate in one process and by parley demo with every agent its own
// process, ends the same way: the same vendor, units and money, or no deal.
func TestSimulationMatchesLiveRun(t *testing.T) {
	bin := parleyBin(t)
	files, _ := filepath.Glob("../../testdata/scenarios/*.toml")
	more, _ := filepath.Glob("../../testdata/sim/*.toml") // a need bought in parts, a budget that binds
	files = append(files, more...)
	ordered := regexp.MustCompile(`(?m)^human's inbox: Ordered ([0-9]+) (?:of the [0-9]+ )?\S+ (?:needed, )?for ([0-9.]+) USD from (\S+?)[.:]? `)
	for _, f := range files {
		s, err := agents.LoadScenario(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(s.Name, func(t *testing.T) {
			res, err := sim.Run(s, sim.Options{})
			if err != nil {
				t.Fatal(err)
			}
			simulated := "no deal"
			if res.Deal {
				total := decimal.Zero
				var units int64
				for _, o := range res.Orders {
					total = total.Add(decimal.RequireFromString(o.Amount))
					units += o.Quantity
				}
				simulated = fmt.Sprintf("%d for %s from %s", units, total.StringFixed(2), res.Orders[0].Vendor)
			}
			out, err := exec.Command(bin, "--root", filepath.Join(t.TempDir(), "root"), "demo", "--scenario", f).CombinedOutput()
			if err != nil {
				t.Fatalf("demo: %v\n%s", err, out)
			}
			live := "no deal"
			if m := ordered.FindSubmatch(out); m != nil {
				live = fmt.Sprintf("%s for %s from %s", m[1], m[2], m[3])
			}
			if live != simulated {
				t.Errorf("live run: %s; simulated: %s\n%s", live, simulated, out)
			}
		})
	}
}
