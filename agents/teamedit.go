package agents

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/parley-dev/parley/internal/tomlfile"
)

// AddAgent returns the team file's text with a new [[agent]] table at its
// end — its comments and layout kept — holding name, role, brain and the
// given settings (TOML keys of an agent: item, list_price, command, ...).
// The result is checked as a whole, so a missing term is said with its
// line and what to add.
func AddAgent(file string, text []byte, name, role, brain string, settings map[string]any) ([]byte, *Team, error) {
	team, err := ParseTeam(file, text)
	if err != nil {
		return nil, nil, err
	}
	if team.Agent(name) != nil {
		return nil, nil, tomlfile.Errorf(file, tomlfile.Find(string(text), "name", name), "choose another name, or edit the table that is there", "agent %q is already in the team", name)
	}
	var b bytes.Buffer
	b.Write(bytes.TrimRight(text, "\n"))
	b.WriteString("\n\n[[agent]]\n")
	enc := toml.NewEncoder(&b)
	keys := map[string]any{"name": name, "role": role}
	if brain != "" {
		keys["brain"] = brain
	}
	for k, v := range settings {
		keys[k] = v
	}
	// name, role and brain first, then the rest in order.
	for _, k := range append([]string{"name", "role", "brain"}, sortedKeys(settings)...) {
		v, ok := keys[k]
		if !ok {
			continue
		}
		delete(keys, k)
		if err := enc.Encode(map[string]any{k: v}); err != nil {
			return nil, nil, fmt.Errorf("agent %s: %s: %w", name, k, err)
		}
	}
	out := b.Bytes()
	team, err = ParseTeam(file, out)
	if err != nil {
		return nil, nil, err
	}
	return out, team, nil
}

// agentTable finds an [[agent]] table header, with what comes before it
// on its line.
var agentTable = regexp.MustCompile(`(?m)^[ \t]*\[\[agent\]\]`)

// RemoveAgent returns the team file's text without the [[agent]] table of
// name (and the comment lines just above it, which are its own), the rest
// kept as it was.
func RemoveAgent(file string, text []byte, name string) ([]byte, *Team, error) {
	team, err := ParseTeam(file, text)
	if err != nil {
		return nil, nil, err
	}
	a := team.Agent(name)
	if a == nil {
		return nil, nil, fmt.Errorf("no agent named %q in %s", name, file)
	}
	if a.Name == team.Human {
		return nil, nil, fmt.Errorf("%s is the team's human: name another agent as human = \"...\" first", name)
	}
	s := string(text)
	starts := agentTable.FindAllStringIndex(s, -1)
	for i, at := range starts {
		end := len(s)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		// A table ends where another table of any kind begins.
		if j := strings.Index(s[at[1]:end], "\n["); j >= 0 {
			end = at[1] + j + 1
		}
		probe := Team{}
		if _, err := toml.Decode("[[agent]]"+s[at[1]:end], &probe); err != nil || len(probe.Agents) != 1 || probe.Agents[0].Name != name {
			continue
		}
		begin := at[0]
		// The comment lines right above the table go with it.
		for begin > 0 {
			prev := strings.LastIndex(s[:begin-1], "\n") + 1
			if !strings.HasPrefix(strings.TrimSpace(s[prev:begin]), "#") {
				break
			}
			begin = prev
		}
		out := strings.TrimRight(s[:begin], "\n") + "\n"
		if rest := strings.TrimLeft(s[end:], "\n"); rest != "" {
			out += "\n" + rest
		}
		team, err := ParseTeam(file, []byte(out))
		if err != nil {
			return nil, nil, err
		}
		return []byte(out), team, nil
	}
	return nil, nil, fmt.Errorf("agent %s: its [[agent]] table could not be told apart in %s; remove it by hand", name, file)
}

// SaveTeam writes a team file durably: whole or not at all.
func SaveTeam(path string, data []byte) error { return writeDurable(path, data) }
