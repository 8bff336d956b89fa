package policy

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/parley-dev/parley/internal/tomlfile"
)

func TestDefaultPolicy(t *testing.T) {
	p, err := Parse("policy.toml", Default)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Limits.PerTransaction.String(), "5000.00 USD"; got != want {
		t.Errorf("per_transaction = %s, want %s", got, want)
	}
	if got, want := p.Human.ApprovalOver.String(), "2500.00 USD"; got != want {
		t.Errorf("approval_over = %s, want %s", got, want)
	}
	if len(p.Hash) != 64 {
		t.Errorf("Hash = %q, want a SHA-256", p.Hash)
	}
	if !strings.Contains(p.Summary(), "human sign-off:       human above 2500.00 USD") {
		t.Errorf("Summary:\n%s", p.Summary())
	}
	for _, tt := range []struct {
		line string
		want bool
	}{
		{"partial_orders = true ", true},
		{"partial_orders = false ", false},
		{"", true}, // unset
	} {
		text := strings.Replace(string(Default), "partial_orders = true ", tt.line, 1)
		q, err := Parse("policy.toml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		if got := q.Negotiation.Partial(); got != tt.want {
			t.Errorf("with %q: Partial()=%v, want %v", tt.line, got, tt.want)
		}
	}
}

// The default root in the repository holds the policy that init writes.
func TestRepositoryRootHasDefaultPolicy(t *testing.T) {
	data, err := os.ReadFile("../mailboxes/policy.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, Default) {
		t.Error("mailboxes/policy.toml differs from policy/policy.toml: copy one over the other")
	}
}

func TestParseErrors(t *testing.T) {
	base := string(Default)
	edit := func(old, new string) string {
		if !strings.Contains(base, old) {
			t.Fatalf("the default policy has no %q", old)
		}
		return strings.Replace(base, old, new, 1)
	}
	tests := []struct {
		name, in, want, hint string
	}{
		{"unknown key", edit(`[limits]`, "[limits]\nper_transation = \"1.00 USD\""), `policy.toml:16: unknown key "limits.per_transation"`, "remove it"},
		{"wrong type", edit(`max_errors = 10`, `max_errors = "ten"`), `policy.toml:84: breaker.max_errors: incompatible types`, ""},
		{"negative", edit(`per_transaction = "5000.00 USD"`, `per_transaction = "-5.00 USD"`), `policy.toml:16: per_transaction is negative`, "limits are amounts"},
		{"other currency", edit(`amount = "100000.00 USD"`, `amount = "100000.00 EUR"`), `policy.toml:22: amount is in EUR, but the policy's currency is USD`, "parley converts nothing"},
		{"not money", edit(`approval_over = "2500.00 USD"`, `approval_over = "lots"`), `policy.toml:27: not an amount: "lots" is not a plain decimal number`, ""},
		{"version", edit(`version = 1`, `version = 2`), `policy.toml:12: version is 2; this parley reads policies of version 1`, "version = 1"},
		{"missing cap", edit(`per_transaction = "5000.00 USD"`, ``), `policy.toml: per_transaction is missing`, `per_transaction = "2500.00 USD"`},
		{"bad verb", edit(`verbs = ["REQUEST", "NOTIFY"]`, `verbs = ["REQUEST", "BUY"]`), `policy.toml:35: allow rule 1: "BUY" is not a verb`, "verbs are"},
		{"bad glob", edit(`from = "vendor-*"`, `from = "vendor-["`), `policy.toml:44: allow rule 3: "vendor-[" is not a glob`, ""},
		{"duration", edit(`window = "5m"`, `window = "five minutes"`), `policy.toml:85: "five minutes" is not a duration`, ""},
		{"negative count", edit(`max_hops = 40`, `max_hops = -1`), `policy.toml:77: max_hops is negative`, "0 turns the limit off"},
		{"period", edit(`period = "month"`, `period = "fortnight"`), `policy.toml:21: budget period "fortnight" is not day or month`, ""},
		{"syntax", edit(`[budget]`, `[budget`), `policy.toml:20: `, ""},
		{"money unsigned", edit(`verbs = ["NOTIFY", "DENIED", "REQUEST"]`, `verbs = ["NOTIFY", "APPROVED"]`), `policy.toml:63: unsigned rule 1 allows APPROVED`, "money never moves on an unsigned file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("policy.toml", []byte(tt.in))
			var te *tomlfile.Error
			if !errors.As(err, &te) {
				t.Fatalf("Parse err = %v, want a *tomlfile.Error", err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Parse err =\n  %s\nwant it to start with\n  %s", err, tt.want)
			}
			if !strings.Contains(te.Hint, tt.hint) {
				t.Errorf("hint %q does not say %q", te.Hint, tt.hint)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Default)
	f.Add([]byte("version = 1\ncurrency = \"USD\"\n[limits]\nper_transaction = \"1 USD\"\n[human]\nagent = \"h\"\napproval_over = \"1 USD\"\n"))
	f.Add([]byte("[[allow]]\nfrom = \"[\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("policy.toml", data)
		if err != nil {
			var te *tomlfile.Error
			if !errors.As(err, &te) {
				t.Fatalf("error %v is not a *tomlfile.Error", err)
			}
			return
		}
		if p.Limits.PerTransaction.Currency != p.Currency || p.Limits.PerTransaction.Amount.IsNegative() {
			t.Fatalf("accepted per_transaction %s in a %s policy", p.Limits.PerTransaction, p.Currency)
		}
		p.Summary()
	})
}
