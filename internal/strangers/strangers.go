// Package strangers makes the files a stranger can leave in an inbox —
// links in and out of the root, special files, a folder — for the tests of
// every layer that must refuse them (issue 16; RELIABILITY.md 13): one
// list, so that each layer is tried against the same strangers.
package strangers

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Stranger is one kind of file that is not a message file.
type Stranger struct {
	Name string
	Make func(t *testing.T, path string)
	What string // what parley's .err says it is
}

// All are the special files and links; outside is a signed message outside
// the root, for a link to follow out of it.
func All(outside string) []Stranger {
	link := func(to string) func(*testing.T, string) {
		return func(t *testing.T, path string) {
			t.Helper()
			if err := os.Symlink(to, path); err != nil {
				t.Fatal(err)
			}
		}
	}
	return []Stranger{
		{"link-dev-zero", link("/dev/zero"), "a symbolic link (to /dev/zero)"},
		{"link-dev-urandom", link("/dev/urandom"), "a symbolic link (to /dev/urandom)"},
		{"link-etc-passwd", link("/etc/passwd"), "a symbolic link (to /etc/passwd)"},
		{"link-nowhere", link("/nonexistent/parley"), "a symbolic link (to /nonexistent/parley)"},
		{"link-signed-outside", link(outside), "a symbolic link (to " + outside + ")"},
		{"fifo", func(t *testing.T, path string) {
			t.Helper()
			if err := syscall.Mkfifo(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "a named pipe (FIFO)"},
		{"directory", func(t *testing.T, path string) {
			t.Helper()
			if err := os.MkdirAll(filepath.Join(path, "inside"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "a directory"},
		{"socket", func(t *testing.T, path string) {
			t.Helper()
			// Bound in a short folder (sun_path holds 108 bytes), then
			// moved into place.
			short, err := os.MkdirTemp("", "s")
			if err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(short)
			l, err := net.Listen("unix", filepath.Join(short, "s"))
			if err != nil {
				t.Fatal(err)
			}
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			l.Close()
			if err := os.Rename(filepath.Join(short, "s"), path); err != nil {
				t.Fatal(err)
			}
		}, "a socket"},
	}
}
