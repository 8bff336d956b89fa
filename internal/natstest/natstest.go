// Package natstest starts NATS servers for tests: in the test process, on a
// free loopback port, with JetStream storing in a temporary folder.
package natstest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is an embedded server that can be stopped and started again.
type Server struct {
	*server.Server
	opts *server.Options
}

// Start runs an embedded server until the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{opts: &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: tb.TempDir(), NoLog: true, NoSigs: true}}
	s.run(tb)
	return s
}

func (s *Server) run(tb testing.TB) {
	tb.Helper()
	srv, err := server.NewServer(s.opts)
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		tb.Fatal("the embedded NATS server did not start")
	}
	tb.Cleanup(srv.Shutdown)
	s.Server = srv
	if s.opts.Port == -1 {
		s.opts.Port = srv.Addr().(*net.TCPAddr).Port // the same one after a restart
	}
}

// Stop shuts the server down, as a crash of its host would.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}

// Restart starts the server again, on its port and with its store.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.run(tb)
}

// URL is the transport URL of the server.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port) }

// Connect opens a connection of its own to s (as another process or host
// would) and its JetStream context.
func Connect(tb testing.TB, s interface{ ClientURL() string }) jetstream.JetStream {
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
