package mailbox

// Benchmarks for make bench. Each figure stands beside a floor: the bare
// system calls it rests on, measured in the same run, because this machine
// is noisy and only figures from one run compare (RELIABILITY.md).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/parley-dev/parley/internal/proctest"
	"golang.org/x/sys/unix"
)

var benchMsg = testMessage("procurement", "vendor-b", Counter).Marshal()

// BenchmarkFloorDeliver is create + write + fsync + close + rename +
// directory fsync, and nothing else.
func BenchmarkFloorDeliver(b *testing.B) {
	d := newInbox(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := strconv.Itoa(i)
		f, err := os.OpenFile(d.Path("tmp", name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		f.Write(benchMsg)
		f.Sync()
		f.Close()
		if err := os.Rename(d.Path("tmp", name), d.Path("new", name)); err != nil {
			b.Fatal(err)
		}
		if err := syncDir(d.Path("new")); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkDeliverClaim is one message delivered into one inbox, claimed
// and finished, with the Maildir alone.
func BenchmarkDeliverClaim(b *testing.B) {
	d := newInbox(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name, err := d.Deliver(benchMsg, t0)
		if err != nil {
			b.Fatal(err)
		}
		c, err := d.Claim(name)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.Finish(c, FlagDone); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkRootDeliverClaim is the same through a Root, as agents use it:
// each message is validated, delivered, parsed on claim, finished, and each
// of the three steps is a ledger entry on disk.
func BenchmarkRootDeliverClaim(b *testing.B) {
	r := newRoot(b, "procurement", "vendor-b")
	m := testMessage("procurement", "vendor-b", Counter)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name, err := r.Deliver("procurement", m)
		if err != nil {
			b.Fatal(err)
		}
		c, err := r.Claim("vendor-b", name)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Finish(c, FlagDone, ""); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkClaimFullCur claims from new/ while cur/ holds many old
// messages: the cost must not grow with them.
func BenchmarkClaimFullCur(b *testing.B) {
	for _, old := range []int{10, 100_000} {
		d := newInbox(b) // filled once: the sub-benchmark runs several times
		for i := 0; i < old; i++ {
			if err := os.WriteFile(d.Path("cur", fmt.Sprintf("old%d,parley=done:2,S", i)), benchMsg, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("cur=%d", old), func(b *testing.B) {
			names := make([]string, b.N)
			for i := range names {
				names[i] = NewFileName(t0)
				if err := os.WriteFile(d.Path("new", names[i]), benchMsg, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for _, n := range names {
				c, err := d.Claim(n)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := d.Finish(c, FlagDone); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFloorLedger is lock + one write + unlock + fdatasync, as
// Append does, without encoding or hashing.
func BenchmarkFloorLedger(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "floor.jsonl"), os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.ResetTimer()
	floorAppend(b, f, b.N)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

var floorLine = bytes.Repeat([]byte("x"), 300)

func floorAppend(tb testing.TB, f *os.File, n int) {
	fd := int(f.Fd())
	for i := 0; i < n; i++ {
		flock(fd, unix.LOCK_EX)
		f.Write(floorLine)
		flock(fd, unix.LOCK_UN)
		if err := unix.Fdatasync(fd); err != nil {
			tb.Fatal(err)
		}
	}
}

func BenchmarkLedgerAppend(b *testing.B) {
	l, err := OpenLedger(filepath.Join(b.TempDir(), LedgerFile), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := MessageEntry("procurement", EventDelivered, testMessage("procurement", "vendor-b", Counter))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := l.Append(e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkLedgerAppend4Procs has four processes append b.N lines in all,
// beside the floor of four processes doing the bare system calls.
func BenchmarkLedgerAppend4Procs(b *testing.B) {
	for _, helper := range []string{"floor-append", "append"} {
		b.Run(helper, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), LedgerFile)
			each := (b.N + 3) / 4
			wait := proctest.Start(b, 4, helper, func(i int) string { return fmt.Sprintf("%s %d p%d", path, each, i) })
			b.ResetTimer()
			wait()
			b.ReportMetric(float64(4*each)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// BenchmarkVerify reads a ledger of 20,000 entries (about 9 MB) and checks
// it, beside the floor of hashing the same bytes with SHA-256.
func BenchmarkVerify(b *testing.B) {
	path := filepath.Join(b.TempDir(), LedgerFile)
	l, err := OpenLedger(path, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	e := MessageEntry("procurement", EventDelivered, testMessage("procurement", "vendor-b", Counter))
	batch := make([]Entry, 1000)
	for i := range batch {
		batch[i] = e
	}
	for i := 0; i < 20; i++ {
		if _, err := l.Append(batch...); err != nil {
			b.Fatal(err)
		}
	}
	l.Close()
	data, _ := os.ReadFile(path)
	b.Run("floor-sha256", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for i := 0; i < b.N; i++ {
			hashLines(data)
		}
	})
	b.Run("verify", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for i := 0; i < b.N; i++ {
			if _, err := Verify(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func hashLines(data []byte) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		sha256.Sum256(data[:i])
		data = data[i+1:]
	}
}

// BenchmarkWatchLatency measures the time from the rename of a finished
// file into new/ to the watcher handing its name over, one file at a time
// (steady load), beside the floor of fsnotify's own event.
func BenchmarkWatchLatency(b *testing.B) {
	b.Run("floor-fsnotify", func(b *testing.B) {
		d := newInbox(b)
		fsw, err := fsnotify.NewWatcher()
		if err != nil {
			b.Fatal(err)
		}
		defer fsw.Close()
		if err := fsw.Add(d.Path("new")); err != nil {
			b.Fatal(err)
		}
		latencies(b, d, func() { <-fsw.Events })
	})
	b.Run("watcher", func(b *testing.B) {
		d := newInbox(b)
		w, err := Watch(d.Path("new"), WatchOptions{})
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close()
		latencies(b, d, func() {
			if _, err := w.Next(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	})
}

func latencies(b *testing.B, d Maildir, await func()) {
	for i := 0; i < b.N; i++ {
		if err := os.WriteFile(d.Path("tmp", strconv.Itoa(i)), benchMsg, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := os.Rename(d.Path("tmp", strconv.Itoa(i)), d.Path("new", strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
		await()
		lat[i] = time.Since(start)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
