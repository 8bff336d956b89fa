// Package agents is parley's team: who the agents of a root are, their
// roles and brains (parley.toml), and, as the runtime grows, the agents
// themselves.
//
// Invariants: every agent of a team has a unique valid name that is also its
// inbox folder; exactly one agent is the human; a team file is read strictly,
// and an error in it names the file and the line.
package agents

import (
	"cmp"
	_ "embed"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/parley-dev/parley/agents/llm"
	"github.com/parley-dev/parley/internal/tomlfile"
	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/mailbox/jsteam"
	"github.com/parley-dev/parley/policy"
)

// TeamFile is the team's file name in a root.
const TeamFile = "parley.toml"

// Roles are the kinds of agent parley knows.
var Roles = []string{"inventory", "procurement", "vendor", "finance", "human"}

// Brains are what can make an agent's decisions.
var Brains = []string{"rules", "ollama", "exec"}

// Agent is one member of the team, with the terms of its role.
type Agent struct {
	Name  string `toml:"name"`
	Role  string `toml:"role"`
	Brain string `toml:"brain"`

	// A vendor's terms, all private to it but the list price.
	Item      string        `toml:"item"`
	ListPrice mailbox.Money `toml:"list_price"` // its opening quote, per unit
	Floor     mailbox.Money `toml:"floor"`      // the lowest unit price it accepts
	Capacity  int64         `toml:"capacity"`   // the most units it delivers on one order
	LeadDays  int           `toml:"lead_days"`  // days from order to delivery
	Style     string        `toml:"style"`      // how it concedes: one of VendorStyles
	// Horizon is how many counter-offers a vendor spreads its concession
	// over (4 when not set): its own, whatever the buyer's rounds.
	Horizon int `toml:"horizon"`
	// ConcedeWithin, when set, is its horizon by time instead: it concedes
	// over this long from the request, however many counter-offers come.
	ConcedeWithin policy.Duration `toml:"concede_within"`
	// WalkBelow is the offer under which a walkaway vendor ends the talks.
	WalkBelow mailbox.Money `toml:"walk_below"`

	// Procurement's: how long quotes are collected (a sealed-bid window
	// that closes early when every vendor has answered), how many
	// counter-offer rounds, and its private ceiling per unit.
	QuoteWindow policy.Duration `toml:"quote_window"`
	// Rounds is the most counter-offers one vendor gets on a deal; the
	// talks end sooner when the vendors stop coming down. Unset, it is
	// DefaultRounds; 0 takes the best quote as it stands.
	Rounds       int           `toml:"-"`
	RoundsSet    *int          `toml:"rounds"`
	MaxUnitPrice mailbox.Money `toml:"max_unit_price"`
	// NegotiateWithin is how long procurement may spread its counter-offer
	// rounds over (0: each round as soon as the last is answered): a
	// vendor that concedes with time, not with each offer, is given it.
	NegotiateWithin policy.Duration `toml:"negotiate_within"`
	// LatePenalty is what a unit costs the buyer for each day it arrives
	// after the need's deadline: with one, vendors may quote a later
	// delivery and procurement weighs it; without, the deadline is hard.
	LatePenalty mailbox.Money `toml:"late_penalty"`

	// An Ollama brain's settings (brain = "ollama"; docs/OLLAMA.md).
	Model       string          `toml:"model"`       // as ollama names it: "llama3.2", "qwen2.5:7b"
	Host        string          `toml:"host"`        // host:port or URL; default OLLAMA_HOST, else 127.0.0.1:11434
	Temperature float64         `toml:"temperature"` // 0 (the default) is the most repeatable
	Seed        int             `toml:"seed"`        // the sampling seed
	Timeout     policy.Duration `toml:"timeout"`     // for one call; default 60s
	MaxTokens   int             `toml:"max_tokens"`  // the longest answer, in tokens; default 512
	NumCtx      int             `toml:"num_ctx"`     // the context window, in tokens; default: the server's
	Concurrency int             `toml:"concurrency"` // calls the host takes at once, from every agent on the machine; default 1
	LLM         string          `toml:"llm"`         // narrate (the default): code picks the numbers; decide: the model does, within bounds
	Fallback    string          `toml:"fallback"`    // rules (the default) or escalate, when the model fails
	Retries     int             `toml:"-"`           // unusable answers asked again in one step: retries, default 1
	RetriesSet  *int            `toml:"retries"`     // as written, nil when not: retries = 0 asks once
	Prompt      string          `toml:"prompt"`      // the role prompt, relative to the root; default prompts/ROLE.md

	// An exec brain's settings (brain = "exec"; docs/EXEC.md): the program
	// and its arguments, run in the root, and how often it is woken with a
	// tick (never, unless set). timeout above bounds one run (10s).
	Command []string        `toml:"command"`
	Every   policy.Duration `toml:"every"`

	// Protocol is the version of the message protocol it speaks and writes
	// (Parley: 1.1); the team's, unless set.
	Protocol string `toml:"protocol"`
}

