package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/ledgergen"
	"github.com/parley-dev/parley/mailbox"
)

// stateJSON is the state as its snapshot says it, positions left out: two
// states that say the same, and find the same decisions by message id
// (decisionsJSON), decide the same.
func stateJSON(t testing.TB, s *State) string {
	t.Helper()
	b, err := json.Marshal(snapshotOf(s, mailbox.Position{}))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// decisionsJSON is what the engine finds decided about each action the
// ledger's decision lines record, and about the same action for another
// amount: the same decision, and a different action under its id.
func decisionsJSON(t testing.TB, e *Engine, es []mailbox.Entry) string {
	t.Helper()
	var out []any
	for _, x := range es {
		if x.Event != EventDecision || x.MsgID == "" {
			continue
		}
		m := &mailbox.Message{ID: x.MsgID, From: x.Agent, To: x.To, Verb: mailbox.Verb(x.Verb), Thread: x.Thread}
		if x.Amount != "" {
			m.Amount = mailbox.MustMoney(x.Amount + " " + x.Currency)
		}
		other := *m
		other.Amount = mailbox.MustMoney("123456.78 USD")
		for _, m := range []*mailbox.Message{m, &other} {
			d, same, err := e.decided(Action{Agent: x.Agent, Message: m})
			if err != nil {
				t.Fatalf("decided %s: %v", m.ID, err)
			}
			out = append(out, []any{m.ID, d, same})
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSnapshotKeepsTheState cuts a ledger of real deals at many lines:
// the state at the cut, through its snapshot, with the lines after it
// applied, is the state of the whole ledger.
func TestSnapshotKeepsTheState(t *testing.T) {
	var buf bytes.Buffer
	if _, err := ledgergen.Write(&buf, ledgergen.Options{Lines: 500, Until: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var es []mailbox.Entry
	if err := mailbox.ReadEntries(&buf, func(_ int, e mailbox.Entry) error { es = append(es, e); return nil }); err != nil {
		t.Fatal(err)
	}
	whole := NewState()
	for _, e := range es {
		whole.Apply(e)
	}
	want := stateJSON(t, whole)
	for _, cut := range []int{0, 1, 37, 72, 250, 499, 500} {
		s := NewState()
		for _, e := range es[:cut] {
			s.Apply(e)
		}
		s = snapshotOf(s, mailbox.Position{}).state()
		for _, e := range es[cut:] {
			s.Apply(e)
		}
		if got := stateJSON(t, s); got != want {
			t.Errorf("cut at %d: the state differs from the whole ledger's:\n got %.300s\nwant %.300s", cut, got, want)
		}
	}
}

// TestEngineCheckpoint starts engines on a root with history and a
// checkpoint of its state, true or not: a true one is started from, any
// other ignored and the state read from the ledger's start, and either way
// the state is the ledger's.
func TestEngineCheckpoint(t *testing.T) {
	defer func(e, c uint64) { checkpointEvery, checkpointOnClose = e, c }(checkpointEvery, checkpointOnClose)
	checkpointEvery, checkpointOnClose = 1<<62, 1 // written by Close and Checkpoint only

	const lines = 3000
	tests := []struct {
		name string
		// edit changes the root after its checkpoint at seq lines was
		// written.
		edit      func(t *testing.T, dir string, ck mailbox.Position)
		wantFrom  bool // started from the checkpoint
		wantBroke bool // the ledger does not verify: nothing decided
	}{
		{"true", func(*testing.T, string, mailbox.Position) {}, true, false},
		{"lines appended since", func(t *testing.T, dir string, _ mailbox.Position) {
			r, _ := mailbox.OpenRoot(dir, func() time.Time { return now })
			defer r.Close()
			e := NewEngine(r)
			if err := e.Pause("human", "a look at the books"); err != nil {
				t.Fatal(err)
			}
			e.ledger.Close() // not e.Close: the old checkpoint stays
		}, true, false},
		{"garbage", func(t *testing.T, dir string, _ mailbox.Position) {
			writeFile(t, filepath.Join(dir, mailbox.CheckpointDir, StateFile), "not a gob")
		}, false, false},
		{"cut short", func(t *testing.T, dir string, _ mailbox.Position) {
			path := filepath.Join(dir, mailbox.CheckpointDir, StateFile)
			data, _ := os.ReadFile(path)
			writeFile(t, path, string(data[:len(data)/2]))
		}, false, false},
		{"the ledger cut below it", func(t *testing.T, dir string, ck mailbox.Position) {
			if err := os.Truncate(filepath.Join(dir, mailbox.LedgerFile), ck.Offset/2); err != nil {
				t.Fatal(err)
			}
			// and its torn last line set aside by the next open
		}, false, false},
		{"another root's", func(t *testing.T, dir string, _ mailbox.Position) {
			other := rootWithHistory(t, lines, now.Add(-2*time.Hour))
			data, err := os.ReadFile(filepath.Join(other, mailbox.CheckpointDir, StateFile))
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, mailbox.CheckpointDir, StateFile), string(data))
		}, false, false},
		{"another human in the policy", func(t *testing.T, dir string, _ mailbox.Position) {
			text := strings.Replace(string(Default), `agent = "human" `, `agent = "boss"  `, 1)
			if text == string(Default) {
				t.Fatal("the default policy names no human agent")
			}
			writeFile(t, filepath.Join(dir, File), text)
		}, false, false},
		{"its line edited", func(t *testing.T, dir string, ck mailbox.Position) {
			path := filepath.Join(dir, mailbox.LedgerFile)
			data, _ := os.ReadFile(path)
			i := bytes.LastIndex(data[:ck.Offset], []byte(`"agent":"`))
			copy(data[i:], `"agent":"x`)
			writeFile(t, path, string(data))
		}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := rootWithHistory(t, lines, now.Add(-time.Hour))
			ck, err := readState(dir)
			if err != nil {
				t.Fatalf("no checkpoint after Close: %v", err)
			}
			if got, want := ck.At.Seq, uint64(lines); got != want {
				t.Fatalf("checkpoint at seq %d, want %d", got, want)
			}
			tt.edit(t, dir, ck.At)

			r, err := mailbox.OpenRoot(dir, func() time.Time { return now })
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			e := NewEngine(r)
			s, _, err := e.State()
			if tt.wantBroke {
				if !errors.Is(err, mailbox.ErrBroken) {
					t.Fatalf("State()=%v, want ErrBroken", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := e.saved == ck.At; got != tt.wantFrom {
				t.Errorf("started from the checkpoint: %v, want %v", got, tt.wantFrom)
			}
			got := stateJSON(t, s)
			gotDecided := decisionsJSON(t, e, entries(t, r))
			e.ledger.Close() // no checkpoint of its own

			// The same root, its checkpoints thrown away.
			if err := mailbox.RemoveCheckpoints(dir); err != nil {
				t.Fatal(err)
			}
			fresh := NewEngine(r)
			fs, _, err := fresh.State()
			if err != nil {
				t.Fatal(err)
			}
			defer fresh.ledger.Close()
			if fresh.saved != (mailbox.Position{}) {
				t.Fatalf("a root without checkpoints started at %v", fresh.saved)
			}
			if want := stateJSON(t, fs); got != want {
				t.Errorf("the state differs from the ledger's:\n got %.300s\nwant %.300s", got, want)
			}
			if want := decisionsJSON(t, fresh, entries(t, r)); gotDecided != want {
				t.Errorf("the decisions by message id differ from the ledger's:\n got %.300s\nwant %.300s", gotDecided, want)
			}
			if !strings.Contains(gotDecided, `"decision":"allow"`) || !strings.Contains(gotDecided, "true]") {
				t.Errorf("no decision found again: %.300s", gotDecided)
			}
		})
	}
}

// rootWithHistory makes a root with the default policy and a ledger of
// lines lines of real deals, and checkpoints it as an engine's Close does.
func rootWithHistory(t *testing.T, lines int, until time.Time) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, File), string(Default))
	f, err := os.Create(filepath.Join(dir, mailbox.LedgerFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledgergen.Write(f, ledgergen.Options{Lines: lines, Until: until}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := mailbox.OpenRoot(dir, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e := NewEngine(r)
	if _, _, err := e.State(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
