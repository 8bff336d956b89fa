package agents

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"

	"github.com/parley-dev/parley/internal/tomlfile"
	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
)

// Scenario is a deal to play: the need, the buyer's terms, the vendors'
// public and private terms, the policy's numbers and how the human answers
// when asked. docs/SCENARIOS.md describes the file.
type Scenario struct {
	Name        string `toml:"name"`
	Description string `toml:"description"`
	Need        struct {
		Item              string `toml:"item"`
		Stock             int64  `toml:"stock"`
		ReorderPoint      int64  `toml:"reorder_point"`
		Quantity          int64  `toml:"quantity"`
		DeliverWithinDays int    `toml:"deliver_within_days"`
	} `toml:"need"`
	Regime string `toml:"regime"` // the kind of deal it is (parley simulate's regimes); free text
	Buyer  struct {
		Rounds       int             `toml:"rounds"`
		QuoteWindow  policy.Duration `toml:"quote_window"`
		MaxUnitPrice mailbox.Money   `toml:"max_unit_price"`
		// What parley simulate scores the deal by (NEGOTIATION.md): the
		// value of a unit delivered in time, and the penalty per unit per
		// day late.
		Value       mailbox.Money `toml:"value"`
		LatePenalty mailbox.Money `toml:"late_penalty"`
		// NoCeiling plays procurement with no max_unit_price at all, as a
		// team that never set one: its only sense of value is its budget.
		NoCeiling bool `toml:"no_ceiling"`
		// NegotiateWithin is procurement's negotiate_within.
		NegotiateWithin policy.Duration `toml:"negotiate_within"`
	} `toml:"buyer"`
	Policy struct {
		Budget       mailbox.Money `toml:"budget"`
		ApprovalOver mailbox.Money `toml:"approval_over"`
		// MaxRounds and MaxHops, when set, are the policy's
		// negotiation.max_rounds and fuses.max_hops.
		MaxRounds int `toml:"max_rounds"`
		MaxHops   int `toml:"max_hops"`
		// PartialOrders, when set, is the policy's
		// negotiation.partial_orders.
		PartialOrders *bool `toml:"partial_orders"`
	} `toml:"policy"`
	Human struct {
		Answer string `toml:"answer"` // approve, deny or ask
	} `toml:"human"`
	Vendors []ScenarioVendor `toml:"vendor"`
	Expect  struct {
		Outcome string `toml:"outcome"` // ordered or failed
		Vendor  string `toml:"vendor"`
	} `toml:"expect"`
}

// ScenarioVendor is one vendor's terms; Silent vendors never answer (their
// agent is not started).
type ScenarioVendor struct {
	Name          string          `toml:"name"`
	ListPrice     mailbox.Money   `toml:"list_price"`
	Floor         mailbox.Money   `toml:"floor"`
	Capacity      int64           `toml:"capacity"`
	LeadDays      int             `toml:"lead_days"`
	Style         string          `toml:"style"`
	Silent        bool            `toml:"silent"`
	Pitch         string          `toml:"pitch"` // words added to each of its quotes (manipulation, in the adversarial regime)
	Horizon       int             `toml:"horizon"`
	ConcedeWithin policy.Duration `toml:"concede_within"`
	WalkBelow     mailbox.Money   `toml:"walk_below"`
}

// LoadScenario reads and checks a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return ParseScenario(path, data)
}

