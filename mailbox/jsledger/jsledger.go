// Package jsledger keeps parley's ledger in a NATS JetStream stream (issue
// 10, a first part): one message a line, the very lines of the file ledger,
// appended with JetStream's expected-last-sequence check, so that appends
// from any number of processes and hosts make one hash chain that never
// forks. Since gives the stream as the JSONL file every reading command
// works on (ledger verify, tail, thread, git), or what a copy of it lacks.
package jsledger

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/parley-dev/parley/internal/natsretry"
	"github.com/parley-dev/parley/internal/streams"
	"github.com/parley-dev/parley/mailbox"
)

// subject is where the ledger's lines are published, under a team's base
// subject: BASE.ledger.
const subject = ".ledger"

// Ledger is a ledger kept in a JetStream stream.
type Ledger struct {
	js      jetstream.JetStream
	subject string
	stream  jetstream.Stream
	now     func() time.Time

	mu   sync.Mutex
	last *place // the stream's last message as this process last saw it; nil: ask
}

// place is a stream message's sequence, and the ledger seq and hash of its
// last line: where the next line chains.
type place struct {
	stream, seq uint64
	hash        string
}

// saw remembers where the stream ended last (nil: not known).
func (l *Ledger) saw(p *place) {
	l.mu.Lock()
	l.last = p
	l.mu.Unlock()
}

// Open opens the ledger's stream, called name, on the subject BASE.ledger,
// creating it (file storage, replicas as given) when it does not exist.
func Open(ctx context.Context, js jetstream.JetStream, name, base string, replicas int, now func() time.Time) (*Ledger, error) {
	if now == nil {
		now = time.Now
	}
	cfg := jetstream.StreamConfig{
		Name: name, Subjects: []string{base + subject}, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
		Discard: jetstream.DiscardNew, // a ledger never drops its oldest lines
	}
	s, err := streams.Ensure(ctx, js, cfg)
	if err != nil {
		return nil, fmt.Errorf("open ledger stream %s: %w", name, err)
	}
	return &Ledger{js: js, subject: base + subject, stream: s, now: now}, nil
}

// tail is the stream's last message's place: its stream sequence, and the
// ledger seq and hash of its last line, which the next line chains to.
func (l *Ledger) tail(ctx context.Context) (streamSeq, seq uint64, hash string, err error) {
	info, err := l.info(ctx)
	if err != nil {
		return 0, 0, "", fmt.Errorf("ledger stream: %w", err)
	}
	if info.State.LastSeq == 0 || info.State.Msgs == 0 {
		return 0, 0, "", nil
	}
	m, err := l.get(ctx, info.State.LastSeq)
	if err != nil {
		return 0, 0, "", fmt.Errorf("ledger stream: last line: %w", err)
	}
	seq, hash, err = lastHead(m.Data)
	if err != nil {
		return 0, 0, "", fmt.Errorf("ledger stream: last line (stream seq %d): %w", info.State.LastSeq, err)
	}
	return info.State.LastSeq, seq, hash, nil
}

// info is the stream's state, asked again while the server cannot answer.
func (l *Ledger) info(ctx context.Context) (info *jetstream.StreamInfo, err error) {
	err = natsretry.Do(ctx, func(ctx context.Context, _ bool) error {
		info, err = l.stream.Info(ctx)
		return err
	})
	return info, err
}

// get is the stream's message seq, asked again while the server cannot
// answer.
func (l *Ledger) get(ctx context.Context, seq uint64) (m *jetstream.RawStreamMsg, err error) {
	err = natsretry.Do(ctx, func(ctx context.Context, _ bool) error {
		m, err = l.stream.GetMsg(ctx, seq)
		return err
	})
	return m, err
}

// lastHead reads the seq and hash of a message's last line.
func lastHead(data []byte) (uint64, string, error) {
	data = bytes.TrimSuffix(data, []byte("\n"))
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[i+1:]
	}
	return mailbox.LineHead(data)
}

