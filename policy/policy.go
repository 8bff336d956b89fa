// Package policy holds parley's guardrails: policy.toml, read strictly,
// and the one decision every action goes through before it happens.
//
// Invariants:
//   - No action is taken without a Decision, and every Decision (allow,
//     deny or escalate, with the rule that decided, the reason and the hash
//     of the policy file) is a ledger entry before the caller acts on it.
//   - Spend tallies are computed from the ledger, under the ledger's lock,
//     so a restarted agent cannot forget what was spent and two agents
//     spending at once cannot together pass a limit.
//   - While the policy cannot be read, or while ROOT/PAUSED exists, every
//     action is denied.
package policy

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/parley-dev/parley/internal/tomlfile"
	"github.com/parley-dev/parley/mailbox"
	"github.com/shopspring/decimal"
)

// File is the policy's file name in a root.
const File = "policy.toml"

// Default is the commented policy that parley init writes.
//
//go:embed policy.toml
var Default []byte

// Policy is policy.toml.
type Policy struct {
	Version     int          `toml:"version"`
	Currency    string       `toml:"currency"`
	Limits      Limits       `toml:"limits"`
	Budget      Budget       `toml:"budget"`
	Human       Human        `toml:"human"`
	Allow       []Permission `toml:"allow"`
	Unsigned    []Permission `toml:"unsigned"` // what a hand-saved, unsigned file may say
	Rate        Rate         `toml:"rate"`
	Negotiation Negotiation  `toml:"negotiation"`
	Fuses       Fuses        `toml:"fuses"`
	Breaker     Breaker      `toml:"breaker"`

	// Hash is the SHA-256 of the file's bytes: decisions record it.
	Hash string `toml:"-"`
}

// Limits are hard caps on money.
type Limits struct {
	PerTransaction   Amount `toml:"per_transaction"`
	PerAgentPerDay   Amount `toml:"per_agent_per_day"`
	PerAgentPerMonth Amount `toml:"per_agent_per_month"`
}

// Budget is finance's money per period.
type Budget struct {
	Period string `toml:"period"` // day, month
	Amount Amount `toml:"amount"`
	// Reservations last this long unless paid or released.
	ReserveFor Duration `toml:"reserve_for"`
}

// Human is who signs off, and above what.
type Human struct {
	Agent           string   `toml:"agent"`
	ApprovalOver    Amount   `toml:"approval_over"`
	DecisionTimeout Duration `toml:"decision_timeout"`
	OnTimeout       string   `toml:"on_timeout"` // deny
}

// Permission is one [[allow]] rule: which verbs agents matching From may
// send to agents matching To. Names are globs: "vendor-*"; "*" is anyone,
// or any verb.
type Permission struct {
	From  string   `toml:"from"`
	Verbs []string `toml:"verbs"`
	To    []string `toml:"to"`

	// rule, lets and to are the rule's name and the words of the reason
	// an allowed message gets, less its verb, written once by Parse
	// (allowDecision).
	rule, lets, to string
	reasons        map[mailbox.Verb]string // by verb named
}

// Rate limits how fast one agent sends.
type Rate struct {
	MessagesPerMinute int `toml:"messages_per_minute"`
}

// Negotiation limits a deal's back and forth.
type Negotiation struct {
	MaxRounds   int      `toml:"max_rounds"`
	ReplyWithin Duration `toml:"reply_within"`
	// PartialOrders says whether procurement may buy the part of a need
	// the money can pay for when it cannot pay for all of it; unset is
	// true (Partial).
	PartialOrders *bool `toml:"partial_orders"`
}

// Partial reports whether a need may be bought in part when the money
// cannot buy all of it: the default, since each unit bought under the
// buyer's cap is worth more to it than it costs, and a stock-out of the
// rest is no worse for having the part.
func (n Negotiation) Partial() bool { return n.PartialOrders == nil || *n.PartialOrders }