// DefaultRounds is how many counter-offers procurement may make to one
// vendor when its team does not say: enough for a vendor that concedes
// slowly to reach its floor, within the default policy's max_rounds. The
// auction stops before when no vendor is still coming down.
const DefaultRounds = 12

// Modes of an Ollama brain, and what it does when the model fails.
var (
	LLMModes  = []string{"narrate", "decide"}
	Fallbacks = []string{"rules", "escalate"}
)

// Styles are the ways a vendor concedes over rounds (NEGOTIATION.md's
// time-dependent tactics: e = 0.2, 1 and 2).
var Styles = map[string]float64{"boulware": 0.2, "linear": 1, "conceder": 2}

// VendorStyles are every vendor style a rule-based vendor plays
// (../shared/NEGOTIATION.md's pool): the time-dependent tactics; a
// hardliner that never moves from its list price; tit for tat, which
// concedes as much as the buyer's last offer rose; random concession within
// its floor; a cartel member, which quotes the cartel's price and never
// goes below it (its list price is that price); bait, which confirms more
// than was ordered; slow, which answers near the deadline; and walkaway,
// which ends the talks when an offer is under its walk_below. The last
// three concede linearly over their horizon.
var VendorStyles = []string{"boulware", "linear", "conceder", "hardliner", "tft", "random", "cartel", "bait", "slow", "walkaway"}

// The bounds of max_message_size: room for a message's headers and a
// signature, and no more than an agent should hold in memory.
const (
	minMessageSize mailbox.Size = 4 << 10
	maxMessageSize mailbox.Size = 1 << 30
)

// Team is parley.toml: the agents of one root.
type Team struct {
	Version int    `toml:"version"`
	Human   string `toml:"human"`
	// Protocol is the version of the message protocol the team's agents
	// speak, unless an agent says its own (docs/PROTOCOL.md): "1" unless
	// set. An agent reads any minor version of its major one.
	Protocol string `toml:"protocol"`
	// Model is the local model of every agent with brain = "ollama" that
	// names none: with it, one line switches an agent to a model.
	Model string `toml:"model"`
	// NotifyCommand runs (with sh -c) for each message that lands in the
	// human's inbox, with the message on standard input and its fields in
	// PARLEY_* variables: notify-send, a chat webhook, mail.
	NotifyCommand string `toml:"notify_command"`
	// Transport is where the team's messages and ledger go: "" or "files"
	// for the Maildirs and ledger.jsonl in the root, or a NATS JetStream
	// URL (nats://host:4222, docs/NATS.md) for a team on several machines.
	Transport string `toml:"transport"`
	// MaxMessageSize is the largest message an agent reads ("1MiB", the
	// default, or a number of bytes): a larger file in an inbox or a drop
	// folder is set aside unread, and a larger message is not sent.
	MaxMessageSize mailbox.Size `toml:"max_message_size"`
	Roles          []RoleSpec   `toml:"role"`
	Agents         []Agent      `toml:"agent"`
}

