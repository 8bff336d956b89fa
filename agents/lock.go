package agents

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/parley-dev/parley/mailbox"
	"golang.org/x/sys/unix"
)

// Liveness is what an agent's lock file says: whether a process holds it,
// which, and when it last looked around (its heartbeat).
type Liveness struct {
	Running  bool
	PID      string
	LastSeen time.Time
	// Trouble is what keeps a running agent waiting, when something does:
	// "disk full or failing since ...".
	Trouble string
}

// SayTrouble writes what keeps agent name waiting ("" when nothing does)
// into its lock file, after its pid, for parley status. The file is
// rewritten in place, within the block it already has: on a full disk
// there may be room for nothing else.
func SayTrouble(lockPath, trouble string) error {
	f, err := os.OpenFile(lockPath, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	text := strconv.Itoa(os.Getpid()) + "\n"
	if trouble != "" {
		text += strings.ReplaceAll(trouble, "\n", " ") + "\n"
	}
	if len(text) > 4000 {
		text = text[:4000] + "\n"
	}
	if _, err := f.WriteAt([]byte(text), 0); err != nil {
		return err
	}
	return f.Truncate(int64(len(text)))
}

// BeatLapse is how old an agent's last beat on a transport that spans
// machines may be for its process to count as running: it beats every
// second, on a goroutine of its own.
const BeatLapse = 15 * time.Second

// Here is this process and root, for a beat: pid@host, and
// host:/path/of/the/root.
func Here(dir string) mailbox.Beat {
	host, _ := os.Hostname()
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return mailbox.Beat{Who: fmt.Sprintf("%d@%s", os.Getpid(), host), Root: host + ":" + dir}
}

// Hold makes this process the one that runs agent name: it takes the lock
// file in the root and, on a transport that spans machines, the agent's
// lease, beaten every second (what parley status on other machines reads).
// Another root's process holding the lease is a *RunningError that says
// where. Should another process take the lease over (this one was thought
// dead: its beats did not reach the server), lost is called, once, and
// this process must stop. release lets go of both.
func Hold(r *mailbox.Root, name string, lost func(error)) (release func(), err error) {
	unlock, err := Lock(name, r.Inbox(name).Path("state", "lock"))
	if err != nil {
		return nil, err
	}
	b, ok := r.Transport.(mailbox.Beater)
	if !ok {
		return unlock, nil
	}
	here := Here(r.Dir)
	rev, err := b.Hold(name, here, BeatLapse)
	var held *mailbox.HeldError
	if errors.As(err, &held) {
		unlock()
		return nil, &RunningError{Name: name, PID: held.By.Who + " in " + held.By.Root}
	}
	if err != nil {
		unlock()
		return nil, err
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			next, err := b.Beat(name, here, rev)
			if errors.Is(err, mailbox.ErrLost) {
				lost(err)
				return
			}
			if err == nil { // a beat the server did not take is given again
				rev = next
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		_ = b.Gone(name, rev) // not given up: it lapses
		unlock()
	}, nil
}

// Beat is the heartbeat of an agent with no clock of its own (the
// human's, which only watches): it sets the lock file's time, which parley
// status reads as when the agent last looked around, now and every
// interval until ctx ends. The runtime's agents beat so at each tick.
func Beat(ctx context.Context, lockPath string, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		now := time.Now()
		_ = os.Chtimes(lockPath, now, now)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Alive reads the lock file of an agent without disturbing it: a lock
// that can be taken is held by nobody.
func Alive(lockPath string) Liveness {
	f, err := os.Open(lockPath)
	if err != nil {
		return Liveness{}
	}
	defer f.Close()
	var l Liveness
	if st, err := f.Stat(); err == nil {
		l.LastSeen = st.ModTime()
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		l.Running = true
		if data, err := os.ReadFile(lockPath); err == nil {
			pid, trouble, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
			l.PID, l.Trouble = strings.TrimSpace(pid), strings.TrimSpace(trouble)
		}
		return l
	}
	if err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
	}
	return l
}
