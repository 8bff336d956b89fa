package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
	"github.com/shopspring/decimal"
)

// TestBooksCommandsAgree plays generated deals through the policy engine
// on a root made by parley init, then reads them with parley books,
// status and policy test at the time of the last line: every figure each
// prints must be the books' (policy.Books, which the policy package's
// property test checks against its model of the books), and the three
// must print the same numbers for the same things.
func TestBooksCommandsAgree(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 4
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { booksCommandsAgree(t, seed) })
	}
}

// booksPolicy is the default policy with a budget and a sign-off the deals
// run into, approvals that lapse within a history, and no breaker (the
// deals are denied often, on purpose).
func booksPolicy() string {
	text := string(policy.Default)
	for _, r := range [][2]string{
		{`amount = "100000.00 USD"`, `amount = "9000.00 USD"`},
		{`reserve_for = "24h"`, `reserve_for = "6h"`},
		{`decision_timeout = "24h"`, `decision_timeout = "1h"`},
		{`max_errors = 10`, `max_errors = 0`},
		{`messages_per_minute = 300`, `messages_per_minute = 0`},
	} {
		if !strings.Contains(text, r[0]) {
			panic("the default policy no longer says " + r[0])
		}
		text = strings.Replace(text, r[0], r[1], 1)
	}
	return text
}

