package jsteam

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/natstest"
	"github.com/parley-dev/parley/internal/proctest"
	"github.com/parley-dev/parley/mailbox"
)

func TestMain(m *testing.M) {
	proctest.Main(m, map[string]func(args []string) error{
		// append URL N NAME: N ledger appends of two lines each, as NAME.
		"append": func(args []string) error {
			team, err := dialArgs(args[0])
			if err != nil {
				return err
			}
			defer team.Close()
			n, _ := strconv.Atoi(args[1])
			j, _ := team.Journal()
			proctest.WaitGo()
			for i := range n {
				_, err := j.Append(
					mailbox.Entry{Agent: args[2], Event: "decision", Reason: fmt.Sprint(i)},
					mailbox.Entry{Agent: args[2], Event: "delivered", Reason: fmt.Sprint(i)})
				if err != nil {
					return err
				}
			}
			return nil
		},
		// claim URL: claim from finance's inbox until it stays empty, and
		// print each Message-ID claimed.
		"claim": func(args []string) error {
			team, err := dialArgs(args[0])
			if err != nil {
				return err
			}
			defer team.Close()
			in, _ := team.Inbox("finance")
			defer in.Close()
			proctest.WaitGo()
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				c, err := in.Next(ctx)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					return nil
				}
				if err != nil {
					return err
				}
				m, err := mailbox.Parse(c.Data)
				if err != nil {
					return err
				}
				fmt.Println(m.ID)
				if _, err := in.Finish(c, mailbox.FlagDone, ""); err != nil {
					return err
				}
			}
		},
	})
}

func dialArgs(url string) (*Team, error) {
	cfg, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	return Dial(context.Background(), cfg, nil)
}

// TestProcessesAppend: four processes append to the ledger at once; the
// stream holds one chain, every batch whole and once.
func TestProcessesAppend(t *testing.T) {
	s := natstest.Start(t)
	const procs, each = 4, 50
	wait := proctest.Start(t, procs, "append", func(i int) string { return fmt.Sprintf("%s %d p%d", s.URL(), each, i) })
	wait()
	team, err := dialArgs(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer team.Close()
	dir := t.TempDir()
	r := &mailbox.Root{Dir: dir, Transport: team}
	path, err := r.LedgerPath()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := mailbox.Verify(f)
	if err != nil {
		t.Fatalf("the ledger's copy: %v", err)
	}
	if res.Lines != procs*each*2 {
		t.Errorf("%d lines, want %d", res.Lines, procs*each*2)
	}
	f.Seek(0, 0)
	var prev mailbox.Entry
	err = mailbox.ReadEntries(f, func(line int, e mailbox.Entry) error {
		if e.Event == "delivered" && (prev.Event != "decision" || prev.Agent != e.Agent || prev.Reason != e.Reason) {
			return fmt.Errorf("line %d: a batch split: %+v after %+v", line, e, prev)
		}
		prev = e
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestProcessesClaim: four processes claim from one inbox at once; each of
// 100 messages is claimed by exactly one of them.
func TestProcessesClaim(t *testing.T) {
	s := natstest.Start(t)
	team, err := dialArgs(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer team.Close()
	const n = 100
	for i := range n {
		m := note(i)
		if _, err := team.Put(m, m.Marshal(), t0); err != nil {
			t.Fatal(err)
		}
	}
	outs := proctest.Start(t, 4, "claim", func(int) string { return s.URL() })()
	seen := map[string]int{}
	for _, out := range outs {
		for _, id := range strings.Fields(out) {
			seen[id]++
		}
	}
	if len(seen) != n {
		t.Errorf("%d messages claimed, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s claimed %d times", id, k)
		}
	}
}
