package mailbox

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/proctest"
)

// fixedClock returns a clock that starts at a fixed time and moves one
// millisecond a call.
func fixedClock() func() time.Time {
	t := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(time.Millisecond)
		return t
	}
}

func writeLedger(t testing.TB, n int) (string, []Entry) {
	t.Helper()
	path := filepath.Join(t.TempDir(), LedgerFile)
	l, err := OpenLedger(path, fixedClock(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var all []Entry
	for i := 0; i < n; i++ {
		m := &Message{ID: fmt.Sprintf("<%d@parley>", i), From: "procurement", To: "vendor-b", Thread: "t-1",
			Verb: Quote, UnitPrice: MustMoney("4.80 USD"), Quantity: 500}
		es, err := l.Append(MessageEntry("procurement", EventDelivered, m))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, es...)
	}
	return path, all
}

func TestLedgerAppendVerify(t *testing.T) {
	path, entries := writeLedger(t, 10)
	for i, e := range entries {
		if got, want := e.Seq, uint64(i+1); got != want {
			t.Errorf("entry %d: Seq = %d, want %d", i, got, want)
		}
		if i > 0 && e.Prev != entries[i-1].Hash {
			t.Errorf("entry %d: Prev = %s, want the hash before it %s", i, e.Prev, entries[i-1].Hash)
		}
	}
	if got, want := entries[0].Amount+" "+entries[0].Currency, "2400.00 USD"; got != want {
		t.Errorf("amount = %q, want %q (quantity × unit price)", got, want)
	}
	f, _ := os.Open(path)
	defer f.Close()
	res, err := Verify(f)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Lines != 10 || res.Head != entries[9].Hash {
		t.Errorf("Verify = %+v, want 10 lines and head %s", res, entries[9].Hash)
	}
	// The lines are JSON that other tools can read with the documented keys.
	data, _ := os.ReadFile(path)
	first := strings.SplitN(string(data), "\n", 2)[0]
	for _, key := range []string{`"seq":1`, `"time":"2026-11-26T10:00:00.`, `"agent":"procurement"`, `"event":"delivered"`,
		`"thread":"t-1"`, `"msg_id":"<0@parley>"`, `"verb":"QUOTE"`, `"from":"procurement"`, `"to":"vendor-b"`,
		`"amount":"2400.00"`, `"currency":"USD"`, `"prev":"` + genesis + `"`, `"hash":"`} {
		if !strings.Contains(first, key) {
			t.Errorf("first line lacks %s:\n%s", key, first)
		}
	}
}

// TestVerifyCatchesTampering edits a good ledger in each way a person or a
// bug could, and checks that Verify names the first line at fault.
func TestVerifyCatchesTampering(t *testing.T) {
	path, entries := writeLedger(t, 8)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	lines = lines[:len(lines)-1] // the empty string after the last newline
	forged := func(seq uint64, prev string) string {
		line, _, err := encodeEntry(Entry{Seq: seq, Time: time.Now(), Agent: "mallory", Event: "delivered", Prev: prev})
		if err != nil {
			t.Fatal(err)
		}
		return string(line)
	}
	tests := []struct {
		name string
		edit func(l []string) []string
		line int
		kind string
	}{
		{"amount edited", func(l []string) []string {
			l[3] = strings.Replace(l[3], `"amount":"2400.00"`, `"amount":"9400.00"`, 1)
			return l
		}, 4, "edited"},
		{"line dropped", func(l []string) []string { return append(l[:4:4], l[5:]...) }, 5, "dropped"},
		{"last line dropped is not detectable alone", nil, 0, ""},
		{"two lines swapped", func(l []string) []string { l[2], l[3] = l[3], l[2]; return l }, 3, "reordered"},
		{"line moved to the end", func(l []string) []string {
			moved := l[1]
			l = append(l[:1:1], l[2:]...)
			return append(l, moved)
		}, 2, "reordered"},
		{"line copied", func(l []string) []string {
			return append(append(l[:5:5], l[2]), l[5:]...)
		}, 6, "inserted"},
		{"forged line inserted with a good hash", func(l []string) []string {
			return append(append(l[:5:5], forged(6, entries[4].Hash)), l[5:]...)
		}, 7, "inserted"},
		{"line replaced with a rehashed forgery", func(l []string) []string {
			l[4] = forged(5, entries[3].Hash)
			return l
		}, 6, "edited"},
		{"not JSON", func(l []string) []string { l[0] = "hello\n"; return l }, 1, "malformed"},
		{"torn tail", func(l []string) []string { l[7] = l[7][:40]; return l }, 8, "torn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.edit == nil {
				// Dropping lines from the end leaves an honest prefix: only
				// a head kept elsewhere (a git commit) tells. Verify says
				// what the head is, so it can be compared.
				res, err := Verify(strings.NewReader(strings.Join(lines[:7], "")))
				if err != nil || res.Head != entries[6].Hash {
					t.Fatalf("Verify(prefix) = %+v, %v; want head %s", res, err, entries[6].Hash)
				}
				return
			}
			l := tt.edit(append([]string(nil), lines...))
			_, err := Verify(strings.NewReader(strings.Join(l, "")))
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify err = %v, want a *VerifyError", err)
			}
			if ve.Line != tt.line || ve.Kind != tt.kind {
				t.Errorf("Verify: %v; want line %d %s", ve, tt.line, tt.kind)
			}
		})
	}
}

