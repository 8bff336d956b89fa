package agents

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/parley-dev/parley/mailbox"

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
	for _, k := range []string{"name", "role", "brain"} {
		if _, ok := settings[k]; ok {
			return nil, nil, fmt.Errorf("%s is said by its own argument or flag, not as a setting", k)
		}
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
		// Its line would be one of a file not written yet: the table is named
		// instead.
		var te *tomlfile.Error
		if errors.As(err, &te) {
			return nil, nil, tomlfile.Errorf(file, 0, te.Hint, "the new [[agent]] table for %s: %s", name, te.Msg)
		}
		return nil, nil, err
	}
	return out, team, nil
}

// tableHeader is a line that starts a table of any kind: [x] or [[x]].
var tableHeader = regexp.MustCompile(`^[ \t]*\[`)

// RemoveAgent returns the team file's text without the [[agent]] table of
// name — from its header to the next table, but for the comment and blank
// lines just above that next table, which are its — together with the
// comment lines just above its own header. The rest is kept as it was,
// CRLF line endings included.
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
	crlf := bytes.Contains(text, []byte("\r\n"))
	lines := strings.Split(strings.ReplaceAll(string(text), "\r\n", "\n"), "\n")
	isComment := func(l string) bool { t := strings.TrimSpace(l); return t == "" || strings.HasPrefix(t, "#") }
	for start := range lines {
		if strings.TrimSpace(lines[start]) != "[[agent]]" {
			continue
		}
		end := start + 1
		for end < len(lines) && !tableHeader.MatchString(lines[end]) {
			end++
		}
		body := strings.Join(lines[start:end], "\n")
		var probe Team
		if _, err := toml.Decode(body, &probe); err != nil || len(probe.Agents) != 1 || probe.Agents[0].Name != name {
			continue
		}
		// Comment and blank lines before the next table are the next
		// table's; those right above this header are this one's.
		for end > start+1 && end < len(lines) && isComment(lines[end-1]) {
			end--
		}
		begin := start
		for begin > 0 && strings.HasPrefix(strings.TrimSpace(lines[begin-1]), "#") {
			begin--
		}
		kept := append(append([]string{}, lines[:begin]...), lines[end:]...)
		// One blank line where the table was, not two.
		if begin > 0 && begin < len(kept) && strings.TrimSpace(kept[begin-1]) == "" && strings.TrimSpace(kept[begin]) == "" {
			kept = append(kept[:begin], kept[begin+1:]...)
		}
		out := strings.Join(kept, "\n")
		if crlf {
			out = strings.ReplaceAll(out, "\n", "\r\n")
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
func SaveTeam(path string, data []byte) error { return mailbox.WriteDurable(path, data) }
