package mailbox

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// beingWritten reports whether any process has the file open for writing.
// Linux refuses a read lease on such a file with EAGAIN (fcntl(2),
// F_SETLEASE), which tells a file copied straight into new/ by cp or an
// editor, still being written, from one that arrived whole by rename. Where
// a lease cannot be had (another owner without CAP_LEASE, a network file
// system), a file changed in the last settle interval counts as busy.
func beingWritten(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	fd := int(f.Fd())
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_RDLCK)
	if err == nil {
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_UNLCK)
		return false, nil
	}
	if errors.Is(err, unix.EAGAIN) {
		return true, nil
	}
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	return time.Since(st.ModTime()) < settleFallback, nil
}

// settleFallback is how long a file must have been left alone to count as
// complete where leases are not available.
const settleFallback = 2 * time.Second
