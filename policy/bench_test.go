package policy

import (
	"fmt"
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
)

// ledgerOf100k is a recorded history of 100,000 entries: deals with
// approvals, orders, payments and the messages between them.
func ledgerOf100k(b *testing.B, e *Engine, r *mailbox.Root) {
	b.Helper()
	l, err := r.Ledger()
	if err != nil {
		b.Fatal(err)
	}
	var batch []mailbox.Entry
	at := now.Add(-30 * 24 * time.Hour)
	for i, total := 0, 0; total < 100_000; i++ {
		th := fmt.Sprint("deal-", i)
		at = at.Add(20 * time.Second)
		for _, m := range []*mailbox.Message{
			msg("inventory", "procurement", mailbox.Request, th, ""),
			msg("procurement", "vendor-a", mailbox.Request, th, ""),
			msg("vendor-a", "procurement", mailbox.Quote, th, "10.00 USD"),
			msg("procurement", "vendor-a", mailbox.Counter, th, "9.00 USD"),
			msg("finance", "procurement", mailbox.Approved, th, "9.00 USD"),
			msg("procurement", "vendor-a", mailbox.Order, th, "9.00 USD"),
			msg("finance", "vendor-a", mailbox.Paid, th, "9.00 USD"),
		} {
			batch = append(batch, decisionEntry(m, Allow, "allow.2", at), delivered(m, at))
			total += 2
		}
		if len(batch) >= 10_000 {
			if _, err := l.Append(batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if _, err := l.Append(batch...); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEvaluate is the decision itself, from tallies kept up to date
// incrementally, with 100,000 entries of history behind them.
func BenchmarkEvaluate(b *testing.B) {
	e, r := newEngine(b)
	ledgerOf100k(b, e, r)
	s, p, err := e.State()
	if err != nil || p == nil {
		b.Fatal(err)
	}
	actions := []Action{
		{Agent: "finance", Message: msg("finance", "procurement", mailbox.Approved, "new", "2400.00 USD")},
		{Agent: "procurement", Message: msg("procurement", "vendor-b", mailbox.Counter, "deal-7", "")},
		{Agent: "procurement", Message: msg("procurement", "vendor-b", mailbox.Order, "new", "2400.00 USD")},
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Evaluate(p, actions[i%len(actions)], now)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// BenchmarkDecide is a decision made and recorded: the ledger's lock, the
// entries since the last decision, the policy file's stamp, the PAUSED
// check, the evaluation and one durable ledger line.
func BenchmarkDecide(b *testing.B) {
	e, r := newEngine(b)
	ledgerOf100k(b, e, r)
	if _, _, err := e.State(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := msg("procurement", "vendor-b", mailbox.Request, fmt.Sprint("bench-", i), "")
		if _, err := e.Decide(Action{Agent: "procurement", Message: m}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// BenchmarkCatchUp reads a ledger of 100,000 entries into the state from
// nothing, as an agent does once when it starts.
func BenchmarkCatchUp(b *testing.B) {
	e, r := newEngine(b)
	ledgerOf100k(b, e, r)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fresh := NewEngine(r)
		fresh.root = r
		l, _ := mailbox.OpenLedger(r.Dir+"/"+mailbox.LedgerFile, nil, nil)
		fresh.state = NewState()
		if _, err := l.Transact(func(news []mailbox.Entry) ([]mailbox.Entry, error) {
			for _, n := range news {
				fresh.state.Apply(n)
			}
			return nil, nil
		}); err != nil {
			b.Fatal(err)
		}
		l.Close()
	}
	b.ReportMetric(100_000*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
