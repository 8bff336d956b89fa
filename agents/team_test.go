package agents

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/tomlfile"
)

func TestDefaultTeam(t *testing.T) {
	team, err := ParseTeam("parley.toml", DefaultTeam)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"inventory", "procurement", "vendor-a", "vendor-b", "vendor-c", "finance", "human"}
	if got := team.Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	if got := team.Agent("human"); got == nil || got.Brain != "rules" {
		t.Errorf("Agent(human) = %+v, want brain rules by default", got)
	}
}

func TestParseTeamErrors(t *testing.T) {
	const head = "version = 1\nhuman = \"human\"\n[[agent]]\nname = \"human\"\nrole = \"human\"\n"
	tests := []struct {
		name, in, want string
	}{
		{"syntax", head + "[[agent]\n", "parley.toml:6: expected end of table array name delimiter ']', but got '\\n' instead"},
		{"wrong type", head + "[[agent]]\nname = 5\n", `parley.toml:7: agent.name: incompatible types: TOML value has type int64; destination has type string`},
		{"unknown key", head + "[[agent]]\nname = \"a\"\nrole = \"vendor\"\nbrian = \"rules\"\n", `parley.toml:9: unknown key "agent.brian"`},
		{"version", strings.Replace(head, "version = 1", "version = 2", 1), "parley.toml:1: version is 2; this parley reads team files of version 1"},
		{"bad name", head + "[[agent]]\nname = \"Vendor B\"\nrole = \"vendor\"\n", `parley.toml:7: agent 2: name "Vendor B" is not an agent name`},
		{"parley's name", head + "[[agent]]\nname = \"parley\"\nrole = \"vendor\"\n", `parley.toml:7: agent name "parley" is parley's own`},
		{"duplicate", head + "[[agent]]\nname = \"a\"\nrole = \"finance\"\n[[agent]]\nname = \"a\"\nrole = \"finance\"\n", `parley.toml:7: agent "a" appears twice`},
		{"role", head + "[[agent]]\nname = \"a\"\nrole = \"wizard\"\n", `parley.toml:8: agent "a": unknown role "wizard"`},
		{"brain", head + "[[agent]]\nname = \"a\"\nrole = \"vendor\"\nbrain = \"gpt\"\n", `parley.toml:9: agent "a": unknown brain "gpt"`},
		{"no human", "version = 1\nhuman = \"boss\"\n[[agent]]\nname = \"a\"\nrole = \"finance\"\n", `parley.toml:2: human is "boss", which is not an agent with the human role`},
		{"vendor without terms", head + "[[agent]]\nname = \"v\"\nrole = \"vendor\"\n", `parley.toml:7: vendor "v" has no item`},
		{"floor above list", head + "[[agent]]\nname = \"v\"\nrole = \"vendor\"\nitem = \"w\"\nlist_price = \"5 USD\"\nfloor = \"6 USD\"\ncapacity = 1\n", `parley.toml:11: vendor "v": floor 6.00 USD is not between 0 and list_price 5.00 USD`},
		{"style", head + "[[agent]]\nname = \"v\"\nrole = \"vendor\"\nitem = \"w\"\nlist_price = \"5 USD\"\nfloor = \"4 USD\"\ncapacity = 1\nstyle = \"stubborn\"\n", `parley.toml:13: vendor "v": unknown style "stubborn"`},
		{"price not money", head + "[[agent]]\nname = \"v\"\nrole = \"vendor\"\nlist_price = \"cheap\"\n", `parley.toml:9: not an amount: "cheap" is not a plain decimal number`},
		{"no agents", "version = 1\n", "parley.toml: the team has no agents"},
		{"ollama without a model", head + "[[agent]]\nname = \"f\"\nrole = \"finance\"\nbrain = \"ollama\"\n", `parley.toml:9: agent "f": brain = "ollama" needs a model`},
		{"llm mode", head + "[[agent]]\nname = \"f\"\nrole = \"finance\"\nbrain = \"ollama\"\nmodel = \"m\"\nllm = \"dream\"\n", `parley.toml:11: agent "f": unknown llm mode "dream"`},
		{"fallback", head + "[[agent]]\nname = \"f\"\nrole = \"finance\"\nbrain = \"ollama\"\nmodel = \"m\"\nfallback = \"pray\"\n", `parley.toml:11: agent "f": unknown fallback "pray"`},
		{"temperature", head + "[[agent]]\nname = \"f\"\nrole = \"finance\"\nbrain = \"ollama\"\nmodel = \"m\"\ntemperature = 7.5\n", `parley.toml:11: agent "f": temperature 7.5 is out of range`},
		{"host", head + "[[agent]]\nname = \"f\"\nrole = \"finance\"\nbrain = \"ollama\"\nmodel = \"m\"\nhost = \"ftp://x\"\n", `parley.toml:11: agent "f": host "ftp://x" is not host:port or an http URL`},
		{"model without ollama", head + "[[agent]]\nname = \"f\"\nrole = \"finance\"\nmodel = \"m\"\n", `parley.toml:7: agent "f" has model settings but brain = "rules"`},
		{"a role of one's own needs exec", head + "[[agent]]\nname = \"w\"\nrole = \"writer\"\n", `parley.toml:8: agent "w": unknown role "writer"`},
		{"exec without a command", head + "[[agent]]\nname = \"w\"\nrole = \"writer\"\nbrain = \"exec\"\n", `parley.toml:9: agent "w": brain = "exec" needs a command`},
		{"a command without exec", head + "[[agent]]\nname = \"f\"\nrole = \"finance\"\ncommand = [\"true\"]\n", `parley.toml:9: agent "f" has a command but brain = "rules"`},
		{"a role name that is none", head + "[[agent]]\nname = \"w\"\nrole = \"Chief Writer\"\nbrain = \"exec\"\ncommand = [\"true\"]\n", `parley.toml:8: agent "w": role "Chief Writer" is not a role name`},
		{"a protocol this parley does not speak", strings.Replace(head, "version = 1", "version = 1\nprotocol = \"2.0\"", 1), `parley.toml:2: unsupported protocol version: 2.0 (this parley speaks 1)`},
		{"an agent's protocol that is none", head + "[[agent]]\nname = \"f\"\nrole = \"finance\"\nprotocol = \"one\"\n", `parley.toml:9: agent "f": protocol "one" is not a version (write it as 1.1)`},
		{"a built-in role declared", head + "[[role]]\nname = \"vendor\"\n", `parley.toml:7: role "vendor" is built in`},
		{"a declared role with rules", head + "[[role]]\nname = \"clerk\"\nbrain = \"rules\"\n", `parley.toml:8: role "clerk": brain "rules"`},
		{"a declared role with a verb that is none", head + "[[role]]\nname = \"clerk\"\nsends = [\"SHOUT\"]\n", `parley.toml:8: role "clerk": "SHOUT" is not a verb`},
		{"a human with a model", "version = 1\nhuman = \"human\"\n[[agent]]\nname = \"human\"\nrole = \"human\"\nbrain = \"ollama\"\nmodel = \"m\"\n", `parley.toml:6: agent "human" is the human; it has no brain to run`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTeam("parley.toml", []byte(tt.in))
			var te *tomlfile.Error
			if !errors.As(err, &te) {
				t.Fatalf("ParseTeam err = %v, want a *tomlfile.Error", err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("ParseTeam err =\n  %s\nwant\n  %s", got, tt.want)
			}
		})
	}
}

