package agents

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parley-dev/parley/agents/llm"
	"github.com/parley-dev/parley/mailbox"
)

// BenchmarkModelDecide is parley's own cost of one decision by a model, the
// model's time left out (the answer is played from a tape): prompt, schema,
// the checks and the rules' step.
func BenchmarkModelDecide(b *testing.B) {
	answer := `{"action":"COUNTER","unit_price":"4.80","text":"We can meet you part of the way."}`
	ask := func(_ context.Context, _ string, c llm.Call) (llm.Answer, error) {
		return llm.Play(llm.Tape{Answer: answer, Record: llm.Record{Model: "bench", DoneReason: "stop"}})
	}
	t := &testing.T{}
	for b.Loop() {
		b.StopTimer()
		p, quote := negotiating(t)
		m := &Model{Rules: p, Agent: &Agent{Name: "procurement", Role: "procurement", LLM: "decide", Fallback: "rules", Retries: 1},
			Human: "human", Currency: "USD", System: "You buy.", Ask: ask, Note: func(Note) {}, History: func(string, string) string { return "" }}
		b.StartTimer()
		if out := m.Receive(now, quote); len(out) != 1 || out[0].Verb != mailbox.Counter {
			b.Fatalf("out = %v", summary(out))
		}
	}
}

// BenchmarkHistory reads the thread so far from a ledger of 20,000 lines,
// as each model call does.
func BenchmarkHistory(b *testing.B) {
	r, err := mailbox.OpenRoot(b.TempDir(), func() time.Time { return now })
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	l, err := r.Ledger()
	if err != nil {
		b.Fatal(err)
	}
	var batch []mailbox.Entry
	for i := range 10000 {
		// A vendor's quote as the ledger has it: delivered by the vendor,
		// then claimed by procurement (the line a history keeps).
		e := mailbox.Entry{Agent: "vendor-b", Event: mailbox.EventDelivered, Thread: fmt.Sprintf("t-%d", i%500),
			MsgID: fmt.Sprintf("<%d@b>", i), From: "vendor-b", To: "procurement", Verb: "QUOTE", Subject: "QUOTE: 500 widget at 5.10 USD each"}
		c := e
		c.Agent, c.Event = "procurement", mailbox.EventClaimed
		batch = append(batch, e, c)
	}
	if _, err := l.Append(batch...); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if h := History(r, "procurement", "t-7", "tick"); h == "" {
			b.Fatal("no history")
		}
	}
}