// Fuses stop a thread that runs away: messages (hops), money committed and
// model tokens, each per thread.
type Fuses struct {
	// MaxHops and MaxTokens are the messages a thread may carry, and the
	// model tokens it may spend, for each agent asked on it (sent a
	// REQUEST): a deal put to twenty vendors talks twenty times as much
	// as one put to one, and two agents answering each other for ever
	// are stopped all the same (Hops, Tokens).
	MaxHops   int    `toml:"max_hops"`
	MaxSpend  Amount `toml:"max_spend"`
	MaxTokens int64  `toml:"max_tokens"`
}

// Hops is the message fuse of a thread on which asked agents were sent a
// REQUEST: max_hops for each, and max_hops with none (0: no fuse).
func (f Fuses) Hops(asked int) int { return f.MaxHops * max(1, asked) }

// Tokens is the token fuse of a thread on which asked agents were sent a
// REQUEST: max_tokens for each, and max_tokens with none (0: no fuse).
func (f Fuses) Tokens(asked int) int64 { return f.MaxTokens * int64(max(1, asked)) }

// Breaker pauses everything when errors and denials spike.
type Breaker struct {
	MaxErrors int      `toml:"max_errors"`
	Window    Duration `toml:"window"`
}

// Amount is a money limit written as "2500.00 USD"; the currency is
// checked against the policy's after decoding, where the line can be named.
type Amount = mailbox.Money

// Duration is a time span written as "10m" or "24h".
type Duration struct{ time.Duration }

// UnmarshalText reads a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 10m or 24h", b)
	}
	d.Duration = v
	return nil
}

// Load reads and checks the policy at path.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return Parse(path, data)
}

// Parse checks a policy's text, read from the file named name.
func Parse(name string, data []byte) (*Policy, error) {
	var p Policy
	if _, err := tomlfile.Decode(name, string(data), &p); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	p.Hash = hex.EncodeToString(sum[:])
	if err := p.check(name, string(data)); err != nil {
		return nil, err
	}
	for i := range p.Allow {
		a := &p.Allow[i]
		n := strconv.Itoa(i + 1)
		a.rule, a.lets, a.to = "allow."+n, "[[allow]] rule "+n+" lets "+a.From+" send ", " to "+strings.Join(a.To, " ")
		a.reasons = map[mailbox.Verb]string{}
		for _, v := range a.Verbs {
			a.reasons[mailbox.Verb(v)] = a.lets + v + a.to // "*": any verb, said as it is
		}
	}
	return &p, nil
}

