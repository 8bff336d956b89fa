package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkLedgerScale is issue 18's table, side by side in one run: each
// command a person runs, an agent's start and one whole deal, as real
// processes, on a root with an empty ledger and one of PARLEY_BENCH_LINES
// generated lines (default 1,000,000; the 10,000,000 takes a long
// while to make, so PARLEY_BENCH_ROOT names a folder where the big root is
// kept between runs). Each reports its time a run and the peak resident
// memory of its process (MB-peak); the deal, the largest of all its agents.
func BenchmarkLedgerScale(b *testing.B) {
	lines := 1_000_000
	if s := os.Getenv("PARLEY_BENCH_LINES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("PARLEY_BENCH_LINES=%q: %v", s, err)
		}
		lines = n
	}
	bin := parleyBin(b)
	for _, size := range []struct {
		name  string
		lines int
	}{{"empty", 0}, {fmt.Sprintf("%d-lines", lines), lines}} {
		root := scaleRoot(b, bin, size.lines)
		thread, seq := "restock-widget-1", "1"
		if size.lines > 0 {
			thread, seq = lastThread(b, bin, root), strconv.Itoa(size.lines/2)
		}
		for _, c := range []struct{ name, args string }{
			{"status", "status"}, {"thread", "thread " + thread}, {"why", "why " + seq}, {"inbox", "inbox procurement"},
			{"tail", "tail -n 20"}, {"books", "books"}, {"verify", "ledger verify"},
		} {
			b.Run(size.name+"/"+c.name, func(b *testing.B) {
				var peak int64
				for b.Loop() {
					cmd := exec.Command(bin, append([]string{"--root", root}, strings.Fields(c.args)...)...)
					// On the empty ledger thread and why find nothing, and say so.
					if out, err := cmd.CombinedOutput(); err != nil && !(size.lines == 0 && (c.name == "thread" || c.name == "why")) {
						b.Fatalf("parley %s: %v\n%s", c.args, err, out)
					}
					peak = max(peak, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
				}
				b.ReportMetric(float64(peak)/1024, "MB-peak")
			})
		}
		b.Run(size.name+"/agent-start", func(b *testing.B) {
			var peak int64
			for b.Loop() {
				peak = max(peak, agentReady(b, bin, root))
			}
			b.ReportMetric(float64(peak)/1024, "MB-peak")
		})
		b.Run(size.name+"/deal", func(b *testing.B) {
			var took time.Duration
			var peak int64
			for b.Loop() {
				d, p := demoDeal(b, bin, root)
				took, peak = took+d, max(peak, p)
			}
			b.ReportMetric(float64(took.Milliseconds())/float64(b.N), "ms/deal")
			b.ReportMetric(float64(peak)/1024, "MB-peak")
		})
	}
}

// scaleRoot is a root of lines generated lines, checkpointed, made once
// (kept under PARLEY_BENCH_ROOT when set).
func scaleRoot(b *testing.B, bin string, lines int) string {
	b.Helper()
	dir := b.TempDir()
	if keep := os.Getenv("PARLEY_BENCH_ROOT"); keep != "" && lines > 0 {
		dir = filepath.Join(keep, strconv.Itoa(lines))
	}
	root := filepath.Join(dir, "mailboxes")
	if _, err := os.Stat(filepath.Join(root, "made")); err == nil {
		return root
	}
	os.RemoveAll(root)
	run := func(args ...string) {
		if out, err := exec.Command(bin, append([]string{"--root", root}, args...)...).CombinedOutput(); err != nil {
			b.Fatalf("parley %v: %v\n%s", args, err, out)
		}
	}
	run("init")
	if lines > 0 {
		run("ledger", "generate", "--lines", strconv.Itoa(lines))
		run("ledger", "seal")
		run("ledger", "reindex")
	}
	if err := os.WriteFile(filepath.Join(root, "made"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return root
}

// lastThread is the thread of the ledger's last line.
func lastThread(b *testing.B, bin, root string) string {
	b.Helper()
	out, err := exec.Command(bin, "--root", root, "tail", "-n", "1", "--json").Output()
	if err != nil {
		b.Fatal(err)
	}
	var x struct {
		Thread string `json:"thread"`
	}
	if err := json.Unmarshal(out, &x); err != nil || x.Thread == "" {
		b.Fatalf("the last line %s names no thread: %v", out, err)
	}
	return x.Thread
}

// agentReady starts procurement and waits for it to say it runs (its
// inbox open, its first tick next); it returns the agent's peak resident
// memory, stopped.
func agentReady(b *testing.B, bin, root string) int64 {
	b.Helper()
	cmd := exec.Command(bin, "--root", root, "agent", "procurement")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() && !strings.Contains(sc.Text(), "is running") {
	}
	cmd.Process.Signal(os.Interrupt)
	for sc.Scan() {
	}
	cmd.Wait()
	return cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
}

var dealTook = regexp.MustCompile(`policy decisions in ([0-9.]+) s`)

// demoDeal plays parley demo's deal and returns how long the deal took,
// as the demo says (from the request to the human's notice and every
// agent done), and the highest peak resident memory (VmHWM) of the demo
// and its agents, read from /proc while they run.
func demoDeal(b *testing.B, bin, root string) (time.Duration, int64) {
	b.Helper()
	done := make(chan struct{})
	peaks := make(chan int64)
	go func() {
		var peak int64
		for {
			peak = max(peak, peakOf(root))
			select {
			case <-done:
				peaks <- peak
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	out, err := exec.Command(bin, "--root", root, "demo").CombinedOutput()
	close(done)
	peak := <-peaks
	if err != nil {
		b.Fatalf("parley demo: %v\n%s", err, out)
	}
	m := dealTook.FindSubmatch(out)
	if m == nil {
		b.Fatalf("parley demo said no time:\n%s", out)
	}
	s, _ := strconv.ParseFloat(string(m[1]), 64)
	return time.Duration(s * float64(time.Second)), peak
}

// peakOf is the highest VmHWM, in kB, of the processes running on root.
func peakOf(root string) int64 {
	var peak int64
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), "\x00"+root+"\x00") {
			continue
		}
		status, err := os.ReadFile(filepath.Join(p, "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				peak = max(peak, kb)
			}
		}
	}
	return peak
}