// RoleSpec is a role of the team's own, declared in parley.toml: the
// verbs its agents may send and to whom, the verbs they act on, and their
// brain (docs/AGENTS.md). The policy still decides every message; a role
// only narrows what its agents may even try.
type RoleSpec struct {
	Name    string   `toml:"name"`
	Sends   []string `toml:"sends"`   // the verbs it may send
	To      []string `toml:"to"`      // to whom: agents' names, or globs such as "vendor-*"
	Handles []string `toml:"handles"` // the verbs it acts on; any other is refused with an ERROR to its sender
	// Its agents' brain, unless an agent says its own: exec (a role of
	// one's own has no rules to run).
	Brain    string          `toml:"brain"`
	Command  []string        `toml:"command"`
	Every    policy.Duration `toml:"every"`
	Timeout  policy.Duration `toml:"timeout"`
	Protocol string          `toml:"protocol"`
}

// Spec is the declared role of agent a, or nil (a built-in role).
func (t *Team) Spec(a *Agent) *RoleSpec {
	for i := range t.Roles {
		if t.Roles[i].Name == a.Role {
			return &t.Roles[i]
		}
	}
	return nil
}

// May reports whether the role lets its agent send verb to to, and says
// why not.
func (r *RoleSpec) May(verb mailbox.Verb, to string) error {
	if len(r.Sends) > 0 && !slices.Contains(r.Sends, string(verb)) {
		return fmt.Errorf("the %s role sends only %s (parley.toml [[role]] %s)", r.Name, strings.Join(r.Sends, ", "), r.Name)
	}
	if len(r.To) > 0 && !slices.ContainsFunc(r.To, func(g string) bool { ok, _ := path.Match(g, to); return ok }) {
		return fmt.Errorf("the %s role sends only to %s (parley.toml [[role]] %s)", r.Name, strings.Join(r.To, ", "), r.Name)
	}
	return nil
}

