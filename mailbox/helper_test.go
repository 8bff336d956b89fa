package mailbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Tests that cross processes re-execute the test binary as a helper (the
// os/exec tests' pattern): PARLEY_TEST_HELPER names what the helper does.
func TestMain(m *testing.M) {
	if h := os.Getenv("PARLEY_TEST_HELPER"); h != "" {
		if err := runHelper(h, strings.Fields(os.Getenv("PARLEY_TEST_ARGS"))); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// extraHelpers are helpers defined beside the tests that use them.
var extraHelpers = map[string]func(args []string) error{}

func runHelper(name string, args []string) error {
	if h, ok := extraHelpers[name]; ok {
		return h(args)
	}
	switch name {
	case "append": // PATH COUNT AGENT
		n, _ := strconv.Atoi(args[1])
		l, err := OpenLedger(args[0], nil)
		if err != nil {
			return err
		}
		defer l.Close()
		waitGo()
		for i := 0; i < n; i++ {
			if _, err := l.Append(Entry{Agent: args[2], Event: "test", Reason: strconv.Itoa(i)}); err != nil {
				return err
			}
		}
		return nil
	case "claim": // ROOTDIR AGENT: claim until new/ stays empty, print names won
		r, err := OpenRoot(args[0], nil)
		if err != nil {
			return err
		}
		defer r.Close()
		waitGo()
		out := bufio.NewWriter(os.Stdout)
		defer out.Flush()
		return claimAll(r, args[1], func(c *Claimed) { fmt.Fprintln(out, c.Message.ID) })
	case "watch-claim": // ROOTDIR AGENT COUNT: watch and claim until COUNT were seen by anyone
		r, err := OpenRoot(args[0], nil)
		if err != nil {
			return err
		}
		defer r.Close()
		total, _ := strconv.Atoi(args[2])
		out := bufio.NewWriter(os.Stdout)
		defer out.Flush()
		return watchClaim(r, args[1], total, func(c *Claimed) { fmt.Fprintln(out, c.Message.ID) })
	}
	return fmt.Errorf("unknown helper %q", name)
}

// waitGo blocks until the parent closes the helper's standard input, so
// that helper processes start their work together.
func waitGo() { _, _ = io.Copy(io.Discard, os.Stdin) }

// claimAll claims every message waiting in agent's new/ and finishes it.
func claimAll(r *Root, agent string, won func(*Claimed)) error {
	for {
		names, err := r.Inbox(agent).Pending()
		if err != nil {
			return err
		}
		if len(names) == 0 {
			return nil
		}
		for _, n := range names {
			c, err := r.Claim(agent, n)
			if errors.Is(err, ErrClaimed) {
				continue
			}
			if err != nil {
				return err
			}
			won(c)
			if err := r.Finish(c, FlagDone, ""); err != nil {
				return err
			}
		}
	}
}

// watchClaim watches agent's new/ and claims what appears, until the
// ledger shows total claims by anyone.
func watchClaim(r *Root, agent string, total int, won func(*Claimed)) error {
	w, err := Watch(r.Inbox(agent).Path("new"), WatchOptions{Rescan: 50 * time.Millisecond})
	if err != nil {
		return err
	}
	defer w.Close()
	deadline := time.Now().Add(60 * time.Second)
	for countEvents(r, EventClaimed) < total {
		if time.Now().After(deadline) {
			return errors.New("watch-claim: gave up after 60s")
		}
		// Others may claim the rest: look at the ledger now and then.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		names, err := w.Next(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		if err != nil {
			return err
		}
		for _, n := range names {
			c, err := r.Claim(agent, n)
			if errors.Is(err, ErrClaimed) {
				continue
			}
			if errors.Is(err, ErrBusy) {
				w.Again(n, 5*time.Millisecond)
				continue
			}
			if err != nil {
				return err
			}
			won(c)
			if err := r.Finish(c, FlagDone, ""); err != nil {
				return err
			}
		}
	}
	return nil
}

func countEvents(r *Root, event string) int {
	f, err := os.Open(r.Dir + "/" + LedgerFile)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	_ = ReadEntries(f, func(_ int, e Entry) error {
		if e.Event == event {
			n++
		}
		return nil
	})
	return n
}

// helpers starts n helper processes and returns a function that lets them
// go and waits for them, returning each one's standard output.
func helpers(t testing.TB, n int, name string, args func(i int) string) func() []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmds := make([]*exec.Cmd, n)
	gos := make([]io.WriteCloser, n)
	outs := make([]*strings.Builder, n)
	for i := range cmds {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "PARLEY_TEST_HELPER="+name, "PARLEY_TEST_ARGS="+args(i))
		if gos[i], err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		outs[i] = &strings.Builder{}
		cmd.Stdout = outs[i]
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	return func() []string {
		for _, g := range gos {
			g.Close()
		}
		res := make([]string, n)
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Fatalf("helper %d: %v", i, err)
			}
			res[i] = outs[i].String()
		}
		return res
	}
}
