package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/ledgergen"
	"github.com/parley-dev/parley/mailbox"
)

// TestTailFromTheEnd prints the last n lines read backwards from the end
// as reading every line from the start prints them, and leaves the file
// at its end with the same partial line, for -f.
func TestTailFromTheEnd(t *testing.T) {
	var buf bytes.Buffer
	if _, err := ledgergen.Write(&buf, ledgergen.Options{Lines: 1500, Until: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	whole := buf.Bytes()
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"whole", whole},
		{"a torn last line", append(append([]byte(nil), whole...), `{"seq":1501,"time":"2026-`...)},
		{"one line", whole[:bytes.IndexByte(whole, '\n')+1]},
		{"only a torn line", []byte(`{"seq":1,`)},
		{"empty", nil},
	} {
		for _, n := range []int{1, 2, 20, 99, 1499, 1500, 5000} {
			path := filepath.Join(t.TempDir(), "ledger.jsonl")
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			run := func(back bool) (string, string, int64) {
				f, err := mailbox.OpenLedgerReader(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				var out bytes.Buffer
				tl := &tailer{out: bufio.NewWriter(&out), json: true, now: time.Now}
				if back {
					err = tl.lastOf(f, n)
				} else {
					err = tl.last(f, n, 0)
				}
				if err != nil {
					t.Fatal(err)
				}
				at, _ := f.Seek(0, io.SeekCurrent)
				return out.String(), string(tl.partial), at
			}
			got, gotPartial, gotAt := run(true)
			want, wantPartial, wantAt := run(false)
			if got != want || gotPartial != wantPartial || gotAt != wantAt {
				t.Errorf("%s, -n %d: from the end printed %d bytes, partial %q, at %d; from the start %d bytes, partial %q, at %d",
					tc.name, n, len(got), gotPartial, gotAt, len(want), wantPartial, wantAt)
			}
		}
	}
}
