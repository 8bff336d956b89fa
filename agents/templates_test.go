package agents

import (
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/parley-dev/parley/policy"
)

// TestTemplates: every template is a valid team and a valid policy, whose
// allow rules are its own, and every exec brain's program is shipped.
func TestTemplates(t *testing.T) {
	if got := Templates(); !slices.Equal(got, []string{"procurement", "content", "minimal", "ops", "sales"}) {
		t.Fatalf("Templates() = %v", got)
	}
	for _, name := range Templates() {
		tpl, err := LoadTemplate(name)
		if err != nil {
			t.Fatal(err)
		}
		team, err := ParseTeam(name+"/parley.toml", tpl.Team)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pol, err := policy.Parse(name+"/policy.toml", tpl.Policy)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, a := range team.Agents {
			if a.Brain == "exec" {
				if _, ok := tpl.Brains[strings.TrimPrefix(a.Command[1], "brains/")]; !ok {
					t.Errorf("%s: %s runs %v, which the template does not ship", name, a.Name, a.Command)
				}
			}
			if a.Role != "human" && countAllows(pol, a.Name) == 0 {
				t.Errorf("%s: no [[allow]] rule lets %s send anything", name, a.Name)
			}
		}
		if name != "procurement" && strings.Contains(string(tpl.Policy), `from = "vendor-*"`) {
			t.Errorf("%s: the policy keeps the procurement team's rules", name)
		}
	}
	if _, err := LoadTemplate("nonsense"); err == nil || !strings.Contains(err.Error(), "the templates are procurement, content") {
		t.Errorf("an unknown template: %v", err)
	}
}

func countAllows(p *policy.Policy, name string) int {
	n := 0
	for _, a := range p.Allow {
		if ok, _ := path.Match(a.From, name); ok {
			n++
		}
	}
	return n
}
