package natsretry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nats.ErrTimeout, true},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("append: %w", nats.ErrNoResponders), true},
		{jetstream.ErrNoStreamResponse, true},
		{nats.ErrConnectionReconnecting, true},
		{&jetstream.APIError{Code: 503, ErrorCode: 10008}, true}, // no leader yet
		{&jetstream.APIError{Code: 500, ErrorCode: clusterNotLeader}, true},
		{&jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence}, false},
		{&jetstream.APIError{Code: 404, ErrorCode: jetstream.JSErrCodeMessageNotFound}, false},
		{nats.ErrConnectionClosed, false},
		{errors.New("bad request"), false},
	} {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestDo(t *testing.T) {
	// Tried again while the failure is transient, each try bounded by Try.
	n := 0
	err := Do(context.Background(), func(ctx context.Context, first bool) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("a try has no deadline")
		}
		if first != (n == 0) {
			t.Errorf("try %d: first = %v", n, first)
		}
		n++
		if n < 3 {
			return nats.ErrNoResponders
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Errorf("Do = %v after %d tries, want success after 3", err, n)
	}
	// A refusal is final.
	n = 0
	refused := &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence}
	if err := Do(context.Background(), func(context.Context, bool) error { n++; return refused }); !errors.Is(err, refused) || n != 1 {
		t.Errorf("Do = %v after %d tries, want the refusal after 1", err, n)
	}
	// The caller's end ends the waiting, with the last failure.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := Do(ctx, func(context.Context, bool) error { return nats.ErrNoResponders }); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("Do after the context ended = %v, want the last failure", err)
	}
}
