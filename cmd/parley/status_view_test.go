package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/ledgergen"
	"github.com/parley-dev/parley/mailbox"
)

// TestStatusViewCheckpoint reads the status view of a ledger from its
// checkpoint, true or not: whatever the checkpoint, the view is the
// ledger's as read from its first line.
func TestStatusViewCheckpoint(t *testing.T) {
	until := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		edit func(t *testing.T, root, path string)
	}{
		{"true", func(*testing.T, string, string) {}},
		{"lines appended since", func(t *testing.T, root, path string) {
			l, err := mailbox.OpenLedger(path, func() time.Time { return until }, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if _, err := l.Append(mailbox.Entry{Agent: "vendor-c", Event: mailbox.EventDelivered, Thread: "t-new", Verb: "QUOTE", From: "vendor-c", To: "procurement"}); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage", func(t *testing.T, root, _ string) {
			os.WriteFile(filepath.Join(root, mailbox.CheckpointDir, statusViewFile), []byte("junk"), 0o644)
		}},
		{"the ledger cut and grown again", func(t *testing.T, root, path string) {
			var buf bytes.Buffer
			if _, err := ledgergen.Write(&buf, ledgergen.Options{Lines: 2100, Until: until.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(path, buf.Bytes(), 0o644)
		}},
		{"another root's", func(t *testing.T, root, _ string) {
			other := t.TempDir()
			var buf bytes.Buffer
			ledgergen.Write(&buf, ledgergen.Options{Lines: 1500, Until: until.Add(-time.Hour)})
			p := filepath.Join(other, mailbox.LedgerFile)
			os.WriteFile(p, buf.Bytes(), 0o644)
			if _, err := readStatusView(other, p); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(filepath.Join(other, mailbox.CheckpointDir, statusViewFile))
			os.WriteFile(filepath.Join(root, mailbox.CheckpointDir, statusViewFile), data, 0o644)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			path := filepath.Join(root, mailbox.LedgerFile)
			var buf bytes.Buffer
			if _, err := ledgergen.Write(&buf, ledgergen.Options{Lines: 2000, Until: until}); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := readStatusView(root, path); err != nil {
				t.Fatal(err)
			}
			if got := loadStatusView(root).At.Seq; got != 2000 {
				t.Fatalf("checkpoint at seq %d, want 2000", got)
			}
			tt.edit(t, root, path)
			got, err := readStatusView(root, path)
			if err != nil {
				t.Fatal(err)
			}
			if err := mailbox.RemoveCheckpoints(root); err != nil {
				t.Fatal(err)
			}
			want, err := readStatusView(root, path)
			if err != nil {
				t.Fatal(err)
			}
			got.At, want.At = mailbox.Position{}, mailbox.Position{}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			if !bytes.Equal(g, w) {
				t.Errorf("the view differs from the ledger's:\n got %.400s\nwant %.400s", g, w)
			}
		})
	}
}

// TestStatusViewLateLines: a deal ended by its PAID stays ended when the
// delivery line of an earlier message lands after it (on JetStream a
// sender's line can), and opens again only for a message sent after the
// end.
func TestStatusViewLateLines(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	line := func(seq uint64, verb mailbox.Verb, sent time.Duration) mailbox.Entry {
		return mailbox.Entry{Seq: seq, Time: at.Add(time.Minute), Event: mailbox.EventDelivered, Thread: "restock-widget-1",
			Verb: string(verb), From: "a", To: "b", Date: at.Add(sent)}
	}
	v := newStatusView()
	for _, tt := range []struct {
		x    mailbox.Entry
		open bool
	}{
		{line(1, mailbox.Order, 1*time.Second), true},
		{line(2, mailbox.Paid, 3*time.Second), false},
		{line(3, mailbox.Confirmed, 2*time.Second), false}, // sent before the PAID, recorded after it
		{line(4, mailbox.Request, 4*time.Second), true},    // a new message after the end
	} {
		v.add(tt.x)
		if _, open := v.Open["restock-widget-1"]; open != tt.open {
			t.Errorf("after seq %d (%s): open = %v, want %v", tt.x.Seq, tt.x.Verb, open, tt.open)
		}
	}
}

// TestModelUseRecent: an agent's median and slowest call are of its last
// recentCalls calls, so the view stays the same size however long the
// history: a slow call long ago no longer counts.
func TestModelUseRecent(t *testing.T) {
	u := &modelUse{}
	u.add(mailbox.Entry{File: "t.json", Millis: 90_000})
	for range recentCalls {
		u.add(mailbox.Entry{File: "t.json", Millis: 1_500})
	}
	u.figures()
	if got, want := len(u.Took), recentCalls; got != want {
		t.Errorf("%d calls kept, want %d", got, want)
	}
	if u.SlowestMS != 1_500 || u.MedianMS != 1_500 || u.Calls != recentCalls+1 {
		t.Errorf("use = %d calls, median %d ms, slowest %d ms; want %d calls, 1500 and 1500", u.Calls, u.MedianMS, u.SlowestMS, recentCalls+1)
	}
}
