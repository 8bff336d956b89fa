package jsledger

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/parley-dev/parley/internal/natstest"
	"github.com/parley-dev/parley/mailbox"
)

// TestNoFork: writers on their own connections (as separate processes or
// hosts would be) append at once; the stream holds one chain, every line
// once, and exported it verifies as a ledger file.
func TestNoFork(t *testing.T) {
	s := natstest.Start(t)
	ctx := context.Background()
	const writers, each = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		l, err := Open(ctx, natstest.Connect(t, s), "PARLEY", "parley", 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Two lines at a time, as a decision and its delivery are.
				batch := []mailbox.Entry{
					{Agent: fmt.Sprintf("agent-%d", w), Event: "decision", Reason: fmt.Sprint(i)},
					{Agent: fmt.Sprintf("agent-%d", w), Event: "delivered", Reason: fmt.Sprint(i)},
				}
				got, err := l.Append(ctx, batch...)
				if err != nil {
					errs <- err
					return
				}
				// One message: in order, nobody's line between them.
				if len(got) != 2 || got[1].Seq != got[0].Seq+1 {
					errs <- fmt.Errorf("a batch came back %+v", got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	l, err := Open(ctx, natstest.Connect(t, s), "PARLEY", "parley", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	n, err := export(ctx, l, &file)
	if err != nil {
		t.Fatal(err)
	}
	res, err := mailbox.Verify(&file)
	if err != nil {
		t.Fatalf("the exported ledger: %v", err)
	}
	if n != writers*each*2 || res.Lines != n {
		t.Errorf("%d lines exported, %d verified; want %d", n, res.Lines, writers*each*2)
	}
}

// TestTransactNoDoubleSpend: readers on their own connections take from a
// budget of 60 at once, each deciding from what the ledger says; exactly 60
// are taken, however the transactions interleave.
func TestTransactNoDoubleSpend(t *testing.T) {
	s := natstest.Start(t)
	ctx := context.Background()
	const readers, tries, budget = 4, 30, 60
	var wg sync.WaitGroup
	taken := make([]int, readers)
	errs := make(chan error, readers)
	for w := range readers {
		l, err := Open(ctx, natstest.Connect(t, s), "PARLEY", "parley", 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := l.Follow()
		spent := 0 // what the ledger says, as this reader has read it
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tries {
				out, err := r.Transact(ctx, func(news []mailbox.Entry) ([]mailbox.Entry, error) {
					spent += len(news)
					if spent >= budget {
						return nil, nil
					}
					return []mailbox.Entry{{Agent: fmt.Sprintf("agent-%d", w), Event: "decision"}}, nil
				})
				if err != nil {
					errs <- err
					return
				}
				taken[w] += len(out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for _, n := range taken {
		total += n
	}
	l, err := Open(ctx, natstest.Connect(t, s), "PARLEY", "parley", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	n, err := export(ctx, l, &file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mailbox.Verify(&file); err != nil {
		t.Fatalf("the exported ledger: %v", err)
	}
	if total != budget || n != budget {
		t.Errorf("%d taken (%v), %d lines; want %d", total, taken, n, budget)
	}
}

// export writes the whole ledger as the JSONL file, and says how many
// lines.
func export(ctx context.Context, l *Ledger, file *bytes.Buffer) (int, error) {
	lines, _, err := l.Since(ctx, 0, "")
	file.Write(lines)
	return bytes.Count(lines, []byte("\n")), err
}

// BenchmarkAppend is one writer appending one line at a time to an
// embedded server, file storage.
func BenchmarkAppend(b *testing.B) {
	s := natstest.Start(b)
	l, err := Open(context.Background(), natstest.Connect(b, s), "PARLEY", "parley", 1, nil)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := l.Append(context.Background(), mailbox.Entry{Agent: "bench", Event: "decision"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// lostAnswer is a JetStream whose first publish lands but its answer is
// lost, and before it is tried again another writer appends.
type lostAnswer struct {
	jetstream.JetStream
	other *Ledger
	lost  bool
}

func (j *lostAnswer) Publish(ctx context.Context, subj string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	ack, err := j.JetStream.Publish(ctx, subj, data, opts...)
	if err != nil || j.lost {
		return ack, err
	}
	j.lost = true
	if _, err := j.other.Append(ctx, mailbox.Entry{Agent: "other", Event: "decision"}); err != nil {
		return nil, err
	}
	return nil, nats.ErrTimeout
}

// TestLostAnswerNotAppendedTwice: an append that landed though its answer
// was lost, with another writer's line after it, is not appended again.
func TestLostAnswerNotAppendedTwice(t *testing.T) {
	s := natstest.Start(t)
	ctx := context.Background()
	other, err := Open(ctx, natstest.Connect(t, s), "PARLEY", "parley", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	js := &lostAnswer{JetStream: natstest.Connect(t, s), other: other}
	l, err := Open(ctx, js, "PARLEY", "parley", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Append(ctx, mailbox.Entry{Agent: "me", Event: "decision"})
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	if _, err := export(ctx, l, &file); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(file.String(), `"agent":"me"`); n != 1 || got[0].Seq != 1 {
		t.Errorf("my line is in the ledger %d times (seq %d), want once, first:\n%s", n, got[0].Seq, file.String())
	}
	if _, err := mailbox.Verify(&file); err != nil {
		t.Error(err)
	}
}

// TestLongReadsLeaveNoConsumers: every read of more than a few lines goes
// through an ordered consumer; none is left on the server after it, so
// reads do not add up to the server's limit of consumers on a stream
// (issue 23: a team stopped after about 129 deals at 1,000 consumers).
func TestLongReadsLeaveNoConsumers(t *testing.T) {
	s := natstest.Start(t)
	ctx := context.Background()
	l, err := Open(ctx, natstest.Connect(t, s), "PARLEY", "parley", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 { // a stream message an append: more than a few to read
		if _, err := l.Append(ctx, mailbox.Entry{Agent: "test", Event: "decision"}); err != nil {
			t.Fatal(err)
		}
	}
	for range 30 {
		lines, _, err := l.Since(ctx, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(lines, []byte("\n")); n != 100 {
			t.Fatalf("read %d lines, want 100", n)
		}
	}
	info, err := natstest.Stream(t, s, "PARLEY")
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Consumers; n != 0 {
		t.Errorf("%d consumers left on the ledger stream after 30 long reads, want 0", n)
	}
}
