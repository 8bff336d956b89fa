package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/ledgergen"
	"github.com/parley-dev/parley/mailbox"
)

// TestWhyThroughTheIndex: for every question why can be asked of a ledger
// — each seq, each message id, each thread, and names it does not have —
// the answer found through the index, which reads the lines of a few
// messages and threads, is the answer found reading the whole ledger.
func TestWhyThroughTheIndex(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	if _, err := ledgergen.Write(&buf, ledgergen.Options{Lines: 400, Until: time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	recorded, err := os.ReadFile(filepath.Join("..", "..", "testdata", "deal", "ledger.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, mailbox.LedgerFile)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// The recorded deal again, appended through the ledger: its own ids,
	// an escalation and the human's answer, one thread.
	l, err := mailbox.OpenLedger(path, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	var last mailbox.Entry
	err = mailbox.ReadEntries(bytes.NewReader(recorded), func(_ int, x mailbox.Entry) error {
		x.Seq, x.Prev, x.Hash = 0, "", ""
		if x.Event == mailbox.EventDelivered {
			last = x
		}
		_, err := l.Append(x)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// A chain across threads: a note on a thread of its own answers the
	// deal's last message, and a reply answers the note.
	note := mailbox.Entry{Time: last.Time.Add(time.Minute), Agent: "human", Event: mailbox.EventDelivered, MsgID: "<note@parley>",
		InReplyTo: last.MsgID, Thread: "follow-up", From: "human", To: "finance", Verb: "NOTIFY", Subject: "NOTIFY: thanks"}
	decision := note
	decision.Event, decision.Decision, decision.Rule = "decision", "deny", "test"
	reply := mailbox.Entry{Time: note.Time.Add(time.Minute), Agent: "finance", Event: mailbox.EventDelivered, MsgID: "<reply@parley>",
		InReplyTo: note.MsgID, Thread: "follow-up-2", From: "finance", To: "human", Verb: "NOTIFY", Subject: "NOTIFY: welcome"}
	if _, err := l.Append(decision, note, reply); err != nil {
		t.Fatal(err)
	}
	l.Close()
	all, err := readLedgerFile(path)
	if err != nil {
		t.Fatal(err)
	}
	whole := wholeLedger(all)
	ix, err := mailbox.OpenIndex(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()

	questions := []string{"nope", "<nope@parley>", "0", strconv.Itoa(len(all) + 1), "restock-widget"}
	seen := map[string]bool{}
	for _, x := range all {
		for _, q := range []string{strconv.FormatUint(x.Seq, 10), x.MsgID, x.InReplyTo, x.Thread} {
			if q != "" && !seen[q] {
				seen[q] = true
				questions = append(questions, q)
			}
		}
	}
	// said is an answer, or why there is none, as text to compare.
	said := func(entries []mailbox.Entry, target mailbox.Entry, err error) string {
		if err != nil {
			return "error: " + err.Error() + " hint: " + hintOf(err)
		}
		j, err := json.Marshal(struct {
			Target mailbox.Entry
			Chain  []mailbox.Entry
		}{target, whyChain(entries, target)})
		if err != nil {
			t.Fatal(err)
		}
		return string(j)
	}
	answer := func(l lookup, q string) string { return said(whyEntries(l, q)) }
	// What the answer is over the whole ledger, as why answered it before
	// the index.
	full := func(q string) string {
		target, err := whyTarget(all, q, func() []string { return threadsOf(all) })
		return said(all, target, err)
	}
	for _, q := range questions {
		want := full(q)
		if got := answer(whole, q); got != want {
			t.Errorf("why %s over the whole ledger:\n got %s\nwant %s", q, got, want)
		}
		if got := answer(ix, q); got != want {
			t.Errorf("why %s through the index:\n got %s\nwant %s", q, got, want)
		}
	}
	if len(questions) < 300 {
		t.Fatalf("only %d questions asked", len(questions))
	}
}

func hintOf(err error) string {
	var h *hinted
	if errors.As(err, &h) {
		return h.hint
	}
	return ""
}

func readLedgerFile(path string) ([]mailbox.Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mailbox.Entry
	err = mailbox.ReadEntries(f, func(_ int, x mailbox.Entry) error { out = append(out, x); return nil })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
