package ledgergen

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
)

func TestWrite(t *testing.T) {
	until := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		lines int
	}{
		{"empty", 0},
		{"one line", 1},
		{"one deal", 72},
		{"a deal and a line", 73},
		{"many deals, the last cut short", 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			head, err := Write(&buf, Options{Lines: tt.lines, Until: until})
			if err != nil {
				t.Fatal(err)
			}
			res, err := mailbox.Verify(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got, want := res.Lines, tt.lines; got != want {
				t.Fatalf("Verify().Lines=%d, want %d", got, want)
			}
			if got, want := head.Seq, uint64(tt.lines); got != want {
				t.Errorf("Write().Seq=%d, want %d", got, want)
			}
			if tt.lines > 0 && head.Hash != res.Head {
				t.Errorf("Write().Hash=%s, want the chain's head %s", head.Hash, res.Head)
			}
			ids := map[string]string{} // msg id: thread
			var last time.Time
			err = mailbox.ReadEntries(bytes.NewReader(buf.Bytes()), func(_ int, e mailbox.Entry) error {
				if e.Event == "delivered" {
					if th, ok := ids[e.MsgID]; ok && th != e.Thread {
						t.Errorf("message %s is on threads %s and %s", e.MsgID, th, e.Thread)
					}
					ids[e.MsgID] = e.Thread
				}
				// Processes stamp a line before they take the lock, as
				// the recorded deal shows: a little back, never a deal.
				if e.Time.Before(last.Add(-time.Second)) {
					t.Errorf("seq %d at %v goes back before %v", e.Seq, e.Time, last)
				}
				if e.Time.After(last) {
					last = e.Time
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if tt.lines > 0 && last.After(until.Add(time.Minute)) {
				t.Errorf("the last line is at %v, after %v", last, until)
			}
		})
	}
}

// BenchmarkWrite measures how fast a ledger is made: lines/s.
func BenchmarkWrite(b *testing.B) {
	const lines = 100_000
	for b.Loop() {
		if _, err := Write(io.Discard, Options{Lines: lines}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
}
