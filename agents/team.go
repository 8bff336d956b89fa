// Package agents is parley's team: who the agents of a root are, their
// roles and brains (parley.toml), and, as the runtime grows, the agents
// themselves.
//
// Invariants: every agent of a team has a unique valid name that is also its
// inbox folder; exactly one agent is the human; a team file is read strictly,
// and an error in it names the file and the line.
package agents

import (
	_ "embed"
	"fmt"
	"os"
	"slices"

	"github.com/parley-dev/parley/internal/tomlfile"
	"github.com/parley-dev/parley/mailbox"
)

// TeamFile is the team's file name in a root.
const TeamFile = "parley.toml"

// Roles are the kinds of agent parley knows.
var Roles = []string{"inventory", "procurement", "vendor", "finance", "human"}

// Brains are what can make an agent's decisions.
var Brains = []string{"rules", "ollama"}

// Agent is one member of the team.
type Agent struct {
	Name  string `toml:"name"`
	Role  string `toml:"role"`
	Brain string `toml:"brain"`
}

// Team is parley.toml: the agents of one root.
type Team struct {
	Version int     `toml:"version"`
	Human   string  `toml:"human"`
	Agents  []Agent `toml:"agent"`
}

// DefaultTeam is the text of the procurement team that parley init writes.
//
//go:embed parley.toml
var DefaultTeam []byte

// LoadTeam reads and checks the team file at path.
func LoadTeam(path string) (*Team, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read team: %w", err)
	}
	return ParseTeam(path, data)
}

// ParseTeam checks a team file's text, read from the file named name.
func ParseTeam(name string, data []byte) (*Team, error) {
	var t Team
	if _, err := tomlfile.Decode(name, string(data), &t); err != nil {
		return nil, err
	}
	text := string(data)
	at := func(key, value string) int { return tomlfile.Find(text, key, value) }
	if t.Version != 1 {
		return nil, tomlfile.Errorf(name, at("version", ""), `write version = 1`,
			"version is %d; this parley reads team files of version 1", t.Version)
	}
	if len(t.Agents) == 0 {
		return nil, tomlfile.Errorf(name, 0, `add [[agent]] tables with name, role and brain (parley init writes an example)`, "the team has no agents")
	}
	seen := map[string]bool{}
	for i := range t.Agents {
		a := &t.Agents[i]
		if a.Brain == "" {
			a.Brain = "rules"
		}
		switch {
		case !mailbox.ValidName(a.Name):
			return nil, tomlfile.Errorf(name, at("name", a.Name), "use lower-case letters, digits and hyphens, starting with a letter, such as vendor-b",
				"agent %d: name %q is not an agent name", i+1, a.Name)
		case a.Name == mailbox.System:
			return nil, tomlfile.Errorf(name, at("name", a.Name), "choose another name", "agent name %q is parley's own", a.Name)
		case seen[a.Name]:
			return nil, tomlfile.Errorf(name, at("name", a.Name), "give each agent its own name", "agent %q appears twice", a.Name)
		case !slices.Contains(Roles, a.Role):
			return nil, tomlfile.Errorf(name, at("role", a.Role), fmt.Sprintf("role is one of %v", Roles), "agent %q: unknown role %q", a.Name, a.Role)
		case !slices.Contains(Brains, a.Brain):
			return nil, tomlfile.Errorf(name, at("brain", a.Brain), fmt.Sprintf("brain is one of %v", Brains), "agent %q: unknown brain %q", a.Name, a.Brain)
		}
		seen[a.Name] = true
	}
	h := t.Agent(t.Human)
	if h == nil || h.Role != "human" {
		return nil, tomlfile.Errorf(name, at("human", ""), `set human = "NAME" to the name of the agent with role = "human"`,
			"human is %q, which is not an agent with the human role", t.Human)
	}
	return &t, nil
}

// Agent returns the agent called name, or nil.
func (t *Team) Agent(name string) *Agent {
	for i := range t.Agents {
		if t.Agents[i].Name == name {
			return &t.Agents[i]
		}
	}
	return nil
}

// Names lists the agents' names in the file's order.
func (t *Team) Names() []string {
	names := make([]string, len(t.Agents))
	for i, a := range t.Agents {
		names[i] = a.Name
	}
	return names
}
