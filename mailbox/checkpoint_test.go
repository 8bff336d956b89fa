package mailbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// chainFile writes a ledger of n lines at once (no fsync a line) and
// returns its path and where each line ends.
func chainFile(t testing.TB, dir string, n int, thread string) (string, []Position) {
	t.Helper()
	var es []Entry
	for i := range n {
		m := &Message{ID: fmt.Sprintf("<%d.%s@parley>", i, thread), From: "procurement", To: "vendor-b", Thread: thread,
			Verb: Quote, UnitPrice: MustMoney("4.80 USD"), Quantity: 500}
		es = append(es, MessageEntry("procurement", EventDelivered, m))
	}
	buf, out, err := Chain(0, "", es, fixedClock())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, LedgerFile)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	var pos []Position
	off := int64(0)
	for _, line := range bytes.SplitAfter(buf, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		off += int64(len(line))
		e := out[len(pos)]
		pos = append(pos, Position{Seq: e.Seq, Hash: e.Hash, Offset: off})
	}
	return path, pos
}

// TestOpenLedgerFrom opens ledgers at checkpoints' positions, true and
// false: a true one is started at, and only what follows it is read; any
// other is ignored, and the ledger read from its start — then verified,
// so that what is wrong with it is said, never decided on.
func TestOpenLedgerFrom(t *testing.T) {
	const n = 2000 // about 800 kB: heads are found by bisecting
	tests := []struct {
		name string
		// edit returns the position to open at, having changed the
		// ledger, its heads or the position as the case says.
		edit       func(t *testing.T, path string, pos []Position) (Position, []Head)
		wantStart  bool
		wantBroken bool
	}{
		{"true", func(t *testing.T, path string, pos []Position) (Position, []Head) {
			return pos[1499], nil
		}, true, false},
		{"true, heads below it found and matching", func(t *testing.T, path string, pos []Position) (Position, []Head) {
			return pos[1499], []Head{{Seq: 1, Hash: pos[0].Hash}, {Seq: 777, Hash: pos[776].Hash}, {Seq: 1500, Hash: pos[1499].Hash}, {Seq: 1900, Hash: pos[1899].Hash}}
		}, true, false},
		{"the last line", func(t *testing.T, path string, pos []Position) (Position, []Head) {
			return pos[n-1], nil
		}, true, false},
		{"another hash", func(t *testing.T, path string, pos []Position) (Position, []Head) {
			p := pos[1499]
			p.Hash = pos[1498].Hash
			return p, nil
		}, false, false},
		{"another seq", func(t *testing.T, path string, pos []Position) (Position, []Head) {
			p := pos[1499]
			p.Seq++
			return p, nil
		}, false, false},
		{"not at the end of a line", func(t *testing.T, path string, pos []Position) (Position, []Head) {
			p := pos[1499]
			p.Offset -= 10
			return p, nil
		}, false, false},
		{"beyond the end: the ledger was cut", func(t *testing.T, path string, pos []Position) (Position, []Head) {
			if err := os.Truncate(path, pos[999].Offset); err != nil {
				t.Fatal(err)
			}
			return pos[1499], nil
		}, false, false},
		{"another root's", func(t *testing.T, path string, pos []Position) (Position, []Head) {
			_, other := chainFile(t, t.TempDir(), n, "t-other")
			return other[1499], nil
		}, false, false},
		{"its line edited", func(t *testing.T, path string, pos []Position) (Position, []Head) {
			data, _ := os.ReadFile(path)
			line := data[pos[1498].Offset:pos[1499].Offset]
			edited := bytes.Replace(line, []byte(`"quantity":500`), []byte(`"quantity":900`), 1)
			copy(data[pos[1498].Offset:], edited)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			return pos[1499], nil
		}, false, true},
		{"a line after it edited", func(t *testing.T, path string, pos []Position) (Position, []Head) {
			data, _ := os.ReadFile(path)
			at := bytes.Index(data[pos[1799].Offset:], []byte(`"quantity":500`)) + int(pos[1799].Offset)
			copy(data[at:], `"quantity":900`)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			return pos[1499], nil
		}, true, true},
		{"a head below it not matching: rewritten", func(t *testing.T, path string, pos []Position) (Position, []Head) {
			return pos[1499], []Head{{Seq: 777, Hash: pos[1].Hash, By: "an anchor"}}
		}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, pos := chainFile(t, t.TempDir(), n, "t-1")
			from, heads := tt.edit(t, path, pos)
			l, err := OpenLedgerFrom(path, fixedClock(), func() ([]Head, error) { return heads, nil }, from)
			if tt.wantBroken {
				if !errors.Is(err, ErrBroken) {
					t.Fatalf("OpenLedgerFrom()=%v, want ErrBroken", err)
				}
				if err == nil {
					l.Close()
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenLedgerFrom(): %v", err)
			}
			defer l.Close()
			want := Position{}
			if tt.wantStart {
				want = from
			}
			if got := l.Started(); got != want {
				t.Fatalf("Started()=%v, want %v", got, want)
			}
			var first, count uint64
			if _, err := l.Transact(func(news []Entry) ([]Entry, error) {
				if len(news) > 0 {
					first = news[0].Seq
				}
				count = uint64(len(news))
				return nil, nil
			}); err != nil {
				t.Fatal(err)
			}
			if got, want := first, want.Seq+1; count > 0 && got != want {
				t.Errorf("Transact read from seq %d, want %d", got, want)
			}
			if got := l.ReadTo(); count > 0 && got.Seq != first+count-1 {
				t.Errorf("ReadTo()=%v, want seq %d", got, first+count-1)
			}
			if got := l.VerifiedAt(); got.Offset != l.size || got.Seq != uint64(l.verLines) {
				t.Errorf("VerifiedAt()=%v, want the end of the ledger (%d bytes, %d lines)", got, l.size, l.verLines)
			}
		})
	}
}

