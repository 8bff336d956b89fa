package jsteam

// The transports side by side, in one run (make bench): the root's
// Maildirs and ledger.jsonl, and a JetStream team on an embedded server
// (loopback, file storage). A hop is what an agent's message costs, whole:
// Root.Deliver (put, and the ledger's delivered line), the recipient's
// claim as its runtime waits for it (woken by fsnotify, or by the pull
// request's answer; the claimed line), and Finish (the done line).

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/parley-dev/parley/internal/natstest"
	"github.com/parley-dev/parley/mailbox"
)

// kinds are the transports compared: files (fsync at each step), and a
// JetStream server as nats-server runs by default (its file store synced
// every two minutes: a write is safe on a cluster's other servers, or on
// this one's disk within two minutes) and with sync_interval: always.
var kinds = []string{"files", "jetstream", "jetstream-sync"}

// rootOn opens a root on the transport kind, with inboxes for the sender
// and the recipient.
func rootOn(b *testing.B, kind string) *mailbox.Root {
	b.Helper()
	dir := b.TempDir()
	for _, a := range []string{"procurement", "finance"} {
		if err := (mailbox.Maildir{Dir: filepath.Join(dir, a)}).Create(); err != nil {
			b.Fatal(err)
		}
	}
	r, err := mailbox.OpenRoot(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	if kind != "files" {
		s := natstest.Start(b, kind == "jetstream-sync")
		cfg, err := ParseURL(s.URL())
		if err != nil {
			b.Fatal(err)
		}
		if r.Transport, err = Dial(context.Background(), cfg, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() { r.Close() })
	return r
}

// hop opens a root on kind and the recipient's inbox, for claiming.
func hop(b *testing.B, kind string) (*mailbox.Root, *mailbox.Claims) {
	b.Helper()
	r := rootOn(b, kind)
	claims, err := r.Claims("finance")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { claims.Close() })
	return r, claims
}

// BenchmarkHop sends one message at a time and waits for the recipient to
// claim it: msgs/s is one over the hop's mean latency; p50 and p99 are
// the hop's latency, from Deliver to the claim in hand.
func BenchmarkHop(b *testing.B) {
	for _, name := range kinds {
		b.Run(name, func(b *testing.B) {
			r, claims := hop(b, name)
			ctx := context.Background()
			lat := make([]time.Duration, 0, b.N)
			i := 0
			for b.Loop() {
				i++
				m := note(i)
				start := time.Now()
				if _, err := r.Deliver("procurement", m); err != nil {
					b.Fatal(err)
				}
				c, err := claims.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
				if c.Message.ID != m.ID {
					b.Fatalf("claimed %s, want %s", c.Message.ID, m.ID)
				}
				if err := r.Finish(c, mailbox.FlagDone, ""); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkThroughput is one sender and one recipient at once, each in its
// own goroutine, the sender never waiting: messages through per second.
func BenchmarkThroughput(b *testing.B) {
	for _, name := range kinds {
		b.Run(name, func(b *testing.B) {
			r, claims := hop(b, name)
			done := make(chan error, 1)
			b.ResetTimer()
			go func() {
				for range b.N {
					c, err := claims.Next(context.Background())
					if err == nil {
						err = r.Finish(c, mailbox.FlagDone, "")
					}
					if err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for i := range b.N {
				if _, err := r.Deliver("procurement", note(i)); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkLedger appends one line at a time; takes one policy transaction
// (read what is new, decide, append) at a time; and reads a ledger of
// 10,000 lines from its start, as an agent starting on it does.
func BenchmarkLedger(b *testing.B) {
	for _, name := range kinds {
		journal := func(b *testing.B) mailbox.Journal {
			j, err := rootOn(b, name).Journal()
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { j.Close() })
			return j
		}
		b.Run("append/"+name, func(b *testing.B) {
			j := journal(b)
			for b.Loop() {
				if _, err := j.Append(mailbox.Entry{Agent: "finance", Event: "decision", Reason: "bench"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
		b.Run("transact/"+name, func(b *testing.B) {
			j := journal(b)
			seen := 0
			for b.Loop() {
				_, err := j.Transact(func(news []mailbox.Entry) ([]mailbox.Entry, error) {
					seen += len(news)
					return []mailbox.Entry{{Agent: "finance", Event: "decision", Reason: fmt.Sprint(seen)}}, nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
		b.Run("catchup/"+name, func(b *testing.B) {
			r := rootOn(b, name)
			j, err := r.Journal()
			if err != nil {
				b.Fatal(err)
			}
			const lines = 10000
			batch := make([]mailbox.Entry, 100)
			for i := range batch {
				batch[i] = mailbox.Entry{Agent: "finance", Event: "decision", Reason: "bench"}
			}
			for range lines / 100 {
				if _, err := j.Append(batch...); err != nil {
					b.Fatal(err)
				}
			}
			j.Close()
			for b.Loop() {
				fresh, err := r.Journal()
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				if _, err := fresh.Transact(func(news []mailbox.Entry) ([]mailbox.Entry, error) { n = len(news); return nil, nil }); err != nil {
					b.Fatal(err)
				}
				fresh.Close()
				if n != lines {
					b.Fatalf("read %d lines, want %d", n, lines)
				}
			}
			b.ReportMetric(float64(b.N*lines)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
