package mailbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMailClientFlagsAreNotClaims moves messages as mail clients do — new/
// to cur/ with ":2," (neomutt on quit) and ":2,S" (notmuch's
// synchronize_flags) — beside files an earlier parley claimed and
// finished without its mark (known from the ledger): the moved ones still
// wait, are listed as new and claimed by the agent; the earlier ones keep
// the state the ledger gives them.
func TestMailClientFlagsAreNotClaims(t *testing.T) {
	r := newRoot(t, "procurement", "vendor-b")
	d := r.Inbox("vendor-b")
	var names []string
	for i := 0; i < 4; i++ {
		where, err := r.Deliver("procurement", testMessage("procurement", "vendor-b", Request))
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, filepath.Base(where))
	}
	move := func(name, to string) {
		t.Helper()
		if err := os.Rename(d.Path("new", name), d.Path("cur", to)); err != nil {
			t.Fatal(err)
		}
	}
	move(names[0], names[0]+":2,")  // read in neomutt, unflagged
	move(names[1], names[1]+":2,S") // tagged -unread in notmuch
	// As parley claimed and finished before it marked its claims.
	move(names[2], names[2]+":2,S")
	move(names[3], names[3]+":2,")
	l, err := r.Ledger()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(
		Entry{Agent: "vendor-b", Event: EventClaimed, File: "vendor-b/cur/" + names[2] + ":2,"},
		Entry{Agent: "vendor-b", Event: EventDone, File: "vendor-b/cur/" + names[2] + ":2,S"},
		Entry{Agent: "vendor-b", Event: EventClaimed, File: "vendor-b/cur/" + names[3] + ":2,"},
	); err != nil {
		t.Fatal(err)
	}
	rec, err := ReadRecord(filepath.Join(r.Dir, LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	items, err := d.List(rec)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, string(it.State))
	}
	if got, want := strings.Join(got, " "), "new new done claimed"; got != want {
		t.Errorf("List states = %q, want %q", got, want)
	}
	if w, _ := d.Waiting(rec); len(w) != 2 {
		t.Errorf("Waiting = %v, want the two a mail client moved", w)
	}

	cl, err := r.Claims("vendor-b")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	again, _, err := cl.Unfinished()
	if err != nil || len(again) != 1 || Uniq(again[0].Name) != names[3] {
		t.Fatalf("Unfinished = %v, %v; want %s, claimed before a stop", again, err, names[3])
	}
	if err := r.Finish(again[0], FlagDone, ""); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	claimed := map[string]bool{}
	for len(claimed) < 2 {
		c, err := cl.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %v: %v", claimed, err)
		}
		claimed[Uniq(c.Name)] = true
		if err := r.Finish(c, FlagDone, ""); err != nil {
			t.Fatal(err)
		}
	}
	if !claimed[names[0]] || !claimed[names[1]] {
		t.Errorf("claimed %v, want %s and %s", claimed, names[0], names[1])
	}
	if got, want := files(t, d.Path("cur")), []string{
		names[0] + ",parley=done:2,S",
		names[1] + ",parley=done:2,S",
		names[2] + ":2,S",
		names[3] + ",parley=done:2,S",
	}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("cur/ = %v, want %v", got, want)
	}
	if _, err := r.Claim("vendor-b", names[2]); !errors.Is(err, ErrClaimed) {
		t.Errorf("Claim of a message handled before the mark: %v, want ErrClaimed", err)
	}
}

// TestPythonMailboxWhileClaiming runs Python's mailbox module, a standard
// Maildir reader, over an inbox while its agent claims from it: it moves
// every unseen message it finds to cur/ and marks it seen (and some
// flagged). No message is missed, each is acted on once, and in the end
// every file is done, whatever flags Python left. Python rewrites a
// message by writing a copy and removing the original, so racing the
// agent it can leave a second file of a message: its agent finds the
// Message-ID handled, as its runtime does, and marks the copy done.
func TestPythonMailboxWhileClaiming(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed to read the inbox with a standard Maildir reader; .ci/run installs it")
	}
	r := newRoot(t, "procurement", "vendor-b")
	d := r.Inbox("vendor-b")
	const n = 60
	script := `
import mailbox, sys, time
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    for key in list(box.keys()):
        try:
            msg = box.get_message(key)
            if "S" in msg.get_flags():
                continue
            msg.set_subdir("cur")
            msg.add_flag("S")
            if hash(key) % 3 == 0:
                msg.add_flag("F")
            box[key] = msg
        except (KeyError, FileNotFoundError):
            pass  # claimed by its agent meanwhile
    time.sleep(0.01)
`
	py := exec.Command(python, "-c", script, d.Dir, "4")
	var out strings.Builder
	py.Stdout, py.Stderr = &out, &out
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	cl, err := r.Claims("vendor-b")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, _, err := cl.Unfinished(); err != nil { // as an agent starts
		t.Fatal(err)
	}
	sender, err := OpenRoot(r.Dir, nil) // a clock of its own
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			if _, err := sender.Deliver("procurement", testMessage("procurement", "vendor-b", Request)); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	seen := map[string]int{}
	copies := 0
	claim := func(ctx context.Context) error {
		c, err := cl.Next(ctx)
		if err != nil {
			return err
		}
		if seen[c.Message.ID]++; seen[c.Message.ID] > 1 {
			copies++
			return r.Finish(c, FlagDone, "already handled")
		}
		return r.Finish(c, FlagDone, "")
	}
	for len(seen) < n {
		if err := claim(ctx); err != nil {
			t.Fatalf("after %d messages: %v", len(seen), err)
		}
	}
	wg.Wait()
	if err := py.Wait(); err != nil {
		t.Fatalf("python: %v\n%s", err, out.String())
	}
	// Copies Python made last are claimed now.
	quiet, stop := context.WithTimeout(context.Background(), time.Second)
	defer stop()
	for claim(quiet) == nil {
	}
	t.Logf("%d messages, %d copies of them left by Python's rewrites", n, copies)
	rec, _ := ReadRecord(filepath.Join(r.Dir, LedgerFile))
	items, err := d.List(rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.State != StateDone {
			t.Errorf("%s is %s, want done", it.Name, it.State)
		}
	}
	if len(items) != n+copies {
		t.Errorf("%d files in the inbox, want %d messages and %d copies", len(items), n, copies)
	}
}
