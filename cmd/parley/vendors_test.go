package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/shopspring/decimal"
)

// TestDealsWithVendorsOfTheirOwn: the team parley init writes, its
// vendors replaced by programs written without parley's code
// (testdata/exec/vendor.py: halfway, steps, stubborn, mirror — none of
// them one of parley's styles, each with its own secret floor and horizon),
// every agent its own process. In each deal the buyer pays no more than
// the second-lowest floor — what a truthful auction among them would pay
// (the VCG price) — and, but in the last, orders from the vendor with the
// lowest floor. Against vendors that concede by the round, that takes more
// than the three rounds parley used to allow, and every vendor kept in the
// competition. In the last deal the lowest floor hides behind the dearest
// list price and takes the buyer's opening (15% under that list): the
// buyer, which never lowers an offer it made, buys from the next at its
// floor — the VCG price all the same.
func TestDealsWithVendorsOfTheirOwn(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed: the vendors are Python programs")
	}
	script, err := filepath.Abs("../../testdata/exec/vendor.py")
	if err != nil {
		t.Fatal(err)
	}
	type vendor struct{ style, list, floor, rounds string }
	tests := []struct {
		name    string
		vendors [3]vendor // vendor-a, vendor-b, vendor-c
		winner  string    // "": whichever pays no more than the VCG price
	}{
		{"the cheapest meets halfway", [3]vendor{{"steps", "5.30", "4.70", "8"}, {"halfway", "5.20", "4.40", "8"}, {"stubborn", "5.10", "4.90", "5"}}, "vendor-b"},
		{"the cheapest comes down over ten rounds", [3]vendor{{"halfway", "5.10", "4.70", "8"}, {"mirror", "5.00", "4.85", "8"}, {"steps", "5.40", "4.62", "10"}}, "vendor-c"},
		{"the cheapest holds its list until the best and final", [3]vendor{{"steps", "5.20", "4.70", "6"}, {"stubborn", "5.00", "4.20", "9"}, {"halfway", "5.30", "4.50", "8"}}, "vendor-b"},
		{"the cheapest lists dearest", [3]vendor{{"mirror", "6.40", "4.10", "8"}, {"steps", "5.00", "4.60", "4"}, {"halfway", "4.90", "4.75", "8"}}, ""},
	}
	bin := parleyBin(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			if out, err := exec.Command(bin, "--root", root, "init").CombinedOutput(); err != nil {
				t.Fatalf("init: %v\n%s", err, out)
			}
			team := filepath.Join(root, "parley.toml")
			data, err := os.ReadFile(team)
			if err != nil {
				t.Fatal(err)
			}
			floors := map[string]decimal.Decimal{}
			for i, v := range tt.vendors {
				name := fmt.Sprintf("vendor-%c", 'a'+i)
				floors[name] = decimal.RequireFromString(v.floor)
				block := regexp.MustCompile(`(?s)\[\[agent\]\]\nname = "` + name + `"\nrole = "vendor"\n.*?\n\n`)
				exe := fmt.Sprintf("[[agent]]\nname = %q\nrole = \"vendor\"\nbrain = \"exec\"\ncommand = [\"python3\", %q, \"--style\", %q, \"--list\", %q, \"--floor\", %q, \"--rounds\", %q]\n\n",
					name, script, v.style, v.list, v.floor, v.rounds)
				if !block.Match(data) {
					t.Fatalf("parley init wrote no block for %s:\n%s", name, data)
				}
				data = block.ReplaceAll(data, []byte(exe))
			}
			if err := os.WriteFile(team, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, "--root", root, "doctor").CombinedOutput(); err != nil {
				t.Fatalf("doctor: %v\n%s", err, out)
			}
			procs, logs := startDeal(t, bin, root)

			es := awaitLedger(t, root, 2*time.Minute, func(es []mailbox.Entry) bool {
				return (count(es, "decision", "PAID", "allow") > 0 || countDelivered(es, "human", "ESCALATE") > 0) && settled(es)
			}, logs)
			stopAgents(procs)

			var orders []mailbox.Entry
			counters := map[string]int{}
			for _, e := range es {
				if e.Event == "decision" && e.Verb == "ORDER" && e.Decision == "allow" {
					orders = append(orders, e)
				}
				if e.Event == "decision" && e.Verb == "COUNTER" && e.Decision == "allow" {
					counters[e.To]++
				}
				if e.Event == "decision" && e.Decision != "allow" && e.Verb != "ORDER" {
					t.Errorf("a decision not to allow: %s %s → %s: %s %s", e.Verb, e.Agent, e.To, e.Rule, e.Reason)
				}
			}
			if len(orders) != 1 {
				t.Fatalf("%d orders, want 1; the agents said:\n%s", len(orders), logs.String())
			}
			o := orders[0]
			second := secondLowest(floors)
			unit := decimal.RequireFromString(o.Amount).Div(decimal.NewFromInt(500))
			t.Logf("ordered from %s at %s a unit (its floor %s, the second-lowest %s) after %v counter-offers", o.To, unit.StringFixed(2), floors[o.To], second, counters)
			if tt.winner != "" && o.To != tt.winner {
				t.Errorf("ordered from %s, want %s, whose floor is lowest", o.To, tt.winner)
			}
			if unit.GreaterThan(second) {
				t.Errorf("paid %s a unit, above %s, the second-lowest floor (what a truthful auction pays)", unit.StringFixed(2), second)
			}
			for v := range floors {
				if counters[v] == 0 {
					t.Errorf("%s was never pressed: every vendor stays in the competition", v)
				}
			}
		})
	}
}

// secondLowest is the second-lowest of the floors.
func secondLowest(floors map[string]decimal.Decimal) decimal.Decimal {
	var lo, next decimal.Decimal
	first := true
	for _, f := range floors {
		switch {
		case first:
			lo, first = f, false
		case f.LessThan(lo):
			lo, next = f, lo
		case next.IsZero() || f.LessThan(next):
			next = f
		}
	}
	return next
}
