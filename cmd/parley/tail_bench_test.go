package main

import (
	"bufio"
	"bytes"
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-dev/parley/mailbox"
)

// countLines counts the lines written to it and says when it has seen n.
type countLines struct {
	n, want int64
	done    chan struct{}
}

func (c *countLines) Write(p []byte) (int, error) {
	if atomic.AddInt64(&c.n, int64(bytes.Count(p, []byte("\n")))) >= c.want {
		select {
		case <-c.done:
		default:
			close(c.done)
		}
	}
	return len(p), nil
}

// BenchmarkTailFollow has tail -f follow a ledger that another writer
// appends to as fast as it can, durably (faster than 1,000 entries a
// second), and reports the rate tail kept and how far behind it was when
// the writer stopped.
func BenchmarkTailFollow(b *testing.B) {
	path := filepath.Join(b.TempDir(), mailbox.LedgerFile)
	l, err := mailbox.OpenLedger(path, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	f, err := mailbox.OpenLedgerReader(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	out := &countLines{want: int64(b.N), done: make(chan struct{})}
	t := &tailer{out: bufio.NewWriter(out), now: time.Now}
	ctx, cancel := context.WithCancel(context.Background())
	followed := make(chan error, 1)
	go func() { followed <- t.follow(ctx, f) }()
	m := &mailbox.Message{ID: "<x@parley>", From: "procurement", To: "vendor-b", Thread: "restock-widget-1", Verb: mailbox.Counter,
		Item: "widget", Quantity: 500, UnitPrice: mailbox.MustMoney("4.80 USD"), Subject: "COUNTER: 500 widget at 4.80 USD each"}
	e := mailbox.MessageEntry("procurement", mailbox.EventDelivered, m)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := l.Append(e); err != nil {
			b.Fatal(err)
		}
	}
	wrote := time.Now()
	<-out.done
	behind := time.Since(wrote)
	b.StopTimer()
	cancel()
	if err := <-followed; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(behind.Microseconds())/1000, "ms-behind-at-end")
}
