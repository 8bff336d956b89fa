package mailbox_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/ledgergen"
	"github.com/parley-dev/parley/mailbox"
)

// generated is a chained ledger of n lines of real deals, as bytes.
func generated(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := ledgergen.Write(&buf, ledgergen.Options{Lines: n, Until: time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// lookups is what the index answers about every thread, message id and
// seq of the ledger, read through it.
type lookups struct {
	threads, msgs map[string][]uint64 // seqs of the lines
	seqs          []uint64            // of Seq(1..n+1), 0 when not found
}

// fromIndex asks the index about each key the ledger's entries name.
func fromIndex(t *testing.T, dir string, entries []mailbox.Entry) lookups {
	t.Helper()
	ix, err := mailbox.OpenIndex(dir, nil)
	if err != nil {
		t.Fatalf("OpenIndex: %v", err)
	}
	defer ix.Close()
	got := lookups{threads: map[string][]uint64{}, msgs: map[string][]uint64{}}
	seqsOf := func(es []mailbox.Entry, err error) []uint64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	for _, e := range entries {
		if _, done := got.threads[e.Thread]; e.Thread != "" && !done {
			got.threads[e.Thread] = seqsOf(ix.Thread(e.Thread))
		}
		if _, done := got.msgs[e.MsgID]; e.MsgID != "" && !done {
			got.msgs[e.MsgID] = seqsOf(ix.Message(e.MsgID))
		}
	}
	got.threads["no-such-thread"] = seqsOf(ix.Thread("no-such-thread"))
	for s := uint64(1); s <= uint64(len(entries))+1; s++ {
		e, ok, err := ix.Seq(s)
		if err != nil {
			t.Fatalf("Seq(%d): %v", s, err)
		}
		if ok && e.Seq != s {
			t.Fatalf("Seq(%d) is the line of seq %d", s, e.Seq)
		}
		if !ok {
			e.Seq = 0
		}
		got.seqs = append(got.seqs, e.Seq)
	}
	return got
}

// fromLedger is what the index must answer: the ledger read whole.
func fromLedger(t *testing.T, dir string) (lookups, []mailbox.Entry) {
	t.Helper()
	r, err := mailbox.OpenLedgerReader(filepath.Join(dir, mailbox.LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var entries []mailbox.Entry
	err = mailbox.ReadEntries(r, func(_ int, e mailbox.Entry) error { entries = append(entries, e); return nil })
	if err != nil && !errors.Is(err, mailbox.ErrTornTail) {
		t.Fatal(err)
	}
	want := lookups{threads: map[string][]uint64{"no-such-thread": nil}, msgs: map[string][]uint64{}}
	for _, e := range entries {
		if e.Thread != "" {
			want.threads[e.Thread] = append(want.threads[e.Thread], e.Seq)
		}
		if e.MsgID != "" {
			want.msgs[e.MsgID] = append(want.msgs[e.MsgID], e.Seq)
		}
		want.seqs = append(want.seqs, e.Seq)
	}
	want.seqs = append(want.seqs, 0) // one past the last: not found
	return want, entries
}

func appendFile(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestIndexAgreesWithTheLedger: whatever shape the ledger has and however
// it grew since the index was built, every thread, message and seq looked
// up through the index is what reading the whole ledger finds.
func TestIndexAgreesWithTheLedger(t *testing.T) {
	const n = 700 // ten deals or so
	all := generated(t, n)
	half := bytes.Index(all[len(all)/2:], []byte("\n")) + len(all)/2 + 1
	tests := []struct {
		name  string
		build func(t *testing.T, dir string) // the ledger, and what was indexed on the way
	}{
		{"one file", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, mailbox.LedgerFile), all)
		}},
		{"indexed at half, then grown", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, mailbox.LedgerFile), all[:half])
			fromIndex(t, dir, nil)
			appendFile(t, filepath.Join(dir, mailbox.LedgerFile), all[half:])
		}},
		{"a line still being written", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, mailbox.LedgerFile), all[:half+40])
			fromIndex(t, dir, nil)
		}},
		{"indexed with a torn line, then whole", func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, mailbox.LedgerFile), all[:half+40])
			fromIndex(t, dir, nil)
			appendFile(t, filepath.Join(dir, mailbox.LedgerFile), all[half+40:])
		}},
		{"sealed into segments, indexed before and after", func(t *testing.T, dir string) {
			path := filepath.Join(dir, mailbox.LedgerFile)
			appendFile(t, path, all[:half])
			fromIndex(t, dir, nil)
			appendFile(t, path, all[half:])
			l, err := mailbox.OpenLedger(path, time.Now, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if _, err := l.Seal(16 << 10); err != nil {
				t.Fatal(err)
			}
		}},
		{"lines appended by the ledger, odd names", func(t *testing.T, dir string) {
			path := filepath.Join(dir, mailbox.LedgerFile)
			appendFile(t, path, all)
			l, err := mailbox.OpenLedger(path, time.Now, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			fromIndex(t, dir, nil)
			for i, th := range []string{"ünï \"quoted\" thread", "a\nb", "restock-widget-1", "<", ""} {
				e := mailbox.Entry{Time: time.Date(2026, 11, 1, 0, 0, i, 0, time.UTC), Agent: "human", Event: "delivered",
					Thread: th, MsgID: "<odd." + th + "@x>", Verb: "NOTIFY"}
				if _, err := l.Append(e, e); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.build(t, dir)
			want, entries := fromLedger(t, dir)
			got := fromIndex(t, dir, entries)
			if !reflect.DeepEqual(got.threads, want.threads) {
				t.Errorf("threads through the index differ from the ledger's:\n got %v\nwant %v", got.threads, want.threads)
			}
			if !reflect.DeepEqual(got.msgs, want.msgs) {
				t.Errorf("messages through the index differ from the ledger's")
			}
			if !reflect.DeepEqual(got.seqs, want.seqs) {
				t.Errorf("seqs through the index: got %v, want %v", got.seqs, want.seqs)
			}
		})
	}
}

// TestIndexIsRebuilt: an index that is not the ledger's — the ledger
// replaced under it, its file damaged — is never believed: it is built
// again, and answers as the ledger does.
func TestIndexIsRebuilt(t *testing.T) {
	first, second := generated(t, 300), generated(t, 500)
	// The second ledger's threads, but other bytes: the same names at
	// other offsets, which a stale index would point into.
	second = bytes.ReplaceAll(second, []byte(`"agent":"procurement"`), []byte(`"agent":"procurement" `))
	tests := []struct {
		name  string
		spoil func(t *testing.T, dir string)
	}{
		{"the ledger replaced by another", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, mailbox.LedgerFile), second, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"the index file overwritten", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, mailbox.CheckpointDir, mailbox.IndexFile), []byte("not a database"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"the index file cut short", func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, mailbox.CheckpointDir, mailbox.IndexFile), 100); err != nil {
				t.Fatal(err)
			}
		}},
		{"the index file removed", func(t *testing.T, dir string) {
			if err := mailbox.RemoveCheckpoints(dir); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			appendFile(t, filepath.Join(dir, mailbox.LedgerFile), first)
			_, entries := fromLedger(t, dir)
			fromIndex(t, dir, entries)
			tt.spoil(t, dir)
			want, entries := fromLedger(t, dir)
			got := fromIndex(t, dir, entries)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("after %s the index answers otherwise than the ledger", tt.name)
			}
		})
	}
}