func TestLedgerTornTailIsSetAside(t *testing.T) {
	path, entries := writeLedger(t, 5)
	data, _ := os.ReadFile(path)
	complete := bytes.LastIndexByte(data[:len(data)-1], '\n') + 1
	cut := complete + 30 // a crash 30 bytes into the fifth line
	if err := os.Truncate(path, int64(cut)); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLedger(path, fixedClock(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	after, _ := os.ReadFile(path)
	if !bytes.HasPrefix(after, data[:complete]) {
		t.Fatalf("after repair the ledger does not start with its %d bytes of complete lines", complete)
	}
	var repaired Entry
	if err := ReadEntries(bytes.NewReader(after), func(_ int, e Entry) error { repaired = e; return nil }); err != nil {
		t.Fatal(err)
	}
	if repaired.Seq != 5 || repaired.Event != EventRepaired || !strings.Contains(repaired.Reason, "30 bytes") {
		t.Errorf("last entry after repair = %+v, want seq 5 recording the 30 bytes set aside", repaired)
	}
	aside, _ := filepath.Glob(path + ".torn.*")
	if len(aside) != 1 {
		t.Fatalf("torn files set aside: %v, want one", aside)
	}
	if got, _ := os.ReadFile(aside[0]); !bytes.Equal(got, data[complete:cut]) {
		t.Errorf("set aside %q, want the torn bytes %q", got, data[complete:cut])
	}
	es, err := l.Append(Entry{Agent: "test", Event: "after"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := es[0].Seq, uint64(6); got != want {
		t.Errorf("next seq = %d, want %d", got, want)
	}
	if es[0].Prev != repaired.Hash || repaired.Prev != entries[3].Hash {
		t.Errorf("the chain does not run from the last complete line through the repair to the next entry")
	}
	f, _ := os.Open(path)
	defer f.Close()
	if _, err := Verify(f); err != nil {
		t.Errorf("Verify after repair: %v", err)
	}
}

func TestLedgerTornWholeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), LedgerFile)
	if err := os.WriteFile(path, []byte(`{"seq":1,"ti`), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := OpenLedger(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	es, err := l.Append(Entry{Agent: "a", Event: "e"})
	if err != nil {
		t.Fatal(err)
	}
	if es[0].Seq != 2 {
		t.Errorf("first entry after the repair entry has seq %d, want 2", es[0].Seq)
	}
}

func TestLedgerRefusesBadLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), LedgerFile)
	if err := os.WriteFile(path, []byte("not a ledger line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLedger(path, nil, nil); err == nil {
		t.Fatal("OpenLedger accepted a ledger whose last line is not an entry; a complete line must never be cut")
	}
	if got, _ := os.ReadFile(path); string(got) != "not a ledger line\n" {
		t.Errorf("the file was changed to %q", got)
	}
}

// TestLedgerFourProcesses appends 1,000 entries from each of four processes
// at once; the chain must verify and seq be contiguous.
func TestLedgerFourProcesses(t *testing.T) {
	const procs, each = 4, 1000
	path := filepath.Join(t.TempDir(), LedgerFile)
	wait := proctest.Start(t, procs, "append", func(i int) string { return fmt.Sprintf("%s %d p%d", path, each, i) })
	wait()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Verify(f)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Lines != procs*each {
		t.Fatalf("Verify read %d lines, want %d", res.Lines, procs*each)
	}
	f.Seek(0, 0)
	next := map[string]int{}
	err = ReadEntries(f, func(n int, e Entry) error {
		if e.Seq != uint64(n) {
			return fmt.Errorf("line %d has seq %d", n, e.Seq)
		}
		// Each process's own entries are in the order it appended them.
		if got, want := e.Reason, strconv.Itoa(next[e.Agent]); got != want {
			return fmt.Errorf("line %d: %s's entry %s, want %s", n, e.Agent, got, want)
		}
		next[e.Agent]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzVerify feeds arbitrary bytes to the ledger readers: they must not
// panic, and what Verify accepts ReadEntries reads with contiguous seq.
func FuzzVerify(f *testing.F) {
	path, _ := writeLedger(f, 3)
	good, _ := os.ReadFile(path)
	f.Add(good)
	f.Add(good[:len(good)-10])
	f.Add([]byte(`{"seq":1,"prev":"` + genesis + `","hash":"` + genesis + `"}` + "\n"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Verify(bytes.NewReader(data))
		var ve *VerifyError
		if err != nil && !errors.As(err, &ve) {
			t.Fatalf("Verify err %v is not a *VerifyError", err)
		}
		if err != nil {
			return
		}
		n := 0
		rerr := ReadEntries(bytes.NewReader(data), func(line int, e Entry) error {
			n++
			if e.Seq != uint64(line) {
				return fmt.Errorf("verified ledger has seq %d on line %d", e.Seq, line)
			}
			return nil
		})
		if rerr != nil || n != res.Lines {
			t.Fatalf("Verify passed %d lines but ReadEntries read %d: %v", res.Lines, n, rerr)
		}
	})
}

func TestTransactSeesEveryEntryOnce(t *testing.T) {
	path, _ := writeLedger(t, 3)
	a, err := OpenLedger(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenLedger(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var seen []uint64
	record := func(news []Entry) ([]Entry, error) {
		for _, e := range news {
			seen = append(seen, e.Seq)
		}
		return []Entry{{Agent: "a", Event: "decision"}}, nil
	}
	if _, err := a.Transact(record); err != nil { // sees 1-3, writes 4
		t.Fatal(err)
	}
	if _, err := b.Append(Entry{Agent: "b", Event: "delivered"}); err != nil { // 5, by another writer
		t.Fatal(err)
	}
	if _, err := a.Transact(record); err != nil { // sees 4 and 5, writes 6
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(seen), "[1 2 3 4 5]"; got != want {
		t.Errorf("Transact saw seq %s, want %s", got, want)
	}
}

// TestAnchorsCatchARewrite: a ledger rewritten from some line on, every
// hash recomputed, passes the chain check alone; its anchor catches it.
func TestAnchorsCatchARewrite(t *testing.T) {
	path, entries := writeLedger(t, 6)
	data, _ := os.ReadFile(path)
	res, err := Verify(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	anchors := filepath.Join(t.TempDir(), AnchorFile)
	if _, err := Anchor(anchors, res, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Rewrite entry 3 and every hash after it, as a careful forger would.
	var forged []byte
	prev := genesis
	for i, e := range entries {
		if i == 2 {
			e.Amount = "1.00"
		}
		e.Prev = prev
		line, hash, err := encodeEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		forged, prev = append(forged, line...), hash
	}
	if _, err := Verify(bytes.NewReader(forged)); err != nil {
		t.Fatalf("the rehashed forgery does not even pass the bare chain check: %v", err)
	}
	at, err := ReadAnchors(anchors)
	if err != nil {
		t.Fatal(err)
	}
	_, err = VerifyAnchored(bytes.NewReader(forged), at)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Kind != "rewritten" || ve.Line != 6 {
		t.Fatalf("VerifyAnchored = %v, want the rewrite caught at the anchored line 6", err)
	}
	if _, err := VerifyAnchored(bytes.NewReader(data), at); err != nil {
		t.Errorf("the honest ledger against its anchor: %v", err)
	}
	short := data[:bytes.Index(data, []byte("\n"))+1]
	if _, err := VerifyAnchored(bytes.NewReader(short), at); !errors.As(err, &ve) || ve.Kind != "dropped" {
		t.Errorf("a ledger cut back before its anchor: %v, want dropped", err)
	}
}

// TestLedgerActsOnlyOnAVerifiedChain: a ledger edited, cut, reordered,
// inserted into or rewritten — while no process had it open, or under one
// that has — is refused by the next append or transaction: nothing is
// read for a decision and nothing appended after the break, and the file
// is left as it was. A cut from the end, or a rewrite with every hash
// recomputed, shows only against a head kept elsewhere (an agent's
// state/ledger.head, an anchor).
func TestLedgerActsOnlyOnAVerifiedChain(t *testing.T) {
	path, entries := writeLedger(t, 8)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	lines = lines[:len(lines)-1]
	kept := []Head{{Seq: 8, Hash: entries[7].Hash, By: "procurement (procurement/state/ledger.head)"}}
	rewritten := func(l []string) []string {
		// Line 4's amount changed and every hash from it on recomputed: an
		// honest chain of its own.
		es := append([]Entry(nil), entries...)
		es[3].Amount = "0.01"
		buf, _, err := Chain(es[2].Seq, es[2].Hash, es[3:], time.Now)
		if err != nil {
			t.Fatal(err)
		}
		fresh := strings.SplitAfter(string(buf), "\n")
		return append(l[:3:3], fresh[:len(fresh)-1]...)
	}
	tests := []struct {
		name  string
		edit  func(l []string) []string
		heads []Head
		kind  string
	}{
		{"amount edited", func(l []string) []string {
			l[3] = strings.Replace(l[3], `"amount":"2400.00"`, `"amount":"0.01"`, 1)
			return l
		}, nil, "edited"},
		{"a line dropped", func(l []string) []string { return append(l[:4:4], l[5:]...) }, nil, "dropped"},
		{"two lines swapped", func(l []string) []string { l[2], l[3] = l[3], l[2]; return l }, nil, "reordered"},
		{"a line copied in", func(l []string) []string { return append(append(l[:5:5], l[2]), l[5:]...) }, nil, "inserted"},
		{"the last lines cut, against an agent's kept head", func(l []string) []string { return l[:5] }, kept, "cut"},
		{"rewritten with fresh hashes, against an agent's kept head", rewritten, kept, "rewritten"},
		{"rewritten with fresh hashes, against an anchor", rewritten, []Head{{Seq: 6, Hash: entries[5].Hash, By: "the anchor"}}, "rewritten"},
	}
	for _, tt := range tests {
		t.Run(tt.name+", while stopped", func(t *testing.T) {
			p := filepath.Join(t.TempDir(), LedgerFile)
			tampered := strings.Join(tt.edit(append([]string(nil), lines...)), "")
			if err := os.WriteFile(p, []byte(tampered), 0o644); err != nil {
				t.Fatal(err)
			}
			l, err := OpenLedger(p, nil, func() ([]Head, error) { return tt.heads, nil })
			if err == nil {
				_, err = l.Append(Entry{Agent: "finance", Event: "decision"})
				l.Close()
			}
			var ve *VerifyError
			if !errors.Is(err, ErrBroken) || !errors.As(err, &ve) || ve.Kind != tt.kind {
				t.Fatalf("open and append: %v; want ErrBroken, %s", err, tt.kind)
			}
			if after, _ := os.ReadFile(p); string(after) != tampered {
				t.Errorf("the ledger changed after the break:\n%s", after)
			}
		})
	}
	t.Run("cut under a running process", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), LedgerFile)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := OpenLedger(p, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := os.WriteFile(p, []byte(strings.Join(lines[:6], "")), 0o644); err != nil {
			t.Fatal(err)
		}
		called := false
		_, err = l.Transact(func([]Entry) ([]Entry, error) {
			called = true
			return []Entry{{Agent: "finance", Event: "decision"}}, nil
		})
		if !errors.Is(err, ErrBroken) || called {
			t.Fatalf("Transact after a cut: %v (decided: %v); want ErrBroken, nothing decided", err, called)
		}
		// Mended (the lines put back), the same process goes on.
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(Entry{Agent: "finance", Event: "decision"}); err != nil {
			t.Fatalf("append once mended: %v", err)
		}
		if _, err := Verify(bytes.NewReader(mustRead(t, p))); err != nil {
			t.Errorf("after the mend: %v", err)
		}
	})
}
