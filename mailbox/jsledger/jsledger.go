// Package jsledger keeps parley's ledger in a NATS JetStream stream (issue
// 10, a first part): one message a line, the very lines of the file ledger,
// appended with JetStream's expected-last-sequence check, so that appends
// from any number of processes and hosts make one hash chain that never
// forks. Export writes the stream as the JSONL file every reading command
// works on (ledger verify, tail, thread, git).
package jsledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/parley-dev/parley/mailbox"
)

// Subject is where the ledger's lines are published.
const Subject = "parley.ledger"

// Ledger is a ledger kept in a JetStream stream.
type Ledger struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	now    func() time.Time
}

// Open opens the ledger's stream, called name, creating it (file storage,
// replicas as given) when it does not exist.
func Open(ctx context.Context, js jetstream.JetStream, name string, replicas int, now func() time.Time) (*Ledger, error) {
	if now == nil {
		now = time.Now
	}
	cfg := jetstream.StreamConfig{
		Name: name, Subjects: []string{Subject}, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
		Discard: jetstream.DiscardNew, // a ledger never drops its oldest lines
	}
	// Created, or found as it is: updated only when its settings differ,
	// never under the processes already appending to it.
	s, err := js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		s, err = js.UpdateStream(ctx, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("open ledger stream %s: %w", name, err)
	}
	return &Ledger{js: js, stream: s, now: now}, nil
}

// tail is the stream's last line's place: its stream sequence, and the
// ledger seq and hash the next line chains to.
func (l *Ledger) tail(ctx context.Context) (streamSeq, seq uint64, hash string, err error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, 0, "", fmt.Errorf("ledger stream: %w", err)
	}
	if info.State.LastSeq == 0 || info.State.Msgs == 0 {
		return 0, 0, "", nil
	}
	m, err := l.stream.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		return 0, 0, "", fmt.Errorf("ledger stream: last line: %w", err)
	}
	seq, hash, err = mailbox.Head(bytes.TrimSuffix(m.Data, []byte("\n")))
	if err != nil {
		return 0, 0, "", fmt.Errorf("ledger stream: last line (stream seq %d): %w", info.State.LastSeq, err)
	}
	return info.State.LastSeq, seq, hash, nil
}

// Append adds entries as lines of the chain, in order, and returns them as
// written. Each line is published only if the stream's last message is
// still the one it chains to; when another writer got there first, the rest
// is chained again to the new tail — so, unlike the file ledger's single
// write, another writer's lines may come between a batch's. It returns once
// JetStream has stored every line.
func (l *Ledger) Append(ctx context.Context, entries ...mailbox.Entry) ([]mailbox.Entry, error) {
	var out []mailbox.Entry
	for len(entries) > 0 {
		streamSeq, seq, hash, err := l.tail(ctx)
		if err != nil {
			return out, err
		}
		buf, chained, err := mailbox.Chain(seq, hash, entries, l.now)
		if err != nil {
			return out, err
		}
		lines := bytes.SplitAfter(buf, []byte("\n"))
		published := 0
		for i, e := range chained {
			_, err = l.js.Publish(ctx, Subject, lines[i], jetstream.WithExpectLastSequence(streamSeq))
			if conflict(err) {
				break // another writer appended: chain the rest to its line
			}
			if err != nil {
				return out, fmt.Errorf("append to ledger stream: %w", err)
			}
			streamSeq++
			published++
			out = append(out, e)
		}
		entries = entries[published:]
	}
	return out, nil
}

// conflict reports whether a publish failed because the stream moved on.
func conflict(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return false
}

// Export writes every line of the stream, in order, as the JSONL ledger
// file: the same bytes a file ledger holds.
func (l *Ledger) Export(ctx context.Context, w io.Writer) (int, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("ledger stream: %w", err)
	}
	n := 0
	for s := info.State.FirstSeq; s > 0 && s <= info.State.LastSeq; s++ {
		m, err := l.stream.GetMsg(ctx, s)
		if err != nil {
			return n, fmt.Errorf("ledger stream: line at stream seq %d: %w", s, err)
		}
		if _, err := w.Write(m.Data); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
