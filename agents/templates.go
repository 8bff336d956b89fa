package agents

import (
	"embed"
	"fmt"
	"sort"
	"strings"

	"github.com/parley-dev/parley/policy"
)

// The teams parley init --template writes (docs/TEMPLATES.md): each a
// parley.toml, the [[allow]] rules of its policy, and the small programs
// its exec brains run, in brains/.
//
//go:embed templates/*.toml templates/*.py
var templates embed.FS

// Template is what parley init writes for a team.
type Template struct {
	Name   string
	Team   []byte            // parley.toml
	Policy []byte            // policy.toml
	Brains map[string][]byte // brains/NAME: the programs of its exec brains
}

// Templates are the names of the teams parley init can write.
func Templates() []string {
	names := []string{"procurement"}
	entries, _ := templates.ReadDir("templates")
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".allow.toml"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names[1:])
	return names
}

// LoadTemplate returns the template called name: "procurement" is the
// default team.
func LoadTemplate(name string) (*Template, error) {
	if name == "procurement" || name == "" {
		return &Template{Name: "procurement", Team: DefaultTeam, Policy: policy.Default, Brains: map[string][]byte{}}, nil
	}
	team, err := templates.ReadFile("templates/" + name + ".toml")
	if err != nil {
		return nil, fmt.Errorf("no template %q: the templates are %s", name, strings.Join(Templates(), ", "))
	}
	allow, err := templates.ReadFile("templates/" + name + ".allow.toml")
	if err != nil {
		return nil, err
	}
	relay, err := templates.ReadFile("templates/relay.py")
	if err != nil {
		return nil, err
	}
	return &Template{Name: name, Team: team, Policy: withAllow(policy.Default, allow), Brains: map[string][]byte{"relay.py": relay}}, nil
}

// withAllow is the default policy with its [[allow]] rules replaced.
func withAllow(def, allow []byte) []byte {
	text := string(def)
	first := strings.Index(text, "[[allow]]")
	end := strings.Index(text, "# What a file saved by hand")
	if first < 0 || end < first {
		return def // the default's layout changed: keep it whole (a test says so)
	}
	rest := text[end:]
	if i := strings.Index(rest, escalateRules); i >= 0 {
		rest = strings.TrimRight(rest[:i], "\n") + "\n" // the procurement team's escalations, at the end
	}
	return []byte(text[:first] + strings.TrimSpace(string(allow)) + "\n\n" + rest)
}

// escalateRules begins the default policy's [[allow]] rules at its end,
// which let the procurement team's roles escalate to the human.
const escalateRules = "# Every role of the team may put a step to the human"