// TestPositionFile keeps a position only forward, and reads a damaged
// file as none.
func TestPositionFile(t *testing.T) {
	root := t.TempDir()
	if got := ReadPosition(root); got != (Position{}) {
		t.Fatalf("ReadPosition() of none=%v, want zero", got)
	}
	_, pos := chainFile(t, root, 10, "t-1")
	if err := KeepPosition(root, pos[6]); err != nil {
		t.Fatal(err)
	}
	if err := KeepPosition(root, pos[4]); err != nil {
		t.Fatal(err)
	}
	if got, want := ReadPosition(root), pos[6]; got != want {
		t.Fatalf("ReadPosition()=%v, want %v (kept only forward)", got, want)
	}
	// The ledger replaced by a shorter one: the kept position is not its,
	// and gives way.
	_, other := chainFile(t, root, 5, "t-2")
	if err := KeepPosition(root, other[3]); err != nil {
		t.Fatal(err)
	}
	if got, want := ReadPosition(root), other[3]; got != want {
		t.Fatalf("ReadPosition()=%v, want %v (a stale position replaced)", got, want)
	}
	h := other[0].Hash
	for _, bad := range []string{"", "7 700\n", "x 700 " + h, "7 700 " + h[:60], "0 0 " + h} {
		if err := WriteCheckpoint(root, PositionFile, []byte(bad)); err != nil {
			t.Fatal(err)
		}
		if got := ReadPosition(root); got != (Position{}) {
			t.Errorf("ReadPosition() of %q=%v, want zero", bad, got)
		}
	}
	if err := RemoveCheckpoints(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, CheckpointDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("RemoveCheckpoints left %s: %v", CheckpointDir, err)
	}
}

// BenchmarkOpenLedger is what every process pays to open the ledger
// before it appends or decides: verifying it from its first line, or
// from a checkpoint's position (checked, then nothing below it read), on
// an empty ledger and one of PARLEY_BENCH_LINES lines (default 1,000,000).
func BenchmarkOpenLedger(b *testing.B) {
	lines := 1_000_000
	if s := os.Getenv("PARLEY_BENCH_LINES"); s != "" {
		if _, err := fmt.Sscan(s, &lines); err != nil {
			b.Fatalf("PARLEY_BENCH_LINES=%q: %v", s, err)
		}
	}
	empty := filepath.Join(b.TempDir(), LedgerFile)
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	big := filepath.Join(b.TempDir(), LedgerFile)
	f, err := os.Create(big)
	if err != nil {
		b.Fatal(err)
	}
	var seq uint64
	var prev string
	var off int64
	for seq < uint64(lines) {
		n := min(10_000, lines-int(seq))
		es := make([]Entry, n)
		for i := range es {
			m := &Message{ID: fmt.Sprintf("<%d@parley>", int(seq)+i), From: "procurement", To: "vendor-b", Thread: fmt.Sprintf("t-%d", (int(seq)+i)/40),
				Verb: Quote, UnitPrice: MustMoney("4.80 USD"), Quantity: 500}
			es[i] = MessageEntry("procurement", EventDelivered, m)
		}
		buf, out, err := Chain(seq, prev, es, fixedClock())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		seq, prev, off = out[n-1].Seq, out[n-1].Hash, off+int64(len(buf))
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	at := Position{Seq: seq, Hash: prev, Offset: off}
	for _, bc := range []struct {
		name string
		path string
		from Position
	}{
		{"empty", empty, Position{}},
		{fmt.Sprintf("%dlines/from-start", lines), big, Position{}},
		{fmt.Sprintf("%dlines/from-checkpoint", lines), big, at},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				l, err := OpenLedgerFrom(bc.path, nil, nil, bc.from)
				if err != nil {
					b.Fatal(err)
				}
				if got := l.Started(); got != bc.from {
					b.Fatalf("Started()=%v, want %v", got, bc.from)
				}
				l.Close()
			}
		})
	}
}
