// Package streams makes the JetStream streams parley uses, and leaves an
// operator's settings of an existing one alone.
package streams

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Ensure creates the stream want describes, or, when it exists, brings
// only what parley decides — its subjects, replicas and duplicate window —
// to want's; limits an operator set (nats stream edit) stay. It updates
// nothing when nothing differs, so the processes already using the stream
// are not disturbed.
func Ensure(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.CreateStream(ctx, want)
	if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return s, err
	}
	if s, err = js.Stream(ctx, want.Name); err != nil {
		return nil, err
	}
	cfg := s.CachedInfo().Config
	if slices.Equal(cfg.Subjects, want.Subjects) && cfg.Replicas == want.Replicas && (want.Duplicates == 0 || cfg.Duplicates == want.Duplicates) {
		return s, nil
	}
	cfg.Subjects, cfg.Replicas = want.Subjects, want.Replicas
	if want.Duplicates != 0 {
		cfg.Duplicates = want.Duplicates
	}
	return js.UpdateStream(ctx, cfg)
}

// Lingering is how long the server keeps an ordered consumer that its
// reader left without deleting it (a process killed mid-read): long enough
// for a read between two requests, short enough that none add up.
const Lingering = 30 * time.Second

// Read makes an ordered consumer of s with cfg for one read; done deletes
// it from the server. Ordered consumers are made on the server anew at
// every read and otherwise linger there (5 minutes by default): a team
// reading the ledger at every step reached the server's 1,000 consumers
// a stream and stopped (issue 23).
func Read(ctx context.Context, s jetstream.Stream, cfg jetstream.OrderedConsumerConfig) (cons jetstream.Consumer, done func(), err error) {
	if cfg.InactiveThreshold == 0 {
		cfg.InactiveThreshold = Lingering
	}
	cons, err = s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return cons, func() {
		info := cons.CachedInfo()
		if info == nil {
			return // never made on the server: nothing was fetched
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.DeleteConsumer(ctx, info.Name) // else it lapses after Lingering
	}, nil
}