// ParseScenario checks a scenario's text, read from the file named path.
func ParseScenario(path string, data []byte) (*Scenario, error) {
	var s Scenario
	if _, err := tomlfile.Decode(path, string(data), &s); err != nil {
		return nil, err
	}
	text := string(data)
	at := func(key string) int { return tomlfile.Find(text, key, "") }
	fail := func(key, hint, format string, args ...any) error {
		return tomlfile.Errorf(path, at(key), hint, format, args...)
	}
	switch {
	case !mailbox.ValidName(s.Name):
		return nil, fail("name", `name = "restock-widget": lower-case letters, digits and hyphens`, "name %q is not a scenario name", s.Name)
	case s.Need.Item == "":
		return nil, fail("need", `add item = "widget" under [need]`, "the need has no item")
	case s.Need.Quantity <= 0:
		return nil, fail("quantity", "quantity = 500: the units to buy", "the need's quantity must be above 0")
	case s.Need.ReorderPoint <= 0 || s.Need.Stock < 0 || s.Need.Stock >= s.Need.ReorderPoint:
		return nil, fail("stock", "the stock must fall below the reorder point, so that the need arises", "stock %d is not below the reorder point %d", s.Need.Stock, s.Need.ReorderPoint)
	case len(s.Vendors) == 0:
		return nil, tomlfile.Errorf(path, 0, "add [[vendor]] tables", "the scenario has no vendors")
	}
	if s.Human.Answer == "" {
		s.Human.Answer = "approve"
	}
	if s.Human.Answer != "approve" && s.Human.Answer != "deny" && s.Human.Answer != "ask" {
		return nil, fail("answer", `answer is "approve", "deny" or "ask"`, "the human's answer %q is not approve, deny or ask", s.Human.Answer)
	}
	if s.Expect.Outcome != "" && s.Expect.Outcome != "ordered" && s.Expect.Outcome != "failed" {
		return nil, fail("outcome", `outcome is "ordered" or "failed"`, "expected outcome %q is not ordered or failed", s.Expect.Outcome)
	}
	// The team the scenario makes must itself be a valid team: the same
	// checks, with the scenario's lines.
	if _, err := ParseTeam(path, s.TeamFile()); err != nil {
		line := 0
		for _, v := range s.Vendors {
			if strings.Contains(err.Error(), `"`+v.Name+`"`) {
				line = tomlfile.Find(text, "name", v.Name)
			}
		}
		var te *tomlfile.Error
		hint := "check the [[vendor]] tables"
		if errors.As(err, &te) && te.Hint != "" {
			hint = te.Hint
		}
		return nil, tomlfile.Errorf(path, line, hint, "%s", afterLine(err.Error()))
	}
	return &s, nil
}

var teamTemplate = template.Must(template.New("team").Parse(`# parley.toml — made by parley demo from scenario {{.Name}}.
version = 1
human = "human"

[[agent]]
name = "inventory"
role = "inventory"

[[agent]]
name = "procurement"
role = "procurement"
{{- if .Buyer.Rounds}}
rounds = {{.Buyer.Rounds}}{{end}}
{{- if .Buyer.QuoteWindow.Duration}}
quote_window = "{{.Buyer.QuoteWindow.Duration}}"{{end}}
{{- with .Ceiling}}{{if not .IsZero}}
max_unit_price = "{{.}}"{{end}}{{end}}
{{- if not .Buyer.LatePenalty.IsZero}}
late_penalty = "{{.Buyer.LatePenalty}}"{{end}}
{{- if .Buyer.NegotiateWithin.Duration}}
negotiate_within = "{{.Buyer.NegotiateWithin.Duration}}"{{end}}
{{range .Vendors}}
[[agent]]
name = "{{.Name}}"
role = "vendor"
item = "{{$.Need.Item}}"
list_price = "{{.ListPrice}}"
floor = "{{.Floor}}"
capacity = {{.Capacity}}
lead_days = {{.LeadDays}}
{{- if .Style}}
style = "{{.Style}}"{{end}}
{{- if .Horizon}}
horizon = {{.Horizon}}{{end}}
{{- if .ConcedeWithin.Duration}}
concede_within = "{{.ConcedeWithin.Duration}}"{{end}}
{{- if not .WalkBelow.IsZero}}
walk_below = "{{.WalkBelow}}"{{end}}
{{end}}
[[agent]]
name = "finance"
role = "finance"

[[agent]]
name = "human"
role = "human"
`))

// TeamFile is the parley.toml of the scenario's team. Procurement's
// max_unit_price is the scenario's Ceiling: the team a live run plays is
// the one the simulator plays.
func (s *Scenario) TeamFile() []byte {
	var b bytes.Buffer
	if err := teamTemplate.Execute(&b, s); err != nil {
		panic(err) // the template and the types are both here: a failure is a bug
	}
	return b.Bytes()
}

// Ceiling is the most procurement pays a unit in a simulation: its
// max_unit_price, and never more than a unit is worth to the buyer.
func (s *Scenario) Ceiling() mailbox.Money {
	if s.Buyer.NoCeiling {
		return mailbox.Money{}
	}
	c, v := s.Buyer.MaxUnitPrice, s.Buyer.Value
	if c.IsZero() || (!v.IsZero() && v.Currency == c.Currency && v.Amount.LessThan(c.Amount)) {
		return v
	}
	return c
}

