package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
)

// parleyBin returns a path that runs this test binary as the parley
// command (testscript.Main dispatches on the program's name).
func parleyBin(tb testing.TB) string {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	link := filepath.Join(tb.TempDir(), "parley")
	if err := os.Symlink(exe, link); err != nil {
		tb.Fatal(err)
	}
	return link
}

// startAgent starts parley agent name as a process of its own.
func startAgent(tb testing.TB, bin, root, name string, logs *lineLog) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command(bin, "--root", root, "agent", name)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	return cmd
}

// stopAgents asks every agent to stop, as Ctrl-C does, and waits for them.
// One already waited for is passed over.
func stopAgents(procs map[string]*exec.Cmd) {
	for _, p := range procs {
		if p.ProcessState == nil {
			p.Process.Signal(os.Interrupt)
		}
	}
	for _, p := range procs {
		if p.ProcessState == nil {
			p.Wait()
		}
	}
}

// TestCrashes kills -9 each agent in turn at random moments of a deal and
// starts it again: the deal still completes with exactly one order and one
// payment, and the ledger verifies.
func TestCrashes(t *testing.T) {
	bin := parleyBin(t)
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			root := filepath.Join(t.TempDir(), "root")
			if out, err := exec.Command(bin, "--root", root, "init").CombinedOutput(); err != nil {
				t.Fatalf("init: %v\n%s", err, out)
			}
			procs, logs := startDeal(t, bin, root)

			// Each agent in turn, killed -9 at a random moment of its work —
			// right after its k-th ledger line, k drawn at random, when it is
			// most likely in the middle of handling a message — and started
			// again.
			for _, i := range rng.Perm(len(dealAgents)) {
				victim := dealAgents[i]
				k := 1 + rng.IntN(4)
				awaitLines(root, victim, k, 2*time.Second)
				procs[victim].Process.Signal(syscall.SIGKILL)
				procs[victim].Wait()
				procs[victim] = startAgent(t, bin, root, victim, logs)
			}
			r, err := mailbox.OpenRoot(root, nil)
			if err != nil {
				t.Fatal(err)
			}
			entries := awaitRoot(t, r, time.Minute, dealDone, logs)
			t.Logf("recovered: %d, torn: %d", strings.Count(logs.String(), "handling again"), count(entries, "repaired", "", ""))
			checkOnce(t, r, entries)
		})
	}
}

var dealAgents = []string{"inventory", "procurement", "vendor-a", "vendor-b", "vendor-c", "finance"}

// startDeal starts each agent of the deal as a process of its own on root
// (stopped when the test ends: procs may be changed meanwhile), and lowers
// the stock that starts it.
func startDeal(t *testing.T, bin, root string) (map[string]*exec.Cmd, *lineLog) {
	t.Helper()
	logs := &lineLog{} // written by every child's output copier
	procs := map[string]*exec.Cmd{}
	for _, n := range dealAgents {
		procs[n] = startAgent(t, bin, root, n, logs)
	}
	t.Cleanup(func() { stopAgents(procs) })
	lowerStock(t, root)
	return procs, logs
}

// lowerStock sets the inventory's stock below its reorder point, as a
// person saving the file from an editor would.
func lowerStock(t *testing.T, root string) {
	t.Helper()
	stock := filepath.Join(root, "inventory", "stock.toml")
	data, err := os.ReadFile(stock)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(stock+".tmp", bytes.Replace(data, []byte("stock = 400"), []byte("stock = 40"), 1), 0o644)
	if err := os.Rename(stock+".tmp", stock); err != nil {
		t.Fatal(err)
	}
}

// dealDone says the deal is paid and the human told.
func dealDone(es []mailbox.Entry) bool {
	return count(es, "decision", "PAID", "allow") > 0 && countDelivered(es, "human", "NOTIFY") > 0
}

// checkOnce checks a finished deal: one order, one payment, the human told
// once, and the ledger's copy verifies.
func checkOnce(t *testing.T, r *mailbox.Root, es []mailbox.Entry) {
	t.Helper()
	if n := count(es, "decision", "ORDER", "allow"); n != 1 {
		t.Errorf("%d orders allowed, want exactly 1", n)
	}
	if n := count(es, "decision", "PAID", "allow"); n != 1 {
		t.Errorf("%d payments allowed, want exactly 1", n)
	}
	if n := countDelivered(es, "human", "NOTIFY"); n != 1 {
		t.Errorf("the human was told %d times, want once", n)
	}
	path, err := r.LedgerPath()
	if err != nil {
		t.Fatal(err)
	}
	// Verified under the ledger's lock, as a process reads it: the agents
	// still run, and a reader without the lock can see a line half
	// written (a torn tail a crash left is set aside, as any append would).
	l, err := mailbox.OpenLedger(path, nil, nil)
	if err != nil {
		t.Errorf("ledger verify: %v", err)
		return
	}
	l.Close()
}

// awaitLines waits until agent has written k ledger lines, or for at most
// limit (an agent with less to do is killed at the end of it).
func awaitLines(root, agent string, k int, limit time.Duration) {
	r, err := mailbox.OpenRoot(root, nil)
	if err != nil {
		return
	}
	awaitRootLines(r, agent, k, limit)
}

// awaitRootLines is awaitLines on r, whatever its transport.
func awaitRootLines(r *mailbox.Root, agent string, k int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		path, _ := r.LedgerPath()
		data, _ := os.ReadFile(path)
		if bytes.Count(data, []byte(`"agent":"`+agent+`"`)) >= k {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// awaitLedger reads the ledger until done says so, for at most limit.
func awaitLedger(t *testing.T, root string, limit time.Duration, done func([]mailbox.Entry) bool, logs *lineLog) []mailbox.Entry {
	t.Helper()
	r, err := mailbox.OpenRoot(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	return awaitRoot(t, r, limit, done, logs)
}

// awaitRoot is awaitLedger on r, whatever its transport.
func awaitRoot(t *testing.T, r *mailbox.Root, limit time.Duration, done func([]mailbox.Entry) bool, logs *lineLog) []mailbox.Entry {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		es, err := readLedger(r)
		if err != nil {
			t.Fatal(err)
		}
		if done(es) {
			return es
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deal did not complete in %s; the agents said:\n%s", limit, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settled says every message delivered to an agent (the human reads its
// own) has been finished: done, failed or set aside.
func settled(es []mailbox.Entry) bool {
	delivered, finished := map[string]bool{}, map[string]bool{}
	for _, e := range es {
		switch e.Event {
		case mailbox.EventDelivered:
			if e.To != "human" {
				delivered[e.MsgID] = true
			}
		case mailbox.EventDone, mailbox.EventFailed, mailbox.EventRejected:
			finished[e.MsgID] = true // its receiver may record it before its sender records the delivery
		}
	}
	for id := range delivered {
		if !finished[id] {
			return false
		}
	}
	return true
}

func count(es []mailbox.Entry, event, verb, decision string) int {
	n := 0
	for _, e := range es {
		if e.Event == event && e.Verb == verb && e.Decision == decision {
			n++
		}
	}
	return n
}

func countDelivered(es []mailbox.Entry, to, verb string) int {
	seen := map[string]bool{}
	for _, e := range es {
		if e.Event == mailbox.EventDelivered && e.To == to && e.Verb == verb && !strings.HasPrefix(e.MsgID, "<drop") {
			seen[e.MsgID] = true
		}
	}
	return len(seen)
}
