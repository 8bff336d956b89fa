// Package natsretry tries a NATS request again while the server cannot
// answer (restarting, a cluster electing a leader, a connection being
// made again), so that parley waits through an outage instead of failing.
package natsretry

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// clusterNotLeader is nats-server's JSClusterNotLeaderErr, which nats.go
// does not name.
const clusterNotLeader jetstream.ErrorCode = 10009

// Transient reports whether err says the server could not answer now, as
// opposed to answering no.
func Transient(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		// No leader yet, or the stream's leader changing hands.
		return api.Code == 503 || api.ErrorCode == clusterNotLeader
	}
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrJetStreamNotEnabled)
}

// Try is how long one attempt may wait for an answer: a request sent
// while the connection was being made again, or to a server that then
// stopped, gets none, and is sent again rather than waited on.
const Try = 3 * time.Second

// Do runs fn until it succeeds, fails for good, or ctx ends, waiting a
// little longer after each transient failure (50ms, doubling, up to 1s).
// Each run gets a context that ends after Try; first is true on the first.
func Do(ctx context.Context, fn func(ctx context.Context, first bool) error) error {
	wait := 50 * time.Millisecond
	for first := true; ; first = false {
		try, cancel := context.WithTimeout(ctx, Try)
		err := fn(try, first)
		cancel()
		if err == nil || !Transient(err) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}
