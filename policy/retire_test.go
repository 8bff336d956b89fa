package policy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
)

// copyRoot copies a root's policy and ledger, not its checkpoints.
func copyRoot(t *testing.T, dir string) string {
	t.Helper()
	out := t.TempDir()
	for _, name := range []string{File, mailbox.LedgerFile} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(out, name), string(data))
	}
	return out
}

// actionsOf are the actions the ledger's decisions were about, each
// under a new Message-ID: what an agent could ask again of any old thread.
func actionsOf(es []mailbox.Entry) []Action {
	var out []Action
	for i, x := range es {
		if x.Event != EventDecision || x.MsgID == "" {
			continue
		}
		m := &mailbox.Message{Version: "1", ID: fmt.Sprintf("<again-%d@test>", i), Date: now, From: x.Agent, To: x.To,
			Thread: x.Thread, Verb: mailbox.Verb(x.Verb), Item: x.Item, Quantity: x.Quantity, InReplyTo: x.InReplyTo}
		if x.Amount != "" {
			m.Amount = mailbox.MustMoney(x.Amount + " " + x.Currency)
		}
		if x.DeliverBy != "" {
			m.DeliverBy, _ = time.Parse(time.DateOnly, x.DeliverBy)
		}
		out = append(out, Action{Agent: x.Agent, Message: m})
	}
	return out
}

// booksJSON is every thread's figures and the totals, as parley books
// shows them, the threads asked for brought back first.
func booksJSON(t *testing.T, e *Engine, threads []string) string {
	t.Helper()
	s, p, err := e.StateOf(threads...)
	if err != nil {
		t.Fatal(err)
	}
	b := s.Books()
	figures := map[string]Figures{}
	for _, id := range b.Threads() {
		figures[id] = b.Account(id).Figures(p.Budget.ReserveFor.Duration, now)
	}
	j, err := json.Marshal([]any{figures, b.Totals(p.Budget.ReserveFor.Duration, now), s.BudgetUsed(p, now)})
	if err != nil {
		t.Fatal(err)
	}
	return string(j)
}

// totalsJSON is the books' totals and the budget used, as they stand.
func totalsJSON(t *testing.T, e *Engine) string {
	t.Helper()
	s, p, err := e.State()
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal([]any{s.Books().Totals(p.Budget.ReserveFor.Duration, now), s.BudgetUsed(p, now)})
	if err != nil {
		t.Fatal(err)
	}
	return string(j)
}

// TestRetiredThreadsDecideTheSame: an engine whose checkpoint retired
// every old thread decides every action about them — each the ledger
// recorded, asked again, and then recorded — as an engine that holds every
// thread, and keeps the same books.
func TestRetiredThreadsDecideTheSame(t *testing.T) {
	dir := rootWithHistory(t, 2000, now.Add(-30*24*time.Hour)) // deals a month old
	all := copyRoot(t, dir)                                    // no checkpoint: an engine that holds every thread
	open := func(dir string) (*Engine, *mailbox.Root) {
		r, err := mailbox.OpenRoot(dir, func() time.Time { return now })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return NewEngine(r), r
	}
	retiring, rr := open(dir)
	if _, err := retiring.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	holding, hr := open(all)
	s, _, err := holding.State()
	if err != nil {
		t.Fatal(err)
	}
	if s.from.Seq != 0 {
		t.Fatalf("the engine without checkpoints started at %v", s.from)
	}
	es := entries(t, rr)
	var threads []string
	for _, x := range es {
		if x.Thread != "" && !slices.Contains(threads, x.Thread) {
			threads = append(threads, x.Thread)
		}
	}
	if n, _ := retiring.state.books.Retired(); n < len(threads)/2 || len(retiring.state.threads) > 1 { // the last deal, cut short, owes
		t.Fatalf("retired %d accounts, %d of %d threads still held: the test needs old deals that retire", n, len(retiring.state.threads), len(threads))
	}
	// The totals, before any thread comes back.
	if got, want := totalsJSON(t, retiring), totalsJSON(t, holding); got != want {
		t.Errorf("totals with every thread retired:\n got %s\nwant %s", got, want)
	}

	actions := actionsOf(es)
	sameDecisions(t, retiring, holding, actions)
	// Recorded, in turn on both roots: every action again, and the state
	// they leave; then a checkpoint retires what can retire again. In the
	// first round another engine on each root records them: the lines on
	// retired threads come to the retiring engine as another process's.
	if _, err := retiring.Checkpoint(); err != nil { // what Explain brought back retires again
		t.Fatal(err)
	}
	if len(retiring.state.threads) > 1 {
		t.Fatalf("%d threads held after a second checkpoint", len(retiring.state.threads))
	}
	for round := range 2 {
		r, h := retiring, holding
		if round == 0 {
			r, h = NewEngine(rr), NewEngine(hr)
		}
		for _, a := range actions[:len(actions)/2] {
			got, gerr := r.Decide(a)
			want, werr := h.Decide(a)
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) || (gerr == nil) != (werr == nil) {
				t.Fatalf("round %d: Decide %s on %s: %+v, %v; holding every thread: %+v, %v", round, a.Message.Verb, a.Message.Thread, got, gerr, want, werr)
			}
		}
		if got, want := booksJSON(t, retiring, threads), booksJSON(t, holding, threads); got != want {
			t.Errorf("round %d: the books through retired threads:\n got %.400s\nwant %.400s", round, got, want)
		}
		if _, err := retiring.Checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := len(entries(t, rr)), len(entries(t, hr)); got != want {
		t.Errorf("the ledgers differ: %d lines and %d", got, want)
	}
}

