package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
	"github.com/shopspring/decimal"
	"github.com/urfave/cli/v2"
)

func booksCommand() *cli.Command {
	return &cli.Command{
		Name:      "books",
		Usage:     "every figure of money, per thread and vendor, and what does not reconcile",
		ArgsUsage: "[THREAD]",
		Description: `Shows the books as the policy keeps them, from the ledger: for each thread
and each vendor of it, what was approved, what is held (approved, not yet
ordered), ordered, confirmed by the vendor, committed (ordered, not yet
paid), spent (paid), released and lapsed; the totals; the budget period and
each agent's spending against the policy's limits. The policy decides on
these very figures, and parley status shows the same. A thread settled and
idle for a week leaves the books' working set: its figures stay in the
total, parley books THREAD shows it, and --all lists every one (reading the
whole ledger, which on a root of years takes a while).

Every figure that does not reconcile is listed: a confirmation that differs
from its order (amount, quantity, item, a later delivery), a payment that
differs from the confirmation, a payment with no order or beyond it, an
approval never used.

Exit status is 5 when something does not reconcile.

Example:
   parley books
   parley books restock-widget-1
   parley books --json | jq .mismatches`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the books as one JSON object"},
			&cli.BoolFlag{Name: "all", Usage: "list the settled threads retired from the working set too, reading the whole ledger"},
		},
		Action: withRoot(0, 1, "at most one THREAD", func(c *cli.Context, e *env) error {
			if c.Bool("all") && c.Args().Present() {
				return usageError{fmt.Errorf("--all lists every thread; give it or a THREAD, not both")}
			}
			bk, err := e.books(c.Args().First(), c.Bool("all"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				err = printJSON(e.stdout, bk)
			} else {
				err = bk.print(e.stdout)
			}
			if err != nil {
				return err
			}
			if len(bk.Mismatches) > 0 {
				return attentionError{[]string{fmt.Sprintf("%d figure(s) do not reconcile", len(bk.Mismatches))}}
			}
			return nil
		}),
	}
}

// booksLine is one vendor's part of a thread, a thread's figures, or the
// total: amounts as decimals in the books' currency.
type booksLine struct {
	Thread    string `json:"thread,omitempty"`
	Vendor    string `json:"vendor,omitempty"`
	Approved  string `json:"approved"`
	Held      string `json:"held"`
	Ordered   string `json:"ordered"`
	Confirmed string `json:"confirmed"`
	Committed string `json:"committed"`
	Spent     string `json:"spent"`
	Released  string `json:"released"`
	Lapsed    string `json:"lapsed"`
}

func lineOf(thread, vendor, currency string, f policy.Figures) booksLine {
	d := func(x decimal.Decimal) string { return mailbox.Money{Amount: x, Currency: currency}.Decimal() }
	return booksLine{Thread: thread, Vendor: vendor, Approved: d(f.Approved), Held: d(f.Held), Ordered: d(f.Ordered), Confirmed: d(f.Confirmed),
		Committed: d(f.Committed), Spent: d(f.Spent), Released: d(f.Released), Lapsed: d(f.Lapsed)}
}

type limitUse struct {
	What  string `json:"what"`
	Used  string `json:"used"`
	Limit string `json:"limit,omitempty"`
}

type booksView struct {
	Now        time.Time         `json:"now"`
	Currency   string            `json:"currency"`
	Parts      []booksLine       `json:"parts"`
	Threads    []booksLine       `json:"threads"`
	Total      booksLine         `json:"total"`
	Limits     []limitUse        `json:"limits"`
	Mismatches []policy.Mismatch `json:"mismatches"`
	// Retired is how many settled threads, idle a week, are out of the
	// books' working set (not listed, in the total); --all lists them.
	Retired int `json:"retired"`
}