// Acts reports whether the role acts on verb.
func (r *RoleSpec) Acts(verb mailbox.Verb) bool {
	return len(r.Handles) == 0 || slices.Contains(r.Handles, string(verb))
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
	if t.Protocol == "" {
		t.Protocol = mailbox.Version
	}
	if err := checkRoles(name, text, &t); err != nil {
		return nil, err
	}
	if t.Transport != "" && t.Transport != "files" {
		hint := `transport = "files", or "nats://host:4222" for a team on NATS JetStream (docs/NATS.md)`
		if !jsteam.IsURL(t.Transport) {
			return nil, tomlfile.Errorf(name, at("transport", ""), hint, "transport %q is not files or a NATS URL", jsteam.Redact(t.Transport))
		}
		if _, err := jsteam.ParseURL(t.Transport); err != nil {
			return nil, tomlfile.Errorf(name, at("transport", ""), hint, "%v", err)
		}
	}
	if t.MaxMessageSize != 0 && (t.MaxMessageSize < minMessageSize || t.MaxMessageSize > maxMessageSize) {
		return nil, tomlfile.Errorf(name, at("max_message_size", ""), `max_message_size = "1MiB" (the default); at least 4KiB, at most 1GiB`,
			"max_message_size is %s, outside %s to %s", t.MaxMessageSize, minMessageSize, maxMessageSize)
	}
	if err := mailbox.CheckVersion(t.Protocol); err != nil {
		return nil, tomlfile.Errorf(name, at("protocol", ""), `protocol = "1.1": this parley speaks 1 and its minor versions`, "%v", err)
	}
	seen := map[string]bool{}
	for i := range t.Agents {
		a := &t.Agents[i]
		if r := t.Spec(a); r != nil {
			// An agent of a declared role takes its brain and settings,
			// unless it says its own.
			a.Brain = cmp.Or(a.Brain, r.Brain)
			if a.Brain == "exec" { // the role's program, for an agent that runs one
				if len(a.Command) == 0 {
					a.Command = r.Command
				}
				a.Every.Duration = cmp.Or(a.Every.Duration, r.Every.Duration)
			}
			a.Timeout.Duration = cmp.Or(a.Timeout.Duration, r.Timeout.Duration)
			a.Protocol = cmp.Or(a.Protocol, r.Protocol)
		}
		if a.Brain == "ollama" {
			a.Model = cmp.Or(a.Model, t.Model)
		}
		if a.Protocol == "" {
			a.Protocol = t.Protocol
		} else if err := mailbox.CheckVersion(a.Protocol); err != nil {
			return nil, tomlfile.Errorf(name, at("protocol", a.Protocol), `protocol = "1.1": this parley speaks 1 and its minor versions`, "agent %q: %v", a.Name, err)
		}
		if a.Brain == "" {
			a.Brain = "rules"
		}
		switch {
		case !mailbox.ValidName(a.Name):
			return nil, tomlfile.Errorf(name, at("name", a.Name), "use lower-case letters, digits and hyphens, starting with a letter, such as vendor-b",
				"agent %d: name %q is not an agent name", i+1, a.Name)
		case a.Name == mailbox.System:
			return nil, tomlfile.Errorf(name, at("name", a.Name), "choose another name", "agent name %q is parley's own", a.Name)
		case a.Name == "add" || a.Name == "remove":
			return nil, tomlfile.Errorf(name, at("name", a.Name), "choose another name", "agent name %q is a command of parley agent", a.Name)
		case seen[a.Name]:
			return nil, tomlfile.Errorf(name, at("name", a.Name), "give each agent its own name", "agent %q appears twice", a.Name)
		case !slices.Contains(Roles, a.Role) && a.Brain != "exec" && (a.Brain != "ollama" || t.Spec(a) == nil):
			return nil, tomlfile.Errorf(name, at("role", a.Role), fmt.Sprintf(`role is one of %v, or a role of your own with brain = "exec" (or "ollama", when its [[role]] is declared)`, Roles), "agent %q: unknown role %q", a.Name, a.Role)
		case !mailbox.ValidName(a.Role):
			return nil, tomlfile.Errorf(name, at("role", a.Role), "a role's name is lower-case letters, digits and hyphens, such as editor", "agent %q: role %q is not a role name", a.Name, a.Role)
		case !slices.Contains(Brains, a.Brain):
			return nil, tomlfile.Errorf(name, at("brain", a.Brain), fmt.Sprintf("brain is one of %v", Brains), "agent %q: unknown brain %q", a.Name, a.Brain)
		}
		if err := checkTerms(name, text, a); err != nil {
			return nil, err
		}
		if err := checkModel(name, text, a); err != nil {
			return nil, err
		}
		if err := checkExec(name, text, a); err != nil {
			return nil, err
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

// checkTerms checks the terms a role needs, and fills in defaults.
func checkTerms(file, text string, a *Agent) error {
	at := func(key string) int { return tomlfile.Find(text, key, "") }
	switch a.Role {
	case "vendor":
		if a.Brain == "exec" && a.Item == "" && a.ListPrice.IsZero() && a.Floor.IsZero() && a.Capacity == 0 {
			// A program of its own keeps its own terms, secret from the
			// team as a real vendor's are: nothing else reads them.
			break
		}
		switch {
		case a.Item == "":
			return tomlfile.Errorf(file, tomlfile.Find(text, "name", a.Name), `add item = "widget"`, "vendor %q has no item", a.Name)
		case a.ListPrice.IsZero() || a.Floor.IsZero():
			return tomlfile.Errorf(file, tomlfile.Find(text, "name", a.Name), `add list_price = "5.10 USD" and floor = "4.60 USD"`, "vendor %q needs list_price and floor", a.Name)
		case a.ListPrice.Currency != a.Floor.Currency:
			return tomlfile.Errorf(file, at("floor"), "write both in one currency", "vendor %q: list_price and floor are in different currencies", a.Name)
		case a.Floor.Amount.GreaterThan(a.ListPrice.Amount) || a.Floor.Amount.Sign() <= 0:
			return tomlfile.Errorf(file, at("floor"), "the floor is the least it accepts, above zero and at most the list price", "vendor %q: floor %s is not between 0 and list_price %s", a.Name, a.Floor, a.ListPrice)
		case a.Capacity <= 0:
			return tomlfile.Errorf(file, tomlfile.Find(text, "name", a.Name), "add capacity = 1000", "vendor %q has no capacity", a.Name)
		case a.LeadDays < 0:
			return tomlfile.Errorf(file, at("lead_days"), "lead_days counts days from order to delivery", "vendor %q: lead_days is negative", a.Name)
		}
		if a.Style == "" {
			a.Style = "linear"
		}
		if !slices.Contains(VendorStyles, a.Style) {
			return tomlfile.Errorf(file, tomlfile.Find(text, "style", a.Style), "style is one of "+strings.Join(VendorStyles, ", "), "vendor %q: unknown style %q", a.Name, a.Style)
		}
		if a.Horizon < 0 || a.Horizon > 100 {
			return tomlfile.Errorf(file, at("horizon"), "horizon = 6: the counter-offers it concedes over", "vendor %q: horizon %d is not between 0 and 100", a.Name, a.Horizon)
		}
	case "human":
		if a.Brain != "rules" {
			return tomlfile.Errorf(file, tomlfile.Find(text, "brain", a.Brain), "remove the brain line: a person answers the human's inbox", "agent %q is the human; it has no brain to run", a.Name)
		}
	case "procurement":
		if a.QuoteWindow.Duration <= 0 {
			a.QuoteWindow.Duration = 30 * time.Second
		}
		if a.Rounds = DefaultRounds; a.RoundsSet != nil {
			a.Rounds = *a.RoundsSet // 0 takes the quotes as they stand, not the default
		}
		if a.Rounds < 0 {
			return tomlfile.Errorf(file, at("rounds"), "rounds = 0 accepts the best quote as it is", "procurement %q: rounds is negative", a.Name)
		}
	}
	return nil
}

// checkModel checks an Ollama brain's settings, and fills in defaults. The
// settings are refused on an agent whose brain is not ollama: a model line
// that does nothing would mislead whoever reads the file.
func checkModel(file, text string, a *Agent) error {
	at := func(key string) int { return tomlfile.Find(text, key, "") }
	if a.Brain != "ollama" {
		if a.Model != "" || a.LLM != "" || a.Fallback != "" || a.Prompt != "" || a.Host != "" {
			return tomlfile.Errorf(file, tomlfile.Find(text, "name", a.Name), `add brain = "ollama", or remove the model settings`,
				"agent %q has model settings but brain = %q", a.Name, a.Brain)
		}
		return nil
	}
	if a.LLM == "" {
		a.LLM = "narrate"
	}
	if a.Fallback == "" {
		a.Fallback = "rules"
	}
	if a.Timeout.Duration == 0 {
		a.Timeout.Duration = 60 * time.Second
	}
	if a.MaxTokens == 0 {
		a.MaxTokens = 512
	}
	if a.Concurrency == 0 {
		a.Concurrency = 1
	}
	if a.Retries = 1; a.RetriesSet != nil {
		a.Retries = *a.RetriesSet // 0 is no retry, not the default
	}
	switch {
	case a.Model == "":
		return tomlfile.Errorf(file, tomlfile.Find(text, "brain", "ollama"), `add model = "llama3.2" (any model ollama list shows)`, "agent %q: brain = \"ollama\" needs a model", a.Name)
	case !slices.Contains(LLMModes, a.LLM):
		return tomlfile.Errorf(file, at("llm"), `llm = "narrate" lets code pick every number; "decide" lets the model, within bounds`, "agent %q: unknown llm mode %q", a.Name, a.LLM)
	case !slices.Contains(Fallbacks, a.Fallback):
		return tomlfile.Errorf(file, at("fallback"), `fallback = "rules" takes the rules' step; "escalate" asks the human`, "agent %q: unknown fallback %q", a.Name, a.Fallback)
	case a.Temperature < 0 || a.Temperature > 2:
		return tomlfile.Errorf(file, at("temperature"), "temperature is between 0 and 2; 0 is the most repeatable", "agent %q: temperature %v is out of range", a.Name, a.Temperature)
	case a.Retries < 0 || a.Retries > 5:
		return tomlfile.Errorf(file, at("retries"), "retries is between 0 and 5", "agent %q: retries %d is out of range", a.Name, a.Retries)
	case a.MaxTokens < 16:
		return tomlfile.Errorf(file, at("max_tokens"), "max_tokens of 256 or more leaves room for a whole answer", "agent %q: max_tokens %d is too few for an answer", a.Name, a.MaxTokens)
	case a.NumCtx < 0:
		return tomlfile.Errorf(file, at("num_ctx"), "num_ctx = 8192, or leave it out for the server's default", "agent %q: num_ctx is negative", a.Name)
	case a.Concurrency < 1 || a.Concurrency > 64:
		return tomlfile.Errorf(file, at("concurrency"), "concurrency is between 1 and 64: what OLLAMA_NUM_PARALLEL lets the server run at once", "agent %q: concurrency %d is out of range", a.Name, a.Concurrency)
	case a.Timeout.Duration < 0:
		return tomlfile.Errorf(file, at("timeout"), `timeout = "60s"`, "agent %q: timeout is negative", a.Name)
	}
	if _, err := llm.ParseHost(a.Host); err != nil {
		return tomlfile.Errorf(file, at("host"), `host = "127.0.0.1:11434", or leave it out to use OLLAMA_HOST`, "agent %q: %v", a.Name, err)
	}
	return nil
}

// ModelConfig is the agent's settings as the llm client takes them.
func (a *Agent) ModelConfig() llm.Config {
	return llm.Config{Model: a.Model, Host: a.Host, Temperature: a.Temperature, Seed: a.Seed, Timeout: a.Timeout.Duration, MaxTokens: a.MaxTokens, Context: a.NumCtx, Concurrency: a.Concurrency}
}

// checkExec checks an exec brain's settings, and fills in defaults.
func checkExec(file, text string, a *Agent) error {
	at := func(key string) int { return tomlfile.Find(text, key, "") }
	if a.Brain != "exec" {
		if len(a.Command) > 0 || a.Every.Duration != 0 {
			return tomlfile.Errorf(file, at("command"), `add brain = "exec", or remove command and every`, "agent %q has a command but brain = %q", a.Name, a.Brain)
		}
		return nil
	}
	switch {
	case len(a.Command) == 0 || a.Command[0] == "":
		return tomlfile.Errorf(file, tomlfile.Find(text, "brain", "exec"), `add command = ["python3", "brains/editor.py"]: the program and its arguments`, "agent %q: brain = \"exec\" needs a command", a.Name)
	case a.Every.Duration < 0 || a.Timeout.Duration < 0:
		return tomlfile.Errorf(file, at("every"), `every = "1m", timeout = "10s"`, "agent %q: every and timeout are not negative", a.Name)
	}
	if a.Timeout.Duration == 0 {
		a.Timeout.Duration = 10 * time.Second
	}
	return nil
}

// checkRoles checks the team's declared roles.
func checkRoles(file, text string, t *Team) error {
	seen := map[string]bool{}
	for i := range t.Roles {
		r := &t.Roles[i]
		at := tomlfile.Find(text, "name", r.Name)
		switch {
		case !mailbox.ValidName(r.Name):
			return tomlfile.Errorf(file, at, "a role's name is lower-case letters, digits and hyphens, such as editor", "role %d: %q is not a role name", i+1, r.Name)
		case slices.Contains(Roles, r.Name):
			return tomlfile.Errorf(file, at, "a built-in role is not declared again: give yours another name", "role %q is built in", r.Name)
		case seen[r.Name]:
			return tomlfile.Errorf(file, at, "declare each role once", "role %q is declared twice", r.Name)
		case r.Brain != "" && r.Brain != "exec" && r.Brain != "ollama":
			return tomlfile.Errorf(file, tomlfile.Find(text, "brain", r.Brain), `brain = "exec" with its command, or "ollama": a role of your own has no rules`, "role %q: brain %q", r.Name, r.Brain)
		}
		for _, list := range [][]string{r.Sends, r.Handles} {
			for _, v := range list {
				if !mailbox.Verb(v).Valid() {
					return tomlfile.Errorf(file, tomlfile.Line(text, `"`+v+`"`), "verbs are written in capitals: "+mailbox.VerbList(), "role %q: %q is not a verb", r.Name, v)
				}
			}
		}
		for _, g := range r.To {
			if _, err := path.Match(g, ""); err != nil {
				return tomlfile.Errorf(file, tomlfile.Line(text, `"`+g+`"`), `to = ["writer", "vendor-*"]`, "role %q: %q is not a name or a glob", r.Name, g)
			}
		}
		if r.Protocol != "" {
			if err := mailbox.CheckVersion(r.Protocol); err != nil {
				return tomlfile.Errorf(file, tomlfile.Find(text, "protocol", r.Protocol), `protocol = "1.1"`, "role %q: %v", r.Name, err)
			}
		}
		seen[r.Name] = true
	}
	return nil
}
