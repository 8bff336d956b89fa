package mailbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/parley-dev/parley/internal/proctest"
)

// sealedLedger opens a ledger in a root that seals, at sealAt bytes.
func sealedLedger(t *testing.T, sealAt int64) (*Ledger, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), LedgerFile)
	if _, err := MakeSegmentDir(path); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLedger(path, fixedClock(), nil)
	if err != nil {
		t.Fatal(err)
	}
	l.sealAt = sealAt
	t.Cleanup(func() { l.Close() })
	return l, path
}

func appendN(t *testing.T, l *Ledger, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := l.Append(Entry{Agent: "finance", Event: "test", Reason: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll is the ledger as one stream, as every reader sees it.
func readAll(t *testing.T, path string) []byte {
	t.Helper()
	r, err := OpenLedgerReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// checkLedger checks that the ledger at path is n lines, seq 1 to n, each
// appended once and in order (Reason 0 to n-1), chained across its files;
// that every segment is whole lines; and that no temporary file is left.
func checkLedger(t *testing.T, path string, n int) {
	t.Helper()
	data := readAll(t, path)
	res, err := Verify(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Lines != n {
		t.Fatalf("the ledger has %d lines, want %d", res.Lines, n)
	}
	err = ReadEntries(bytes.NewReader(data), func(i int, e Entry) error {
		if e.Reason != strconv.Itoa(i-1) && e.Event == "test" {
			return fmt.Errorf("line %d is append %s, want %d", i, e.Reason, i-1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	segs, err := SegmentFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	var cat []byte
	for _, s := range segs {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 || b[len(b)-1] != '\n' {
			t.Errorf("%s does not end with a whole line", s)
		}
		if st, _ := os.Stat(s); st.Mode().Perm()&0o222 != 0 {
			t.Errorf("%s is writable (%v): a sealed segment is read-only", s, st.Mode())
		}
		cat = append(cat, b...)
	}
	live, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := append(cat, live...); !bytes.Equal(got, data) {
		t.Errorf("the segments then the live file are not the ledger read (%d bytes, want %d)", len(got), len(data))
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), SegmentDir, ".*"))
	if _, err := os.Stat(path + sealingSuffix); err == nil {
		left = append(left, path+sealingSuffix)
	}
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestSealKeepsOneChain(t *testing.T) {
	l, path := sealedLedger(t, 2000)
	appendN(t, l, 0, 100)
	segs, err := SegmentFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 5 {
		t.Fatalf("%d segments after 100 lines sealed at 2,000 bytes; want several", len(segs))
	}
	if err := l.SealError(); err != nil {
		t.Fatal(err)
	}
	checkLedger(t, path, 100)
	// The offsets are the ledger's: the verified position is its size, and
	// a process starts from it.
	at := l.VerifiedAt()
	if got, want := at.Offset, int64(len(readAll(t, path))); got != want {
		t.Errorf("VerifiedAt().Offset = %d, want the ledger's size %d", got, want)
	}
	l2, err := OpenLedgerFrom(path, nil, nil, at)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if got := l2.Started(); got != at {
		t.Errorf("Started() = %v, want the position %v", got, at)
	}
	// A position inside a sealed segment is found there too.
	mid := Position{}
	r, _ := OpenLedgerReader(path)
	_ = ReadEntries(io.NewSectionReader(r, 0, r.sealed.segs[1].start), func(_ int, e Entry) error {
		mid = Position{Seq: e.Seq, Hash: e.Hash}
		return nil
	})
	mid.Offset = r.sealed.segs[1].start
	r.Close()
	l3, err := OpenLedgerFrom(path, nil, nil, mid)
	if err != nil {
		t.Fatal(err)
	}
	defer l3.Close()
	if got := l3.Started(); got != mid {
		t.Errorf("Started() = %v, want the position in a segment %v", got, mid)
	}
	news := 0
	if _, err := l3.Transact(func(es []Entry) ([]Entry, error) { news = len(es); return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if got, want := news, 100-int(mid.Seq); got != want {
		t.Errorf("Transact from seq %d read %d lines, want %d", mid.Seq, got, want)
	}
}

// TestSealCrashPoints stops a seal at each of its steps, as a crash would
// (the seam makes the step fail, and the ledger is left as it was then),
// then lets a process open the ledger again: nothing is lost or doubled,
// the chain is whole, and the seal is finished or made again.
func TestSealCrashPoints(t *testing.T) {
	seg := func(name string) func(string) bool {
		return func(p string) bool { return filepath.Base(p) == name }
	}
	for _, tc := range []struct {
		name  string
		op    string
		match func(path string) bool
	}{
		{"writing the segment", "write", seg(".000001.jsonl.tmp")},
		{"syncing the segment", "sync", seg(".000001.jsonl.tmp")},
		{"renaming the segment into place", "rename", seg(".000001.jsonl.tmp")},
		{"syncing the segment folder", "syncdir", seg(SegmentDir)},
		{"creating the live file's rest", "open", seg(LedgerFile + sealingSuffix)},
		{"writing the live file's rest", "write", seg(LedgerFile + sealingSuffix)},
		{"syncing the live file's rest", "sync", seg(LedgerFile + sealingSuffix)},
		{"renaming it over the live file", "rename", seg(LedgerFile + sealingSuffix)},
		{"syncing the root", "syncdir", func(p string) bool { return !strings.HasSuffix(p, SegmentDir) }},
	} {
		for _, restart := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, restarted %v", tc.name, restart), func(t *testing.T) {
				l, path := sealedLedger(t, 3000)
				appendN(t, l, 0, 5)
				armed := true
				fault = func(op, p string) error {
					if armed && op == tc.op && tc.match(p) {
						armed = false
						return errors.New("crash")
					}
					return nil
				}
				t.Cleanup(func() { fault = func(string, string) error { return nil } })
				// Ten lines at a time, so that a seal leaves a rest live,
				// until one passes 3,000 bytes and its seal is stopped.
				for i := 5; armed; i += 10 {
					if i > 200 {
						t.Fatalf("the seal never reached %s %s", tc.op, tc.name)
					}
					es := make([]Entry, 10)
					for j := range es {
						es[j] = Entry{Agent: "finance", Event: "test", Reason: strconv.Itoa(i + j)}
					}
					if _, err := l.Append(es...); err != nil {
						t.Fatal(err)
					}
				}
				if l.SealError() == nil {
					t.Fatal("SealError() = nil after a seal was stopped")
				}
				data := readAll(t, path)
				n := 0
				if res, err := Verify(bytes.NewReader(data)); err != nil {
					t.Fatalf("read while stopped: %d lines, %v", res.Lines, err)
				} else {
					n = res.Lines
				}
				if restart {
					l.Close()
					if l, err := OpenLedger(path, fixedClock(), nil); err != nil {
						t.Fatalf("open after the crash: %v", err)
					} else {
						l.sealAt = 3000
						defer l.Close()
						appendN(t, l, n, 5)
					}
				} else {
					appendN(t, l, n, 5) // the same process goes on, and finishes the seal
				}
				checkLedger(t, path, n+5)
				if segs, _ := SegmentFiles(path); len(segs) == 0 {
					t.Error("no segment sealed after the crash")
				}
			})
		}
	}
}

// TestSealFinishedOnOpen builds the state of a seal stopped after its
// segment, by hand: the next opener cuts the live file; a segment that is
// not the live file's head is refused, and nothing is changed.
func TestSealFinishedOnOpen(t *testing.T) {
	path, _ := writeLedger(t, 12)
	data, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(data), "\n")
	head := strings.Join(lines[:5], "")
	for _, tc := range []struct {
		name, seg string
		ok        bool
	}{
		{"the live file's head", head, true},
		{"edited", strings.Replace(head, `"seq":3,`, `"seq":3, `, 1), false},
		{"other lines", strings.Join(lines[1:6], ""), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), LedgerFile)
			os.WriteFile(p, data, 0o644)
			MakeSegmentDir(p)
			seg := filepath.Join(filepath.Dir(p), SegmentDir, segmentName(1))
			os.WriteFile(seg, []byte(tc.seg), 0o444)
			l, err := OpenLedger(p, nil, nil)
			if !tc.ok {
				if err == nil {
					l.Close()
				}
				if !errors.Is(err, ErrBroken) {
					t.Fatalf("OpenLedger = %v, want ErrBroken", err)
				}
				if after, _ := os.ReadFile(p); !bytes.Equal(after, data) {
					t.Error("the live file was changed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
			if got := readAll(t, p); !bytes.Equal(got, data) {
				t.Errorf("the ledger read is not the ledger written")
			}
			if live, _ := os.ReadFile(p); string(live) != strings.Join(lines[5:], "") {
				t.Errorf("the live file still holds the sealed lines")
			}
		})
	}
}

// TestSealedSegmentTampered: a sealed segment edited, removed or cut is
// caught, at open and by a running process, as an edit of ledger.jsonl is.
func TestSealedSegmentTampered(t *testing.T) {
	build := func(t *testing.T) (*Ledger, string, []string) {
		l, path := sealedLedger(t, 1500)
		appendN(t, l, 0, 40)
		segs, _ := SegmentFiles(path)
		if len(segs) < 3 {
			t.Fatalf("%d segments, want 3 or more", len(segs))
		}
		return l, path, segs
	}
	edits := []struct {
		name string
		edit func(segs []string)
		kind string
	}{
		{"a line edited", func(segs []string) {
			b, _ := os.ReadFile(segs[1])
			os.Chmod(segs[1], 0o644)
			os.WriteFile(segs[1], bytes.Replace(b, []byte(`"finance"`), []byte(`"Finance"`), 1), 0o444)
		}, "edited"},
		{"a segment removed", func(segs []string) { os.Remove(segs[1]) }, "dropped"},
		{"the last segment removed", func(segs []string) { os.Remove(segs[len(segs)-1]) }, "dropped"},
	}
	for _, tc := range edits {
		t.Run(tc.name+", while stopped", func(t *testing.T) {
			l, path, segs := build(t)
			l.Close()
			tc.edit(segs)
			l2, err := OpenLedger(path, nil, nil)
			if err == nil {
				_, err = l2.Append(Entry{Agent: "finance", Event: "decision"})
				l2.Close()
			}
			var ve *VerifyError
			if !errors.Is(err, ErrBroken) || !errors.As(err, &ve) || ve.Kind != tc.kind {
				t.Fatalf("open and append: %v; want ErrBroken, %s", err, tc.kind)
			}
			r, err := OpenLedgerReader(path)
			if err == nil {
				_, err = Verify(r)
				r.Close()
			}
			if !errors.As(err, &ve) || ve.Kind != tc.kind {
				t.Fatalf("Verify: %v; want %s", err, tc.kind)
			}
		})
	}
	t.Run("a segment removed under a running process", func(t *testing.T) {
		l, _, segs := build(t)
		os.Remove(segs[len(segs)-1])
		called := false
		_, err := l.Transact(func([]Entry) ([]Entry, error) { called = true; return nil, nil })
		var ve *VerifyError
		if !errors.Is(err, ErrBroken) || !errors.As(err, &ve) || ve.Kind != "cut" || called {
			t.Fatalf("Transact: %v (decided: %v); want ErrBroken, cut, nothing decided", err, called)
		}
	})
}

// TestLedgerReaderOverlap: a reader that opened the live file before a seal
// cut it sees the new segment's lines once, as it does after a crash left
// them in both.
func TestLedgerReaderOverlap(t *testing.T) {
	path, _ := writeLedger(t, 9)
	data, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(data), "\n")
	lines = lines[:len(lines)-1]
	for _, tc := range []struct {
		name string
		segs [][]string // the lines of each segment
		live []string
	}{
		{"no segment", nil, lines},
		{"segments, then the rest", [][]string{lines[:2], lines[2:5]}, lines[5:]},
		{"the live file empty", [][]string{lines[:4], lines[4:]}, nil},
		{"the last segment still in the live file", [][]string{lines[:2], lines[2:5]}, lines[2:]},
		{"the last two still in the live file", [][]string{lines[:2], lines[2:5], lines[5:7]}, lines[2:]},
		{"only segments, no live file", [][]string{lines[:3], lines[3:]}, []string{"-"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), LedgerFile)
			if len(tc.live) != 1 || tc.live[0] != "-" {
				os.WriteFile(p, []byte(strings.Join(tc.live, "")), 0o644)
			}
			MakeSegmentDir(p)
			for i, s := range tc.segs {
				os.WriteFile(filepath.Join(filepath.Dir(p), SegmentDir, segmentName(i+1)), []byte(strings.Join(s, "")), 0o444)
			}
			got := readAll(t, p)
			if !bytes.Equal(got, data) {
				t.Errorf("read %d bytes:\n%s\nwant the ledger's %d", len(got), got, len(data))
			}
		})
	}
}

// FuzzLedgerReader splits a ledger into segments at line ends and reads it
// back at arbitrary offsets and lengths: every read is the bytes of the
// one file the ledger was.
func FuzzLedgerReader(f *testing.F) {
	path, _ := writeLedger(f, 7)
	good, _ := os.ReadFile(path)
	f.Add(good, uint8(3), int64(0), uint16(100))
	f.Add(good, uint8(0), int64(500), uint16(9000))
	f.Add(good, uint8(255), int64(1234), uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, cuts uint8, off int64, n uint16) {
		if !bytes.HasSuffix(data, []byte("\n")) {
			return
		}
		dir := t.TempDir()
		p := filepath.Join(dir, LedgerFile)
		os.Mkdir(filepath.Join(dir, SegmentDir), 0o755)
		lines := bytes.SplitAfter(data, []byte("\n"))
		// A segment every (cuts%4)+1 lines, the rest live; seq-less lines
		// are never taken for a copy of a segment.
		every := int(cuts%4) + 1
		nseg, at := 0, 0
		for at+every < len(lines) && cuts&0x80 == 0 {
			seg := bytes.Join(lines[at:at+every], nil)
			nseg++
			os.WriteFile(filepath.Join(dir, SegmentDir, segmentName(nseg)), seg, 0o444)
			at += every
		}
		os.WriteFile(p, bytes.Join(lines[at:], nil), 0o644)
		r, err := OpenLedgerReader(p)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		size, _ := r.Size()
		if size > int64(len(data)) {
			t.Fatalf("Size() = %d, more than the %d bytes written", size, len(data))
		}
		if off < 0 {
			off = -off
		}
		off %= int64(len(data)) + 1
		buf := make([]byte, n)
		k, err := r.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		want := data[min(off, size):min(off+int64(n), size)]
		if size == int64(len(data)) && !bytes.Equal(buf[:k], want) {
			t.Fatalf("ReadAt(%d, %d) = %q, want %q", n, off, buf[:k], want)
		}
	})
}

// TestSealManyProcesses appends from four processes at once, each
// sealing when the live file passes 4 KiB: the chain runs whole across
// the segments, nothing lost or doubled, each process's lines in order.
func TestSealManyProcesses(t *testing.T) {
	const procs, each = 4, 300
	path := filepath.Join(t.TempDir(), LedgerFile)
	if _, err := MakeSegmentDir(path); err != nil {
		t.Fatal(err)
	}
	t.Setenv(SegmentSizeEnv, "4KiB") // the helpers inherit it
	wait := proctest.Start(t, procs, "append", func(i int) string { return fmt.Sprintf("%s %d p%d", path, each, i) })
	wait()
	segs, err := SegmentFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 10 {
		t.Fatalf("%d segments; want many", len(segs))
	}
	data := readAll(t, path)
	res, err := Verify(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Lines != procs*each {
		t.Fatalf("Verify read %d lines, want %d", res.Lines, procs*each)
	}
	next := map[string]int{}
	err = ReadEntries(bytes.NewReader(data), func(n int, e Entry) error {
		if got, want := e.Reason, strconv.Itoa(next[e.Agent]); got != want {
			return fmt.Errorf("line %d: %s's entry %s, want %s", n, e.Agent, got, want)
		}
		next[e.Agent]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		if st, _ := os.Stat(s); st.Size() < 4<<10 {
			t.Errorf("%s is %d bytes, under the segment size", s, st.Size())
		}
	}
}

// TestSealMigrates: an old root's one file is sealed in place by Seal, in
// segments of the size asked, again and again with nothing more to do.
func TestSealMigrates(t *testing.T) {
	path, _ := writeLedger(t, 60)
	before, _ := os.ReadFile(path)
	l, err := OpenLedger(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	made, err := l.Seal(4000)
	if err != nil {
		t.Fatal(err)
	}
	if len(made) < 3 {
		t.Fatalf("Seal made %v; want several segments", made)
	}
	if live, _ := os.ReadFile(path); len(live) >= 4000 {
		t.Errorf("the live file keeps %d bytes, at least a segment's", len(live))
	}
	if got := readAll(t, path); !bytes.Equal(got, before) {
		t.Error("the ledger read after sealing is not the ledger before")
	}
	again, err := l.Seal(4000)
	if err != nil || len(again) != 0 {
		t.Fatalf("Seal again: %v, %v; want nothing to do", again, err)
	}
	// Seal(0), before a commit: the whole live file, one segment.
	all, err := l.Seal(0)
	if err != nil || len(all) != 1 {
		t.Fatalf("Seal(0): %v, %v; want one segment", all, err)
	}
	if live, _ := os.ReadFile(path); len(live) != 0 {
		t.Errorf("after Seal(0) the live file keeps %d bytes", len(live))
	}
	if _, err := l.Append(Entry{Agent: "finance", Event: "test"}); err != nil {
		t.Fatal(err)
	}
	if res, err := Verify(bytes.NewReader(readAll(t, path))); err != nil || res.Lines != 61 {
		t.Fatalf("Verify after: %d lines, %v", res.Lines, err)
	}
}

// TestNoSealWithoutTheFolder: a root made before segments keeps its one
// file, however large.
func TestNoSealWithoutTheFolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), LedgerFile)
	l, err := OpenLedger(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.sealAt = 500
	appendN(t, l, 0, 20)
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), SegmentDir)); err == nil {
		t.Fatal("a segment folder appeared in an old root")
	}
	checkLedger(t, path, 20)
}

