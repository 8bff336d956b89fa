package agents

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
}

// BeatLapse is how old an agent's last heartbeat on a transport that spans
// machines may be for it to count as running: its tick beats every second,
// and a long model call holds the tick up.
const BeatLapse = 2 * time.Minute

// Here is this process and root, for a heartbeat: pid@host, and
// host:/path/of/the/root.
func Here(dir string) mailbox.Beat {
	host, _ := os.Hostname()
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return mailbox.Beat{Who: fmt.Sprintf("%d@%s", os.Getpid(), host), Root: host + ":" + dir}
}

// runsElsewhere refuses to run agent when its heartbeat, fresh, comes from
// another root — another machine, or another checkout on this one — whose
// lock this process cannot see: one process per agent, team-wide.
func runsElsewhere(b mailbox.Beater, agent, dir string) error {
	beats, err := b.Beats()
	if err != nil {
		return err
	}
	x, ok := beats[agent]
	if ok && x.Root != Here(dir).Root && time.Since(x.At) < BeatLapse {
		return &RunningError{Name: agent, PID: x.Who + " in " + x.Root}
	}
	return nil
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
		if pid, err := os.ReadFile(lockPath); err == nil {
			l.PID = strings.TrimSpace(string(pid))
		}
		return l
	}
	if err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
	}
	return l
}
