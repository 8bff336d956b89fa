package agents

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"github.com/parley-dev/parley/policy"
)

func execBrain(t *testing.T, command ...string) *Exec {
	t.Helper()
	dir, err := filepath.Abs("../testdata/exec")
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{Name: "finance", Role: "finance", Brain: "exec", Command: command}
	a.Timeout.Duration = 5 * time.Second
	return &Exec{Agent: a, Dir: dir}
}

// TestExecBrain: the Python example approves, keeps its state from one
// step to the next, and answers the policy's refusal.
func TestExecBrain(t *testing.T) {
	b := execBrain(t, "python3", "approver.py")
	req := func(amount string) *mailbox.Message {
		return in("procurement", "finance", mailbox.Request, "t", func(m *mailbox.Message) { m.Amount = mailbox.MustMoney(amount) })
	}
	first := req("100.00 USD")
	out := b.Receive(now, first)
	if err := b.failure(); err != nil {
		t.Fatal(err)
	}
	if got := summary(out); !slices.Equal(got, []string{"procurement APPROVED = 100.00 USD"}) || out[0].InReplyTo != first.ID || out[0].Thread != "t" {
		t.Fatalf("out = %v (in reply to %q)", got, out[0].InReplyTo)
	}
	b.Receive(now, req("250.50 USD"))
	if string(b.State) != `{"approved": "350.50", "refused": 0}` {
		t.Errorf("state = %s, want the tally of both", b.State)
	}
	out = b.Denied(now, out[0], policy.Decision{Outcome: policy.Deny, Rule: "limits.per_transaction", Reason: "above the limit"})
	if got := summary(out); !slices.Equal(got, []string{"procurement DENIED = 100.00 USD"}) || !strings.Contains(out[0].Subject, "above the limit") {
		t.Errorf("after a refusal: %v %q", got, out[0].Subject)
	}
	if !strings.Contains(string(b.State), `"refused": 1`) {
		t.Errorf("state = %s", b.State)
	}
}