func booksCommandsAgree(t *testing.T, seed uint64) {
	root := filepath.Join(t.TempDir(), "root")
	clock := time.Date(2026, 11, 30, 20, 0, 0, 0, time.UTC) // the month ends in the middle of it
	t.Setenv("PARLEY_NOW", clock.Format(time.RFC3339))
	t.Setenv("TZ", "UTC")
	if out, code := runCLI(t, "--root", root, "init"); code != 0 {
		t.Fatalf("init: %s", out)
	}
	if err := os.WriteFile(filepath.Join(root, policy.File), []byte(booksPolicy()), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := mailbox.OpenRoot(root, func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	eng := policy.NewEngine(r)
	defer eng.Close()

	rng := rand.New(rand.NewPCG(seed, 15))
	ids := 0
	send := func(from, to string, verb mailbox.Verb, thread string, amount decimal.Decimal, vendor string) policy.Decision {
		clock = clock.Add(time.Duration(1+rng.IntN(40)) * time.Minute)
		if rng.IntN(25) == 0 {
			clock = clock.Add(7 * time.Hour) // approvals lapse
		}
		ids++
		m := &mailbox.Message{Version: "1", ID: fmt.Sprintf("<books%d-%d@test>", seed, ids), Date: clock, From: from, To: to,
			Thread: thread, Verb: verb, Item: "widget", Quantity: 100, Amount: mailbox.Money{Amount: amount, Currency: "USD"}, Subject: string(verb)}
		if vendor != "" {
			m.Extra = []mailbox.Header{{Name: "Vendor", Value: vendor}}
		}
		d, err := eng.Send(policy.Action{Agent: from, Message: m})
		if err != nil && !errors.Is(err, policy.ErrDenied) && !errors.Is(err, policy.ErrEscalated) {
			t.Fatalf("%s %s: %v", from, verb, err)
		}
		return d
	}
	cents := func(lo, n int) decimal.Decimal { return decimal.New(int64(lo+rng.IntN(n)), -2) }
	for d := range 4 {
		thread := fmt.Sprintf("deal-%d", d)
		for _, v := range rng.Perm(3)[:1+rng.IntN(3)] {
			vendor := []string{"vendor-a", "vendor-b", "vendor-c"}[v]
			amount := cents(10000, 330000)
			if send("finance", "procurement", mailbox.Approved, thread, amount, vendor).Outcome == policy.Escalate {
				if rng.IntN(4) == 0 {
					continue // nobody answers
				}
				send("human", "finance", mailbox.Approved, thread, amount, "")
				send("finance", "procurement", mailbox.Approved, thread, amount, vendor)
			}
			if rng.IntN(6) == 0 {
				clock = clock.Add(time.Minute)
				if err := eng.Release("finance", thread, vendor, "the deal fell through"); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if send("procurement", vendor, mailbox.Order, thread, amount, "").Outcome == policy.Escalate {
				send("human", "procurement", mailbox.Approved, thread, amount.Mul(decimal.NewFromInt(3)), "")
				send("procurement", vendor, mailbox.Order, thread, amount, "")
			}
			confirmed := amount
			if rng.IntN(4) == 0 {
				confirmed = amount.Add(cents(1, 30000)) // the vendor changes the terms
			}
			send(vendor, "procurement", mailbox.Confirmed, thread, confirmed, "")
			if rng.IntN(5) == 0 {
				continue // not paid yet
			}
			if send("finance", vendor, mailbox.Paid, thread, confirmed, "").Outcome == policy.Escalate {
				send("human", "finance", mailbox.Approved, thread, confirmed, "")
				send("finance", vendor, mailbox.Paid, thread, confirmed, "")
			}
		}
	}

	// Read at the last line's time, as policy test does.
	t.Setenv("PARLEY_NOW", clock.Format(time.RFC3339))
	fresh := policy.NewEngine(r)
	defer fresh.Close()
	s, p, err := fresh.State()
	if err != nil || p == nil {
		t.Fatalf("state: %v", err)
	}
	b, reserve := s.Books(), p.Budget.ReserveFor.Duration

	var books booksView
	readJSON(t, &books, root, "books", "--json")
	var st status
	readJSON(t, &st, root, "status", "--json")
	var w policy.WhatIf
	readJSON(t, &w, root, "policy", "test", "--json", filepath.Join(root, policy.File))

	same := func(what, printed string, want decimal.Decimal) {
		t.Helper()
		if got, err := decimal.NewFromString(printed); err != nil || !got.Equal(want) {
			t.Errorf("%s: printed %q, the books say %s", what, printed, want)
		}
	}
	lineIs := func(what string, l booksLine, f policy.Figures) {
		t.Helper()
		for _, x := range []struct {
			name    string
			printed string
			want    decimal.Decimal
		}{{"approved", l.Approved, f.Approved}, {"held", l.Held, f.Held}, {"ordered", l.Ordered, f.Ordered},
			{"confirmed", l.Confirmed, f.Confirmed}, {"committed", l.Committed, f.Committed}, {"spent", l.Spent, f.Spent},
			{"released", l.Released, f.Released}, {"lapsed", l.Lapsed, f.Lapsed}} {
			same(what+" "+x.name, x.printed, x.want)
		}
	}
	if len(books.Threads) != len(b.Threads()) {
		t.Fatalf("parley books shows %d threads, the books have %d", len(books.Threads), len(b.Threads()))
	}
	parts := 0
	for i, id := range b.Threads() {
		a := b.Account(id)
		lineIs("books "+id, books.Threads[i], a.Figures(reserve, clock))
		for _, v := range a.Vendors() {
			if parts >= len(books.Parts) {
				t.Fatalf("parley books shows %d parts, fewer than the books", len(books.Parts))
			}
			lineIs("books "+id+" "+v, books.Parts[parts], a.Parts[v].Figures(reserve, clock))
			parts++
		}
	}
	total := b.Totals(reserve, clock)
	lineIs("books total", books.Total, total)

	// The limits: books and status print the same use, which is the books'.
	printed := map[string]string{}
	for _, l := range books.Limits {
		printed[l.What] = l.Used
	}
	for _, sp := range st.Spend {
		if u, ok := printed[sp.What]; ok && u != sp.Spent {
			t.Errorf("%s: parley books prints %s, parley status %s", sp.What, u, sp.Spent)
		}
	}
	budget := "budget this " + p.Budget.Period
	if u := printed[budget]; u != (mailbox.Money{Amount: s.BudgetUsed(p, clock), Currency: p.Currency}).String() {
		t.Errorf("%s: parley books prints %q, the books say %s", budget, u, s.BudgetUsed(p, clock))
	}
	for _, agent := range b.Agents() {
		day, month := b.AgentSpent(agent, clock)
		for what, want := range map[string]decimal.Decimal{agent + " today": day, agent + " this month": month} {
			if u := printed[what]; u != (mailbox.Money{Amount: want, Currency: p.Currency}).String() {
				t.Errorf("%s: parley books prints %q, the books say %s", what, u, want)
			}
		}
	}
	// Questions to the human: status lists the waiting ones and counts
	// the expired, as the escalations' states say.
	waiting, expired := 0, 0
	for _, x := range s.Escalations("human", "") {
		switch x.State(clock) {
		case policy.Waiting:
			waiting++
		case policy.Expired:
			expired++
		}
	}
	if len(st.Escalations) != waiting || st.Expired != expired {
		t.Errorf("parley status: %d waiting, %d expired; the escalations: %d and %d", len(st.Escalations), st.Expired, waiting, expired)
	}
	// policy test under the policy that decided: nothing changes, and its
	// books are parley books' total.
	if len(w.Changes) != 0 {
		c := w.Changes[0]
		t.Errorf("parley policy test with the same policy: %d changes; line %d was %s by %s, would be %s by %s",
			len(w.Changes), c.Seq, c.Was.Outcome, c.Was.Rule, c.Would.Outcome, c.Would.Rule)
	}
	lineIs("policy test was_books", lineOf("", "", p.Currency, w.WasBooks), total)
	lineIs("policy test would_books", lineOf("", "", p.Currency, w.WouldBooks), total)
	if total.Spent.IsZero() && total.Committed.IsZero() && total.Held.IsZero() {
		t.Logf("seed %d: no money moved", seed)
	}
}

func readJSON(t *testing.T, v any, root string, args ...string) {
	t.Helper()
	out, code := runCLI(t, append([]string{"--root", root}, args...)...)
	if code != 0 && code != 5 { // 5: something needs a person, or does not reconcile
		t.Fatalf("parley %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("parley %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
