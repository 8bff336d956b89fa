package mailbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Sealing, under the ledger's flock (segment.go states the invariants).

// sealingSuffix names the live file's remainder while it is written.
const sealingSuffix = ".sealing"

// view is the ledger as one stream, for reading at its offsets: the
// segments, then the live file. Only under the lock.
func (l *Ledger) view() io.ReaderAt { return ledgerView{l.sealed, l.f} }

type ledgerView struct {
	s    *sealed
	live *os.File
}

func (v ledgerView) ReadAt(p []byte, off int64) (int, error) { return v.s.readAt(v.live, p, off) }

// sameFile says whether the live file open is the one at the path: a seal
// by another process replaces it.
func (l *Ledger) sameFile() (bool, error) {
	now, err := os.Stat(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // removed: open it again, created empty, and the cut shows
	}
	if err != nil {
		return false, fmt.Errorf("stat ledger: %w", err)
	}
	open, err := l.f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat ledger: %w", err)
	}
	return os.SameFile(now, open), nil
}

// reopen opens the file at the path as the live file. The old one stays
// open while an Append is still syncing it, after the lock.
func (l *Ledger) reopen() error {
	f, err := openFile(l.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open ledger: %w", err)
	}
	l.retired = append(l.retired, l.f)
	l.f = f
	l.size = -1
	l.closeRetired()
	return nil
}

// hold marks the live file as being synced by an Append, under l.mu, and
// returns it.
func (l *Ledger) hold() *os.File {
	if l.busy == nil {
		l.busy = map[*os.File]int{}
	}
	l.busy[l.f]++
	return l.f
}

// release is the end of an Append's sync of f.
func (l *Ledger) release(f *os.File) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy[f]--; l.busy[f] <= 0 {
		delete(l.busy, f)
	}
	l.closeRetired()
}

// closeRetired closes the replaced live files that no Append is syncing:
// an agent that runs for years sees a seal every day or two.
func (l *Ledger) closeRetired() {
	kept := l.retired[:0]
	for _, f := range l.retired {
		if l.busy[f] > 0 {
			kept = append(kept, f)
			continue
		}
		f.Close()
	}
	l.retired = kept
}

// loadSealed lists and opens the segments again, under the lock, and
// finishes a seal cut short. It reports whether it cut the live file: the
// caller holds the lock of the file that was, and must take the new one's.
func (l *Ledger) loadSealed() (cut bool, err error) {
	if l.sealed != nil {
		l.sealed.close()
		l.sealed = nil
	}
	s, err := openSealed(l.path)
	if err != nil {
		return false, err
	}
	l.sealed, l.size = s, -1
	// What a seal cut short left half written is of no use: the seal is
	// made again.
	os.Remove(l.path + sealingSuffix)
	if tmps, _ := filepath.Glob(filepath.Join(s.dir, ".*.jsonl.tmp")); len(tmps) > 0 {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	k := s.overlap(l.f)
	if k == 0 {
		return false, nil
	}
	// A seal stopped after writing its segments, before cutting the live
	// file: they must be the live file's first bytes, exactly.
	at := int64(0)
	for i := len(s.segs) - k; i < len(s.segs); i++ {
		g := s.segs[i]
		f, err := s.file(i)
		if err != nil {
			return false, fmt.Errorf("finish sealing: %w", err)
		}
		same, err := sameBytes(f, 0, l.f, at, g.size)
		if err != nil {
			return false, fmt.Errorf("finish sealing %s: %w", g.name, err)
		}
		if !same {
			return false, &VerifyError{Kind: "edited",
				Msg:  fmt.Sprintf("%s and %s both hold seq %d on, and differ: one of them was changed", g.name, l.path, firstOr0(f)),
				Hint: "restore both from git; parley ledger verify names the line"}
		}
		at += g.size
	}
	if err := l.cutLive(at); err != nil {
		return false, fmt.Errorf("finish sealing: %w", err)
	}
	return true, nil
}

func firstOr0(r io.ReaderAt) uint64 { seq, _ := firstSeq(r); return seq }

// maybeSeal seals the live file, under the lock, once it has reached the
// segment size, in a root that seals. The lines appended are on disk
// whether the seal works or not, so the append does not fail with it
// (SealError says why). A seal that failed is made again once the ledger
// has grown by a quarter of the segment size since: on a disk that stays
// full, each append copying the whole live file again would cost more as
// it grows.
func (l *Ledger) maybeSeal() {
	if l.sealAt <= 0 || l.sealed == nil || !l.sealed.exist || l.size < 0 || l.size-l.sealed.size < l.sealAt {
		return
	}
	if l.sealErr != nil && l.size < l.sealFailed+l.sealAt/4 {
		return
	}
	if _, l.sealErr = l.seal(l.sealAt); l.sealErr != nil {
		l.sealFailed = l.size
	}
}

// SealError is why the last seal this process tried failed, or nil.
func (l *Ledger) SealError() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sealErr
}

