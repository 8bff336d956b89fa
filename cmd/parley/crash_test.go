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

// stopAgents asks each agent to stop, as Ctrl-C does, and waits for it.
func stopAgents(procs map[string]*exec.Cmd) {
	for _, p := range procs {
		p.Process.Signal(os.Interrupt)
		p.Wait()
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
			names := []string{"inventory", "procurement", "vendor-a", "vendor-b", "vendor-c", "finance"}
			procs := map[string]*exec.Cmd{}
			logs := &lineLog{} // written by every child's output copier
			for _, n := range names {
				procs[n] = startAgent(t, bin, root, n, logs)
			}
			defer stopAgents(procs)
			stock := filepath.Join(root, "inventory", "stock.toml")
			data, _ := os.ReadFile(stock)
			// As an editor that saves by rename would: the agent never reads it half-written.
			os.WriteFile(stock+".tmp", bytes.Replace(data, []byte("stock = 400"), []byte("stock = 40"), 1), 0o644)
			os.Rename(stock+".tmp", stock)

			// Each agent in turn, killed -9 at a random moment of its work —
			// right after its k-th ledger line, k drawn at random, when it is
			// most likely in the middle of handling a message — and started
			// again.
			for _, i := range rng.Perm(len(names)) {
				victim := names[i]
				k := 1 + rng.IntN(4)
				awaitLines(root, victim, k, 2*time.Second)
				procs[victim].Process.Signal(syscall.SIGKILL)
				procs[victim].Wait()
				procs[victim] = startAgent(t, bin, root, victim, logs)
			}
			entries := awaitLedger(t, root, time.Minute, func(es []mailbox.Entry) bool {
				return count(es, "decision", "PAID", "allow") > 0 && countDelivered(es, "human", "NOTIFY") > 0
			}, logs)
			t.Logf("recovered: %d, torn: %d", strings.Count(logs.String(), "handling again"), count(entries, "repaired", "", ""))
			if n := count(entries, "decision", "ORDER", "allow"); n != 1 {
				t.Errorf("%d orders allowed, want exactly 1", n)
			}
			if n := count(entries, "decision", "PAID", "allow"); n != 1 {
				t.Errorf("%d payments allowed, want exactly 1", n)
			}
			if n := countDelivered(entries, "human", "NOTIFY"); n != 1 {
				t.Errorf("the human was told %d times, want once", n)
			}
			f, err := os.Open(filepath.Join(root, mailbox.LedgerFile))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := mailbox.Verify(f); err != nil {
				t.Errorf("ledger verify: %v", err)
			}
		})
	}
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