// BenchmarkIndexThread looks one deal up through the index of a ledger of
// PARLEY_BENCH_LINES lines (100,000 by default), opened and brought up to
// date each time, as parley thread ID does.
func BenchmarkIndexThread(b *testing.B) {
	lines := benchLines(b, 100_000)
	dir := b.TempDir()
	var buf bytes.Buffer
	if _, err := ledgergen.Write(&buf, ledgergen.Options{Lines: lines}); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, mailbox.LedgerFile), buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	buf = bytes.Buffer{}
	ix, err := mailbox.OpenIndex(dir, nil) // built once, as the first command after an upgrade does
	if err != nil {
		b.Fatal(err)
	}
	var threads []string
	if err := ix.Threads(func(th string) bool { threads = append(threads, th); return len(threads) < 1000 }); err != nil {
		b.Fatal(err)
	}
	ix.Close()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ix, err := mailbox.OpenIndex(dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		es, err := ix.Thread(threads[i%len(threads)])
		if err != nil || len(es) == 0 {
			b.Fatalf("Thread: %d lines, %v", len(es), err)
		}
		ix.Close()
	}
}

// benchLines is PARLEY_BENCH_LINES, or def.
func benchLines(b *testing.B, def int) int {
	if s := os.Getenv("PARLEY_BENCH_LINES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("PARLEY_BENCH_LINES=%q: %v", s, err)
		}
		return n
	}
	return def
}
