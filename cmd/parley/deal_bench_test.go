package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/natstest"
	"github.com/parley-dev/parley/mailbox"
)

// BenchmarkDeal runs whole deals through real processes, on files and on
// JetStream side by side (an embedded server on loopback, default sync):
// six agents, each its own process, from the inventory's REQUEST to the
// human's notice. The figure is parley's own time, from the ledger's
// timestamps; the inventory's wait for its next look at the stock file (its
// tick) is deliberate and left out. It also reports the resident memory of
// one agent process after the deals.
func BenchmarkDeal(b *testing.B) {
	for _, kind := range []string{"files", "jetstream"} {
		b.Run(kind, func(b *testing.B) { benchDeal(b, kind) })
	}
}

func benchDeal(b *testing.B, kind string) {
	bin := parleyBin(b)
	root := filepath.Join(b.TempDir(), "root")
	if out, err := exec.Command(bin, "--root", root, "init").CombinedOutput(); err != nil {
		b.Fatalf("init: %v\n%s", err, out)
	}
	unattended(b, root)
	var r *mailbox.Root
	var err error
	if kind == "jetstream" {
		r = onNATS(b, root, natstest.Start(b).URL()+"?stream=BENCH")
	} else if r, err = mailbox.OpenRoot(root, nil); err != nil {
		b.Fatal(err)
	}
	logs := &lineLog{}
	procs := map[string]*exec.Cmd{}
	for _, n := range []string{"inventory", "procurement", "vendor-a", "vendor-b", "vendor-c", "finance"} {
		procs[n] = startAgent(b, bin, root, n, logs)
	}
	defer stopAgents(procs)
	stock := filepath.Join(root, "inventory", "stock.toml")
	orig, _ := os.ReadFile(stock)
	low := bytes.Replace(orig, []byte("stock = 400"), []byte("stock = 40"), 1)
	var own time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// The goods of the last deal arrived; once the inventory has seen
		// it, the stock falls again.
		os.WriteFile(stock, orig, 0o644)
		if err := awaitNeedClosed(b.Context(), r, "inventory", "widget"); err != nil {
			b.Fatal(err)
		}
		before, err := readLedger(r)
		if err != nil {
			b.Fatal(err)
		}
		os.WriteFile(stock, low, 0o644)
		var asked, told time.Time
		deadline := time.Now().Add(30 * time.Second)
		for told.IsZero() {
			es, err := readLedger(r)
			if err != nil {
				b.Fatal(err)
			}
			asked, told = time.Time{}, time.Time{}
			for _, e := range es[len(before):] {
				if e.Event == mailbox.EventDelivered && e.Verb == "REQUEST" && e.From == "inventory" {
					asked = e.Time
				}
				if e.Event == mailbox.EventDelivered && e.Verb == "NOTIFY" && e.To == "human" && !asked.IsZero() && e.Time.After(asked) {
					told = e.Time
				}
			}
			if time.Now().After(deadline) {
				b.Fatalf("deal %d did not complete; the agents said:\n%s", i, logs.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		own += told.Sub(asked)
	}
	b.StopTimer()
	es, _ := readLedger(r)
	if n := countDelivered(es, "human", "NOTIFY"); n < b.N {
		b.Fatalf("%d deals, %d notices", b.N, n)
	}
	b.ReportMetric(float64(own.Milliseconds())/float64(b.N), "ms/deal")
	b.ReportMetric(rssMB(b, procs["procurement"].Process.Pid), "MB-rss-procurement")
}

// unattended edits root's policy so that many deals run in a day with no
// person: no sign-off, no budget, daily or monthly limit, rate or breaker
// in the way. Each setting must be there, as parley init writes it.
func unattended(tb testing.TB, root string) {
	tb.Helper()
	pol := filepath.Join(root, "policy.toml")
	data, err := os.ReadFile(pol)
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range [][2]string{{`approval_over = "2500.00 USD"`, `approval_over = "1000000000.00 USD"`},
		{`per_agent_per_day = "50000.00 USD"`, `per_agent_per_day = "1000000000.00 USD"`},
		{`per_agent_per_month = "250000.00 USD"`, `per_agent_per_month = "1000000000.00 USD"`},
		{`amount = "100000.00 USD"`, `amount = "1000000000.00 USD"`}, {`messages_per_minute = 300`, `messages_per_minute = 0`},
		{`max_errors = 10`, `max_errors = 0`}} {
		if !bytes.Contains(data, []byte(r[0])) {
			tb.Fatalf("policy.toml has no %s", r[0])
		}
		data = bytes.Replace(data, []byte(r[0]), []byte(r[1]), 1)
	}
	if err := os.WriteFile(pol, data, 0o644); err != nil {
		tb.Fatal(err)
	}
}

func rssMB(b *testing.B, pid int) float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	return 0
}
