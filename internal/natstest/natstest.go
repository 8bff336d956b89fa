// Package natstest starts NATS servers for tests: in the test process, on a
// free loopback port, with JetStream storing in a temporary folder.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Start runs an embedded server until the test ends.
func Start(tb testing.TB) *server.Server {
	tb.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: tb.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		tb.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatal("the embedded NATS server did not start")
	}
	tb.Cleanup(s.Shutdown)
	return s
}

// Connect opens a connection of its own to s (as another process or host
// would) and its JetStream context.
func Connect(tb testing.TB, s *server.Server) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}
