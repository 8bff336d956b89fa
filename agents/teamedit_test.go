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
