// Package streams makes the JetStream streams parley uses, and leaves an
// operator's settings of an existing one alone.
package streams

import (
	"context"
	"errors"
	"slices"

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