// books reads the books as the policy keeps them: of one thread, or of
// the working set (every thread but the settled ones retired, whose
// figures are in the total), or with all, of every thread, the ledger
// read from its first line.
func (e *env) books(thread string, all bool) (*booksView, error) {
	eng := e.engine()
	if all {
		eng = policy.NewWholeEngine(e.root)
		defer eng.Close()
	}
	st, p, err := eng.StateOf(thread)
	if err != nil {
		return nil, err
	}
	if p == nil {
		_, perr := e.engine().Policy()
		return nil, withHint(perr, "the books are kept in the policy's currency, against its limits: mend policy.toml (parley policy check)")
	}
	b, now, reserve := st.Books(), e.now(), p.Budget.ReserveFor.Duration
	v := &booksView{Now: now, Currency: p.Currency, Parts: []booksLine{}, Threads: []booksLine{}, Mismatches: []policy.Mismatch{}}
	threads := b.Threads()
	if thread != "" {
		if b.Account(thread) == nil {
			return nil, withHint(fmt.Errorf("no money moved on thread %q", thread), "parley books with no THREAD lists every thread that has")
		}
		threads = []string{thread}
	}
	var total policy.Figures
	if thread == "" {
		v.Retired, total = b.Retired()
	}
	for _, id := range threads {
		a := b.Account(id)
		for _, vendor := range a.Vendors() {
			v.Parts = append(v.Parts, lineOf(id, vendor, p.Currency, a.Parts[vendor].Figures(reserve, now)))
		}
		f := a.Figures(reserve, now)
		v.Threads = append(v.Threads, lineOf(id, "", p.Currency, f))
		total.Add(f)
		v.Mismatches = append(v.Mismatches, a.Mismatches(p.Currency, reserve, now)...)
	}
	v.Total = lineOf("", "", p.Currency, total)
	money := func(d decimal.Decimal) string { return mailbox.Money{Amount: d, Currency: p.Currency}.String() }
	if !p.Budget.Amount.IsZero() {
		v.Limits = append(v.Limits, limitUse{"budget this " + p.Budget.Period, money(st.BudgetUsed(p, now)), p.Budget.Amount.String()})
	}
	for _, agent := range b.Agents() {
		day, month := b.AgentSpent(agent, now)
		v.Limits = append(v.Limits,
			limitUse{agent + " today", money(day), p.Limits.PerAgentPerDay.String()},
			limitUse{agent + " this month", money(month), p.Limits.PerAgentPerMonth.String()})
	}
	return v, nil
}

func (v *booksView) print(w io.Writer) error {
	if len(v.Threads) == 0 && v.Retired == 0 {
		_, err := fmt.Fprintln(w, "no money has moved yet")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "THREAD\tVENDOR\tAPPROVED\tHELD\tORDERED\tCONFIRMED\tCOMMITTED\tSPENT\tRELEASED\tLAPSED\t\n")
	row := func(thread, vendor string, f booksLine) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", thread, vendor, f.Approved, f.Held, f.Ordered,
			f.Confirmed, f.Committed, f.Spent, f.Released, f.Lapsed)
	}
	i := 0
	for _, t := range v.Threads {
		n := 0
		for ; i < len(v.Parts) && v.Parts[i].Thread == t.Thread; i++ {
			name := ""
			if n == 0 {
				name = t.Thread
			}
			vendor := v.Parts[i].Vendor
			if vendor == "" {
				vendor = "(any)"
			}
			row(name, vendor, v.Parts[i])
			n++
		}
		if n != 1 {
			name := ""
			if n == 0 {
				name = t.Thread
			}
			row(name, "thread", t)
		}
	}
	row("total "+v.Currency, "", v.Total)
	if err := tw.Flush(); err != nil {
		return err
	}
	if v.Retired > 0 {
		fmt.Fprintf(w, "and %d settled thread(s) idle a week or more, in the total, not listed (--all lists them)\n", v.Retired)
	}
	if len(v.Limits) > 0 {
		fmt.Fprintln(w, "\nagainst the policy:")
		for _, l := range v.Limits {
			limit := "no limit"
			if l.Limit != "" {
				limit = l.Limit
			}
			fmt.Fprintf(w, "  %-26s %s of %s\n", l.What, l.Used, limit)
		}
	}
	if len(v.Mismatches) == 0 {
		_, err := fmt.Fprintln(w, "\nevery figure reconciles")
		return err
	}
	fmt.Fprintf(w, "\ndo not reconcile: %d\n", len(v.Mismatches))
	for _, m := range v.Mismatches {
		vendor := m.Vendor
		if vendor == "" {
			vendor = "the thread"
		}
		fmt.Fprintf(w, "  %s, %s: %s: %s\n", m.Thread, vendor, m.Kind, m.Detail)
	}
	return nil
}