// sameDecisions checks that two engines explain each action the same.
func sameDecisions(t *testing.T, got, want *Engine, actions []Action) {
	t.Helper()
	for _, a := range actions {
		g, err := got.Explain(a)
		if err != nil {
			t.Fatal(err)
		}
		w, err := want.Explain(a)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", w) {
			t.Fatalf("%s %s on %s: %+v, but %+v holding every thread", a.Message.Verb, a.Message.Amount, a.Message.Thread, g, w)
		}
	}
}

// TestColdStartReadsInBatches: an engine with no checkpoint on a long
// ledger reads it a batch at a time, checkpointing and retiring between
// batches, and ends with the state of one that read it whole.
func TestColdStartReadsInBatches(t *testing.T) {
	defer func(e, c uint64, b int64) { checkpointEvery, checkpointOnClose, catchUpBytes = e, c, b }(checkpointEvery, checkpointOnClose, catchUpBytes)
	checkpointEvery, catchUpBytes = 1<<62, 1<<62
	dir := rootWithHistory(t, 3000, now.Add(-30*24*time.Hour))
	all := copyRoot(t, dir)
	if err := mailbox.RemoveCheckpoints(dir); err != nil {
		t.Fatal(err)
	}
	checkpointEvery, checkpointOnClose, catchUpBytes = 400, 1<<62, 0
	r, err := mailbox.OpenRoot(dir, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cold := NewEngine(r)
	s, _, err := cold.State()
	if err != nil {
		t.Fatal(err)
	}
	if cold.saved.Seq < 2600 || s.from != cold.saved {
		t.Errorf("the last checkpoint while reading is at seq %d (state from %d), want one every 400 lines", cold.saved.Seq, s.from.Seq)
	}
	if len(s.threads) > 400/72+2 { // those after the last checkpoint
		t.Errorf("%d threads held after reading deals a month old, want them retired as it read", len(s.threads))
	}
	sameAsWhole(t, cold, r, all)
}

// TestRetiredWhenTheCheckpointCannotBeWritten: a checkpoint that fails to
// be written (its file a folder here; a full disk in life) leaves the
// state consistent: what it retired and forgot is found in the index,
// and every decision is the same as one holding every thread.
func TestRetiredWhenTheCheckpointCannotBeWritten(t *testing.T) {
	dir := rootWithHistory(t, 2000, now.Add(-30*24*time.Hour))
	all := copyRoot(t, dir)
	if err := mailbox.RemoveCheckpoints(dir); err != nil {
		t.Fatal(err)
	}
	blocked := filepath.Join(dir, mailbox.CheckpointDir, StateFile)
	if err := os.MkdirAll(filepath.Join(blocked, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := mailbox.OpenRoot(dir, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e := NewEngine(r)
	if _, err := e.Checkpoint(); err == nil {
		t.Fatal("a checkpoint written over a folder")
	}
	if e.saved.Seq != 0 || e.state.from.Seq == 0 || len(e.state.threads) > 1 {
		t.Fatalf("saved %v, state from %v, %d threads held: want nothing saved, the state retired from the index's line", e.saved, e.state.from, len(e.state.threads))
	}
	sameAsWhole(t, e, r, all)
}

// sameAsWhole checks that e, on root r, decides every action r's ledger
// recorded, and keeps the same totals, as an engine reading the whole
// ledger of the copy of it at all.
func sameAsWhole(t *testing.T, e *Engine, r *mailbox.Root, all string) {
	t.Helper()
	h, err := mailbox.OpenRoot(all, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	holding := NewWholeEngine(h)
	sameDecisions(t, e, holding, actionsOf(entries(t, r)))
	if got, want := totalsJSON(t, e), totalsJSON(t, holding); got != want {
		t.Errorf("totals and budget differ:\n got %s\nwant %s", got, want)
	}
}