// copySource is a ledger kept elsewhere (a JetStream stream), as CopyFrom
// asks it.
type copySource struct{ lines [][]byte }

func (c *copySource) add(t *testing.T, n int) {
	t.Helper()
	var seq uint64
	prev := ""
	if k := len(c.lines); k > 0 {
		var err error
		if seq, prev, err = LineHead(c.lines[k-1]); err != nil {
			t.Fatal(err)
		}
	}
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{Agent: "finance", Event: "test", Reason: strconv.Itoa(int(seq) + i)}
	}
	buf, _, err := Chain(seq, prev, es, fixedClock())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range bytes.SplitAfter(buf, []byte("\n")) {
		if len(l) > 0 {
			c.lines = append(c.lines, l)
		}
	}
}

func (c *copySource) Since(seq uint64, hash string) ([]byte, bool, error) {
	if seq > 0 {
		if int(seq) > len(c.lines) {
			return bytes.Join(c.lines, nil), true, nil
		}
		if _, h, _ := LineHead(c.lines[seq-1]); h != hash {
			return bytes.Join(c.lines, nil), true, nil
		}
	}
	return bytes.Join(c.lines[seq:], nil), false, nil
}

// TestSealACopy: a root's copy of a ledger kept elsewhere seals as the
// root's own ledger does, and a copy replaced whole sets the old one
// aside, its segments included.
func TestSealACopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), LedgerFile)
	MakeSegmentDir(path)
	src := &copySource{}
	l, err := openLedger(path, nil, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.sealAt = 2000
	for i := 0; i < 10; i++ {
		src.add(t, 5)
		if err := l.CopyFrom(src); err != nil {
			t.Fatal(err)
		}
	}
	if segs, _ := SegmentFiles(path); len(segs) < 3 {
		t.Fatalf("%d segments after copying 50 lines sealed at 2,000 bytes", len(segs))
	}
	checkLedger(t, path, 50)
	if got, want := readAll(t, path), bytes.Join(src.lines, nil); !bytes.Equal(got, want) {
		t.Fatal("the copy read across its segments is not the source")
	}
	// The source went its own way: the copy is replaced, the old one kept.
	old := readAll(t, path)
	src.lines = nil
	src.add(t, 3)
	if err := l.CopyFrom(src); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, path); !bytes.Equal(got, bytes.Join(src.lines, nil)) {
		t.Fatalf("after a whole copy the ledger is %q", got)
	}
	aside, _ := filepath.Glob(path + ".replaced.*")
	if len(aside) != 1 {
		t.Fatalf("set aside: %v, want one file", aside)
	}
	if got, _ := os.ReadFile(aside[0]); !bytes.Equal(got, old) {
		t.Error("the copy set aside is not the old copy, segments and live file")
	}
	if segs, _ := SegmentFiles(path); len(segs) != 0 {
		t.Errorf("the old copy's segments are still there: %v", segs)
	}
}