func TestOllamaBrainDefaults(t *testing.T) {
	team, err := ParseTeam("parley.toml", []byte("version = 1\nhuman = \"h\"\n[[agent]]\nname = \"h\"\nrole = \"human\"\n"+
		"[[agent]]\nname = \"f\"\nrole = \"finance\"\nbrain = \"ollama\"\nmodel = \"qwen2.5:7b\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := team.Agent("f")
	if a.LLM != "narrate" || a.Fallback != "rules" || a.Retries != 1 || a.Timeout.Duration != 60*time.Second || a.MaxTokens != 512 {
		t.Errorf("defaults = %+v", a)
	}
	for _, tt := range []struct {
		line string
		want int
	}{{"retries = 0\n", 0}, {"retries = 3\n", 3}, {"", 1}} {
		team, err := ParseTeam("parley.toml", []byte("version = 1\nhuman = \"h\"\n[[agent]]\nname = \"h\"\nrole = \"human\"\n"+
			"[[agent]]\nname = \"f\"\nrole = \"finance\"\nbrain = \"ollama\"\nmodel = \"m\"\n"+tt.line+
			"[[agent]]\nname = \"g\"\nrole = \"finance\"\nbrain = \"ollama\"\nmodel = \"m\"\nretries = 2\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got := team.Agent("f").Retries; got != tt.want {
			t.Errorf("%q: Retries = %d, want %d", tt.line, got, tt.want)
		}
	}
	if got := a.PromptFile("/r"); got != "/r/prompts/finance.md" {
		t.Errorf("PromptFile = %s", got)
	}
	text, err := RolePrompt(t.TempDir(), a)
	if err != nil || !strings.Contains(text, "You are the finance agent") {
		t.Errorf("RolePrompt of a root without prompts/ = %q, %v; want the shipped one", text, err)
	}
	a.Prompt = "mine.md"
	if _, err := RolePrompt(t.TempDir(), a); err == nil || !strings.Contains(err.Error(), `remove prompt = "mine.md"`) {
		t.Errorf("a named prompt file that is missing: %v", err)
	}
}

func FuzzParseTeam(f *testing.F) {
	f.Add(DefaultTeam)
	f.Add([]byte("version = 1\nhuman = \"h\"\n[[agent]]\nname = \"h\"\nrole = \"human\"\n"))
	f.Add([]byte("[[agent]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		team, err := ParseTeam("parley.toml", data)
		if err != nil {
			var te *tomlfile.Error
			if !errors.As(err, &te) {
				t.Fatalf("error %v is not a *tomlfile.Error", err)
			}
			return
		}
		if team.Agent(team.Human) == nil {
			t.Fatalf("accepted a team whose human %q is not an agent", team.Human)
		}
	})
}

// The default root in the repository holds the team that init writes.
func TestRepositoryRootHasDefaultTeam(t *testing.T) {
	data, err := os.ReadFile("../mailboxes/parley.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, DefaultTeam) {
		t.Error("mailboxes/parley.toml differs from agents/parley.toml: copy one over the other")
	}
}

// ...and the role prompts init writes, which the Ollama brains read.
func TestRepositoryRootHasShippedPrompts(t *testing.T) {
	for name, text := range ShippedPrompts() {
		data, err := os.ReadFile("../mailboxes/prompts/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, text) {
			t.Errorf("mailboxes/prompts/%s differs from agents/prompts/%s: copy one over the other", name, name)
		}
	}
}
