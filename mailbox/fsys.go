package mailbox

import (
	"os"

	"golang.org/x/sys/unix"
)

// fault is the one seam through which tests make the mailbox's file system
// calls fail, as a full or failing disk would (STYLE.md: fault injection
// through seams, not mocks). op is "open", "write", "sync", "syncdir",
// "rename" or "truncate", and path the file's. When it returns an error,
// the call fails with it: open, sync, rename and truncate without being
// made, and write after writing half its bytes, as write(2) does when the
// disk fills in the middle.
var fault = func(op, path string) error { return nil }

// openFile is os.OpenFile through the seam.
func openFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	if err := fault("open", name); err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.OpenFile(name, flag, perm)
}

// writeFile writes b to f through the seam; it returns how many bytes
// landed.
func writeFile(f *os.File, b []byte) (int, error) {
	if err := fault("write", f.Name()); err != nil {
		n, _ := f.Write(b[:len(b)/2])
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: err}
	}
	return f.Write(b)
}

// syncFile is f.Sync through the seam.
func syncFile(f *os.File) error {
	if err := fault("sync", f.Name()); err != nil {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: err}
	}
	return f.Sync()
}

// syncData is fdatasync(2) on f through the seam.
func syncData(f *os.File) error {
	if err := fault("sync", f.Name()); err != nil {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: err}
	}
	return unix.Fdatasync(int(f.Fd()))
}

// renameFile is os.Rename through the seam.
func renameFile(from, to string) error {
	if err := fault("rename", from); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return os.Rename(from, to)
}

// truncateFile is f.Truncate through the seam.
func truncateFile(f *os.File, size int64) error {
	if err := fault("truncate", f.Name()); err != nil {
		return &os.PathError{Op: "truncate", Path: f.Name(), Err: err}
	}
	return f.Truncate(size)
}

// syncDir makes the entries of dir durable (a rename into it, a new file).
func syncDir(dir string) error {
	if err := fault("syncdir", dir); err != nil {
		return &os.PathError{Op: "sync", Path: dir, Err: err}
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
