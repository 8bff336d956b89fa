package mailbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// faultAt makes the nth file system call through the seam fail with errno
// (and every later one too, when lasting: a disk that stays full until
// space is freed); it returns a function that counts the calls so far.
func faultAt(t *testing.T, n int, errno error, lasting bool) func() int {
	calls := 0
	fault = func(op, path string) error {
		calls++
		if calls == n || (lasting && calls > n) {
			return errno
		}
		return nil
	}
	t.Cleanup(func() { fault = func(string, string) error { return nil } })
	return func() int { return calls }
}

// faultScenario delivers messages, a malformed file and a stranger,
// claims and finishes what it can, and records it: the work an agent does,
// with every error passed over as an agent would pass it over (the
// message stays where it is, to be taken up again). It returns the names
// and Message-IDs of the files that landed in new/.
func faultScenario(r *Root) (landed map[string]string) {
	const msgs = 3
	for i := 0; i < msgs; i++ {
		m := testMessage("vendor-b", "procurement", Notify)
		m.ID = fmt.Sprintf("<%d.fault@parley>", i)
		_, _ = r.Deliver("vendor-b", m)
	}
	d := r.Inbox("procurement")
	_, _ = d.Deliver([]byte("not a message\n"), t0)
	_ = os.Symlink("/dev/zero", d.Path("new", "1.zero.host"))
	names, _ := d.Pending()
	landed = map[string]string{}
	for _, n := range names {
		landed[n] = ""
		// Read around the seam, so as not to count.
		if st, err := os.Lstat(d.Path("new", n)); err == nil && st.Mode().IsRegular() {
			data, _ := os.ReadFile(d.Path("new", n))
			if m, err := Parse(data); err == nil {
				landed[n] = m.ID
			}
		}
	}
	for _, n := range names {
		c, err := r.Claim("procurement", n)
		if err != nil {
			continue
		}
		_ = r.Finish(c, FlagDone, "")
	}
	return landed
}

// recoverAll is the next start, with the disk back: what was claimed and
// not finished is finished, and what waits is claimed and finished.
func recoverAll(t *testing.T, dir string) *Root {
	t.Helper()
	r, err := OpenRoot(dir, fixedClock())
	if err != nil {
		t.Fatal(err)
	}
	// Opening the ledger sets aside a tail torn by a write the disk cut
	// short and that could not be cut back (the disk still full).
	if _, err := r.Ledger(); err != nil {
		t.Fatalf("open the ledger: %v", err)
	}
	cl := &Claims{r: r, agent: "procurement", in: &maildirInbox{agent: "procurement", d: r.Inbox("procurement")}}
	claimed, _, err := cl.Unfinished()
	if err != nil {
		t.Fatalf("Unfinished: %v", err)
	}
	for _, c := range claimed {
		if err := r.Finish(c, FlagDone, ""); err != nil {
			t.Fatalf("finish again: %v", err)
		}
	}
	names, err := r.Inbox("procurement").Pending()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		c, err := r.Claim("procurement", n)
		if errors.Is(err, ErrRejected) {
			continue
		}
		if err != nil {
			t.Fatalf("claim %s: %v", n, err)
		}
		if err := r.Finish(c, FlagDone, ""); err != nil {
			t.Fatalf("finish %s: %v", n, err)
		}
	}
	return r
}

// TestFaultInjection fails the Nth open, write, fsync, rename or truncate
// of the mailbox, for every N a run makes, with ENOSPC, EIO and EACCES,
// once or lasting, over deliveries, claims, finishes, rejections and
// ledger appends. Whatever fails: nothing panics, no message is lost
// (every file delivered is in new/, cur/ or rejected/, none left in tmp/),
// none is marked done twice, the ledger verifies, and a torn tail is set
// aside at most once, never as an empty file. Then the next start, with
// the disk back, finishes every message.
func TestFaultInjection(t *testing.T) {
	// A clean run says how many calls there are to fail.
	clean := newRoot(t, "procurement", "vendor-b")
	count := faultAt(t, -1, nil, false)
	faultScenario(clean)
	k := count()
	t.Logf("the scenario makes %d file system calls", k)
	if k < 40 {
		t.Fatalf("the scenario makes only %d file system calls", k)
	}
	errnos := []error{syscall.ENOSPC, syscall.EIO, syscall.EACCES}
	for _, lasting := range []bool{false, true} {
		for _, errno := range errnos {
			for n := 1; n <= k; n++ {
				if testing.Short() && n%7 != 0 {
					continue
				}
				name := fmt.Sprintf("%v/lasting=%v/call-%d", errno, lasting, n)
				t.Run(name, func(t *testing.T) {
					dir := t.TempDir()
					r, err := OpenRoot(dir, fixedClock())
					if err != nil {
						t.Fatal(err)
					}
					for _, a := range []string{"procurement", "vendor-b"} {
						if err := r.Inbox(a).Create(); err != nil {
							t.Fatal(err)
						}
					}
					faultAt(t, n, errno, lasting)
					var landed map[string]string
					func() {
						defer func() {
							if p := recover(); p != nil {
								t.Fatalf("panic: %v", p)
							}
						}()
						landed = faultScenario(r)
						r.Close()
					}()
					fault = func(string, string) error { return nil }
					r = recoverAll(t, dir)
					defer r.Close()
					checkAccounted(t, r, landed)
					torn, _ := filepath.Glob(filepath.Join(dir, LedgerFile+".torn.*"))
					if !lasting && len(torn) > 0 {
						t.Errorf("a write that failed once left a torn tail (%v): it must be cut back at once", torn)
					}
				})
			}
		}
	}
}

