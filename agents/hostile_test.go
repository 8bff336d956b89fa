package agents

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/strangers"
	"github.com/parley-dev/parley/mailbox"
)

// A hostile file: what it is made as, and what its .err must say.
type hostile struct {
	name string
	make func(t *testing.T, path string)
	says string
}

// hostiles are the files a stranger can leave in an inbox (issue 16):
// links in and out of the root, special files, a folder, oversized files.
// outside is a signed message outside the root.
func hostiles(outside string) []hostile {
	var out []hostile
	for _, s := range strangers.All(outside) {
		out = append(out, hostile{s.Name, s.Make, s.What})
	}
	out[0].says += ": parley reads only regular files"
	return append(out, []hostile{
		{"oversized", func(t *testing.T, path string) {
			big := "From: procurement\nTo: finance\nVerb: NOTIFY\n\n" + strings.Repeat("a", 2<<20) + "\n"
			if err := os.WriteFile(path, []byte(big), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "over the limit of 1 MiB on a message"},
		{"long-line", func(t *testing.T, path string) {
			long := "From: procurement\nTo: finance\nVerb: NOTIFY\n\n" + strings.Repeat("b", 100_000) + "\n"
			if err := os.WriteFile(path, []byte(long), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "is 100000 characters long, over the limit of 998"},
	}...)
}

// agentRun is an agent running in the test, its lines awaited.
type agentRun struct {
	t     *testing.T
	lines chan string
	done  chan error
	seen  []string
	ctx   context.Context
	stop  context.CancelFunc
}

func startRuntime(t *testing.T, r *mailbox.Root, team *Team, name string) *agentRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	a := &agentRun{t: t, lines: make(chan string, 1000), done: make(chan error, 1), ctx: ctx, stop: cancel}
	rt := &Runtime{Root: r, Team: team, Name: name, Every: 50 * time.Millisecond, Log: func(l string) { a.lines <- l }}
	go func() { a.done <- rt.Run(ctx) }()
	t.Cleanup(func() { a.close() })
	return a
}

// await waits until n of the lines the agent said, so far or from now
// on, contain what.
func (a *agentRun) await(what string, n int) {
	a.t.Helper()
	for _, l := range a.seen {
		if strings.Contains(l, what) {
			n--
		}
	}
	for n > 0 {
		select {
		case l := <-a.lines:
			a.seen = append(a.seen, l)
			if strings.Contains(l, what) {
				n--
			}
		case err := <-a.done:
			a.stop()
			a.stop = nil // stopped: nothing to wait for
			a.t.Fatalf("the agent stopped before %q: %v\n%s", what, err, strings.Join(a.seen, "\n"))
		case <-a.ctx.Done():
			a.t.Fatalf("no %q in time; the agent said:\n%s", what, strings.Join(a.seen, "\n"))
		}
	}
}

func (a *agentRun) close() {
	if a.stop == nil {
		return
	}
	a.stop()
	a.stop = nil
	if err := <-a.done; err != nil {
		a.t.Errorf("the agent: %v", err)
	}
}

// request is a good message for finance, on its own thread.
func request(thread string) *mailbox.Message {
	return &mailbox.Message{Version: "1", ID: "<" + thread + "@test>", Date: time.Now(), From: "procurement", To: "finance", Thread: thread,
		Verb: mailbox.Request, Item: "widget", Quantity: 5, Amount: mailbox.MustMoney("100.00 USD")}
}

// TestHostileFiles puts each kind of hostile file into finance's new/,
// into its cur/ (claimed before a stop, unfinished) and into its drop/,
// then a good request: the agent answers the request, the file is in
// rejected/ with a .err that says what it was, one ledger line records
// it, and every file put in is accounted for. Each runs in a root of its
// own: rejections count towards the policy's circuit breaker, which ten
// of them in five minutes trip (policy.toml [breaker]), pausing the team
// for a person to look, as it should.
func TestHostileFiles(t *testing.T) {
	for _, where := range []string{"new", "cur", "drop"} {
		for i, h := range hostiles("") {
			t.Run(where+"/"+h.name, func(t *testing.T) {
				t.Parallel()
				r, team := newTeamRoot(t)
				outside := filepath.Join(t.TempDir(), "signed.msg")
				signed := request("outside")
				priv, _ := r.PrivateKey("procurement")
				mailbox.Sign(signed, priv)
				if err := os.WriteFile(outside, signed.Marshal(), 0o644); err != nil {
					t.Fatal(err)
				}
				h = hostiles(outside)[i]
				inbox := r.Inbox("finance")
				name := "1000.M1P1Q0." + h.name
				if where == "cur" {
					name += ",parley=claimed:2," // claimed before a stop
				}
				h.make(t, inbox.Path(where, name))
				a := startRuntime(t, r, team, "finance")
				post(t, r, request("good"))
				if where == "drop" {
					a.await("rejected "+name+": ", 1) // the drop folder's intake says it
				} else {
					a.await("claim "+name, 1)
				}
				a.await("→ procurement APPROVED", 1)
				a.close()

				errs, _ := filepath.Glob(inbox.Path("rejected", "*.err"))
				if len(errs) != 1 {
					t.Fatalf("rejected/ holds %d .err files, want 1", len(errs))
				}
				said, _ := os.ReadFile(errs[0])
				if !strings.Contains(string(said), h.says) {
					t.Errorf(".err says %q, want %q", said, h.says)
				}
				if _, err := os.Lstat(strings.TrimSuffix(errs[0], ".err")); err != nil {
					t.Errorf("%s has no file beside it", filepath.Base(errs[0]))
				}
				// Files in = files accounted for: the stranger in rejected/
				// with its .err, the request done in cur/, nothing else.
				if got := names(t, inbox.Path("rejected")); len(got) != 2 {
					t.Errorf("rejected/ holds %v, want the file and its .err", got)
				}
				if got := names(t, inbox.Path("new")); len(got) != 0 {
					t.Errorf("new/ still holds %v", got)
				}
				if got := names(t, inbox.Path("cur")); len(got) != 1 || !strings.HasSuffix(got[0], ":2,S") {
					t.Errorf("cur/ holds %v, want the request, done", got)
				}
				if where == "drop" {
					if got := names(t, inbox.Path("drop")); len(got) != 1 || got[0] != "done" {
						t.Errorf("drop/ holds %v, want only done/", got)
					}
				}
				lines := 0
				for _, e := range ledger(t, r) {
					if e.Event == mailbox.EventRejected && e.Agent == "finance" {
						lines++
						if !strings.Contains(e.Reason, strings.SplitN(h.says, ":", 2)[0]) {
							t.Errorf("the ledger's reason %q does not say %q", e.Reason, h.says)
						}
					}
				}
				if lines != 1 {
					t.Errorf("%d rejected lines in the ledger, want 1", lines)
				}
				if data, err := os.ReadFile(outside); err != nil || !strings.Contains(string(data), "REQUEST") {
					t.Errorf("the file the link pointed to was touched: %v", err)
				}
			})
		}
	}
}

// TestNotForMe: signed messages that are not for the agent that finds
// them — addressed to another agent or to nobody, dated in the year 9999,
// a money verb of 0.00 — are set aside with the reason, never marked
// done, and the agent answers the good one after them.
func TestNotForMe(t *testing.T) {
	r, team := newTeamRoot(t)
	order := func(id string, set func(m *mailbox.Message)) *mailbox.Message {
		m := &mailbox.Message{Version: "1", ID: "<" + id + "@test>", Date: time.Now(), From: "procurement", To: "vendor-b", Thread: "t-" + id,
			Verb: mailbox.Order, Item: "widget", Quantity: 5, Amount: mailbox.MustMoney("24.00 USD")}
		set(m)
		return m
	}
	bad := []struct {
		m    *mailbox.Message
		says string
	}{
		{order("to-nobody", func(m *mailbox.Message) { m.To = "nobody" }), "it is addressed to nobody, not to vendor-b"},
		{order("to-finance", func(m *mailbox.Message) { m.To = "finance" }), "it is addressed to finance, not to vendor-b"},
		{order("year-9999", func(m *mailbox.Message) { m.Date = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) }), "it is dated 9999-01-01T00:00:00Z, more than 5m0s after"},
		{order("zero", func(m *mailbox.Message) { m.Amount = mailbox.MustMoney("0.00 USD") }), "ORDER moves money, and this one carries 0.00 USD"},
	}
	vb := r.Inbox("vendor-b")
	for _, b := range bad {
		priv, _ := r.PrivateKey(b.m.From)
		mailbox.Sign(b.m, priv)
		if _, err := vb.Deliver(b.m.Marshal(), time.Now()); err != nil { // into vendor-b's new/, whatever To says
			t.Fatal(err)
		}
	}
	a := startRuntime(t, r, team, "vendor-b")
	a.await("refused ORDER", len(bad))
	post(t, r, order("good", func(*mailbox.Message) {}))
	a.await("→ procurement CONFIRMED", 1)
	a.close()
	errs, _ := filepath.Glob(vb.Path("rejected", "*.err"))
	said := ""
	for _, e := range errs {
		b, _ := os.ReadFile(e)
		said += string(b)
	}
	for _, b := range bad {
		if !strings.Contains(said, b.says) {
			t.Errorf("%s: no .err says %q:\n%s", b.m.ID, b.says, said)
		}
	}
	done := map[string]bool{}
	for _, e := range ledger(t, r) {
		if e.Event == mailbox.EventDone {
			done[e.MsgID] = true
		}
	}
	for _, b := range bad {
		if done[b.m.ID] {
			t.Errorf("%s was marked done", b.m.ID)
		}
	}
	if !done["<good@test>"] {
		t.Errorf("the good order was not done")
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func ledger(t *testing.T, r *mailbox.Root) []mailbox.Entry {
	t.Helper()
	f, err := os.Open(filepath.Join(r.Dir, mailbox.LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var es []mailbox.Entry
	if err := mailbox.ReadEntries(f, func(_ int, e mailbox.Entry) error { es = append(es, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return es
}