// TestExecBrainFailures: whatever the program does wrong, the step sends
// nothing, keeps the state as it was, and says why.
func TestExecBrainFailures(t *testing.T) {
	tests := []struct {
		name, script, why string
	}{
		{"it crashes", `echo "division by zero" >&2; exit 3`, "exit status 3: division by zero"},
		{"it hangs", `sleep 5`, "no answer within 300ms"},
		{"it prints garbage", `echo hello`, `its output is not {"send": [...], "state": ...}`},
		{"it prints a field parley does not know", `echo '{"send": [], "state": null, "mood": "happy"}'`, `unknown field "mood"`},
		{"a verb that is none", `echo '{"send": [{"to": "procurement", "verb": "SHOUT"}], "state": 1}'`, `send[0].verb "SHOUT" is not a verb`},
		{"money as a float", `echo '{"send": [{"to": "procurement", "verb": "APPROVED", "amount": "1e3 USD"}], "state": 1}'`, "send[0].amount"},
		{"a message missing a field", `echo '{"send": [{"to": "procurement", "verb": "ORDER", "item": "widget", "quantity": 5}], "state": 1}'`, "send[0]: Amount: is missing"},
		{"no such agent name", `echo '{"send": [{"to": "Procurement Dept", "verb": "NOTIFY"}], "state": 1}'`, `send[0].to "Procurement Dept" is not an agent's name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := execBrain(t, "sh", "-c", tt.script)
			b.Agent.Timeout.Duration = 300 * time.Millisecond
			b.State = []byte(`{"kept": true}`)
			start := time.Now()
			out := b.Receive(now, in("procurement", "finance", mailbox.Request, "t", nil))
			err := b.failure()
			if len(out) != 0 || err == nil || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("out %v, err %v; want nothing sent and %q", summary(out), err, tt.why)
			}
			if string(b.State) != `{"kept": true}` {
				t.Errorf("state = %s, want it as it was", b.State)
			}
			if time.Since(start) > 3*time.Second {
				t.Errorf("the step took %s: a hung program is not waited on", time.Since(start))
			}
			if b.failure() != nil {
				t.Error("the failure was reported twice")
			}
		})
	}
}

// TestExecAgent: an exec brain in a running agent. A request is approved
// through the policy; one the policy refuses comes back to the program,
// which denies it; a step the program fails is set aside as failed, and
// the agent goes on with the next message.
func TestExecAgent(t *testing.T) {
	r, team := newTeamRoot(t)
	dir, _ := filepath.Abs("../testdata/exec")
	fin := team.Agent("finance")
	fin.Brain, fin.Command = "exec", []string{"python3", filepath.Join(dir, "approver.py")}
	fin.Timeout.Duration = 10 * time.Second
	for i, x := range []struct{ amount, subject string }{{"100.00 USD", "approve"}, {"6000.00 USD", "approve"}, {"50.00 USD", "crash"}, {"70.00 USD", "approve"}} {
		m := &mailbox.Message{Version: "1", ID: "<req" + string(rune('a'+i)) + "@test>", Date: time.Now(), From: "procurement", To: "finance",
			Thread: "t" + string(rune('a'+i)), Verb: mailbox.Request, Item: "widget", Quantity: 5, Amount: mailbox.MustMoney(x.amount), Subject: x.subject}
		post(t, r, m)
	}
	lines := runUntil(t, r, team, "finance", "→ procurement APPROVED: APPROVED: 70.00 USD")
	log := strings.Join(lines, "\n")
	for _, want := range []string{
		"→ procurement APPROVED: APPROVED: 100.00 USD",
		"✗ APPROVED to procurement denied by limits.per_transaction",
		"→ procurement DENIED: DENIED: 6000.00 USD is above the per-transaction limit",
		"✗ REQUEST <reqc@test> from procurement failed: exec brain python3",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("no %q in the log:\n%s", want, log)
		}
	}
	failed, _ := filepath.Glob(r.Inbox("finance").Path("cur", "*:2,*F*"))
	if len(failed) != 1 {
		t.Errorf("%d messages set aside as failed, want the one the program crashed on", len(failed))
	}
	state, _ := os.ReadFile(r.Inbox("finance").Path("state", "state.json"))
	// The program's own state, kept by the runtime: what it approved (the
	// policy refused one of them) and how many refusals it heard of.
	if !strings.Contains(string(state), `"approved": "6170.00"`) || !strings.Contains(string(state), `"refused": 1`) {
		t.Errorf("state.json = %s, want the program's tally", state)
	}
}

// TestExecShellBrain: the shell example answers each message and counts
// them; with every set, it is woken with ticks, no more often than that.
func TestExecShellBrain(t *testing.T) {
	b := execBrain(t, "sh", "ack.sh")
	b.Agent.Name, b.Agent.Role = "clerk", "clerk"
	for i, want := range []string{"Got your NOTIFY; that makes 1.", "Got your REQUEST; that makes 2."} {
		verb := []mailbox.Verb{mailbox.Notify, mailbox.Request}[i]
		out := b.Receive(now, in("human", "clerk", verb, "t", nil))
		if err := b.failure(); err != nil {
			t.Fatal(err)
		}
		if len(out) != 1 || out[0].To != "human" || out[0].Verb != mailbox.Notify || out[0].Subject != want {
			t.Fatalf("step %d: %v %q", i+1, summary(out), out[0].Subject)
		}
	}
	b.Agent.Every.Duration = time.Minute
	for _, step := range []struct {
		after time.Duration
		seen  string
	}{{0, `"seen": 3`}, {30 * time.Second, `"seen": 3`}, {61 * time.Second, `"seen": 4`}} {
		b.Tick(now.Add(step.after))
		if !strings.Contains(string(b.State), step.seen) {
			t.Errorf("after %s: state %s, want %s", step.after, b.State, step.seen)
		}
	}
}

// TestDeclaredRole: an agent of a role declared in parley.toml acts only
// on the verbs its role handles (any other is set aside, its sender told)
// and sends only what its role may send, to whom it may.
func TestDeclaredRole(t *testing.T) {
	dir, _ := filepath.Abs("../testdata/exec")
	text := `version = 1
human = "human"

[[role]]
name = "clerk"
sends = ["NOTIFY"]
to = ["human"]
handles = ["NOTIFY"]
brain = "exec"
command = ["sh", "` + filepath.Join(dir, "ack.sh") + `"]

[[agent]]
name = "clerk"
role = "clerk"

[[agent]]
name = "procurement"
role = "procurement"

[[agent]]
name = "human"
role = "human"
`
	team, err := ParseTeam("parley.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if a := team.Agent("clerk"); a.Brain != "exec" || len(a.Command) != 2 || a.Timeout.Duration != 10*time.Second {
		t.Fatalf("the clerk did not take its role's brain: %+v", a)
	}
	r := rootFor(t, team, "\n[[allow]]\nfrom = \"clerk\"\nverbs = [\"NOTIFY\"]\nto = [\"human\", \"procurement\"]\n")
	send := func(from string, verb mailbox.Verb, id string) {
		post(t, r, &mailbox.Message{Version: "1", ID: "<" + id + "@test>", Date: time.Now(), From: from, To: "clerk", Thread: "t-" + id, Verb: verb,
			Item: "widget", Quantity: 1, Amount: mailbox.MustMoney("1.00 USD"), Subject: id})
	}
	send("human", mailbox.Request, "a")      // not a verb the clerk acts on
	send("procurement", mailbox.Notify, "b") // acted on; its answer would go where the role may not send
	send("human", mailbox.Notify, "c")       // acted on, answered
	lines := strings.Join(runUntil(t, r, team, "clerk", "→ human NOTIFY"), "\n")
	for _, want := range []string{
		"refused REQUEST <a@test> from human: clerk (clerk) acts only on NOTIFY, not REQUEST",
		"not sent: NOTIFY to procurement: the clerk role sends only to human",
		"→ human NOTIFY: Got your NOTIFY",
	} {
		if !strings.Contains(lines, want) {
			t.Errorf("no %q in:\n%s", want, lines)
		}
	}
	errs, _ := r.Inbox("human").Pending()
	found := false
	for _, n := range errs {
		data, _ := os.ReadFile(r.Inbox("human").Path("new", n))
		if strings.Contains(string(data), "Verb: ERROR") && strings.Contains(string(data), "acts only on NOTIFY") {
			found = true
		}
	}
	if !found {
		t.Error("the human was not told why its REQUEST was set aside")
	}
}

// TestExecBrainEdges: what a program prints is read with care — a null
// state keeps the state, text after the answer is refused, so is an answer
// too long — and a program's own children neither hold the agent nor
// outlive a stop.
func TestExecBrainEdges(t *testing.T) {
	step := func(script string, timeout time.Duration) (*Exec, []*mailbox.Message, error) {
		b := execBrain(t, "sh", "-c", script)
		b.Agent.Timeout.Duration = timeout
		b.State = []byte(`{"kept": true}`)
		out := b.Receive(now, in("procurement", "finance", mailbox.Request, "t", nil))
		return b, out, b.failure()
	}
	if b, _, err := step(`echo '{"send": [], "state": null}'`, time.Second); err != nil || string(b.State) != `{"kept": true}` {
		t.Errorf("a null state: %v, state %s", err, b.State)
	}
	if _, _, err := step(`echo '{"send": [], "state": 1} and more'`, time.Second); err == nil || !strings.Contains(err.Error(), "printed more after") {
		t.Errorf("text after the answer: %v", err)
	}
	if _, _, err := step(`head -c 2000000 /dev/zero | tr '\0' 'x'`, 5*time.Second); err == nil || !strings.Contains(err.Error(), "more than 1048576 bytes") {
		t.Errorf("a flood: %v", err)
	}
	// It answers and exits, leaving a child that holds its output: the
	// answer counts.
	start := time.Now()
	if _, out, err := step(`sleep 3 & echo '{"send": [{"to": "procurement", "verb": "NOTIFY"}], "state": 2}'`, 5*time.Second); err != nil || len(out) != 1 {
		t.Errorf("an answer with a child left behind: %v, %v", err, summary(out))
	}
	if time.Since(start) > 2500*time.Millisecond {
		t.Errorf("waited %s for the child", time.Since(start))
	}
	// Stopped during the step: the step did not happen.
	ctx, cancel := context.WithCancel(context.Background())
	b := execBrain(t, "sh", "-c", "sleep 3")
	b.Ctx = ctx
	time.AfterFunc(100*time.Millisecond, cancel)
	b.Receive(now, in("procurement", "finance", mailbox.Request, "t", nil))
	if err := b.failure(); !errors.Is(err, ErrStopped) {
		t.Errorf("stopped mid-step: %v", err)
	}
}

// TestExecTickIds: two ticks that send the same words send two messages.
func TestExecTickIds(t *testing.T) {
	b := execBrain(t, "sh", "-c", `cat >/dev/null; echo '{"send": [{"to": "human", "verb": "NOTIFY", "thread": "status", "subject": "all well"}], "state": null}'`)
	b.Agent.Every.Duration = time.Second
	first := b.Tick(now)
	second := b.Tick(now.Add(2 * time.Second))
	if len(first) != 1 || len(second) != 1 || first[0].ID == "" || first[0].ID == second[0].ID {
		t.Errorf("ids %v and %v", first, second)
	}
}

// TestDeclaredRoleHearsTheHuman: a role's handles do not keep out the
// human's answer to what the agent escalated: the held message goes.
func TestDeclaredRoleHearsTheHuman(t *testing.T) {
	dir, _ := filepath.Abs("../testdata/exec")
	text := "version = 1\nhuman = \"human\"\n\n[[role]]\nname = \"clerk\"\nhandles = [\"NOTIFY\"]\nbrain = \"exec\"\ncommand = [\"sh\", \"" + filepath.Join(dir, "ack.sh") + "\"]\n\n" +
		"[[agent]]\nname = \"clerk\"\nrole = \"clerk\"\n\n[[agent]]\nname = \"human\"\nrole = \"human\"\n"
	team, err := ParseTeam("parley.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	r := rootFor(t, team, "\n[[allow]]\nfrom = \"clerk\"\nverbs = [\"NOTIFY\"]\nto = [\"human\"]\n")
	// The clerk escalated a message on thread t-x, and holds it.
	held := &mailbox.Message{ID: "<held@clerk>", To: "human", Thread: "t-x", Verb: mailbox.Notify, Subject: "the held one"}
	data, _ := json.Marshal(saved{Handled: handled{}, Escalated: map[string][]*mailbox.Message{"t-x": {held}}})
	if err := os.WriteFile(r.Inbox("clerk").Path("state", "state.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	post(t, r, &mailbox.Message{Version: "1", ID: "<yes@test>", Date: time.Now(), From: "human", To: "clerk", Thread: "t-x", Verb: mailbox.Approved,
		Amount: mailbox.MustMoney("1.00 USD"), Subject: "yes"})
	lines := strings.Join(runUntil(t, r, team, "clerk", "→ human NOTIFY: the held one"), "\n")
	if strings.Contains(lines, "refused APPROVED") {
		t.Errorf("the human's answer was refused:\n%s", lines)
	}
}