// checkAccounted checks that every message file is in exactly one place
// and finished, that none was marked done twice, and that the ledger
// verifies with at most one non-empty set-aside file per torn tail.
func checkAccounted(t *testing.T, r *Root, landed map[string]string) {
	t.Helper()
	d := r.Inbox("procurement")
	if got := files(t, d.Path("tmp")); len(got) != 0 {
		t.Errorf("tmp/ holds %v", got)
	}
	if got := files(t, d.Path("new")); len(got) != 0 {
		t.Errorf("new/ still holds %v after the recovery", got)
	}
	ids := map[string]int{}
	found := map[string]bool{}
	for _, sub := range []string{"cur", "rejected"} {
		for _, n := range files(t, d.Path(sub)) {
			if strings.HasSuffix(n, ".err") {
				continue
			}
			found[Uniq(n)] = true
			if sub == "cur" && d.stateOf(n, nil) != StateDone {
				t.Errorf("cur/%s is not finished", n)
			}
			data, err := d.Read(d.Path(sub, n))
			if err != nil {
				continue // the stranger, or the file that is not a message
			}
			if m, err := Parse(data); err == nil {
				ids[m.ID]++
			}
		}
	}
	done := map[string]int{}
	for _, e := range ledgerEntries(t, r) {
		if e.Event == EventDone {
			done[e.MsgID]++
		}
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("%s is in %d files", id, n)
		}
	}
	for id, n := range done {
		if n > 1 {
			t.Errorf("%s was marked done %d times", id, n)
		}
	}
	for n, id := range landed {
		if !found[n] {
			t.Errorf("%s (%s) landed in new/ and is now in no folder", n, id)
		}
		if id != "" && ids[id] == 0 {
			t.Errorf("%s (%s) is lost", id, n)
		}
	}
	if got, want := len(found), len(landed); got != want {
		t.Errorf("%d files in cur/ and rejected/, %d landed", got, want)
	}
	verifyRoot(t, r)
	torn, _ := filepath.Glob(filepath.Join(r.Dir, LedgerFile+".torn.*"))
	if len(torn) > 1 {
		t.Errorf("%d torn tails set aside: %v", len(torn), torn)
	}
	for _, f := range torn {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("%s is empty", f)
		}
	}
}

// TestLedgerOpenFails: when the ledger cannot be opened (parley send on a
// full disk), the delivery says so, Close does not panic on a nil
// *Ledger inside a Journal, and the next use opens it again.
func TestLedgerOpenFails(t *testing.T) {
	r := newRoot(t, "procurement", "vendor-b")
	ledger := filepath.Join(r.Dir, LedgerFile)
	fault = func(op, path string) error {
		if op == "open" && path == ledger {
			return syscall.ENOSPC
		}
		return nil
	}
	defer func() { fault = func(string, string) error { return nil } }()
	if _, err := r.Deliver("vendor-b", testMessage("vendor-b", "procurement", Notify)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Deliver = %v, want ENOSPC", err)
	}
	if l, err := r.Ledger(); l != nil || err == nil {
		t.Fatalf("Ledger() = %v, %v: want a nil Journal and the error", l, err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	fault = func(string, string) error { return nil }
	if _, err := r.Deliver("vendor-b", testMessage("vendor-b", "procurement", Notify)); err != nil {
		t.Fatalf("Deliver with the disk back = %v", err)
	}
}

// TestFinishAgain: a message finished whose record failed (a full disk)
// is finished again by the retry, not refused for being gone.
func TestFinishAgain(t *testing.T) {
	d := newInbox(t)
	name, err := d.Deliver([]byte("m\n"), t0)
	if err != nil {
		t.Fatal(err)
	}
	claimed, err := d.Claim(name)
	if err != nil {
		t.Fatal(err)
	}
	first, err := d.Finish(claimed, FlagDone)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := d.Finish(claimed, FlagDone); err != nil || again != first {
		t.Fatalf("Finish again = %q, %v; want %q", again, err, first)
	}
	if _, err := d.Finish(claimed, FlagFailed); err == nil {
		t.Fatalf("Finish with other flags after done succeeded")
	}
}

// TestFinishVanished: a claimed file another program took away (a mail
// client's rewrite that has not put it back) is not an error that stops
// the agent: the inbox finishes the claim; Maildir says ErrVanished.
func TestFinishVanished(t *testing.T) {
	d := newInbox(t)
	name, err := d.Deliver([]byte("m\n"), t0)
	if err != nil {
		t.Fatal(err)
	}
	claimed, err := d.Claim(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(d.Path("cur", claimed)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Finish(claimed, FlagDone); !errors.Is(err, ErrVanished) {
		t.Fatalf("Maildir.Finish of a vanished file: %v, want ErrVanished", err)
	}
	in := &maildirInbox{agent: "finance", d: d}
	if _, err := in.Finish(&Claimed{Agent: "finance", Name: claimed}, FlagDone, ""); err != nil {
		t.Fatalf("the inbox's Finish of a vanished file: %v, want nil", err)
	}
}
