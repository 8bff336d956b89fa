package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
)

// A mailClient reads and flags a root's inboxes, as a person's mail
// program does, again and again until ctx ends.
type mailClient struct {
	name string
	need string // the program, which .ci/run installs
	run  func(ctx context.Context, t *testing.T, root string, inboxes []string) error
}

// pythonMailbox marks every message seen with Python's mailbox module:
// new/ to cur/, flag S (and F on some), as a script reading the inboxes
// would.
func pythonMailbox(ctx context.Context, t *testing.T, root string, inboxes []string) error {
	script := `
import mailbox, sys
for path in sys.argv[1:]:
    box = mailbox.Maildir(path, factory=None, create=False)
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
`
	var dirs []string
	for _, n := range inboxes {
		dirs = append(dirs, filepath.Join(root, n))
	}
	for ctx.Err() == nil {
		if out, err := exec.Command("python3", append([]string{"-c", script}, dirs...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("python3: %v\n%s", err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// notmuchTags indexes the root with notmuch and tags every message read
// (-unread), with synchronize_flags on: notmuch renames each file to
// cur/...:2,S. A rename of a file its agent claimed since fails, and
// notmuch says so; that is the mail client's business, not parley's.
func notmuchTags(ctx context.Context, t *testing.T, root string, _ []string) error {
	dir := t.TempDir()
	config := filepath.Join(dir, "notmuch-config")
	text := fmt.Sprintf(`[database]
path=%s
mail_root=%s
[new]
tags=unread;inbox
ignore=state;drop;rejected;tmp;keys;.parley;/\.(jsonl|toml|lock|anchors|head|json|err)$/
[maildir]
synchronize_flags=true
`, filepath.Join(dir, "db"), root)
	if err := os.WriteFile(config, []byte(text), 0o644); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o755); err != nil {
		return err
	}
	notmuch := func(args ...string) ([]byte, error) {
		return exec.Command("notmuch", append([]string{"--config=" + config}, args...)...).CombinedOutput()
	}
	runs, failed := 0, 0
	for ctx.Err() == nil {
		runs++
		for _, args := range [][]string{{"new", "--quiet"}, {"tag", "-unread", "--", "tag:unread"}} {
			if out, err := notmuch(args...); err != nil {
				if failed++; failed <= 3 {
					t.Logf("notmuch %s (a file renamed under it): %v %s", args[0], err, out)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("notmuch indexed and tagged %d times, %d runs with a file renamed under it", runs, failed)
	return nil
}

// neomuttReads opens each inbox in neomutt under tmux (it needs a
// terminal), reads the first message and quits: neomutt moves every
// message of new/ to cur/...:2, on quit, and the one read to :2,S.
func neomuttReads(ctx context.Context, t *testing.T, root string, inboxes []string) error {
	dir := t.TempDir()
	rc := filepath.Join(dir, "neomuttrc")
	text := fmt.Sprintf("set folder=%s\nset spoolfile=%s\nset mbox_type=Maildir\nset move=no\nset mark_old=yes\nset quit=yes\nset wait_key=no\n",
		root, filepath.Join(root, inboxes[0]))
	if err := os.WriteFile(rc, []byte(text), 0o644); err != nil {
		return err
	}
	// A tmux server of its own, kept up by a session that lasts the test:
	// on the default server, the last session ending stops the server, and
	// a session started meanwhile fails ("server exited unexpectedly").
	sock := fmt.Sprintf("parley-test-%d", os.Getpid())
	tmux := func(args ...string) *exec.Cmd { return exec.Command("tmux", append([]string{"-L", sock}, args...)...) }
	if out, err := tmux("new-session", "-d", "-s", "keep", "sleep 3600").CombinedOutput(); err != nil {
		return fmt.Errorf("tmux: %v\n%s", err, out)
	}
	defer tmux("kill-server").Run()
	runs, stuck := 0, 0
	for ctx.Err() == nil {
		for _, n := range inboxes {
			if names, _ := os.ReadDir(filepath.Join(root, n, "new")); len(names) == 0 {
				continue // nothing new to read
			}
			runs++
			session := fmt.Sprintf("parley-%d-%d", os.Getpid(), runs)
			cmd := fmt.Sprintf("HOME=%s neomutt -n -F %s -f %s -e 'push <display-message><exit><quit>'", dir, rc, filepath.Join(root, n))
			if out, err := tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "30", cmd).CombinedOutput(); err != nil {
				return fmt.Errorf("tmux: %v\n%s", err, out)
			}
			deadline := time.Now().Add(3 * time.Second)
			for tmux("has-session", "-t", session).Run() == nil {
				if time.Now().After(deadline) {
					// An inbox emptied by its agent meanwhile: there is no
					// message to display, and neomutt drops the rest of
					// what was pushed. Quit as a person would.
					tmux("send-keys", "-t", session, "q").Run()
					time.Sleep(200 * time.Millisecond)
					tmux("kill-session", "-t", session).Run()
					stuck++
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("neomutt opened an inbox %d times (%d with nothing left to display)", runs, stuck)
	return nil
}

// TestMailClientsDuringDeal runs a deal with parley up while a real mail
// client reads and flags every inbox: each message is handled once, and
// then parley status counts nothing waiting but the human's messages, and
// parley inbox shows every agent's message done.
func TestMailClientsDuringDeal(t *testing.T) {
	for _, mc := range []mailClient{
		{"python-mailbox", "python3", pythonMailbox},
		{"notmuch", "notmuch", notmuchTags},
		{"neomutt", "neomutt", neomuttReads},
	} {
		t.Run(mc.name, func(t *testing.T) {
			for _, need := range []string{mc.need, "tmux"} {
				if _, err := exec.LookPath(need); err != nil && (need != "tmux" || mc.name == "neomutt") {
					// CI installs it (.ci/run), so a missing one is a failure.
					t.Fatalf("%s is needed to read the inboxes as a person's mail client does; .ci/run installs it (apt-get install %s)", need, need)
				}
			}
			mailClientDeal(t, mc)
		})
	}
}

func mailClientDeal(t *testing.T, mc mailClient) {
	bin := parleyBin(t)
	root, team := initTeam(t, bin)
	names := team.Names()
	logs := &lineLog{}
	// Every agent but finance runs; finance starts once its first message
	// waits in cur/, where the mail client moved it.
	const late = "finance"
	procs := map[string]*exec.Cmd{}
	defer stopAgents(procs)
	for _, n := range names {
		if n != late {
			procs[n] = startAgent(t, bin, root, n, logs)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- mc.run(ctx, t, root, names) }()
	lowerStock(t, root)
	fin := mailbox.Maildir{Dir: filepath.Join(root, late)}
	deadline := time.Now().Add(60 * time.Second)
	for {
		pending, _ := fin.Pending()
		moved, _ := fin.Waiting(nil)
		if len(pending) == 0 && len(moved) > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("%s stopped: %v", mc.name, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message for %s was moved into cur/ by %s in 60s:\n%s", late, mc.name, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Read and flagged in the client, it waits all the same.
	if st := statusOf(t, bin, root); st[late] < 1 {
		t.Errorf("status: %s has %d waiting while its message was read in %s, want 1 or more", late, st[late], mc.name)
	}
	for _, row := range inboxOf(t, bin, root, late) {
		if row.State != string(mailbox.StateNew) {
			t.Errorf("inbox %s: %s %s is %s before %s runs, want new", late, row.Verb, row.MsgID, row.State, late)
		}
	}
	procs[late] = startAgent(t, bin, root, late, logs)
	entries := awaitLedger(t, root, 90*time.Second, dealDone, logs)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	entries = awaitLedger(t, root, 30*time.Second, settled, logs)
	stopAgents(procs)
	fromCur := 0 // claims of files the client had moved and flagged
	for _, e := range entries {
		if e.Event == mailbox.EventClaimed && !strings.HasSuffix(e.File, ",parley=claimed:2,") {
			fromCur++
		}
	}
	if t.Logf("%d claims of messages %s had read and flagged", fromCur, mc.name); fromCur == 0 {
		t.Errorf("no claim of a message %s moved and flagged, want %s's at least", mc.name, late)
	}
	r, err := mailbox.OpenRoot(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkOnce(t, r, entries)

	// Handled once: one finishing line for each message delivered to an
	// agent, besides the copies a mail client wrote (found handled).
	delivered, finished := map[string]string{}, map[string]int{}
	for _, e := range entries {
		switch {
		case e.Event == mailbox.EventDelivered && e.To == team.Human:
		case e.Event == mailbox.EventDelivered:
			delivered[e.MsgID] = e.Verb + " to " + e.To
		case (e.Event == mailbox.EventDone || e.Event == mailbox.EventFailed || e.Event == mailbox.EventRejected) && e.Reason != "already handled":
			finished[e.MsgID]++
		}
	}
	for id, what := range delivered {
		if finished[id] != 1 {
			t.Errorf("%s %s handled %d times, want once", what, id, finished[id])
		}
	}

	// The human's messages wait for a person: those the client shows
	// unread (no flag S), and parley inbox shows the same.
	unread := 0
	for _, sub := range []string{"new", "cur"} {
		files, _ := os.ReadDir(filepath.Join(root, team.Human, sub))
		for _, f := range files {
			if !mailbox.Ignored(f.Name()) && !mailbox.Marked(f.Name()) && (sub == "new" || !mailbox.Seen(f.Name())) {
				unread++
			}
		}
	}
	for name, waiting := range statusOf(t, bin, root) {
		want := 0
		if name == team.Human {
			want = unread
		}
		if waiting != want {
			t.Errorf("status: %s has %d waiting, want %d", name, waiting, want)
		}
	}
	for _, row := range inboxOf(t, bin, root, team.Human) {
		seen := mailbox.Seen(filepath.Base(row.File))
		if row.Seen != seen {
			t.Errorf("inbox %s: %s %s seen=%v, but its file %s says %v", team.Human, row.Verb, row.MsgID, row.Seen, filepath.Base(row.File), seen)
		}
		if row.Verb == string(mailbox.Notify) && (row.State == "read") != seen {
			t.Errorf("inbox %s: %s %s is %s, its file %s", team.Human, row.Verb, row.MsgID, row.State, filepath.Base(row.File))
		}
	}
	for _, n := range names {
		if n == team.Human {
			continue
		}
		for _, row := range inboxOf(t, bin, root, n) {
			if row.State != string(mailbox.StateDone) && row.State != string(mailbox.StateAnswered) {
				t.Errorf("inbox %s: %s %s is %s, want done", n, row.Verb, row.MsgID, row.State)
			}
		}
	}
	if t.Failed() {
		t.Logf("the agents said:\n%s", logs.String())
	}
}

// statusOf is parley status --json's waiting count of each agent.
func statusOf(t *testing.T, bin, root string) map[string]int {
	t.Helper()
	var st status
	out, _ := exec.Command(bin, "--root", root, "status", "--json").Output()
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	waiting := map[string]int{}
	for _, a := range st.Agents {
		waiting[a.Name] = a.Waiting
	}
	return waiting
}

// inboxOf is parley inbox NAME --json.
func inboxOf(t *testing.T, bin, root, name string) []inboxRow {
	t.Helper()
	out, err := exec.Command(bin, "--root", root, "inbox", name, "--json").Output()
	if err != nil {
		t.Fatalf("inbox %s: %v", name, err)
	}
	var rows []inboxRow
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var row inboxRow
		if line != "" && json.Unmarshal([]byte(line), &row) == nil {
			rows = append(rows, row)
		}
	}
	return rows
}
