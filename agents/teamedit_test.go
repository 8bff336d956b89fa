package agents

import (
	"strings"
	"testing"
)

func TestAddAgent(t *testing.T) {
	out, team, err := AddAgent("parley.toml", DefaultTeam, "vendor-d", "vendor", "rules", map[string]any{
		"item": "widget", "list_price": "5.20 USD", "floor": "4.70 USD", "capacity": int64(500), "lead_days": int64(2)})
	if err != nil {
		t.Fatal(err)
	}
	if a := team.Agent("vendor-d"); a == nil || a.Capacity != 500 || a.Floor.String() != "4.70 USD" || a.Style != "linear" {
		t.Fatalf("vendor-d = %+v", a)
	}
	if !strings.HasPrefix(string(out), string(DefaultTeam[:len(DefaultTeam)-1])) {
		t.Error("the file's text before the new table changed")
	}
	if !strings.HasSuffix(string(out), "[[agent]]\nname = \"vendor-d\"\nrole = \"vendor\"\nbrain = \"rules\"\ncapacity = 500\nfloor = \"4.70 USD\"\nitem = \"widget\"\nlead_days = 2\nlist_price = \"5.20 USD\"\n") {
		t.Errorf("the new table:\n%s", out[len(DefaultTeam)-200:])
	}
	tests := []struct {
		name, role, brain string
		settings          map[string]any
		want              string
	}{
		{"vendor-a", "vendor", "", nil, `agent "vendor-a" is already in the team`},
		{"vendor-e", "vendor", "", nil, `vendor "vendor-e" has no item`},
		{"editor", "editor", "exec", map[string]any{"command": []string{"python3", "brains/editor.py"}}, ""},
		{"add", "editor", "exec", map[string]any{"command": []string{"true"}}, `agent name "add" is a command of parley agent`},
	}
	for _, tt := range tests {
		_, _, err := AddAgent("parley.toml", DefaultTeam, tt.name, tt.role, tt.brain, tt.settings)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("AddAgent(%s) err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestRemoveAgent(t *testing.T) {
	out, team, err := RemoveAgent("parley.toml", DefaultTeam, "vendor-b")
	if err != nil {
		t.Fatal(err)
	}
	if team.Agent("vendor-b") != nil || team.Agent("vendor-a") == nil || team.Agent("vendor-c") == nil {
		t.Fatalf("agents left: %v", team.Names())
	}
	if strings.Contains(string(out), "vendor-b") || strings.Contains(string(out), "5.10 USD") {
		t.Errorf("vendor-b's table is still there:\n%s", out)
	}
	if !strings.Contains(string(out), "# A command to run for each message") || !strings.Contains(string(out), `list_price = "5.40 USD"`) {
		t.Errorf("more than vendor-b's table went")
	}
	// Added, then removed: the file is as it was.
	added, _, err := AddAgent("parley.toml", DefaultTeam, "editor", "editor", "exec", map[string]any{"command": []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := RemoveAgent("parley.toml", added, "editor")
	if err != nil || string(back) != string(DefaultTeam) {
		t.Errorf("added and removed: %v\n%q", err, back)
	}
	for name, want := range map[string]string{"human": "is the team's human", "nobody": `no agent named "nobody"`} {
		if _, _, err := RemoveAgent("parley.toml", DefaultTeam, name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("RemoveAgent(%s) = %v, want %q", name, err, want)
		}
	}
}

// TestRemoveAgentKeepsTheRest: the comments of the next table stay with
// it, a table header that is indented still ends the agent's table, and a
// file written with CRLF keeps them.
func TestRemoveAgentKeepsTheRest(t *testing.T) {
	text := "version = 1\nhuman = \"h\"\n\n# the clerk, for now\n[[agent]]\nname = \"c\"\nrole = \"clerk\"\nbrain = \"exec\"\ncommand = [\"true\"]\n\n" +
		"# a role of our own\n  [[role]]\n  name = \"clerk\"\n  sends = [\"NOTIFY\"]\n\n[[agent]]\nname = \"d\"\nrole = \"clerk\"\nbrain = \"exec\"\ncommand = [\"true\"]\n\n[[agent]]\nname = \"h\"\nrole = \"human\"\n"
	want := "version = 1\nhuman = \"h\"\n\n# a role of our own\n  [[role]]\n  name = \"clerk\"\n  sends = [\"NOTIFY\"]\n\n[[agent]]\nname = \"d\"\nrole = \"clerk\"\nbrain = \"exec\"\ncommand = [\"true\"]\n\n[[agent]]\nname = \"h\"\nrole = \"human\"\n"
	out, team, err := RemoveAgent("parley.toml", []byte(text), "c")
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	if len(team.Roles) != 1 || len(team.Roles[0].Sends) != 1 {
		t.Errorf("the role after the removed agent was touched: %+v", team.Roles)
	}
	crlf := strings.ReplaceAll(text, "\n", "\r\n")
	out, _, err = RemoveAgent("parley.toml", []byte(crlf), "c")
	if err != nil || string(out) != strings.ReplaceAll(want, "\n", "\r\n") {
		t.Errorf("with CRLF: %v\n%q", err, out)
	}
}

func TestAddAgentRefusesToRename(t *testing.T) {
	for _, k := range []string{"name", "role", "brain"} {
		if _, _, err := AddAgent("parley.toml", DefaultTeam, "bot", "editor", "exec", map[string]any{k: "other", "command": []string{"true"}}); err == nil || !strings.Contains(err.Error(), k+" is said by its own") {
			t.Errorf("--set %s: %v", k, err)
		}
	}
	_, _, err := AddAgent("parley.toml", DefaultTeam, "vendor-e", "vendor", "", nil)
	if err == nil || err.Error() != `parley.toml: the new [[agent]] table for vendor-e: vendor "vendor-e" has no item` {
		t.Errorf("a missing term: %v", err)
	}
}