// StockFile is the inventory's stock file for the scenario, with the stock
// at the given level.
func (s *Scenario) StockFile(stock int64) []byte {
	return []byte(fmt.Sprintf("[[item]]\nname = %q\nstock = %d\nreorder_point = %d\nreorder_quantity = %d\ndeliver_within_days = %d\n",
		s.Need.Item, stock, s.Need.ReorderPoint, s.Need.Quantity, s.Need.DeliverWithinDays))
}

// PolicyFile is the default policy with the scenario's numbers: its budget
// is also its only money limit (per transaction, per agent, and the
// thread's spend fuse), and its sign-off threshold.
func (s *Scenario) PolicyFile() []byte {
	text := string(policy.Default)
	if b := s.Policy.Budget; !b.IsZero() {
		text = strings.Replace(text, `amount = "100000.00 USD"`, fmt.Sprintf("amount = %q", b), 1)
		for _, key := range []string{`per_transaction = "5000.00 USD"`, `per_agent_per_day = "50000.00 USD"`, `per_agent_per_month = "250000.00 USD"`, `max_spend = "10000.00 USD"`} {
			name, _, _ := strings.Cut(key, " =")
			text = strings.Replace(text, key, fmt.Sprintf("%s = %q", name, b), 1)
		}
	}
	if !s.Policy.ApprovalOver.IsZero() {
		text = strings.Replace(text, `approval_over = "2500.00 USD"`, fmt.Sprintf("approval_over = %q", s.Policy.ApprovalOver), 1)
	}
	if n := s.Policy.MaxRounds; n > 0 {
		text = strings.Replace(text, "max_rounds = 12 ", fmt.Sprintf("max_rounds = %d ", n), 1)
	}
	if n := s.Policy.MaxHops; n > 0 {
		text = strings.Replace(text, "max_hops = 40 ", fmt.Sprintf("max_hops = %d ", n), 1)
	}
	if p := s.Policy.PartialOrders; p != nil {
		text = strings.Replace(text, "partial_orders = true ", fmt.Sprintf("partial_orders = %t ", *p), 1)
	}
	return []byte(text)
}

// Matches reports whether team is the scenario's team: the same vendors
// with the same terms, and the buyer's terms.
func (s *Scenario) Matches(team *Team) error {
	want, err := ParseTeam("scenario", s.TeamFile())
	if err != nil {
		return err
	}
	for _, w := range want.Agents {
		got := team.Agent(w.Name)
		if got == nil {
			return fmt.Errorf("it has no agent %s", w.Name)
		}
		w.Brain = got.Brain // a scenario does not choose brains
		// As written, pointers: what they came to (Rounds, Retries) is compared.
		w.RoundsSet, w.RetriesSet = got.RoundsSet, got.RetriesSet
		if fmt.Sprint(w) != fmt.Sprint(*got) {
			return fmt.Errorf("%s's terms differ from the scenario's", w.Name)
		}
	}
	return nil
}

// afterLine drops the "file:line: " of an error about the generated team,
// whose lines are not the scenario's.
func afterLine(s string) string {
	if parts := strings.SplitN(s, ": ", 2); len(parts) == 2 {
		return parts[1]
	}
	return s
}

// Silent reports whether the scenario's vendor name never answers.
func (s *Scenario) Silent(name string) bool {
	for _, v := range s.Vendors {
		if v.Name == name {
			return v.Silent
		}
	}
	return false
}

// Check compares the human's notice with what the scenario expects.
func (s *Scenario) Check(notice string) error {
	switch {
	case s.Expect.Outcome == "":
		return nil
	case s.Expect.Outcome == "ordered" && !strings.HasPrefix(notice, "Ordered "):
		return fmt.Errorf("scenario %s expects an order, but the human was told: %s", s.Name, notice)
	case s.Expect.Outcome == "ordered" && s.Expect.Vendor != "" && !strings.Contains(notice, " from "+s.Expect.Vendor+"."):
		return fmt.Errorf("scenario %s expects the order to go to %s, but the human was told: %s", s.Name, s.Expect.Vendor, notice)
	case s.Expect.Outcome == "failed" && !strings.HasPrefix(notice, "Could not buy"):
		return fmt.Errorf("scenario %s expects no deal, but the human was told: %s", s.Name, notice)
	}
	return nil
}
