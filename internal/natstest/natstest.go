// Package natstest starts NATS servers for tests: in the test process, on a
// free loopback port, with JetStream storing in a temporary folder.
package natstest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
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

// Start runs an embedded server until the test ends. With synced, it
// fsyncs each write before it answers (nats-server's sync_interval:
// always); by default it syncs every two minutes, as nats-server does.
func Start(tb testing.TB, synced ...bool) *Server {
	tb.Helper()
	s := &Server{opts: &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: tb.TempDir(), NoLog: true, NoSigs: true,
		SyncAlways: len(synced) > 0 && synced[0]}}
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

// Cluster runs n embedded servers as one JetStream cluster until the test
// ends, and returns them once the cluster has a leader.
func Cluster(tb testing.TB, n int) []*Server {
	tb.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(tb)
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	servers := make([]*Server, n)
	for i := range servers {
		servers[i] = &Server{opts: &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: tb.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "parley", Host: "127.0.0.1", Port: ports[i]}, Routes: routes,
		}}
	}
	// Started together: each waits for the others to elect a leader.
	for _, s := range servers {
		srv, err := server.NewServer(s.opts)
		if err != nil {
			tb.Fatal(err)
		}
		go srv.Start()
		tb.Cleanup(srv.Shutdown)
		s.Server = srv
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			tb.Fatal("an embedded NATS server of the cluster did not start")
		}
		s.opts.Port = s.Addr().(*net.TCPAddr).Port
	}
	for {
		for _, s := range servers {
			if s.JetStreamIsLeader() {
				return servers
			}
		}
		if time.Now().After(deadline) {
			tb.Fatal("the embedded cluster elected no JetStream leader in 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URLs is the transport URL of every server of a cluster.
func URLs(servers []*Server) string {
	var out []string
	for _, s := range servers {
		out = append(out, s.URL())
	}
	return strings.Join(out, ",")
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Stream is what the server s says of the stream name.
func Stream(tb testing.TB, s *Server, name string) (*jetstream.StreamInfo, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := Connect(tb, s).Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return st.Info(ctx)
}

// Process is a server in a process of its own, which a test can kill -9
// as an operator's machine might lose it, and start again on its port and
// its store.
type Process struct {
	bin, store string
	port       int
	cmd        *exec.Cmd
}

// ServeEnv names the store folder and port of a server process: a test
// binary whose TestMain sees it runs Serve instead of its tests.
const ServeEnv = "PARLEY_TEST_NATS_SERVER"

// StartProcess runs a server as a process of its own until the test ends:
// bin is a test binary whose TestMain calls Serve when ServeEnv is set.
func StartProcess(tb testing.TB, bin string) *Process {
	tb.Helper()
	p := &Process{bin: bin, store: tb.TempDir(), port: freePort(tb)}
	p.Start(tb)
	tb.Cleanup(func() { p.Kill() })
	return p
}

// Start starts the server process again, and waits until it answers.
func (p *Process) Start(tb testing.TB) {
	tb.Helper()
	p.cmd = exec.Command(p.bin)
	p.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%s", ServeEnv, p.port, p.store))
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		nc, err := nats.Connect(p.URL(), nats.Timeout(time.Second))
		if err == nil {
			nc.Close()
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the NATS server process did not answer in 30s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill kills the server process -9, and waits for it to be gone.
func (p *Process) Kill() {
	if p.cmd != nil && p.cmd.Process != nil && p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

// URL is the transport URL of the server.
func (p *Process) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", p.port) }

// Serve runs the server ServeEnv describes, as nats-server would with
// JetStream on, until the process is killed. It returns false, at once,
// when ServeEnv is not set.
func Serve() bool {
	spec := os.Getenv(ServeEnv)
	if spec == "" {
		return false
	}
	port, store, _ := strings.Cut(spec, ":")
	n, err := strconv.Atoi(port)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: want PORT:STORE\n", ServeEnv, spec)
		os.Exit(2)
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: n, JetStream: true, StoreDir: store, NoLog: true, NoSigs: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv.Start()
	srv.WaitForShutdown()
	return true
}

// RSS is the server process's resident memory, in kB (0: unknown).
func (p *Process) RSS() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return 0
}

// StreamOf is what the server at url says of the stream name, over a
// connection of its own.
func StreamOf(tb testing.TB, url, name string) (*jetstream.StreamInfo, error) {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return st.Info(ctx)
}
