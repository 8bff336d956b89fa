package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
)

// peakRSS reads a process's peak resident set (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Skip("no /proc here:", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Skip("no VmHWM in /proc/PID/status")
	return 0
}

// TestStrangersKeepTheAgentSmall feeds a running parley agent 50 MB files
// (in new/, cur/ and drop/), a file just under the size limit that is
// one long line, and links to /dev/zero, then a good request: it answers
// the request, sets every one of them aside, and its peak resident memory
// stays under 64 MB. (Before, a link to /dev/zero grew an agent to 16 GB,
// and 50 MB bodies left it at about 200 MB.)
func TestStrangersKeepTheAgentSmall(t *testing.T) {
	bin := parleyBin(t)
	root := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command(bin, "--root", root, "init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	r, err := mailbox.OpenRoot(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fin := r.Inbox("finance")
	big := func(path string) {
		// Sparse: 50 MB that cost no disk, and read as zeros.
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString("From: procurement\nTo: finance\nVerb: NOTIFY\n\n"); err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(50 << 20); err != nil {
			t.Fatal(err)
		}
	}
	strangers := []string{
		fin.Path("new", "1.big.host"), fin.Path("new", "2.big.host"), fin.Path("cur", "3.big.host:2,"), fin.Path("drop", "big.msg"),
	}
	for _, p := range strangers {
		big(p)
	}
	for _, p := range []string{fin.Path("new", "4.zero.host"), fin.Path("drop", "zero.msg")} {
		if err := os.Symlink("/dev/zero", p); err != nil {
			t.Fatal(err)
		}
		strangers = append(strangers, p)
	}
	long := "From: procurement\nTo: finance\nVerb: NOTIFY\n\n" + strings.Repeat("x", mailbox.DefaultMaxMessageSize-100) + "\n"
	if err := os.WriteFile(fin.Path("new", "5.long.host"), []byte(long), 0o644); err != nil {
		t.Fatal(err)
	}
	strangers = append(strangers, fin.Path("new", "5.long.host"))

	logs := &lineLog{}
	agent := startAgent(t, bin, root, "finance", logs)
	defer func() {
		if agent.ProcessState == nil {
			agent.Process.Signal(os.Interrupt)
			agent.Wait()
		}
	}()
	m := &mailbox.Message{Version: mailbox.Version, ID: "<small@test>", Date: time.Now(), From: "procurement", To: "finance", Thread: "small",
		Verb: mailbox.Request, Item: "widget", Quantity: 5, Amount: mailbox.MustMoney("100.00 USD")}
	if _, err := r.Deliver("procurement", m); err != nil {
		t.Fatal(err)
	}
	awaitLedger(t, root, 30*time.Second, func(es []mailbox.Entry) bool {
		rejected := 0
		for _, e := range es {
			if e.Event == mailbox.EventRejected {
				rejected++
			}
		}
		return rejected >= len(strangers) && countDelivered(es, "procurement", "APPROVED") == 1
	}, logs)
	peak := peakRSS(t, agent.Process.Pid)
	t.Logf("peak resident memory of the agent: %.1f MB (VmHWM)", float64(peak)/(1<<20))
	if peak > 64<<20 {
		t.Errorf("the agent's peak resident memory is %d MB, want under 64 MB", peak>>20)
	}
	agent.Process.Signal(os.Interrupt)
	agent.Wait()
	errs, _ := filepath.Glob(fin.Path("rejected", "*.err"))
	if got, want := len(errs), len(strangers); got != want {
		t.Errorf("%d files set aside with a reason, want %d\n%s", got, want, logs.String())
	}
}
