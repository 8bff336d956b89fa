package policy

import (
	"path"
	"testing"

	"github.com/parley-dev/parley/mailbox"
)

// TestGlobPlain: glob's shortcut for a pattern without wildcards gives
// path.Match's answer.
func TestGlobPlain(t *testing.T) {
	names := []string{"", "procurement", "vendor-a", "vendor-*", "vendor-", "vendor-a/b", "*", "a*", "a/*", "a/b", "vendor-a ", "Vendor-a", "vendör", "*", "[a]", `\a`, "a?"}
	for _, p := range names {
		for _, n := range names {
			want, _ := path.Match(p, n)
			if got := glob(p, n); got != want {
				t.Errorf("glob(%q, %q) = %v, path.Match says %v", p, n, got, want)
			}
		}
	}
}

func FuzzGlob(f *testing.F) {
	f.Add("vendor-a", "vendor-a")
	f.Add("vendor-*", "vendor-b")
	f.Add("a/b", "a/b")
	f.Add("a/*", "a/b/c")
	f.Fuzz(func(t *testing.T, p, n string) {
		want, _ := path.Match(p, n)
		if got := glob(p, n); got != want {
			t.Errorf("glob(%q, %q) = %v, path.Match says %v", p, n, got, want)
		}
	})
}

// TestAllowDecision: an allowed message's rule and reason, written ahead
// by Parse, are the words written for each message.
func TestAllowDecision(t *testing.T) {
	p, err := Parse("policy.toml", Default)
	if err != nil {
		t.Fatal(err)
	}
	verbs := []mailbox.Verb{mailbox.Request, mailbox.Quote, mailbox.Counter, mailbox.Order, mailbox.Paid, mailbox.Approved, "X"}
	for rule := 1; rule <= len(p.Allow); rule++ {
		for _, v := range verbs {
			if got, want := allowDecision(p, rule, v), allowDecisionOf(p, rule, v); got != want {
				t.Errorf("rule %d, %s: %+v, want %+v", rule, v, got, want)
			}
		}
	}
	if len(p.Allow) < 5 {
		t.Fatalf("the default policy has %d [[allow]] rules", len(p.Allow))
	}
}
