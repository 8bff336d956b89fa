package mailbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/proctest"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func newInbox(t testing.TB) Maildir {
	t.Helper()
	d := Maildir{Dir: filepath.Join(t.TempDir(), "procurement")}
	if err := d.Create(); err != nil {
		t.Fatal(err)
	}
	return d
}

func files(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestDeliverClaimFinish(t *testing.T) {
	d := newInbox(t)
	name, err := d.Deliver([]byte("hello\n"), t0)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(name, "/:") || name[0] == '.' {
		t.Errorf("name %q has a character Maildir forbids", name)
	}
	if got := files(t, d.Path("tmp")); len(got) != 0 {
		t.Errorf("tmp/ holds %v after delivery, want nothing", got)
	}
	if got, _ := d.Pending(); len(got) != 1 || got[0] != name {
		t.Fatalf("Pending() = %v, want [%s]", got, name)
	}
	claimed, err := d.Claim(name)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := claimed, name+",parley=claimed:2,"; got != want {
		t.Errorf("Claim = %q, want %q", got, want)
	}
	if _, err := d.Claim(name); !errors.Is(err, ErrClaimed) {
		t.Errorf("second Claim err = %v, want ErrClaimed", err)
	}
	if got, _ := d.Unfinished(nil); len(got) != 1 {
		t.Errorf("Unfinished() = %v, want the claimed message", got)
	}
	done, err := d.Finish(claimed, FlagDone)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := done, name+",parley=done:2,S"; got != want {
		t.Errorf("Finish = %q, want %q", got, want)
	}
	if got, _ := d.Unfinished(nil); len(got) != 0 {
		t.Errorf("Unfinished() = %v after Finish, want none", got)
	}
	data, err := os.ReadFile(d.Path("cur", done))
	if err != nil || string(data) != "hello\n" {
		t.Errorf("content after claim and finish = %q, %v", data, err)
	}
}

func TestListStates(t *testing.T) {
	d := newInbox(t)
	var names []string
	for i := 0; i < 5; i++ {
		n, err := d.Deliver([]byte("x"), t0)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	for i, flags := range []string{"", FlagDone, FlagDone + FlagAnswered, FlagFailed} {
		c, err := d.Claim(names[i+1])
		if err != nil {
			t.Fatal(err)
		}
		if flags != "" {
			if _, err := d.Finish(c, flags); err != nil {
				t.Fatal(err)
			}
		}
	}
	items, err := d.List(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []State
	for _, it := range items {
		got = append(got, it.State)
	}
	want := []State{StateNew, StateClaimed, StateDone, StateAnswered, StateFailed}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List states = %v, want %v", got, want)
	}
}

// TestDeliverFaults makes delivery fail at each step: before the rename
// nothing is delivered and nothing is left in tmp/; after it, the message
// is delivered whole and the error says the sync failed.
func TestDeliverFaults(t *testing.T) {
	tests := []struct {
		step      string
		delivered bool
	}{
		{"write", false},
		{"sync", false},
		{"rename", false},
		{"syncdir", true},
	}
	for _, tt := range tests {
		t.Run(tt.step, func(t *testing.T) {
			d := newInbox(t)
			injected := errors.New("injected " + tt.step + " failure")
			fault = func(op, _ string) error {
				if op == tt.step {
					return injected
				}
				return nil
			}
			defer func() { fault = func(string, string) error { return nil } }()
			_, err := d.Deliver([]byte("whole message\n"), t0)
			if !errors.Is(err, injected) {
				t.Fatalf("Deliver err = %v, want the injected failure", err)
			}
			if got := files(t, d.Path("tmp")); len(got) != 0 {
				t.Errorf("tmp/ holds %v after a failed delivery", got)
			}
			got := files(t, d.Path("new"))
			if tt.delivered != (len(got) == 1) {
				t.Fatalf("new/ holds %v, want delivered=%v", got, tt.delivered)
			}
			if tt.delivered {
				if data, _ := os.ReadFile(d.Path("new", got[0])); string(data) != "whole message\n" {
					t.Errorf("delivered %q, want the whole message", data)
				}
			}
		})
	}
}

// TestClaimRaceGoroutines has 8 goroutines claim the same 200 messages:
// each is won exactly once.
func TestClaimRaceGoroutines(t *testing.T) {
	const claimers, msgs = 8, 200
	d := newInbox(t)
	for i := 0; i < msgs; i++ {
		if _, err := d.Deliver([]byte(fmt.Sprint(i)), t0); err != nil {
			t.Fatal(err)
		}
	}
	names, _ := d.Pending()
	var mu sync.Mutex
	won := map[string]int{}
	var wg sync.WaitGroup
	for c := 0; c < claimers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, n := range names {
				_, err := d.Claim(n)
				if errors.Is(err, ErrClaimed) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				won[n]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(won) != msgs {
		t.Fatalf("%d messages claimed, want %d", len(won), msgs)
	}
	for n, k := range won {
		if k != 1 {
			t.Errorf("%s claimed %d times", n, k)
		}
	}
}

// TestClaimRaceProcesses has 4 processes claim the same 300 messages
// through a Root: each is claimed, and recorded as claimed, exactly once.
func TestClaimRaceProcesses(t *testing.T) {
	const procs, msgs = 4, 300
	r := newRoot(t, "procurement", "vendor-b")
	for i := 0; i < msgs; i++ {
		m := testMessage("vendor-b", "procurement", Quote)
		m.ID = fmt.Sprintf("<%d.race@parley>", i)
		if _, err := r.Deliver("vendor-b", m); err != nil {
			t.Fatal(err)
		}
	}
	outs := proctest.Start(t, procs, "claim", func(int) string { return r.Dir + " procurement" })()
	seen := map[string]int{}
	for _, out := range outs {
		for _, id := range strings.Fields(out) {
			seen[id]++
		}
	}
	if len(seen) != msgs {
		t.Fatalf("%d messages claimed, want %d", len(seen), msgs)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s claimed %d times", id, k)
		}
	}
	if got := countEvents(r, EventClaimed); got != msgs {
		t.Errorf("ledger records %d claims, want %d", got, msgs)
	}
	if got := countEvents(r, EventDone); got != msgs {
		t.Errorf("ledger records %d done, want %d", got, msgs)
	}
	verifyRoot(t, r)
}

// TestClaimBusyFile: a file written straight into new/ (as cp does) is not
// claimed while the writer still has it open.
func TestClaimBusyFile(t *testing.T) {
	d := newInbox(t)
	f, err := os.Create(d.Path("new", "copied-by-cp"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("From: half"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Claim("copied-by-cp"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Claim of a file open for writing: err = %v, want ErrBusy", err)
	}
	if _, err := f.WriteString(" and the rest\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := d.Claim("copied-by-cp")
	if err != nil {
		t.Fatalf("Claim after close: %v", err)
	}
	if data, _ := os.ReadFile(d.Path("cur", c)); string(data) != "From: half and the rest\n" {
		t.Errorf("claimed %q, want the whole file", data)
	}
}

func TestIgnored(t *testing.T) {
	for name, want := range map[string]bool{
		"1764151200.M1P2Q3R4.host": false, "approve.txt": false, "sedonia": false,
		".approve.txt.swp": true, "approve.txt.swp": true, "approve.txt~": true, "4913": true,
		"#approve.txt#": true, ".#approve.txt": true, "x.tmp": true, "sedAb12Cd": true, ".hidden": true,
	} {
		if got := Ignored(name); got != want {
			t.Errorf("Ignored(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestReject(t *testing.T) {
	d := newInbox(t)
	src := d.Path("drop", "bad.txt")
	if err := os.WriteFile(src, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // a second file of the same name must not overwrite the first
		if err := os.WriteFile(src, []byte(fmt.Sprint("junk", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Reject(src, "bad.txt: line 1: not a header"); err != nil {
			t.Fatal(err)
		}
	}
	got := files(t, d.Path("rejected"))
	sort.Strings(got)
	if len(got) != 4 {
		t.Fatalf("rejected/ holds %v, want two files each with a .err", got)
	}
	reason, _ := os.ReadFile(d.Path("rejected", "bad.txt.err"))
	if string(reason) != "bad.txt: line 1: not a header\n" {
		t.Errorf("bad.txt.err = %q", reason)
	}
}

// TestDeliverOnce: a message put again under its Message-ID (a bridge after
// a crash) is not delivered twice wherever the first copy now is — waiting,
// claimed, archived by a person, or set aside — while another message
// under the same id is delivered, for its agent to refuse.
func TestDeliverOnce(t *testing.T) {
	data := []byte("Message-ID: <1@test>\nVerb: NOTIFY\n\nhello\n")
	for _, tc := range []struct {
		name  string
		move  func(t *testing.T, d Maildir, path string) // where the first copy goes before the second put
		again []byte
		dup   bool
	}{
		{"waiting in new/", func(*testing.T, Maildir, string) {}, data, true},
		{"claimed into cur/", func(t *testing.T, d Maildir, path string) {
			if _, err := d.Claim(filepath.Base(path)); err != nil {
				t.Fatal(err)
			}
		}, data, true},
		{"archived", func(t *testing.T, d Maildir, path string) {
			if _, err := d.MoveToArchive(filepath.Join(d.Dir, path)); err != nil {
				t.Fatal(err)
			}
		}, data, true},
		{"set aside", func(t *testing.T, d Maildir, path string) {
			if _, err := d.Reject(filepath.Join(d.Dir, path), "not signed"); err != nil {
				t.Fatal(err)
			}
		}, data, true},
		{"another message under the id", func(*testing.T, Maildir, string) {}, []byte("Message-ID: <1@test>\nVerb: NOTIFY\n\nforged\n"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newInbox(t)
			first, dup, err := d.DeliverOnce("<1@test>", data, t0)
			if err != nil || dup {
				t.Fatalf("first: %s, dup %v, %v", first, dup, err)
			}
			tc.move(t, d, first)
			second, dup, err := d.DeliverOnce("<1@test>", tc.again, t0)
			if err != nil || dup != tc.dup {
				t.Fatalf("again: %s, dup %v, %v; want dup %v", second, dup, err, tc.dup)
			}
			files := 0
			for _, dir := range []Maildir{d, d.Archive()} {
				for _, sub := range []string{"new", "cur", "rejected"} {
					names, _ := filepath.Glob(filepath.Join(dir.Path(sub), "*"))
					for _, n := range names {
						if !strings.HasSuffix(n, ".err") {
							files++
						}
					}
				}
			}
			if want := map[bool]int{true: 1, false: 2}[tc.dup]; files != want {
				t.Errorf("%d files in the inbox, want %d", files, want)
			}
		})
	}
}
