package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/parley-dev/parley/agents"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

func upCommand() *cli.Command {
	return &cli.Command{
		Name:      "up",
		Usage:     "run every agent of the root, each as its own process",
		ArgsUsage: "[NAME...]",
		Description: `Starts every agent of parley.toml (or those named) as a child process
running parley agent NAME, prints their lines prefixed with the agent's name,
restarts one that crashes (after 1 s, then 2, 4, ... up to 30 s), and on
Ctrl-C stops them all cleanly: each finishes the message in hand first.

The agents die with it, however it ends (kill -9 included): each is sent
SIGTERM by the kernel when parley up is gone, and stops as on Ctrl-C. One
parley up runs a root at a time (it holds ROOT/up.lock); a second says
which process runs the team, and exits with status 1.

On a team whose agents run on several machines (transport = "nats://..."),
it starts, unless named, the agents whose private key is on this machine
(ROOT/NAME/state/NAME.key): each machine runs its own.

Example:
   parley up
   parley up procurement finance`,
		Action: withRoot(0, -1, "agent names", func(c *cli.Context, e *env) error {
			names := c.Args().Slice()
			if len(names) == 0 {
				team, err := e.team()
				if err != nil {
					return err
				}
				names = team.Names()
				if e.root.Transport != nil {
					names = slices.DeleteFunc(names, func(n string) bool { return !e.root.HasKey(n) })
					if len(names) == 0 {
						return withHint(errors.New("no agent's private key is on this machine"), "name the agents to run here: parley up NAME...")
					}
				}
			}
			for _, n := range names {
				if err := e.agent(n); err != nil {
					return err
				}
			}
			return e.up(c.Context, names, e.stdout)
		}),
	}
}

// up supervises one child process per agent until ctx ends, then stops
// them with SIGINT and waits.
func (e *env) up(ctx context.Context, names []string, out io.Writer) error {
	unlock, err := lockUp(e.root.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	var (
		mu sync.Mutex // one writer of whole lines
		wg sync.WaitGroup
	)
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	color := colored(out)
	for i, name := range names {
		prefix := fmt.Sprintf("%-*s | ", width, name)
		if color {
			prefix = fmt.Sprintf("\x1b[%dm%s\x1b[0m", 31+i%6, prefix)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.supervise(ctx, name, func(line string) {
				mu.Lock()
				defer mu.Unlock()
				fmt.Fprintln(out, prefix+line)
			})
		}()
	}
	wg.Wait()
	return nil
}

// colored reports whether to colour what is written to w: a terminal,
// unless NO_COLOR is set to anything (no-color.org).
func colored(w io.Writer) bool {
	return os.Getenv("NO_COLOR") == "" && isTerminal(w)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// supervise runs parley agent NAME, again after a crash with backoff, until
// ctx ends.
func (e *env) supervise(ctx context.Context, name string, say func(string)) {
	backoff := time.Second
	for {
		if !e.whileElsewhere(ctx, name, say) {
			return
		}
		started := time.Now()
		err := e.child(ctx, name, say)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > 30*time.Second {
			backoff = time.Second // it ran a good while: this is a new failure
		}
		say(fmt.Sprintf("exited (%v); starting again in %v", err, backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// whileElsewhere waits while another process runs agent name (started by
// hand with parley agent): it is said once and watched, not started again
// and again to be refused. It reports false when ctx ended meanwhile.
func (e *env) whileElsewhere(ctx context.Context, name string, say func(string)) bool {
	lock := e.root.Inbox(name).Path("state", "lock")
	live := agents.Alive(lock)
	if !live.Running {
		return true
	}
	say(fmt.Sprintf("runs already as pid %s, not under parley up: watched, and started here once it stops", live.PID))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for agents.Alive(lock).Running {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// child runs one agent process; on ctx's end it is asked to stop (SIGINT)
// and, if it has not within 10 s, killed.
func (e *env) child(ctx context.Context, name string, say func(string)) error {
	// The kernel sends Pdeathsig when the thread that started the child
	// ends, not the process (prctl(2)): this goroutine keeps its thread,
	// alive, until the child is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command(os.Args[0], "--root", e.root.Dir, "agent", name)
	// The transport by the environment, not the command line, where ps
	// would show a password it carries.
	cmd.Env = append(os.Environ(), "PARLEY_TRANSPORT="+cmp.Or(e.transport, "files"), fmt.Sprintf("%s=%d", supervisorEnv, os.Getpid()))
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true, // Ctrl-C at the terminal reaches parley up, which stops each child in turn
		// An agent dies with parley up, even on kill -9 of it: no orphans
		// that a second parley up would find "already running".
		Pdeathsig: syscall.SIGTERM,
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			say(sc.Text())
		}
		io.Copy(io.Discard, r) // a line too long ends the scanner: the child must not block on a full pipe
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); w.Close() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		cmd.Process.Signal(os.Interrupt)
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			err = <-done
		}
	}
	<-lines
	return err
}

// supervisorEnv names, in an agent's environment, the pid of the parley up
// that started it.
const supervisorEnv = "PARLEY_SUPERVISOR"

// orphaned says whether this process was started by a parley up that is
// gone already: one that died between fork and exec, before the kernel
// could be told to signal the child (Pdeathsig) — the child checks at its
// start, and stops.
func orphaned() error {
	sup := os.Getenv(supervisorEnv)
	if sup == "" || sup == strconv.Itoa(os.Getppid()) {
		return nil
	}
	return fmt.Errorf("parley up (pid %s), which started this agent, is gone", sup)
}

// upLockFile is the lock parley up holds in a root while it runs.
const upLockFile = "up.lock"

// upRunningError says another parley up runs the root's team.
type upRunningError struct{ pid string }

func (e *upRunningError) Error() string {
	if e.pid == "" {
		return "the team runs already under another parley up"
	}
	return fmt.Sprintf("the team runs already under parley up, pid %s", e.pid)
}

// lockUp takes the root's parley up lock (flock, held for the process's
// lifetime, as an agent's lock is), or says who holds it.
func lockUp(root string) (func(), error) {
	path := filepath.Join(root, upLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock the team: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, withHint(&upRunningError{pid: strings.TrimSpace(string(pid))},
				"stop it first (Ctrl-C where it runs, or kill -INT PID); parley status shows the agents")
		}
		return nil, fmt.Errorf("lock the team: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