// Seal seals the live file now into segments of at least size bytes each
// (whole lines), leaving the rest live, and returns the segments made;
// with size 0, the whole live file into one segment (before a commit, so
// that the commit adds only new files). It
// makes the root's segment folder first: from then on appenders seal as
// the live file grows. Made again after a crash, it finishes what was
// begun; made again after it finished, it makes nothing.
func (l *Ledger) Seal(size int64) ([]string, error) {
	if size < 0 {
		return nil, fmt.Errorf("seal the ledger: a segment size of %d bytes", size)
	}
	if _, err := MakeSegmentDir(l.path); err != nil {
		return nil, fmt.Errorf("seal the ledger: %w", err)
	}
	var made []string
	err := l.locked(func() (err error) {
		made, err = l.seal(size)
		return err
	})
	return made, err
}

// seal moves the live file's head into new segments, each the lines up to
// the first line end at or after size bytes, while the rest is size or
// more; with size 0, the whole live file. Under the lock, with the live
// file's size known.
func (l *Ledger) seal(size int64) ([]string, error) {
	live := l.size - l.sealed.size
	var ends []int64
	if size == 0 && live > 0 {
		ends = append(ends, live)
	}
	for pos := int64(0); size > 0 && live-pos >= size; {
		end, err := lineEnd(l.f, pos+size-1, live)
		if err != nil {
			return nil, fmt.Errorf("seal the ledger: %w", err)
		}
		ends = append(ends, end)
		pos = end
	}
	if len(ends) == 0 {
		return nil, nil
	}
	var made []string
	start, n := int64(0), len(l.sealed.segs)
	for i, end := range ends {
		name := filepath.Join(l.sealed.dir, segmentName(n+i+1))
		if err := writeSegment(name, io.NewSectionReader(l.f, start, end-start)); err != nil {
			return made, fmt.Errorf("seal the ledger: %w", err)
		}
		made = append(made, name)
		start = end
	}
	if err := l.cutLive(start); err != nil {
		return made, fmt.Errorf("seal the ledger: %w", err)
	}
	s, err := openSealed(l.path)
	if err != nil {
		return made, fmt.Errorf("seal the ledger: %w", err)
	}
	l.sealed.close()
	l.sealed = s
	return made, nil
}

// lineEnd is the offset just after the first newline at or after off in
// the first size bytes of f.
func lineEnd(f io.ReaderAt, off, size int64) (int64, error) {
	buf := make([]byte, 1<<16)
	for at := off; at < size; {
		k := min(int64(len(buf)), size-at)
		n, err := f.ReadAt(buf[:k], at)
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return at + int64(i) + 1, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read ledger: %w", err)
		}
		at += int64(n)
	}
	return 0, errors.New("read ledger: no line ends where a segment would")
}

// writeSegment writes a sealed segment: under a temporary name in its
// folder, synced, read-only, renamed into place, the folder synced.
func writeSegment(name string, r io.Reader) error {
	if _, err := os.Stat(name); err == nil {
		return fmt.Errorf("%s exists already", name)
	}
	return replaceWith(name, filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+".tmp"), 0o444, r)
}

// replaceWith puts r's bytes at name whole or not at all: written to tmp
// (made anew, with perm), synced, renamed over name, the folder synced.
func replaceWith(name, tmp string, perm os.FileMode, r io.Reader) error {
	os.Remove(tmp)
	f, err := openFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if err := copyTo(f, r); err != nil {
		f.Close()
		return err
	}
	if err := syncFile(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := renameFile(tmp, name); err != nil {
		return err
	}
	return syncDir(filepath.Dir(name))
}

// copyTo copies r into f through the write seam, a block at a time.
func copyTo(f *os.File, r io.Reader) error {
	buf := make([]byte, 1<<20)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, werr := writeFile(f, buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// cutLive replaces the live file by its bytes from at on (those before are
// sealed): written beside it, synced, renamed over it, the folder synced,
// then opened. The lock held is the old file's: the caller takes the new
// one's before reading or writing more.
func (l *Ledger) cutLive(at int64) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(l.f.Fd()), &st); err != nil {
		return fmt.Errorf("stat ledger: %w", err)
	}
	if err := replaceWith(l.path, l.path+sealingSuffix, os.FileMode(st.Mode)&os.ModePerm, io.NewSectionReader(l.f, at, st.Size-at)); err != nil {
		return err
	}
	return l.reopen()
}

// SealLedger seals the root's ledger now into segments of at least size
// bytes (parley ledger seal): on a root whose ledger is kept elsewhere, its
// copy, brought up to date first.
func (r *Root) SealLedger(size int64) ([]string, error) {
	path := filepath.Join(r.Dir, LedgerFile)
	if src, ok := r.Transport.(Copied); ok {
		l, err := openLedger(path, r.Now, true, nil)
		if err != nil {
			return nil, err
		}
		defer l.Close()
		if err := l.CopyFrom(src); err != nil {
			return nil, err
		}
		return l.Seal(size)
	}
	l, err := r.Ledger()
	if err != nil {
		return nil, err
	}
	led, ok := l.(*Ledger)
	if !ok {
		return nil, fmt.Errorf("seal the ledger: the %T transport keeps no ledger file", l)
	}
	return led.Seal(size)
}