func (p *Policy) check(name, text string) error {
	at := func(key string) int { return tomlfile.Find(text, key, "") }
	fail := func(key, hint, format string, args ...any) error {
		return tomlfile.Errorf(name, at(key), hint, format, args...)
	}
	if p.Version != 1 {
		return fail("version", "write version = 1", "version is %d; this parley reads policies of version 1", p.Version)
	}
	if len(p.Currency) != 3 || strings.ToUpper(p.Currency) != p.Currency {
		return fail("currency", `write currency = "USD" (an ISO 4217 code)`, "currency %q is not a currency code", p.Currency)
	}
	for _, l := range []struct {
		key      string
		v        Amount
		required bool
	}{
		{"per_transaction", p.Limits.PerTransaction, true},
		{"per_agent_per_day", p.Limits.PerAgentPerDay, false},
		{"per_agent_per_month", p.Limits.PerAgentPerMonth, false},
		{"amount", p.Budget.Amount, false},
		{"approval_over", p.Human.ApprovalOver, true},
		{"max_spend", p.Fuses.MaxSpend, false},
	} {
		switch {
		case l.v.IsZero() && l.required:
			return fail(l.key, fmt.Sprintf(`write %s = "2500.00 %s"`, l.key, p.Currency), "%s is missing", l.key)
		case l.v.IsZero():
		case l.v.Currency != p.Currency:
			return fail(l.key, fmt.Sprintf(`write it in %s, the policy's currency: parley converts nothing`, p.Currency),
				"%s is in %s, but the policy's currency is %s", l.key, l.v.Currency, p.Currency)
		case l.v.Amount.IsNegative():
			return fail(l.key, `limits are amounts such as "2500.00 `+p.Currency+`"; 0 allows nothing`, "%s is negative", l.key)
		}
	}
	if p.Budget.Period != "" && p.Budget.Period != "day" && p.Budget.Period != "month" {
		return fail("period", `period is "day" or "month"`, "budget period %q is not day or month", p.Budget.Period)
	}
	if p.Budget.Period == "" {
		p.Budget.Period = "month"
	}
	if p.Budget.ReserveFor.Duration == 0 {
		p.Budget.ReserveFor.Duration = 24 * time.Hour
	}
	if !mailbox.ValidName(p.Human.Agent) {
		return fail("agent", `write agent = "human" under [human]: the agent a person answers for`, "human agent %q is not an agent name", p.Human.Agent)
	}
	if p.Human.OnTimeout == "" {
		p.Human.OnTimeout = "deny"
	}
	if p.Human.OnTimeout != "deny" && p.Human.OnTimeout != "escalate" {
		return fail("on_timeout", `on_timeout is "deny" (the safe answer) or "escalate" (ask again)`, "on_timeout %q is not deny or escalate", p.Human.OnTimeout)
	}
	for i, u := range p.Unsigned {
		for _, v := range u.Verbs {
			if isMoney(mailbox.Verb(v)) || v == "*" {
				return tomlfile.Errorf(name, lineAfter(text, "[[unsigned]]", i+1, strconv.Quote(v)), "money never moves on an unsigned file: list only verbs such as NOTIFY or DENIED",
					"unsigned rule %d allows %s", i+1, v)
			}
		}
	}
	for i, a := range p.Allow {
		if a.From == "" || len(a.Verbs) == 0 || len(a.To) == 0 {
			return fail("from", "each [[allow]] needs from, verbs and to", "allow rule %d is incomplete", i+1)
		}
		for _, g := range append([]string{a.From}, a.To...) {
			if _, err := path.Match(g, "x"); err != nil {
				return tomlfile.Errorf(name, lineWith(text, strconv.Quote(g)), `names are globs such as "vendor-*"`, "allow rule %d: %q is not a glob", i+1, g)
			}
		}
		for _, v := range a.Verbs {
			if v != "*" && !mailbox.Verb(v).Valid() {
				return tomlfile.Errorf(name, tomlfile.Find(text, "verbs", ""), "verbs are "+strings.Join(verbNames(), ", ")+", or *",
					"allow rule %d: %q is not a verb", i+1, v)
			}
		}
	}
	for _, n := range []struct {
		key string
		v   int64
	}{
		{"messages_per_minute", int64(p.Rate.MessagesPerMinute)}, {"max_rounds", int64(p.Negotiation.MaxRounds)},
		{"max_hops", int64(p.Fuses.MaxHops)}, {"max_tokens", p.Fuses.MaxTokens}, {"max_errors", int64(p.Breaker.MaxErrors)},
	} {
		if n.v < 0 {
			return fail(n.key, "0 turns the limit off", "%s is negative", n.key)
		}
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"decision_timeout", p.Human.DecisionTimeout}, {"reply_within", p.Negotiation.ReplyWithin},
		{"window", p.Breaker.Window}, {"reserve_for", p.Budget.ReserveFor}} {
		if d.v.Duration < 0 {
			return fail(d.key, "durations are such as 10m or 24h", "%s is negative", d.key)
		}
	}
	if p.Breaker.MaxErrors > 0 && p.Breaker.Window.Duration == 0 {
		return fail("max_errors", `add window = "5m" under [breaker]`, "the breaker has max_errors but no window")
	}
	return nil
}

// lineWith returns the first line of text that contains s, or 0.
func lineWith(text, s string) int {
	for i, line := range strings.Split(text, "\n") {
		if strings.Contains(line, s) {
			return i + 1
		}
	}
	return 0
}

// lineAfter returns the first line containing s after the n-th line that
// is marker (a table header), or 0.
func lineAfter(text, marker string, n int, s string) int {
	seen := 0
	for i, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == marker {
			seen++
		}
		if seen == n && strings.Contains(line, s) {
			return i + 1
		}
	}
	return 0
}

func verbNames() []string {
	s := make([]string, len(mailbox.Verbs))
	for i, v := range mailbox.Verbs {
		s[i] = string(v)
	}
	return s
}

