package agents

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Liveness is what an agent's lock file says: whether a process holds it,
// which, and when it last looked around (its heartbeat).
type Liveness struct {
	Running  bool
	PID      string
	LastSeen time.Time
}

// Who names this process for a heartbeat: pid@host.
func Who() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%d@%s", os.Getpid(), host)
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
