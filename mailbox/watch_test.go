package mailbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// collect gathers names from w until want of them are seen.
func collect(t *testing.T, w *Watcher, want int) map[string]bool {
	t.Helper()
	ctx := ctxTimeout(t, 20*time.Second)
	seen := map[string]bool{}
	for len(seen) < want {
		names, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d of %d names: %v", len(seen), want, err)
		}
		for _, n := range names {
			seen[n] = true
		}
	}
	return seen
}

func TestWatchSeesScanAndEvents(t *testing.T) {
	for _, poll := range []bool{false, true} {
		t.Run(fmt.Sprintf("poll=%v", poll), func(t *testing.T) {
			d := newInbox(t)
			var want []string
			for i := 0; i < 5; i++ { // arrive while nobody watches
				n, err := d.Deliver([]byte("x"), t0)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, n)
			}
			w, err := Watch(d.Path("new"), WatchOptions{Poll: poll, PollEvery: 5 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if w.Polling() != poll {
				t.Errorf("Polling() = %v, want %v", w.Polling(), poll)
			}
			for _, junk := range []string{".x.swp", "x~", "4913", "#x#"} {
				if err := os.WriteFile(d.Path("new", junk), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < 100; i++ {
				n, err := d.Deliver([]byte("x"), t0)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, n)
			}
			seen := collect(t, w, len(want))
			for _, n := range want {
				if !seen[n] {
					t.Errorf("%s was not reported", n)
				}
			}
			for n := range seen {
				if Ignored(n) {
					t.Errorf("junk file %s was reported", n)
				}
			}
		})
	}
}

func TestWatchAgain(t *testing.T) {
	d := newInbox(t)
	w, err := Watch(d.Path("new"), WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Again("later", time.Millisecond)
	if got := collect(t, w, 1); !got["later"] {
		t.Errorf("Again: got %v, want later", got)
	}
}

// consume runs an agent's claim loop over its inbox, the way agents do,
// until ctx ends. Each claimed message goes to got; each time it finds a
// file still being written it says so on busy.
func consume(ctx context.Context, t *testing.T, r *Root, agent string, got chan<- *Claimed, busy chan<- string) {
	w, err := Watch(r.Inbox(agent).Path("new"), WatchOptions{})
	if err != nil {
		t.Error(err)
		return
	}
	defer w.Close()
	for {
		names, err := w.Next(ctx)
		if err != nil {
			return
		}
		for _, n := range names {
			c, err := r.Claim(agent, n)
			switch {
			case errors.Is(err, ErrClaimed):
			case errors.Is(err, ErrBusy):
				select {
				case busy <- n:
				default:
				}
				w.Again(n, time.Millisecond)
			case err != nil:
				t.Errorf("claim %s: %v", n, err)
			default:
				if err := r.Finish(c, FlagDone, ""); err != nil {
					t.Error(err)
				}
				got <- c
			}
		}
	}
}

// TestWritersIntoNew puts messages into new/ the ways other programs do —
// parley's own delivery, cp, a program that writes in place slowly (a mail
// delivery agent that skips tmp/), sed -i, and a standard Maildir delivery
// agent (Python's mailbox) — and checks each is claimed whole, exactly once.
func TestWritersIntoNew(t *testing.T) {
	r := newRoot(t, "procurement", "vendor-b")
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan *Claimed, 10)
	busy := make(chan string, 10)
	done := make(chan struct{})
	go func() { defer close(done); consume(ctx, t, r, "procurement", got, busy) }()
	defer func() { cancel(); <-done }()

	msg := func(id string) []byte {
		m := testMessage("vendor-b", "procurement", Quote)
		m.ID = "<" + id + "@test>"
		m.Body = strings.Repeat("A long body line for people to read.\n", 200)
		return m.Marshal()
	}
	await := func(id string) {
		t.Helper()
		select {
		case c := <-got:
			if c.Message.ID != "<"+id+"@test>" {
				t.Fatalf("claimed %s, want <%s@test>", c.Message.ID, id)
			}
			if want := strings.Repeat("A long body line for people to read.\n", 200); c.Message.Body != want {
				t.Fatalf("%s claimed with a body of %d bytes, want %d", id, len(c.Message.Body), len(want))
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s was never claimed", id)
		}
	}

	// parley's own delivery: tmp/, fsync, rename.
	if _, err := r.Inbox("procurement").Deliver(msg("deliver"), t0); err != nil {
		t.Fatal(err)
	}
	await("deliver")

	// cp straight into new/.
	src := filepath.Join(t.TempDir(), "quote.msg")
	if err := os.WriteFile(src, msg("cp"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", src, r.Inbox("procurement").Path("new", "copied")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	await("cp")

	// A slow writer in place: the consumer must see it busy, and wait.
	data := msg("slow")
	f, err := os.Create(r.Inbox("procurement").Path("new", "slow"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[:100]); err != nil {
		t.Fatal(err)
	}
	for n := ""; n != "slow"; { // cp's file may have been found busy too
		select {
		case n = <-busy:
		case <-time.After(20 * time.Second):
			t.Fatal("the consumer never found the half-written file")
		}
	}
	if _, err := f.Write(data[100:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	await("slow")

	// sed -i edits a file into place: its temporary is passed over and the
	// result arrives by rename.
	staging := filepath.Join(t.TempDir(), "staged")
	if err := os.WriteFile(staging, msg("sed-before"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sed", "-i", "s/sed-before/sed/", staging).CombinedOutput(); err != nil {
		t.Fatalf("sed: %v %s", err, out)
	}
	if err := os.Rename(staging, r.Inbox("procurement").Path("new", "edited")); err != nil {
		t.Fatal(err)
	}
	await("sed")

	// A standard delivery agent: Python's mailbox module writes into tmp/
	// and renames into new/, as the Maildir spec says.
	mda := filepath.Join(t.TempDir(), "mda.msg")
	if err := os.WriteFile(mda, msg("mda"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := "import mailbox, sys; mailbox.Maildir(sys.argv[1], create=False).add(open(sys.argv[2], 'rb').read())"
	if out, err := exec.Command("python3", "-c", script, r.Inbox("procurement").Dir, mda).CombinedOutput(); err != nil {
		t.Fatalf("python3 mailbox: %v %s", err, out)
	}
	await("mda")

	if rej := files(t, r.Inbox("procurement").Path("rejected")); len(rej) != 0 {
		t.Errorf("rejected/ holds %v: something was read half-written", rej)
	}
	select {
	case c := <-got:
		t.Errorf("%s was claimed twice", c.Message.ID)
	default:
	}
}

// TestDropFolder saves files into a drop folder the ways editors and tools
// do, and checks each is taken in whole, exactly once, and that a bad file
// is moved aside with its reason and its sender told.
func TestDropFolder(t *testing.T) {
	r := newRoot(t, "finance", "human", "procurement")
	taken := make(chan string, 20)
	in := &Intake{Root: r, Agent: "finance", Human: "human", Settle: 50 * time.Millisecond,
		Taken: func(file string, m *Message, err error) {
			if err != nil {
				taken <- filepath.Base(file) + ": " + err.Error()
				return
			}
			taken <- filepath.Base(file) + " " + m.From + " " + string(m.Verb) + " " + m.Amount.String()
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	drop := r.Inbox("finance").Path("drop")
	await := func(want string) {
		t.Helper()
		select {
		case got := <-taken:
			if got != want {
				t.Fatalf("taken %q, want %q", got, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("never taken: %q", want)
		}
	}
	approval := "Verb: NOTIFY\nAmount: 7200.00 USD\nSubject: go ahead\n\nAs discussed.\n"

	// vim: a swap file, the 4913 probe, a backup, then the file written in
	// place (created, written in two goes, closed).
	for _, junk := range []string{".approve.swp", "4913", "approve~"} {
		if err := os.WriteFile(filepath.Join(drop, junk), []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(drop, "4913"))
	f, err := os.Create(filepath.Join(drop, "approve"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(approval[:10])
	f.Sync()
	f.WriteString(approval[10:])
	f.Close()
	await("approve human NOTIFY 7200.00 USD")

	// An editor that saves by rename.
	tmp := filepath.Join(drop, "deny.txt.tmp")
	if err := os.WriteFile(tmp, []byte("Verb: DENIED\nAmount: 10 USD\n\nno\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(drop, "deny.txt")); err != nil {
		t.Fatal(err)
	}
	await("deny.txt human DENIED 10.00 USD")

	// cp from elsewhere.
	src := filepath.Join(t.TempDir(), "paid.msg")
	os.WriteFile(src, []byte("Verb: NOTIFY\nAmount: 1.50 USD\n\nfyi\n"), 0o644)
	if out, err := exec.Command("cp", src, drop+"/").CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	await("paid.msg human NOTIFY 1.50 USD")

	// Money never moves on an unsigned word: an APPROVED saved by hand is
	// refused, and the reason says how to send it signed.
	if err := os.WriteFile(filepath.Join(drop, "yes"), []byte("Verb: APPROVED\nAmount: 7200.00 USD\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	await("yes: Verb: APPROVED moves money, and a file saved by hand is not signed")

	// An unsigned file that says it is from an agent: refused, since anyone
	// who can write a file could write it.
	if err := os.WriteFile(filepath.Join(drop, "forged"), []byte("From: procurement\nVerb: NOTIFY\n\nhi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	await("forged: From: is procurement, and a file saved by hand, unsigned, can only come from human")

	// A bad file: moved to rejected/ with the reason; its sender is told.
	if err := os.WriteFile(filepath.Join(drop, "bad"), []byte("From: procurement\nVerb: APPROVED\nAmount: lots\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	await(`bad: line 3: Amount: "lots" is not an amount: "lots" is not a plain decimal number`)

	inbox := r.Inbox("finance")
	names, _ := inbox.Pending()
	if len(names) != 3 {
		t.Errorf("finance's new/ holds %d messages, want 3", len(names))
	}
	for _, n := range names {
		data, _ := os.ReadFile(inbox.Path("new", n))
		m, err := Parse(data)
		if err == nil {
			err = m.Validate()
		}
		if err != nil {
			t.Errorf("delivered %s is not a valid message: %v\n%s", n, err, data)
		}
	}
	if got := files(t, inbox.Path("drop", "done")); len(got) != 6 {
		t.Errorf("drop/done holds %v, want the 3 originals and a .sent note for each", got)
	}
	if _, err := os.Stat(inbox.Path("rejected", "bad.err")); err != nil {
		t.Errorf("no reason beside the rejected file: %v", err)
	}
	if got, _ := r.Inbox("procurement").Pending(); len(got) != 2 {
		t.Errorf("procurement was sent %d notices, want an ERROR for each file that named it", len(got))
	}
	if _, err := os.Stat(inbox.Path("rejected", "yes.err")); err != nil {
		t.Errorf("the unsigned APPROVED was not moved aside: %v", err)
	}
	if left := files(t, drop); strings.Join(left, " ") != ".approve.swp approve~ done" {
		t.Errorf("drop/ holds %v, want only the editor's files and done/", left)
	}
}

// TestDropSavedTwiceInVim saves a file in a drop folder with vim, then,
// once it was taken in, changes it and saves it again (:w twice): one
// message is sent, the note beside the original in drop/done/ says which
// Message-ID it went as, and the second save is set aside with a reason
// that names the version that went.
func TestDropSavedTwiceInVim(t *testing.T) {
	vim, err := exec.LookPath("vim")
	if err != nil {
		t.Fatal("vim is needed to save a file as a person does; .ci/run installs it (apt-get install vim)")
	}
	r := newRoot(t, "finance", "human")
	taken := make(chan string, 4)
	in := &Intake{Root: r, Agent: "finance", Human: "human", Settle: 50 * time.Millisecond,
		Taken: func(file string, m *Message, err error) {
			if err != nil {
				taken <- "refused: " + err.Error()
				return
			}
			taken <- "sent " + m.ID
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	d := r.Inbox("finance")
	path := d.Path("drop", "note.msg")
	// Written, saved, left open while the intake takes it in, changed and
	// saved again.
	cmd := exec.Command(vim, "-u", "NONE", "-i", "NONE", "-N", "-n", "-es",
		"-c", `call setline(1, ["Verb: NOTIFY", "Subject: first", "", "hello"])`,
		"-c", "w "+path,
		"-c", "sleep 1",
		"-c", `call setline(2, "Subject: second")`,
		"-c", "w",
		"-c", "q!")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vim: %v\n%s", err, out)
	}
	var said []string
	for len(said) < 2 {
		select {
		case s := <-taken:
			said = append(said, s)
		case <-time.After(10 * time.Second):
			t.Fatalf("taken in: %q, want two", said)
		}
	}
	sent := strings.TrimPrefix(said[0], "sent ")
	if !strings.HasPrefix(said[0], "sent ") || !strings.HasPrefix(said[1], "refused: note.msg was sent already") ||
		!strings.Contains(said[1], sent) {
		t.Errorf("taken in: %q, want the first save sent and the second refused, naming %s", said, sent)
	}
	if names, _ := d.Pending(); len(names) != 1 {
		t.Errorf("finance's new/ holds %v, want one message", names)
	}
	note, err := os.ReadFile(d.Path("drop", "done", "note.msg"+SentSuffix))
	if err != nil || !strings.Contains(string(note), "sent as "+sent) {
		t.Errorf("drop/done/note.msg.sent says %q (%v), want the Message-ID it went as", note, err)
	}
	if first := mustRead(t, d.Path("drop", "done", "note.msg")); !strings.Contains(string(first), "Subject: first") {
		t.Errorf("drop/done/note.msg is %q, want the version that went", first)
	}
	if second := mustRead(t, d.Path("rejected", "note.msg")); !strings.Contains(string(second), "Subject: second") {
		t.Errorf("rejected/note.msg is %q, want the second save", second)
	}
}

// TestDropSameFileTwice: a file taken in again after a crash between its
// delivery and its move keeps its Message-ID, so the receiver can tell.
func TestDropSameFileTwice(t *testing.T) {
	r := newRoot(t, "finance", "human")
	in := &Intake{Root: r, Agent: "finance", Human: "human"}
	path := r.Inbox("finance").Path("drop", "approve")
	if err := os.WriteFile(path, []byte("Verb: NOTIFY\nAmount: 5 USD\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	m1, err := in.check(path, mustRead(t, path))
	if err != nil {
		t.Fatal(err)
	}
	os.Chtimes(path, st.ModTime(), st.ModTime())
	m2, err := in.check(path, mustRead(t, path))
	if err != nil {
		t.Fatal(err)
	}
	if m1.ID != m2.ID {
		t.Errorf("the same file taken twice got ids %s and %s", m1.ID, m2.ID)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