// TestSealFailingBacksOff: while seals fail (a disk that stays full), an
// append does not copy the live file again each time, only once the
// ledger has grown by a quarter of the segment size; every line lands.
func TestSealFailingBacksOff(t *testing.T) {
	l, path := sealedLedger(t, 4000)
	tries := 0
	fault = func(op, p string) error {
		if op == "open" && strings.HasSuffix(p, ".jsonl.tmp") {
			tries++
			return errors.New("no space left on device")
		}
		return nil
	}
	t.Cleanup(func() { fault = func(string, string) error { return nil } })
	appendN(t, l, 0, 200) // about 46 kB: 42 kB past the segment size
	if l.SealError() == nil {
		t.Fatal("SealError() = nil while every seal fails")
	}
	t.Logf("%d seals tried", tries)
	if tries < 5 || tries > 50 {
		t.Errorf("%d seals tried for 200 lines; want one per 1,000 bytes appended, about 42", tries)
	}
	fault = func(string, string) error { return nil }
	appendN(t, l, 200, 10)
	checkLedger(t, path, 210)
	if segs, _ := SegmentFiles(path); len(segs) == 0 {
		t.Error("no segment once the disk has room again")
	}
}

// TestLedgerReaderFollowsASeal: a reader at the end of the live file (tail
// -f) reads on into the new live file after a seal, each line once.
func TestLedgerReaderFollowsASeal(t *testing.T) {
	l, path := sealedLedger(t, 3000)
	appendN(t, l, 0, 3)
	r, err := OpenLedgerReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []byte
	read := func() {
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b...)
	}
	read()
	appendN(t, l, 3, 30) // sealed on the way
	if segs, _ := SegmentFiles(path); len(segs) == 0 {
		t.Fatal("no seal")
	}
	read()
	appendN(t, l, 33, 2)
	read()
	if want := readAll(t, path); !bytes.Equal(got, want) {
		t.Fatalf("followed %d bytes, want the ledger's %d", len(got), len(want))
	}
}

// TestSealKeepsNoOldFilesOpen: two appenders of one ledger (as two
// processes would be) each open the new live file after every seal, and
// close the old one: an agent that runs for years does not gather them.
func TestSealKeepsNoOldFilesOpen(t *testing.T) {
	a, path := sealedLedger(t, 1000)
	b, err := OpenLedger(path, fixedClock(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.sealAt = 1000
	for i := 0; i < 60; i++ {
		l := a
		if i%2 == 1 {
			l = b
		}
		if _, err := l.Append(Entry{Agent: "finance", Event: "test", Reason: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if segs, _ := SegmentFiles(path); len(segs) < 5 {
		t.Fatalf("%d seals; want many", len(segs))
	}
	for name, l := range map[string]*Ledger{"a": a, "b": b} {
		if n := len(l.retired); n > 0 {
			t.Errorf("%s keeps %d replaced live files open", name, n)
		}
	}
	checkLedger(t, path, 60)
}