// Append adds entries as consecutive lines of the chain and returns them as
// written. They are one message of the stream, published only if the
// stream's last message is still the one they chain to; when another writer
// got there first, they are chained again to the new tail. It returns once
// JetStream has stored them.
func (l *Ledger) Append(ctx context.Context, entries ...mailbox.Entry) ([]mailbox.Entry, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	for {
		// Chained to the tail last seen, which is still the tail unless
		// another writer appended: then it is asked for, and chained again.
		l.mu.Lock()
		at := l.last
		l.mu.Unlock()
		if at == nil {
			streamSeq, seq, hash, err := l.tail(ctx)
			if err != nil {
				return nil, err
			}
			at = &place{streamSeq, seq, hash}
		}
		out, _, err := l.publish(ctx, at.stream, at.seq, at.hash, entries)
		if conflict(err) {
			l.saw(nil)
			continue
		}
		return out, err
	}
}

// publish chains entries to the line of seq and hash, the last of stream
// message streamSeq, and publishes them as one message, expecting that
// message still to be the last; it returns them as written and the
// message's stream sequence. While the server cannot answer, it tries
// again; a publish that landed though its answer was lost is seen — the
// message right after streamSeq ends with its own last line, whatever came
// after it — and not taken for another writer's.
func (l *Ledger) publish(ctx context.Context, streamSeq, seq uint64, hash string, entries []mailbox.Entry) ([]mailbox.Entry, uint64, error) {
	buf, out, err := mailbox.Chain(seq, hash, entries, l.now)
	if err != nil {
		return nil, 0, err
	}
	mine := out[len(out)-1].Hash
	var at uint64
	err = natsretry.Do(ctx, func(ctx context.Context, first bool) error {
		ack, err := l.js.Publish(ctx, l.subject, buf, jetstream.WithExpectLastSequence(streamSeq), jetstream.WithMsgID(out[0].Hash))
		if err == nil {
			at = ack.Sequence
		}
		if conflict(err) && !first {
			if m, gerr := l.get(ctx, streamSeq+1); gerr == nil {
				if _, h, herr := lastHead(m.Data); herr == nil && h == mine {
					at = streamSeq + 1
					return nil
				}
			}
		}
		return err
	})
	if conflict(err) {
		return nil, 0, err
	}
	if err != nil {
		return nil, 0, fmt.Errorf("append to ledger stream: %w", err)
	}
	l.saw(&place{at, out[len(out)-1].Seq, mine})
	return out, at, nil
}

// conflict reports whether a publish failed because the stream moved on.
func conflict(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}

// Reader follows the ledger from its start: each Transact sees the lines
// appended since the one before.
type Reader struct {
	*Ledger
	read     uint64 // the stream sequence read up to
	lastSeq  uint64 // the ledger seq and hash of the line at read
	lastHash string
	own      []mailbox.Entry // appended by this Reader: the next call's first news
}

// Follow returns a Reader at the ledger's start.
func (l *Ledger) Follow() *Reader { return &Reader{Ledger: l} }

