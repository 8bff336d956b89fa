package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-dev/parley/agents"
	"github.com/parley-dev/parley/mailbox"
)

// startUp starts parley up on root as a process of its own.
func startUp(t *testing.T, bin, root string, logs *lineLog) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "--root", root, "up")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		}
	})
	return cmd
}

// running lists the agents of root whose lock a process holds.
func running(root string, names []string) []string {
	var out []string
	for _, n := range names {
		if agents.Alive(filepath.Join(root, n, "state", "lock")).Running {
			out = append(out, n)
		}
	}
	return out
}

// alive says whether the process pid runs (a zombie does not).
func alive(pid string) bool {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: the comm may hold spaces, the state follows
	// the last ')'.
	rest := data[bytes.LastIndexByte(data, ')')+1:]
	return len(bytes.TrimSpace(rest)) > 0 && bytes.TrimSpace(rest)[0] != 'Z'
}

// TestUpKilled kills -9 parley up in the middle of a deal: every agent it
// started is gone within 2 seconds (the kernel signals them), a second
// parley up while the first ran said which process runs the team and
// exited non-zero, and a fresh parley up finishes the deal exactly once.
func TestUpKilled(t *testing.T) {
	bin := parleyBin(t)
	root, team := initTeam(t, bin)
	names := team.Names()
	logs := &lineLog{}
	up := startUp(t, bin, root, logs)
	deadline := time.Now().Add(30 * time.Second)
	for len(running(root, names)) < len(names) {
		if time.Now().After(deadline) {
			t.Fatalf("only %v run after 30s:\n%s", running(root, names), logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	pids := map[string]string{}
	for _, n := range names {
		pids[n] = agents.Alive(filepath.Join(root, n, "state", "lock")).PID
	}

	second := exec.Command(bin, "--root", root, "up")
	out, err := second.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitError {
		t.Fatalf("a second parley up: %v, want exit status %d\n%s", err, exitError, out)
	}
	if want := "pid " + strconv.Itoa(up.Process.Pid); !strings.Contains(string(out), want) {
		t.Errorf("a second parley up says %q, want it to name %q", out, want)
	}

	lowerStock(t, root)
	awaitLines(root, "procurement", 3, 20*time.Second) // mid-deal
	up.Process.Signal(syscall.SIGKILL)
	up.Wait()
	killed := time.Now()
	for {
		left := running(root, names)
		for _, n := range names {
			if alive(pids[n]) && !slices.Contains(left, n) {
				left = append(left, n+" (pid "+pids[n]+")")
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Since(killed) > 2*time.Second {
			t.Fatalf("2s after kill -9 of parley up, still running: %v", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("every agent gone %v after kill -9 of parley up", time.Since(killed).Round(time.Millisecond))

	again := startUp(t, bin, root, logs)
	entries := awaitLedger(t, root, time.Minute, func(es []mailbox.Entry) bool { return dealDone(es) && settled(es) }, logs)
	again.Process.Signal(os.Interrupt)
	again.Wait()
	r, err := mailbox.OpenRoot(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkOnce(t, r, entries)
}

// initTeam makes a root with parley init, run as a user would, and returns
// it with its team.
func initTeam(t *testing.T, bin string) (root string, team *agents.Team) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command(bin, "--root", root, "init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	team, err := agents.LoadTeam(filepath.Join(root, agents.TeamFile))
	if err != nil {
		t.Fatal(err)
	}
	return root, team
}
