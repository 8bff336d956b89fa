package llm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
)

// TestMain lets the test binary stand in for another agent's process that
// holds a turn on the server (GO_WANT_HELPER_PROCESS=hold DIR): it says
// "held" once it has the slot and keeps it until killed.
func TestMain(m *testing.M) {
	if os.Getenv("GO_WANT_HELPER_PROCESS") == "hold" {
		release, err := Queue{Dir: os.Args[len(os.Args)-1], N: 1}.Acquire(context.Background(), Holder{Agent: "vendor-a", What: "narrate t"})
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		defer release()
		fmt.Println("held")
		time.Sleep(time.Hour) // until killed
	}
	os.Exit(m.Run())
}

// TestQueueAcrossProcesses: a turn held by another process is seen as a
// call in flight, a call here waits for it within its deadline and gives
// up at the deadline, and the turn is free the moment that process dies —
// kill -9 leaves nothing to clean.
func TestQueueAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$", dir)
	cmd.Env = append(os.Environ(), "GO_WANT_HELPER_PROCESS=hold")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "held\n" {
		t.Fatalf("the helper said %q", line)
	}
	calls, _ := InFlight(dir)
	if len(calls) != 1 || calls[0].Agent != "vendor-a" || calls[0].PID != cmd.Process.Pid {
		t.Fatalf("in flight: %+v, want vendor-a's call, pid %d", calls, cmd.Process.Pid)
	}
	q := Queue{Dir: dir, N: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := q.Acquire(ctx, Holder{Agent: "procurement"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire while another process holds the only turn: %v, want the deadline", err)
	}
	// While this one waits, the queue shows it waiting; when the other
	// process dies, it gets the turn.
	got := make(chan error, 1)
	go func() {
		release, err := q.Acquire(context.Background(), Holder{Agent: "procurement", What: "decide t"})
		if err == nil {
			release()
		}
		got <- err
	}()
	for {
		if _, waiting := InFlight(dir); len(waiting) == 1 && waiting[0].Agent == "procurement" {
			break
		}
		select {
		case err := <-got:
			t.Fatalf("Acquire returned %v while the other process held the turn", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err := <-got; err != nil {
		t.Fatalf("Acquire after the holder died: %v", err)
	}
	if calls, waiting := InFlight(dir); len(calls)+len(waiting) != 0 {
		t.Errorf("after: %d in flight, %d waiting, want none", len(calls), len(waiting))
	}
}

// TestAskTakesTurns: calls to one server from many goroutines (as from
// many agents) never run more at once than its concurrency, and a call
// whose timeout passes while it waits for a turn fails as busy, with a
// tape that says so.
func TestAskTakesTurns(t *testing.T) {
	var now, most atomic.Int32
	hold := make(chan struct{})
	srv, got := fakeOllama(t, func(w http.ResponseWriter, r *http.Request, req api.ChatRequest) {
		n := now.Add(1)
		defer now.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if req.Messages[1].Content == "hold" {
			<-hold
		}
		reply(`{"verb":"QUOTE"}`, "stop")(w, r, req)
	})
	go func() {
		for range got { // fakeOllama hands back every request
		}
	}()
	t.Setenv("TMPDIR", t.TempDir())
	for _, n := range []int{1, 2} {
		most.Store(0)
		c, err := New(Config{Model: "tiny", Host: srv.URL, Timeout: 10 * time.Second, Concurrency: n})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.Ask(context.Background(), Call{User: "x", Schema: verbSchema}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if got := most.Load(); got > int32(n) || got == 0 {
			t.Errorf("concurrency %d: %d calls at once on the server", n, got)
		}
	}
	c, _ := New(Config{Model: "tiny", Host: srv.URL, Timeout: 10 * time.Second})
	started := make(chan struct{})
	go func() {
		close(started)
		c.Ask(context.Background(), Call{User: "hold", Schema: verbSchema})
	}()
	<-started
	for calls, _ := InFlight(c.queue.Dir); len(calls) == 0; calls, _ = InFlight(c.queue.Dir) {
		time.Sleep(time.Millisecond)
	}
	short, _ := New(Config{Model: "tiny", Host: srv.URL, Timeout: 50 * time.Millisecond})
	ans, err := short.Ask(context.Background(), Call{User: "x", Schema: verbSchema})
	close(hold)
	if !errors.Is(err, ErrBusy) || ans.Tape.Kind != "busy" {
		t.Fatalf("a call that found no turn in time: %v, tape kind %q; want busy", err, ans.Tape.Kind)
	}
	if _, perr := Play(ans.Tape); !errors.Is(perr, ErrBusy) {
		t.Errorf("its tape plays as %v, want busy", perr)
	}
}

// TestAskWithoutAQueue: where the queue's folder cannot be made (TMPDIR
// is a file), a call goes without a turn rather than failing.
func TestAskWithoutAQueue(t *testing.T) {
	srv, got := fakeOllama(t, reply(`{"verb":"QUOTE"}`, "stop"))
	notDir := t.TempDir() + "/file"
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", notDir)
	c, err := New(Config{Model: "tiny", Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ask(context.Background(), Call{User: "x", Schema: verbSchema}); err != nil {
		t.Fatalf("Ask with no queue: %v", err)
	}
	<-got
}
