package mailbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Anything can be dropped into an inbox (RELIABILITY.md 13): a symbolic
// link to /dev/zero reads for ever, a FIFO opened for reading blocks for
// ever, a link to a file outside the root would be read as if it had been
// delivered. So a file that arrived in an inbox is opened without following
// a link and without blocking, checked on its descriptor, and read only if
// it is a regular file, only up to the size limit.

// DefaultMaxMessageSize is the largest message file parley reads, unless
// parley.toml's max_message_size says otherwise: 1 MiB.
const DefaultMaxMessageSize = 1 << 20

// Size is a number of bytes, written in parley.toml as a whole number of
// bytes (1048576) or with a unit: "512KiB", "1MiB", "2 MB", "64kB".
type Size int64

var sizeUnits = []struct {
	suffix string
	n      int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"kB", 1000}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseSize reads a size such as "1MiB", "64 kB" or "1048576".
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || strings.HasPrefix(t, "+") || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q is not a size: write bytes, or a whole number with KiB, MiB, kB or MB", s)
	}
	return Size(n * mult), nil
}

// UnmarshalText reads a size from parley.toml (a string or an integer).
func (z *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*z = v
	return nil
}

// String writes the size as people read it: "1 MiB", "640 KiB", "1000 B".
func (z Size) String() string {
	switch n := int64(z); {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d B", n)
	}
}

// ErrStranger is wrapped by a *StrangerError.
var ErrStranger = errors.New("not a message file")

// StrangerError says that a file in an inbox is not one parley reads: not
// a regular file, or larger than the size limit. It was not read.
type StrangerError struct {
	What string // what it is: "a symbolic link (to /dev/zero)", "a named pipe (FIFO)", "a file of 52428800 bytes"
	Why  string // why it is refused
}

func (e *StrangerError) Error() string { return e.What + ": " + e.Why }

func (e *StrangerError) Unwrap() error { return ErrStranger }

// onlyRegular is why a special file is refused.
const onlyRegular = "parley reads only regular files"

// ReadMessageFile reads a message file that arrived in an inbox (new/, cur/,
// drop/, rejected/): opened with O_NOFOLLOW|O_NONBLOCK, so that neither a
// link nor a pipe can redirect or block the read, checked with fstat, and
// read to at most max bytes (DefaultMaxMessageSize when max <= 0). Anything
// but a regular file within the limit is a *StrangerError, not read.
func ReadMessageFile(path string, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxMessageSize
	}
	f, err := openFile(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		// O_NOFOLLOW fails with ELOOP on a link, and opening a socket
		// fails with ENXIO: say what the file is rather than how it failed.
		if s := describe(path); s != nil {
			return nil, s
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &StrangerError{What: kindOf(st.Mode(), path), Why: onlyRegular}
	}
	if st.Size() > max {
		return nil, tooLarge(fmt.Sprintf("a file of %d bytes", st.Size()), max)
	}
	// The size can grow after the fstat (a writer still at it): read one
	// byte more than the limit to know.
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, tooLarge(fmt.Sprintf("a file of more than %d bytes", max), max)
	}
	return data, nil
}

func tooLarge(what string, max int64) *StrangerError {
	return &StrangerError{What: what, Why: fmt.Sprintf("over the limit of %s on a message (max_message_size in parley.toml)", Size(max))}
}

// describe says what the file at path is when it could not be opened as a
// regular file, or nil when it is one (or is gone).
func describe(path string) *StrangerError {
	st, err := os.Lstat(path)
	if err != nil || st.Mode().IsRegular() {
		return nil
	}
	return &StrangerError{What: kindOf(st.Mode(), path), Why: onlyRegular}
}

// kindOf names a file's type as a person would.
func kindOf(mode fs.FileMode, path string) string {
	switch {
	case mode&fs.ModeSymlink != 0:
		to, err := os.Readlink(path)
		if err != nil {
			return "a symbolic link"
		}
		return fmt.Sprintf("a symbolic link (to %s)", truncate(strings.ToValidUTF8(to, "?"), 200))
	case mode.IsDir():
		return "a directory"
	case mode&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeCharDevice != 0:
		return "a character device"
	case mode&fs.ModeDevice != 0:
		return "a block device"
	case mode&fs.ModeIrregular != 0:
		return "a file of an unknown type"
	}
	return "a file of mode " + mode.String()
}
