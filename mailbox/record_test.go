package mailbox

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// TestReadRootRecord reads a root's Record from its checkpoint, true or
// not: whatever the checkpoint, the Record is the ledger's, as ReadRecord
// reads it from the first line.
func TestReadRootRecord(t *testing.T) {
	// Claims as an older parley recorded them: unmarked, so in the Record.
	claims := func(n int, from string) []Entry {
		var es []Entry
		for i := range n {
			es = append(es, Entry{Agent: "vendor-b", Event: EventClaimed, MsgID: fmt.Sprintf("<%d.%s@parley>", i, from),
				File: fmt.Sprintf("vendor-b/cur/%s.%d.host:2,", from, i), Subject: "a subject long enough to make the lines a few hundred bytes each, as real ones are"})
		}
		return es
	}
	write := func(t *testing.T, dir string, es []Entry) {
		t.Helper()
		buf, _, err := Chain(0, "", es, fixedClock())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, LedgerFile), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const n = 6000 // over a megabyte: a checkpoint is written
	tests := []struct {
		name string
		edit func(t *testing.T, dir string)
	}{
		{"true", func(*testing.T, string) {}},
		{"lines appended since", func(t *testing.T, dir string) {
			l, err := OpenLedger(filepath.Join(dir, LedgerFile), fixedClock(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if _, err := l.Append(claims(3, "late")...); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, CheckpointDir, RecordFile), []byte("junk"), 0o644)
		}},
		{"another ledger in its place", func(t *testing.T, dir string) {
			write(t, dir, claims(n+10, "other"))
		}},
		{"the ledger cut", func(t *testing.T, dir string) {
			write(t, dir, claims(n/2, "first"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, claims(n, "first"))
			if _, err := ReadRootRecord(dir); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, CheckpointDir, RecordFile)); err != nil {
				t.Fatalf("no checkpoint after reading %d lines: %v", n, err)
			}
			tt.edit(t, dir)
			got, err := ReadRootRecord(dir)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ReadRecord(filepath.Join(dir, LedgerFile))
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, want) {
				t.Errorf("ReadRootRecord() has %d files, ReadRecord %d: they differ", len(got), len(want))
			}
		})
	}
}
