package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/ledgergen"
	"github.com/parley-dev/parley/mailbox"
)

// benchRoots are the roots the start benchmarks run on, side by side: an
// empty ledger, and one of PARLEY_BENCH_LINES lines of real deals
// (default 1,000,000: 10,000,000 take minutes to make; set it to try),
// or the root PARLEY_BENCH_ROOT names (parley ledger generate makes one).
// Each is checkpointed once, as a running team's would be.
func benchRoots(b *testing.B) []struct{ name, dir string } {
	b.Helper()
	lines := 1_000_000
	if s := os.Getenv("PARLEY_BENCH_LINES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("PARLEY_BENCH_LINES=%q: %v", s, err)
		}
		lines = n
	}
	empty := b.TempDir()
	if err := os.WriteFile(filepath.Join(empty, File), Default, 0o644); err != nil {
		b.Fatal(err)
	}
	big := os.Getenv("PARLEY_BENCH_ROOT")
	name := "root"
	if big == "" {
		big = b.TempDir()
		name = fmt.Sprintf("%dlines", lines)
		if err := os.WriteFile(filepath.Join(big, File), Default, 0o644); err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(filepath.Join(big, mailbox.LedgerFile))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ledgergen.Write(f, ledgergen.Options{Lines: lines, Until: time.Now().Add(-40 * 24 * time.Hour)}); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	for _, dir := range []string{empty, big} {
		r, err := mailbox.OpenRoot(dir, time.Now)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := NewEngine(r).Checkpoint(); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
	return []struct{ name, dir string }{{"empty", empty}, {name, big}}
}

// BenchmarkEngineStart is what an agent waits for before it can decide:
// an engine made, its state brought up to date with the ledger. heap-MB
// is the live heap after.
func BenchmarkEngineStart(b *testing.B) {
	for _, root := range benchRoots(b) {
		b.Run(root.name, func(b *testing.B) {
			var heap uint64
			for b.Loop() {
				r, err := mailbox.OpenRoot(root.dir, time.Now)
				if err != nil {
					b.Fatal(err)
				}
				e := NewEngine(r)
				if _, _, err := e.State(); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				heap = max(heap, ms.HeapAlloc)
				e.ledger.Close() // not Close: no checkpoint of its own
				r.Close()
			}
			b.ReportMetric(float64(heap)/(1<<20), "heap-MB")
		})
	}
}

// BenchmarkDecide is one decision recorded (an APPROVED within the
// limits, on a thread of its own) by a running engine: the step a deal
// repeats, on an empty root and a big one.
func BenchmarkDecide(b *testing.B) {
	for _, root := range benchRoots(b) {
		b.Run(root.name, func(b *testing.B) {
			r, err := mailbox.OpenRoot(root.dir, time.Now)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			e := NewEngine(r)
			if _, _, err := e.State(); err != nil {
				b.Fatal(err)
			}
			defer e.ledger.Close()
			i := 0
			for b.Loop() {
				i++
				m := msg("finance", "procurement", mailbox.Approved, fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i), "10.00 USD")
				m.ID = mailbox.NewMessageID(time.Now(), "finance")
				m.Date = time.Now()
				if _, err := e.Decide(Action{Agent: "finance", Message: m}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
