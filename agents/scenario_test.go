package agents

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-dev/parley/internal/tomlfile"
)

func TestScenarioFiles(t *testing.T) {
	files, _ := filepath.Glob("../testdata/scenarios/*.toml")
	if len(files) < 4 {
		t.Fatalf("found %d scenarios", len(files))
	}
	for _, f := range files {
		s, err := LoadScenario(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if s.Expect.Outcome == "" {
			t.Errorf("%s says nothing of the outcome it expects", f)
		}
	}
}

// The story's scenario is the team parley init writes, so that make demo
// plays it on the default root.
func TestStoryIsTheDefaultTeam(t *testing.T) {
	s, err := LoadScenario("../testdata/scenarios/restock-widget.toml")
	if err != nil {
		t.Fatal(err)
	}
	team, err := ParseTeam("parley.toml", DefaultTeam)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Matches(team); err != nil {
		t.Errorf("the story does not match the default team: %v", err)
	}
	other, _ := LoadScenario("../testdata/scenarios/over-threshold.toml")
	if err := other.Matches(team); err == nil {
		t.Error("another scenario matches the default team")
	}
}

func TestScenarioErrors(t *testing.T) {
	const ok = "name = \"s\"\n[need]\nitem = \"widget\"\nstock = 1\nreorder_point = 10\nquantity = 5\n[[vendor]]\nname = \"vendor-a\"\nlist_price = \"5 USD\"\nfloor = \"4 USD\"\ncapacity = 10\n"
	tests := []struct{ name, in, want string }{
		{"unknown key", ok + "colour = \"red\"\n", `s.toml:12: unknown key "vendor.colour"`},
		{"no need arises", strings.Replace(ok, "stock = 1", "stock = 10", 1), "s.toml:4: stock 10 is not below the reorder point 10"},
		{"bad answer", ok + "[human]\nanswer = \"maybe\"\n", `s.toml:13: the human's answer "maybe" is not approve, deny or ask`},
		{"vendor's floor above its list price", strings.Replace(ok, `floor = "4 USD"`, `floor = "6 USD"`, 1), `s.toml:8: vendor "vendor-a": floor 6.00 USD is not between 0 and list_price 5.00 USD`},
		{"bad name", strings.Replace(ok, `name = "s"`, `name = "S S"`, 1), `s.toml:1: name "S S" is not a scenario name`},
		{"no vendors", strings.Split(ok, "[[vendor]]")[0], "s.toml: the scenario has no vendors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseScenario("s.toml", []byte(tt.in))
			var te *tomlfile.Error
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want a *tomlfile.Error", err)
			}
			if err.Error() != tt.want {
				t.Errorf("err =\n  %s\nwant\n  %s", err, tt.want)
			}
		})
	}
}

func FuzzParseScenario(f *testing.F) {
	files, _ := filepath.Glob("../testdata/scenarios/*.toml")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("name = \"s\"\n[need]\nitem = \"w\"\nstock = 1\nreorder_point = 2\nquantity = 1\n[[vendor]]\nname = \"v\"\n"))
	f.Add([]byte("[need\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseScenario("s.toml", data)
		if err != nil {
			var te *tomlfile.Error
			if !errors.As(err, &te) {
				t.Fatalf("error %v is not a *tomlfile.Error", err)
			}
			return
		}
		if _, err := ParseTeam("t", s.TeamFile()); err != nil {
			t.Fatalf("accepted a scenario whose team is invalid: %v", err)
		}
	})
}