// money returns an amount in the policy's currency.
func (p *Policy) money(d decimal.Decimal) mailbox.Money {
	return mailbox.Money{Amount: d, Currency: p.Currency}
}

// Allows reports whether from may send verb to to, and the allow rule
// that says so (1-based), or 0.
func (p *Policy) Allows(from string, verb mailbox.Verb, to string) int {
	for i, a := range p.Allow {
		if !glob(a.From, from) {
			continue
		}
		verbOK := false
		for _, v := range a.Verbs {
			if v == "*" || v == string(verb) {
				verbOK = true
			}
		}
		if !verbOK {
			continue
		}
		for _, t := range a.To {
			if glob(t, to) {
				return i + 1
			}
		}
	}
	return 0
}

// AllowsUnsigned reports whether a hand-saved, unsigned file from from may
// say verb to to ([[unsigned]] rules; never a verb that moves money).
func (p *Policy) AllowsUnsigned(from string, verb mailbox.Verb, to string) bool {
	if isMoney(verb) {
		return false
	}
	for _, u := range p.Unsigned {
		if !glob(u.From, from) || !contains(u.Verbs, string(verb)) {
			continue
		}
		for _, t := range u.To {
			if glob(t, to) {
				return true
			}
		}
	}
	return false
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func glob(pattern, name string) bool {
	meta := -1
	for i := 0; i < len(pattern); i++ {
		if c := pattern[i]; c == '*' || c == '?' || c == '[' || c == '\\' {
			meta = i
			break
		}
	}
	// Every message sent is matched against the [[allow]] rules: the two
	// kinds of pattern they have are matched without path.Match, to the
	// same answer (TestGlobPlain, FuzzGlob).
	switch {
	case meta < 0:
		return pattern == name // no wildcard, no escape
	case meta == len(pattern)-1 && pattern[meta] == '*':
		// "vendor-*": the prefix, then anything but a slash.
		return strings.HasPrefix(name, pattern[:meta]) && !strings.Contains(name[meta:], "/")
	}
	ok, _ := path.Match(pattern, name)
	return ok
}

// Summary says in a few lines what the policy allows.
func (p *Policy) Summary() string {
	var b strings.Builder
	lim := func(m Amount) string {
		if m.IsZero() {
			return "no limit"
		}
		return m.String()
	}
	fmt.Fprintf(&b, "policy version %d, in %s (sha256 %s)\n", p.Version, p.Currency, p.Hash[:12])
	fmt.Fprintf(&b, "  per transaction:      %s\n", lim(p.Limits.PerTransaction))
	fmt.Fprintf(&b, "  per agent per day:    %s; per month: %s\n", lim(p.Limits.PerAgentPerDay), lim(p.Limits.PerAgentPerMonth))
	fmt.Fprintf(&b, "  budget:               %s a %s; approvals hold money for %v\n", lim(p.Budget.Amount), p.Budget.Period, p.Budget.ReserveFor.Duration)
	fmt.Fprintf(&b, "  human sign-off:       %s above %s; no answer in %v means %s\n", p.Human.Agent, p.Human.ApprovalOver, p.Human.DecisionTimeout.Duration, p.Human.OnTimeout)
	fmt.Fprintf(&b, "  rate:                 %s a minute per agent\n", offOr(p.Rate.MessagesPerMinute))
	fmt.Fprintf(&b, "  negotiation:          %s rounds per vendor; replies within %v\n", offOr(p.Negotiation.MaxRounds), p.Negotiation.ReplyWithin.Duration)
	fmt.Fprintf(&b, "  fuses per thread:     %s messages and %s tokens for each agent asked; %s committed\n", offOr(p.Fuses.MaxHops), offOr(int(p.Fuses.MaxTokens)), lim(p.Fuses.MaxSpend))
	fmt.Fprintf(&b, "  circuit breaker:      %s errors or denials within %v\n", offOr(p.Breaker.MaxErrors), p.Breaker.Window.Duration)
	for _, a := range p.Allow {
		fmt.Fprintf(&b, "  %s may send %s to %s\n", a.From, strings.Join(a.Verbs, " "), strings.Join(a.To, " "))
	}
	return b.String()
}

func offOr(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}
