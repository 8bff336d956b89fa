package jsinbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/natstest"
	"github.com/parley-dev/parley/mailbox"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func msg(i int) *mailbox.Message {
	return &mailbox.Message{Version: "1", ID: fmt.Sprintf("<%d@test>", i), Date: t0, From: "procurement", To: "finance",
		Thread: "t", Verb: mailbox.Notify, Subject: fmt.Sprint(i)}
}

// deliver puts m in its recipient's inbox, as the transport does.
func deliver(ctx context.Context, in *Inboxes, m *mailbox.Message) (dup bool, err error) {
	return in.Put(ctx, m.To, m.ID, m.Marshal())
}

// idOf is the Message-ID of a claimed message.
func idOf(t *testing.T, c *Claimed) string {
	t.Helper()
	m, err := mailbox.Parse(c.Data)
	if err != nil {
		t.Fatalf("claimed %q: %v", c.Data, err)
	}
	return m.ID
}

func open(t *testing.T, ackWait time.Duration) (*Inboxes, func() *Inboxes) {
	t.Helper()
	s := natstest.Start(t)
	again := func() *Inboxes {
		in, err := Open(context.Background(), natstest.Connect(t, s), "INBOXES", "parley", 1, ackWait, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	return again(), again
}

// TestOnceEach: claimers on their own connections take from one inbox at
// once; each message is claimed and finished exactly once, and a message
// delivered twice under one id is stored once.
func TestOnceEach(t *testing.T) {
	in, another := open(t, 30*time.Second)
	ctx := context.Background()
	const n = 100
	for i := range n {
		if dup, err := deliver(ctx, in, msg(i)); err != nil || dup {
			t.Fatalf("deliver %d: %v, dup %v", i, err, dup)
		}
	}
	if dup, err := deliver(ctx, in, msg(7)); err != nil || !dup {
		t.Fatalf("the same message again: %v, dup %v; want it recognised", err, dup)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 3 {
		claimer := another()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := claimer.Claim(ctx, "finance", 200*time.Millisecond)
				if errors.Is(err, ErrEmpty) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[idOf(t, c)]++
				mu.Unlock()
				if err := c.Finish(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("%d messages claimed, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s claimed %d times", id, k)
		}
	}
}

// TestCrashRedelivers: a claim never finished — the claimer died — is
// claimed again once it lapses, and says it is a second delivery; a
// finished one is gone.
func TestCrashRedelivers(t *testing.T) {
	in, another := open(t, 300*time.Millisecond)
	ctx := context.Background()
	if _, err := deliver(ctx, in, msg(1)); err != nil {
		t.Fatal(err)
	}
	first, err := another().Claim(ctx, "finance", time.Second)
	if err != nil || first.Deliveries != 1 {
		t.Fatalf("first claim: %v, %+v", err, first)
	}
	// The claimer is gone without finishing. The next claim waits for the
	// lapse rather than sleeping through it.
	again, err := in.Claim(ctx, "finance", 5*time.Second)
	if err != nil || idOf(t, again) != "<1@test>" || again.Deliveries != 2 {
		t.Fatalf("after the crash: %v, %+v", err, again)
	}
	if err := again.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := in.Claim(ctx, "finance", 700*time.Millisecond); !errors.Is(err, ErrEmpty) {
		t.Errorf("after finishing: %+v, %v; want the inbox empty", c, err)
	}
}

// TestSetAside: a message set aside is out of the inbox for good, kept
// with the reason where a person can read it, and the next is claimed.
func TestSetAside(t *testing.T) {
	in, _ := open(t, 30*time.Second)
	ctx := context.Background()
	if _, err := in.js.Publish(ctx, "parley.inbox.finance", []byte("Verb: NONSENSE\n\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := deliver(ctx, in, msg(2)); err != nil {
		t.Fatal(err)
	}
	bad, err := in.Claim(ctx, "finance", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	where, err := bad.SetAside(ctx, "line 1: Verb: \"NONSENSE\" is not a verb\nhow to fix it: ...")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(where, "parley.rejected.finance (stream INBOXES, seq ") {
		t.Errorf("set aside at %q", where)
	}
	st, err := in.js.Stream(ctx, "INBOXES")
	if err != nil {
		t.Fatal(err)
	}
	kept, err := st.GetLastMsgForSubject(ctx, "parley.rejected.finance")
	if err != nil {
		t.Fatal(err)
	}
	if string(kept.Data) != "Verb: NONSENSE\n\n" || kept.Header.Get(ReasonHeader) != `line 1: Verb: "NONSENSE" is not a verb how to fix it: ...` {
		t.Errorf("kept %q with reason %q", kept.Data, kept.Header.Get(ReasonHeader))
	}
	c, err := in.Claim(ctx, "finance", time.Second)
	if err != nil || idOf(t, c) != "<2@test>" {
		t.Fatalf("the next: %v, %+v", err, c)
	}
}

// BenchmarkDeliverClaimFinish is one message through an inbox: delivered,
// claimed, finished — the JetStream counterpart of the Maildir's
// deliver+claim+finish.
func BenchmarkDeliverClaimFinish(b *testing.B) {
	s := natstest.Start(b)
	in, err := Open(context.Background(), natstest.Connect(b, s), "INBOXES", "parley", 1, 30*time.Second, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if _, err := deliver(ctx, in, msg(i)); err != nil {
			b.Fatal(err)
		}
		c, err := in.Claim(ctx, "finance", time.Second)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Finish(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// TestOpenAgain: opening the stream again with its settings leaves it be;
// with other settings, it takes them.
func TestOpenAgain(t *testing.T) {
	s := natstest.Start(t)
	ctx := context.Background()
	for _, dedupe := range []time.Duration{time.Hour, time.Hour, 2 * time.Hour} {
		in, err := Open(ctx, natstest.Connect(t, s), "INBOXES", "parley", 1, time.Minute, dedupe)
		if err != nil {
			t.Fatalf("open with dedupe %v: %v", dedupe, err)
		}
		st, err := in.js.Stream(ctx, "INBOXES")
		if err != nil {
			t.Fatal(err)
		}
		if got := st.CachedInfo().Config.Duplicates; got != dedupe {
			t.Errorf("opened with dedupe %v, the stream has %v", dedupe, got)
		}
	}
}

// TestPeek: a look into an inbox lists what waits and what is claimed,
// claims nothing, and makes no consumer for an agent that never claimed.
func TestPeek(t *testing.T) {
	in, _ := open(t, 30*time.Second)
	ctx := context.Background()
	for i := range 3 {
		if _, err := deliver(ctx, in, msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	states := func() []bool {
		t.Helper()
		ws, err := in.Peek(ctx, "finance")
		if err != nil {
			t.Fatal(err)
		}
		var out []bool
		for _, w := range ws {
			out = append(out, w.Claimed)
		}
		return out
	}
	if got := states(); len(got) != 3 || got[0] || got[1] || got[2] {
		t.Errorf("before any claim: %v, want three waiting", got)
	}
	if _, err := in.js.Consumer(ctx, "INBOXES", "inbox-finance"); err == nil {
		t.Error("a look made the consumer")
	}
	c, err := in.Claim(ctx, "finance", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := states(); len(got) != 3 || !got[0] || got[1] || got[2] {
		t.Errorf("one claimed: %v, want claimed, waiting, waiting", got)
	}
	if err := c.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if got := states(); len(got) != 2 || got[0] || got[1] {
		t.Errorf("one finished: %v, want two waiting", got)
	}
}

// TestOperatorSettingsKept: a limit an operator set on the stream, and the
// claim period an inbox was made with, survive another process opening
// them with its own settings.
func TestOperatorSettingsKept(t *testing.T) {
	s := natstest.Start(t)
	ctx := context.Background()
	js := natstest.Connect(t, s)
	in, err := Open(ctx, js, "INBOXES", "parley", 1, time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.consumer(ctx, "finance"); err != nil {
		t.Fatal(err)
	}
	st, _ := js.Stream(ctx, "INBOXES")
	cfg := st.CachedInfo().Config
	cfg.MaxAge = 30 * 24 * time.Hour // nats stream edit --max-age 30d
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	again, err := Open(ctx, natstest.Connect(t, s), "INBOXES", "parley", 1, 5*time.Second, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := again.consumer(ctx, "finance")
	if err != nil {
		t.Fatal(err)
	}
	st, _ = js.Stream(ctx, "INBOXES")
	if got := st.CachedInfo().Config; got.MaxAge != 30*24*time.Hour || got.Duplicates != 2*time.Hour {
		t.Errorf("max age %v, dedupe %v; want the operator's 720h kept and parley's 2h", got.MaxAge, got.Duplicates)
	}
	if got := c.CachedInfo().Config.AckWait; got != time.Minute {
		t.Errorf("claim period %v, want the 1m it was made with", got)
	}
}

// TestConsumerDeleted: an inbox whose consumer an operator deleted is made
// again by a later claim, not failed on for ever.
func TestConsumerDeleted(t *testing.T) {
	in, _ := open(t, 30*time.Second)
	ctx := context.Background()
	if _, err := deliver(ctx, in, msg(1)); err != nil {
		t.Fatal(err)
	}
	c, err := in.Claim(ctx, "finance", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.js.DeleteConsumer(ctx, "INBOXES", "inbox-finance"); err != nil {
		t.Fatal(err)
	}
	if _, err := deliver(ctx, in, msg(2)); err != nil {
		t.Fatal(err)
	}
	var errs []error
	for range 3 {
		c, err := in.Claim(ctx, "finance", time.Second)
		if err == nil {
			// Made again from the start of its subject: the one finished
			// before comes again (its agent's record skips it), then the new.
			if id := idOf(t, c); id != "<1@test>" && id != "<2@test>" {
				t.Errorf("claimed %s", id)
			}
			return
		}
		errs = append(errs, err)
	}
	t.Fatalf("the inbox was not made again: %v", errs)
}

// TestKeptLeavesNoConsumer: reading every kept message (ledger verify
// --messages) leaves no consumer behind on the server (issue 23).
func TestKeptLeavesNoConsumer(t *testing.T) {
	in, _ := open(t, 30*time.Second)
	ctx := context.Background()
	for i := range 5 {
		if _, err := deliver(ctx, in, msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		n := 0
		if err := in.Kept(ctx, func(string, string, []byte) error { n++; return nil }); err != nil || n != 5 {
			t.Fatalf("Kept: %d messages, %v; want 5", n, err)
		}
	}
	st, err := in.js.Stream(ctx, "INBOXES")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Consumers; n != 0 {
		t.Errorf("%d consumers left after 10 reads, want 0", n)
	}
}