// Transact runs fn with the entries appended since the Reader last read
// (all of them, the first time), and appends what fn returns only if no
// other line came between; if one did, fn is run again with the lines that
// came. The appended entries are returned, and are among the next call's.
func (r *Reader) Transact(ctx context.Context, fn func(news []mailbox.Entry) ([]mailbox.Entry, error)) ([]mailbox.Entry, error) {
	for {
		news, err := r.news(ctx)
		if err != nil {
			return nil, err
		}
		add, err := fn(news)
		if err != nil || len(add) == 0 {
			return nil, err
		}
		out, at, err := r.publish(ctx, r.read, r.lastSeq, r.lastHash, add)
		if conflict(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// Right after the place read (the publish expected it): read
		// already, without asking.
		r.read, r.lastSeq, r.lastHash = at, out[len(out)-1].Seq, out[len(out)-1].Hash
		r.own = append(r.own, out...)
		return out, nil
	}
}

// news reads the lines stored after the Reader's place, and moves it on:
// its own lines, then what others appended after them. On an error the
// place stays where it was, and the next call reads the same lines again.
func (r *Reader) news(ctx context.Context) ([]mailbox.Entry, error) {
	news := append([]mailbox.Entry(nil), r.own...)
	read, lastSeq, lastHash := r.read, r.lastSeq, r.lastHash
	err := r.each(ctx, r.read+1, func(s uint64, data []byte) error {
		err := mailbox.ReadEntries(bytes.NewReader(data), func(_ int, e mailbox.Entry) error {
			news = append(news, e)
			return nil
		})
		if err != nil {
			return fmt.Errorf("ledger stream: message %d: %w", s, err)
		}
		read = s
		if n := len(news); n > 0 {
			lastSeq, lastHash = news[n-1].Seq, news[n-1].Hash
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.own, r.read, r.lastSeq, r.lastHash = nil, read, lastSeq, lastHash
	return news, nil
}

// few is how many messages each reads one request at a time before it
// reads the rest as a stream.
const few = 16

// each calls fn with every message of the stream from the sequence from
// on, in order. A few are asked for one at a time, until one is not there
// (a ledger stream loses no message): what an agent's next decision needs.
// More — a process starting on a long ledger — are read through an
// ordered consumer, a batch a request; while the server cannot answer, it
// goes on from where it was.
func (l *Ledger) each(ctx context.Context, from uint64, fn func(seq uint64, data []byte) error) error {
	for n := 0; n < few; n, from = n+1, from+1 {
		m, err := l.get(ctx, from)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ledger stream: message %d: %w", from, err)
		}
		if err := fn(from, m.Data); err != nil {
			return err
		}
	}
	info, err := l.info(ctx)
	if err != nil {
		return fmt.Errorf("ledger stream: %w", err)
	}
	last := info.State.LastSeq
	return natsretry.Do(ctx, func(ctx context.Context, _ bool) error {
		if from > last {
			return nil
		}
		cons, done, err := streams.Read(ctx, l.stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from})
		if err != nil {
			return fmt.Errorf("ledger stream: read from message %d: %w", from, err)
		}
		defer done()
		for from <= last {
			batch, err := cons.Fetch(int(min(last-from+1, 1000)), jetstream.FetchMaxWait(natsretry.Try))
			if err != nil {
				return fmt.Errorf("ledger stream: read from message %d: %w", from, err)
			}
			got := 0
			for m := range batch.Messages() {
				meta, err := m.Metadata()
				if err != nil {
					return fmt.Errorf("ledger stream: read from message %d: %w", from, err)
				}
				if meta.Sequence.Stream != from {
					return fmt.Errorf("ledger stream: message %d came where %d was due", meta.Sequence.Stream, from)
				}
				if err := fn(from, m.Data()); err != nil {
					return err
				}
				from++
				got++
			}
			if got == 0 {
				// Nothing within a try: the server is away, or slow.
				return fmt.Errorf("ledger stream: read from message %d: %w", from, cmp.Or(batch.Error(), nats.ErrTimeout))
			}
		}
		return nil
	})
}

// Since returns the lines that follow the line of seq and hash (0 and ""
// for none): what a copy of the ledger that ends there lacks. When the
// stream has no such line — the copy is not of this ledger, or went its
// own way — it returns every line, and whole is true: the copy is to be
// replaced. It finds the place by bisecting the stream, so a copy is
// brought up to date in a few requests.
func (l *Ledger) Since(ctx context.Context, seq uint64, hash string) (lines []byte, whole bool, err error) {
	info, err := l.info(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("ledger stream: %w", err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, seq != 0, nil
	}
	if seq == 0 {
		lines, err := l.messages(ctx, first, last)
		return lines, false, err
	}
	// The last message whose first line's seq is at most seq.
	lo, hi := first, last
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		m, err := l.get(ctx, mid)
		if err != nil {
			return nil, false, err
		}
		s, _, err := mailbox.LineHead(firstLine(m.Data))
		if err != nil {
			return nil, false, fmt.Errorf("ledger stream: message %d: %w", mid, err)
		}
		if s <= seq {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	m, err := l.get(ctx, lo)
	if err != nil {
		return nil, false, err
	}
	for rest := m.Data; len(rest) > 0; {
		line := firstLine(rest)
		rest = rest[min(len(line)+1, len(rest)):]
		if s, h, err := mailbox.LineHead(line); err == nil && s == seq && h == hash {
			after, err := l.messages(ctx, lo+1, last)
			return append(append([]byte(nil), rest...), after...), false, err
		}
	}
	lines, err = l.messages(ctx, first, last)
	return lines, true, err
}

// messages is the stream's messages from..to, one after the other.
func (l *Ledger) messages(ctx context.Context, from, to uint64) ([]byte, error) {
	var out []byte
	err := l.each(ctx, from, func(s uint64, data []byte) error {
		if s <= to {
			out = append(out, data...)
		}
		return nil
	})
	return out, err
}

// firstLine is data up to its first newline.
func firstLine(data []byte) []byte {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return data[:i]
	}
	return data
}
