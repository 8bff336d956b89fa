package mailbox

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func newRoot(t testing.TB, agents ...string) *Root {
	t.Helper()
	r, err := OpenRoot(t.TempDir(), fixedClock())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		if err := r.Inbox(a).Create(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func testMessage(from, to string, verb Verb) *Message {
	m := &Message{Version: Version, ID: NewMessageID(t0, from), Date: t0, From: from, To: to,
		Thread: "restock-widget-0001", Verb: verb, Item: "widget", Quantity: 500, Subject: string(verb) + ": 500 widget"}
	if verb == Quote || verb == Counter {
		m.UnitPrice = MustMoney("4.80 USD")
	}
	return m
}

func ledgerEntries(t testing.TB, r *Root) []Entry {
	t.Helper()
	f, err := os.Open(filepath.Join(r.Dir, LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var es []Entry
	if err := ReadEntries(f, func(_ int, e Entry) error { es = append(es, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return es
}

func verifyRoot(t testing.TB, r *Root) {
	t.Helper()
	f, err := os.Open(filepath.Join(r.Dir, LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Verify(f); err != nil {
		t.Errorf("ledger verify: %v", err)
	}
}

func TestRootDeliverRecords(t *testing.T) {
	r := newRoot(t, "procurement", "vendor-b")
	m := testMessage("procurement", "vendor-b", Request)
	where, err := r.Deliver("procurement", m)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(where)
	c, err := r.Claim("vendor-b", name)
	if err != nil {
		t.Fatal(err)
	}
	if c.Message.ID != m.ID {
		t.Errorf("claimed %s, want %s", c.Message.ID, m.ID)
	}
	if err := r.Finish(c, FlagDone, ""); err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, e := range ledgerEntries(t, r) {
		if e.MsgID != m.ID {
			t.Errorf("entry %d is about %s, want %s", e.Seq, e.MsgID, m.ID)
		}
		events = append(events, e.Agent+":"+e.Event+":"+e.File)
	}
	want := []string{
		"procurement:delivered:vendor-b/new/" + name,
		"vendor-b:claimed:vendor-b/cur/" + name + ",parley=claimed:2,",
		"vendor-b:done:vendor-b/cur/" + name + ",parley=done:2,S",
	}
	if strings.Join(events, "\n") != strings.Join(want, "\n") {
		t.Errorf("ledger:\n%s\nwant:\n%s", strings.Join(events, "\n"), strings.Join(want, "\n"))
	}
	verifyRoot(t, r)
}

func TestDeliverUnknownRecipient(t *testing.T) {
	r := newRoot(t, "procurement")
	_, err := r.Deliver("procurement", testMessage("procurement", "vendor-z", Request))
	var unknown *UnknownRecipientError
	if !errors.As(err, &unknown) || unknown.Name != "vendor-z" {
		t.Fatalf("Deliver err = %v, want an UnknownRecipientError for vendor-z", err)
	}
	if _, err := os.Stat(filepath.Join(r.Dir, "vendor-z")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Deliver created the unknown recipient's folder")
	}
}

// TestSendBounces: an agent's message to an agent that does not exist comes
// back as an ERROR carrying the original, recorded as bounced.
func TestSendBounces(t *testing.T) {
	r := newRoot(t, "procurement")
	m := testMessage("procurement", "vendor-z", Request)
	if err := r.Send("procurement", m); err != nil {
		t.Fatal(err)
	}
	names, _ := r.Inbox("procurement").Pending()
	if len(names) != 1 {
		t.Fatalf("procurement's inbox holds %v, want the bounce", names)
	}
	c, err := r.Claim("procurement", names[0])
	if err != nil {
		t.Fatal(err)
	}
	b := c.Message
	if b.Verb != Error || b.From != System || b.InReplyTo != m.ID || b.Thread != m.Thread {
		t.Errorf("bounce = %s from %s in-reply-to %s thread %s", b.Verb, b.From, b.InReplyTo, b.Thread)
	}
	if !strings.Contains(b.Body, strings.TrimSpace(string(m.Marshal()))) {
		t.Errorf("bounce body does not carry the original:\n%s", b.Body)
	}
	es := ledgerEntries(t, r)
	if es[0].Event != EventBounced || es[0].MsgID != m.ID || !strings.Contains(es[0].Reason, "vendor-z") {
		t.Errorf("first entry = %+v, want the bounce of %s", es[0], m.ID)
	}
}

// TestClaimRejectsMalformed: a file in new/ that is not a valid message is
// moved to rejected/ with a .err, recorded, and its sender told.
func TestClaimRejectsMalformed(t *testing.T) {
	r := newRoot(t, "procurement", "vendor-b")
	bad := "Parley: 1\nFrom: vendor-b\nTo: procurement\nMessage-ID: <x@y>\nThread: t\nDate: Thu, 26 Nov 2026 10:00:00 +0000\nVerb: QUOTE\nItem: widget\nQuantity: 5\nUnit-Price: 4,80 USD\n\n"
	name, err := r.Inbox("procurement").Deliver([]byte(bad), t0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Claim("procurement", name)
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("Claim err = %v, want ErrRejected", err)
	}
	reason, err := os.ReadFile(r.Inbox("procurement").Path("rejected", name+".err"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(reason), "line 10: Unit-Price") || !strings.Contains(string(reason), "how to fix it") {
		t.Errorf(".err = %q, want the line, the header and the fix", reason)
	}
	if _, err := os.Stat(r.Inbox("procurement").Path("rejected", name)); err != nil {
		t.Errorf("the rejected file is not kept: %v", err)
	}
	names, _ := r.Inbox("vendor-b").Pending()
	if len(names) != 1 {
		t.Fatalf("vendor-b's inbox holds %v, want an ERROR", names)
	}
	data, _ := os.ReadFile(r.Inbox("vendor-b").Path("new", names[0]))
	if !strings.Contains(string(data), "Verb: ERROR") || !strings.Contains(string(data), "In-Reply-To: <x@y>") {
		t.Errorf("notice to the sender:\n%s", data)
	}
	if es := ledgerEntries(t, r); es[0].Event != EventRejected || es[0].Agent != "procurement" {
		t.Errorf("first entry = %+v, want a rejection", es[0])
	}
}

func TestFillFindsThread(t *testing.T) {
	r := newRoot(t, "procurement", "human")
	m := testMessage("procurement", "human", Notify)
	if _, err := r.Deliver("procurement", m); err != nil {
		t.Fatal(err)
	}
	reply := &Message{From: "human", To: "procurement", Verb: Approved, Amount: MustMoney("2400 USD"), InReplyTo: m.ID}
	if err := r.Fill(reply, nil); err != nil {
		t.Fatal(err)
	}
	if reply.Thread != m.Thread || reply.ID == "" || reply.Version != Version || reply.Date.IsZero() {
		t.Errorf("Fill gave thread %q id %q version %q date %v", reply.Thread, reply.ID, reply.Version, reply.Date)
	}
	if err := reply.Validate(); err != nil {
		t.Errorf("filled message does not validate: %v", err)
	}
}

// TestStandardMaildirReader reads an inbox written by parley with Python's
// mailbox module, a standard Maildir reader.
func TestStandardMaildirReader(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed to read the inbox with a standard Maildir reader; .ci/run installs it")
	}
	r := newRoot(t, "procurement", "vendor-b")
	var ids []string
	for i := 0; i < 3; i++ {
		m := testMessage("procurement", "vendor-b", Request)
		name, err := r.Deliver("procurement", m)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
		if i == 0 {
			c, err := r.Claim("vendor-b", name)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Finish(c, FlagDone+FlagAnswered, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	script := `
import mailbox, sys
box = mailbox.Maildir(sys.argv[1], create=False)
for key, msg in sorted(box.iteritems(), key=lambda kv: kv[1]["Message-ID"]):
    print(msg["Message-ID"], msg["Verb"], msg.get_subdir(), msg.get_flags() or "-")
`
	out, err := exec.Command(python, "-c", script, r.Inbox("vendor-b").Dir).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		t.Fatalf("python read %d messages, want 3:\n%s", len(lines), out)
	}
	got := strings.Join(lines, "\n")
	for i, id := range ids {
		want := id + " REQUEST new -"
		if i == 0 {
			want = id + " REQUEST cur RS"
		}
		if !strings.Contains(got, want) {
			t.Errorf("python output lacks %q:\n%s", want, got)
		}
	}
}
