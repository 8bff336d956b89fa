package agents

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
)

// runUntil runs the agent until a log line contains stop, and returns the
// lines.
func runUntil(t *testing.T, r *mailbox.Root, team *Team, name, stop string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var lines []string
	lineCh := make(chan string, 100)
	rt := &Runtime{Root: r, Team: team, Name: name, Log: func(l string) { lineCh <- l }}
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	for {
		select {
		case l := <-lineCh:
			lines = append(lines, l)
			if strings.Contains(l, stop) {
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				return lines
			}
		case err := <-done:
			t.Fatalf("the agent stopped before %q: %v (%q)", stop, err, lines)
		}
	}
}

func newTeamRoot(t *testing.T) (*mailbox.Root, *Team) {
	t.Helper()
	team := defaultTeam(t)
	return rootFor(t, team, ""), team
}

// rootFor makes a root for team: an inbox and keys for every agent, and
// the default policy with the allow rules given added.
func rootFor(t *testing.T, team *Team, allow string) *mailbox.Root {
	t.Helper()
	return rootAt(t, team, allow, nil)
}

// rootAt is rootFor on the clock now (nil: the time of day).
func rootAt(t *testing.T, team *Team, allow string, now func() time.Time) *mailbox.Root {
	t.Helper()
	r, err := mailbox.OpenRoot(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	for _, a := range team.Agents {
		if err := r.Inbox(a.Name).Create(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.NewKey(a.Name); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(r.Dir, policy.File), []byte(string(policy.Default)+allow), 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

// post signs m with its sender's key and delivers it to its addressee's
// inbox, as the sender's agent would.
func post(t *testing.T, r *mailbox.Root, m *mailbox.Message) {
	t.Helper()
	priv, err := r.PrivateKey(m.From)
	if err != nil {
		t.Fatal(err)
	}
	mailbox.Sign(m, priv)
	if _, err := r.Inbox(m.To).Deliver(m.Marshal(), time.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestRecoverRejectsABadClaimedFile: a file claimed and then left in cur/
// by a crash before it could be moved aside does not stop the agent.
func TestRecoverRejectsABadClaimedFile(t *testing.T) {
	r, team := newTeamRoot(t)
	bad := r.Inbox("finance").Path("cur", "1.M1P1Q1.host,parley=claimed:2,")
	if err := os.WriteFile(bad, []byte("Verb: NONSENSE\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lines := runUntil(t, r, team, "finance", "is running")
	if !strings.Contains(strings.Join(lines, "\n"), "claim 1.M1P1Q1.host,parley=claimed:2,: rejected") {
		t.Errorf("lines: %q", lines)
	}
	if _, err := os.Stat(r.Inbox("finance").Path("rejected", "1.M1P1Q1.host.err")); err != nil {
		t.Errorf("no reason beside the rejected file: %v", err)
	}
}

// TestSecondCopyRefuses: one process per agent, and the second says who.
func TestSecondCopyRefuses(t *testing.T) {
	r, team := newTeamRoot(t)
	unlock, err := Lock("finance", r.Inbox("finance").Path("state", "lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	err = (&Runtime{Root: r, Team: team, Name: "finance"}).Run(context.Background())
	var running *RunningError
	if !errors.As(err, &running) || running.PID == "" {
		t.Fatalf("Run = %v, want a RunningError with a pid", err)
	}
}

// TestUnreadablePolicyMidStepLosesNothing: a step the policy cannot decide
// (its file is broken) is not given up: the message stays claimed, the
// state is as before it, and once the file is mended the step is taken
// again, whole, once.
func TestUnreadablePolicyMidStepLosesNothing(t *testing.T) {
	r, team := newTeamRoot(t)
	post(t, r, &mailbox.Message{Version: "1", ID: "<ask@test>", Date: time.Now(), From: "procurement", To: "finance", Thread: "t",
		Verb: mailbox.Request, Item: "widget", Quantity: 500, Amount: mailbox.MustMoney("2365.00 USD")})
	pol := r.Dir + "/" + policy.File
	if err := os.WriteFile(pol, []byte("version = [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lines := make(chan string, 100)
	rt := &Runtime{Root: r, Team: team, Name: "finance", Every: 20 * time.Millisecond, Log: func(l string) { lines <- l }}
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	await := func(what string) {
		t.Helper()
		for {
			select {
			case l := <-lines:
				if strings.Contains(l, what) {
					return
				}
			case err := <-done:
				t.Fatalf("stopped before %q: %v", what, err)
			case <-ctx.Done():
				t.Fatalf("no %q", what)
			}
		}
	}
	await("waiting: APPROVED to procurement: the policy cannot be read")
	if got, _ := r.Inbox("finance").Unfinished(nil); len(got) != 1 {
		t.Fatalf("unfinished: %v, want the request kept claimed", got)
	}
	if err := os.WriteFile(pol, policy.Default, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(pol, time.Now(), time.Now().Add(time.Hour)) // a new stamp, whatever the clock's grain
	await("→ procurement APPROVED")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	items, _ := r.Inbox("finance").List(nil)
	if len(items) != 1 || items[0].State != mailbox.StateDone {
		t.Errorf("finance's inbox: %+v, want the request done", items)
	}
	if got, _ := r.Inbox("procurement").Pending(); len(got) != 1 {
		t.Errorf("procurement got %d approvals, want 1", len(got))
	}
}

// TestUnsignedIsRefused: a message its sender did not sign — written
// straight into the inbox, or signed by another agent — is not acted on:
// it is moved aside with the reason, and its sender told.
func TestUnsignedIsRefused(t *testing.T) {
	r, team := newTeamRoot(t)
	forged := &mailbox.Message{Version: "1", ID: "<forged@test>", Date: time.Now(), From: "procurement", To: "finance", Thread: "t",
		Verb: mailbox.Request, Item: "widget", Quantity: 500, Amount: mailbox.MustMoney("2365.00 USD")}
	vendor, err := r.PrivateKey("vendor-b")
	if err != nil {
		t.Fatal(err)
	}
	mailbox.Sign(forged, vendor) // vendor-b writes as procurement
	unsigned := *forged
	unsigned.ID, unsigned.Extra = "<unsigned@test>", nil
	for _, m := range []*mailbox.Message{forged, &unsigned} {
		if _, err := r.Inbox("finance").Deliver(m.Marshal(), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	lines := runUntil(t, r, team, "finance", "refused REQUEST <unsigned@test>")
	joined := strings.Join(lines, "\n")
	if !strings.Contains(joined, "refused REQUEST <forged@test> from procurement: the message is signed with a key that is not its sender's") {
		t.Errorf("lines: %q", lines)
	}
	if got, _ := r.Inbox("procurement").Pending(); len(got) != 0 {
		for _, n := range got {
			data, _ := os.ReadFile(r.Inbox("procurement").Path("new", n))
			if strings.Contains(string(data), "Verb: APPROVED") {
				t.Errorf("finance approved a message it should have refused")
			}
		}
	}
	rejected, _ := os.ReadDir(r.Inbox("finance").Path("rejected"))
	if len(rejected) != 4 {
		t.Errorf("finance/rejected holds %d files, want the two messages and their reasons", len(rejected))
	}
}

// TestReplayedApprovalDoesNothing: the same signed APPROVED delivered twice
// (a replay, or a retry) leads to one ORDER; the copy is finished as
// already handled, and the ledger says so.
func TestReplayedApprovalDoesNothing(t *testing.T) {
	r, team := newTeamRoot(t)
	// procurement must have the deal in hand: give it its state by playing
	// the deal's start through the role, then save it as the runtime does.
	p := &Runtime{Root: r, Team: team, Name: "procurement", engine: policy.NewEngine(r)}
	p.agent = team.Agent("procurement")
	defer p.engine.Close()
	if err := p.reset(); err != nil {
		t.Fatal(err)
	}
	role := p.role.(*Procurement)
	role.Deals["t"] = &Deal{Thread: "t", Requester: "inventory", Item: "widget", Quantity: 500, Phase: "approving", Vendor: "vendor-b",
		Agreed: mailbox.MustMoney("4.73 USD"), Quotes: map[string]*Offer{"vendor-b": {UnitPrice: mailbox.MustMoney("4.73 USD")}}}
	if err := p.save(); err != nil {
		t.Fatal(err)
	}
	approved := &mailbox.Message{Version: "1", ID: "<ok@test>", Date: time.Now(), From: "finance", To: "procurement", Thread: "t",
		Verb: mailbox.Approved, Item: "widget", Quantity: 500, Amount: mailbox.MustMoney("2365.00 USD")}
	// finance's approval is decided and recorded as finance's agent would.
	fin := policy.NewEngine(r)
	defer fin.Close()
	if d, err := fin.Decide(policy.Action{Agent: "finance", Message: approved}); err != nil || d.Outcome != policy.Allow {
		t.Fatalf("finance's decision: %+v %v", d, err)
	}
	priv, _ := r.PrivateKey("finance")
	mailbox.Sign(approved, priv)
	for i := 0; i < 2; i++ {
		if _, err := r.Inbox("procurement").Deliver(approved.Marshal(), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	lines := runUntil(t, r, team, "procurement", "again: already handled, nothing done")
	if n := strings.Count(strings.Join(lines, "\n"), "→ vendor-b ORDER"); n != 1 {
		t.Errorf("procurement sent %d orders, want 1: %q", n, lines)
	}
	items, _ := r.Inbox("vendor-b").List(nil)
	if len(items) != 1 {
		t.Errorf("vendor-b got %d orders, want 1", len(items))
	}
	// The copy was finished without a second order.
	inbox, _ := r.Inbox("procurement").List(nil)
	done := 0
	for _, it := range inbox {
		if it.State == mailbox.StateDone {
			done++
		}
	}
	if done != 2 {
		t.Errorf("procurement finished %d of the 2 copies, want both (one acted on, one as already handled)", done)
	}
}

// TestProtocolVersions: an agent that speaks protocol 1.1 writes it, one
// that speaks 1.0 reads it and answers; a message of protocol 2 is not
// acted on, and its sender gets an ERROR saying which version is spoken.
func TestProtocolVersions(t *testing.T) {
	r, team := newTeamRoot(t)
	team.Agent("finance").Protocol = "1.1"
	// In this order, so that the rejection of the last one says all were handled.
	for _, x := range []struct{ id, version string }{{"v10", "1"}, {"v13", "1.3"}, {"v2", "2.0"}} {
		post(t, r, &mailbox.Message{Version: x.version, ID: "<" + x.id + "@test>", Date: time.Now(), From: "procurement", To: "finance", Thread: "t-" + x.id,
			Verb: mailbox.Request, Item: "widget", Quantity: 5, Amount: mailbox.MustMoney("100.00 USD")})
	}
	runUntil(t, r, team, "finance", "rejected")
	// What finance sent, and the ERROR parley sent for it.
	answers := map[string]*mailbox.Message{}
	procurement := r.Inbox("procurement")
	names, _ := procurement.Pending()
	for _, n := range names {
		data, _ := os.ReadFile(procurement.Path("new", n))
		m, err := mailbox.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		answers[m.Thread] = m
	}
	for _, th := range []string{"t-v10", "t-v13"} {
		if a := answers[th]; a == nil || a.Verb != mailbox.Approved || a.Version != "1.1" {
			t.Errorf("the answer on %s: %+v, want an APPROVED written in protocol 1.1", th, a)
		}
	}
	if e := answers["t-v2"]; e == nil || e.Verb != mailbox.Error || !strings.Contains(e.Body+e.Subject, "Parley 2.0 (this parley speaks 1)") {
		t.Errorf("the answer to protocol 2: %+v", e)
	}
}

// TestSignatureBeforeMemory: a message under the id of one handled before
// is a repeat only if its signature verifies and it says the same. An
// altered copy (the signature no longer matches), an unsigned one, or a
// different message its sender signed under a reused id is set aside with
// the reason, counted by the breaker, never finished as done.
func TestSignatureBeforeMemory(t *testing.T) {
	original := func() *mailbox.Message {
		return &mailbox.Message{Version: "1", ID: "<once@test>", Date: time.Now(), From: "procurement", To: "finance", Thread: "t",
			Verb: mailbox.Notify, Amount: mailbox.MustMoney("910.00 USD"), Subject: "a note", Body: "first wording\n"}
	}
	tests := []struct {
		name    string
		copy    func(t *testing.T, r *mailbox.Root) []byte // the second file, as delivered
		refused string                                     // "" for a repeat finished as done
	}{
		{"the same message again", func(t *testing.T, r *mailbox.Root) []byte {
			return signed(t, r, original())
		}, ""},
		{"the same step taken again after a crash, worded anew", func(t *testing.T, r *mailbox.Root) []byte {
			m := original()
			m.Date, m.Body = m.Date.Add(time.Second), "second wording\n"
			return signed(t, r, m)
		}, ""},
		{"its thread changed after signing", func(t *testing.T, r *mailbox.Root) []byte {
			return []byte(strings.Replace(string(signed(t, r, original())), "Thread: t\n", "Thread: other\n", 1))
		}, "signature"},
		{"its amount changed after signing", func(t *testing.T, r *mailbox.Root) []byte {
			return []byte(strings.Replace(string(signed(t, r, original())), "910.00 USD", "9100.00 USD", 1))
		}, "signature"},
		{"unsigned", func(t *testing.T, r *mailbox.Root) []byte {
			return original().Marshal()
		}, "signed"},
		{"another message its sender signed under the same id", func(t *testing.T, r *mailbox.Root) []byte {
			m := original()
			m.Amount = mailbox.MustMoney("5000.00 USD")
			return signed(t, r, m)
		}, "handled before for another message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, team := newTeamRoot(t)
			post(t, r, original())
			runUntil(t, r, team, "finance", "← NOTIFY from procurement")
			if _, err := r.Inbox("finance").Deliver(tt.copy(t, r), time.Now()); err != nil {
				t.Fatal(err)
			}
			stop := "again: already handled"
			if tt.refused != "" {
				stop = "refused NOTIFY <once@test>"
			}
			lines := strings.Join(runUntil(t, r, team, "finance", stop), "\n")
			if tt.refused != "" && !strings.Contains(lines, tt.refused) {
				t.Errorf("refused without saying %q: %s", tt.refused, lines)
			}
			rejected := 0
			for _, e := range ledger(t, r) {
				if e.Event == mailbox.EventRejected && e.MsgID == "<once@test>" {
					rejected++
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tt.refused != ""]; rejected != want {
				t.Errorf("%d rejected lines for the copy, want %d", rejected, want)
			}
		})
	}
}

// signed is m signed by its sender, as its file.
func signed(t *testing.T, r *mailbox.Root, m *mailbox.Message) []byte {
	t.Helper()
	priv, err := r.PrivateKey(m.From)
	if err != nil {
		t.Fatal(err)
	}
	mailbox.Sign(m, priv)
	return m.Marshal()
}

// TestCommandsInBodiesNameTheRoot: a brain writes the commands in a
// message for the default root ("parley status"); the runtime, which knows
// the root, writes them for it, so the person who reads the message runs
// them as printed (issue 20).
func TestCommandsInBodiesNameTheRoot(t *testing.T) {
	r, team := newTeamRoot(t)
	fin := team.Agent("finance")
	fin.Brain = "exec"
	fin.Command = []string{"sh", "-c", `cat >/dev/null; echo '{"send": [{"to": "human", "verb": "NOTIFY", "thread": "t1", "subject": "look", "body": "Is vendor-b running? (parley status, parley agent vendor-b)"}], "state": null}'`}
	fin.Timeout.Duration = 10 * time.Second
	post(t, r, &mailbox.Message{Version: "1", ID: "<n1@test>", Date: time.Now(), From: "procurement", To: "finance",
		Thread: "t1", Verb: mailbox.Notify, Subject: "fyi"})
	runUntil(t, r, team, "finance", "→ human NOTIFY")
	files, _ := filepath.Glob(r.Inbox("human").Path("new", "*"))
	if len(files) != 1 {
		t.Fatalf("%d messages in the human's inbox, want 1", len(files))
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	want := "(parley --root " + r.Dir + " status, parley --root " + r.Dir + " agent vendor-b)"
	if !strings.Contains(string(data), want) {
		t.Errorf("the body reads\n%s\nwant %q", data, want)
	}
}
