package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/agents/llm"
	"github.com/parley-dev/parley/mailbox"
)

// TestWhyTellsTheModelsPart: parley why on a thread shows each decision a
// model made there, each call that failed, with its tape — and not the
// narrations used, which change no outcome.
func TestWhyTellsTheModelsPart(t *testing.T) {
	root := t.TempDir() + "/root"
	if out, code := runCLI(t, "--root", root, "init"); code != 0 {
		t.Fatalf("init: %s", out)
	}
	r, err := mailbox.OpenRoot(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := r.Ledger()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	msg := func(id, from, to string, verb mailbox.Verb, subject string) mailbox.Entry {
		m := &mailbox.Message{ID: id, Date: at, From: from, To: to, Thread: "restock-widget-1", Verb: verb, Subject: subject}
		e := mailbox.MessageEntry(from, mailbox.EventDelivered, m)
		e.Time = at
		return e
	}
	for _, e := range []mailbox.Entry{
		msg("<q@t>", "vendor-b", "procurement", mailbox.Quote, "QUOTE: 500 widget at 5.10 USD each"),
		agents.NoteEntry("procurement", agents.Note{Thread: "restock-widget-1", Cause: "<q@t>", Purpose: "narrate", Outcome: agents.Answered, Reason: "attempt 1"}),
		agents.NoteEntry("procurement", agents.Note{Thread: "restock-widget-1", Cause: "<q@t>", Purpose: "decide", Key: "abc-1", Outcome: agents.Answered,
			Reason: "attempt 1: chose DECLINE", Tape: &llmTape}),
		agents.NoteEntry("procurement", agents.Note{Thread: "restock-widget-1", Cause: "<q@t>", Purpose: "read", Outcome: agents.FellBack, Reason: "the rules take the step: no answer in time"}),
		msg("<n@t>", "procurement", "human", mailbox.Notify, "Could not buy 500 widget: the model walked away from every quote (vendor-b at 5.10 USD)."),
	} {
		if _, err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	out, code := runCLI(t, "--root", root, "why", "restock-widget-1")
	if code != 0 {
		t.Fatalf("why: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"model of procurement, decide: answered: fake, 800+12 tokens in 2s: attempt 1: chose DECLINE (tape procurement/state/llm/abc-1.json)",
		"model of procurement, read: fallback: the rules take the step: no answer in time",
		"the model walked away from every quote",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("why lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "narrate") {
		t.Errorf("why shows a narration used:\n%s", out)
	}
}

var llmTape = llm.Tape{Record: llm.Record{Model: "fake", PromptTokens: 800, AnswerTokens: 12, Duration: 2 * time.Second}}

// TestStatusShowsModelCalls: parley status lists the calls in flight on
// the team's model server and those waiting for a turn, from any process,
// and how long the agents' calls took.
func TestStatusShowsModelCalls(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	root := t.TempDir() + "/root"
	if out, code := runCLI(t, "--root", root, "init"); code != 0 {
		t.Fatalf("init: %s", out)
	}
	team := filepath.Join(root, agents.TeamFile)
	data, _ := os.ReadFile(team)
	data = bytes.Replace(data, []byte("name = \"procurement\"\nrole = \"procurement\"\nbrain = \"rules\""),
		[]byte("name = \"procurement\"\nrole = \"procurement\"\nbrain = \"ollama\"\nmodel = \"llama3.2\"\nhost = \"127.0.0.1:9\""), 1)
	if err := os.WriteFile(team, data, 0o644); err != nil {
		t.Fatal(err)
	}
	q := llm.Queue{Dir: llm.QueueDir("http://127.0.0.1:9"), N: 1}
	release, err := q.Acquire(context.Background(), llm.Holder{Agent: "vendor-a", What: "narrate restock-widget-1", Root: "/elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan error, 1)
	go func() {
		_, err := q.Acquire(ctx, llm.Holder{Agent: "procurement", What: "decide restock-widget-1"})
		waiting <- err
	}()
	defer func() { cancel(); <-waiting }()
	var st struct {
		ModelCalls []modelCall `json:"model_calls"`
	}
	for len(st.ModelCalls) < 2 {
		out, _ := runCLI(t, "--root", root, "status", "--json")
		if err := json.Unmarshal(out, &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
	}
	if c := st.ModelCalls[0]; c.Agent != "vendor-a" || c.Waiting || c.Host != "http://127.0.0.1:9" {
		t.Errorf("first call = %+v, want vendor-a's in flight", c)
	}
	if c := st.ModelCalls[1]; c.Agent != "procurement" || !c.Waiting {
		t.Errorf("second call = %+v, want procurement's, waiting", c)
	}
	out, _ := runCLI(t, "--root", root, "status")
	for _, want := range []string{
		"model call in flight on http://127.0.0.1:9: vendor-a of /elsewhere narrate restock-widget-1, for",
		"model call waiting for a turn on http://127.0.0.1:9: procurement decide restock-widget-1",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}
