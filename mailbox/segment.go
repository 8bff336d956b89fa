package mailbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// A ledger of years is a sequence of files (issue 18): the sealed segments
// ROOT/ledger/000001.jsonl, 000002.jsonl, ..., each a run of whole chained
// lines, written once and never changed, then the live file
// ROOT/ledger.jsonl, the one appended to. Invariants:
//
//   - The ledger is one stream: the segments in the order of their numbers,
//     then the live file. seq and the hash chain run across the files
//     unchanged; sealing moves bytes from the head of the live file into a
//     new segment and rewrites no line.
//   - A byte offset into the ledger (a Position's) is an offset into that
//     stream, so sealing never moves a line: every checkpoint stays valid.
//   - Only an appender seals, under the ledger's flock, and only in a root
//     whose ROOT/ledger/ folder exists (parley init makes it; parley ledger
//     seal makes it for an older root). A root without it is one file, as
//     before.
//   - Sealing is (1) write each segment under a temporary name, sync it,
//     rename it into ledger/, sync the folder; then (2) write what is left
//     of the live file to ledger.jsonl.sealing, sync it, rename it over
//     ledger.jsonl, sync the root. A crash between (1) and (2) leaves
//     segments whose lines the live file still begins with: every opener
//     under the lock finds them, checks they are the live file's first
//     bytes, and finishes (2); every reader skips the copy. A crash inside
//     (1) or (2) leaves only a temporary file, which the next opener under
//     the lock removes.
//   - The live file is replaced by sealing, so an appender checks, under
//     its flock, that the file it locked is still the one at the path, and
//     opens the path again when it is not.

// SegmentDir is the folder, beside the live ledger.jsonl, of the sealed
// segments.
const SegmentDir = "ledger"

// DefaultSegmentSize is the size at which the live file is sealed: a
// busy team's day or two (about 1.7 MB a day at a hundred deals), so that
// a commit stores at most a few MB again, compressed well under one, and
// a ledger of ten million lines is about a thousand files.
const DefaultSegmentSize = 4 << 20

// SegmentSizeEnv names the environment variable that sets the size at
// which the live file is sealed ("4MiB", "1048576"); every process that
// appends to a root should see the same.
const SegmentSizeEnv = "PARLEY_SEGMENT_SIZE"

// segmentReadme is written into a new SegmentDir: it marks the root as
// sealed (git keeps no empty folder) and tells a person what is there.
const segmentReadme = `Sealed segments of this root's ledger (docs/MAILBOX.md, "Sealed segments").
Each NNNNNN.jsonl is a run of whole ledger lines, written once and never
changed; the ledger is these files in order, then ../ledger.jsonl. Commit
them with git; parley ledger verify checks them all.
`

// SegmentSize is the size at which the live file is sealed: SegmentSizeEnv
// if set, else DefaultSegmentSize.
func SegmentSize() (int64, error) {
	v := os.Getenv(SegmentSizeEnv)
	if v == "" {
		return DefaultSegmentSize, nil
	}
	n, err := ParseSize(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", SegmentSizeEnv, err)
	}
	return int64(n), nil
}

// segmentsOf is the segment folder of the live ledger file at path.
func segmentsOf(path string) string { return filepath.Join(filepath.Dir(path), SegmentDir) }

// segmentName is the file name of the n-th segment.
func segmentName(n int) string { return fmt.Sprintf("%06d.jsonl", n) }

// IsSegmentName says whether a file name is a sealed segment's.
func IsSegmentName(name string) bool { return segmentNumber(name) > 0 }

// segmentNumber is the number a segment's file name carries, or 0 for a
// name that is not a segment's.
func segmentNumber(name string) int {
	digits, ok := strings.CutSuffix(name, ".jsonl")
	if !ok || len(digits) < 6 || strings.Trim(digits, "0123456789") != "" {
		return 0
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		return 0
	}
	return n
}

// MakeSegmentDir creates the segment folder of the live ledger at path, so
// that appenders seal it from then on; it reports whether it made it.
func MakeSegmentDir(path string) (bool, error) {
	dir := segmentsOf(path)
	if _, err := os.Stat(dir); err == nil {
		return false, nil
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return false, fmt.Errorf("make %s: %w", dir, err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return false, fmt.Errorf("make %s: %w", dir, err)
	}
	readme := filepath.Join(dir, "README")
	if _, err := os.Stat(readme); errors.Is(err, fs.ErrNotExist) {
		if err := writeFileSync(readme, []byte(segmentReadme)); err != nil {
			return false, fmt.Errorf("make %s: %w", dir, err)
		}
	}
	return true, nil
}

// segment is one sealed file.
type segment struct {
	name  string   // its path
	f     *os.File // open while it is among the last read
	start int64    // its first byte's offset in the ledger
	size  int64
}

// sealed is the segments of a ledger, in order. A segment is opened when
// it is read, and only the few read last are kept open: a ledger of years
// is many files, more than a process may have open.
type sealed struct {
	dir   string
	segs  []segment
	size  int64    // their bytes together: where the live file starts
	stamp dirStamp // the folder as it was when listed
	exist bool     // the folder exists: appenders seal
	open  []int    // the segments open, the one read last at the end
}

// keepOpen is how many segments a reader keeps open.
const keepOpen = 4

// file is segment i, opened if it is not.
func (s *sealed) file(i int) (*os.File, error) {
	for j, k := range s.open {
		if k == i {
			s.open = append(append(s.open[:j:j], s.open[j+1:]...), i)
			return s.segs[i].f, nil
		}
	}
	f, err := os.Open(s.segs[i].name)
	if err != nil {
		return nil, fmt.Errorf("open sealed segment: %w", err)
	}
	if len(s.open) == keepOpen {
		old := s.open[0]
		s.segs[old].f.Close()
		s.segs[old].f = nil
		s.open = s.open[1:]
	}
	s.segs[i].f = f
	s.open = append(s.open, i)
	return f, nil
}

// dirStamp tells whether a folder's entries may have changed.
type dirStamp struct {
	ino        uint64
	mtim, ctim syscall.Timespec
}

func stampOf(dir string) (dirStamp, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return dirStamp{}, false
	}
	return dirStamp{ino: st.Ino, mtim: st.Mtim, ctim: st.Ctim}, true
}

// SegmentFiles lists the sealed segments of the live ledger at path, in
// order; none for a root that has no segment folder.
func SegmentFiles(path string) ([]string, error) {
	dir := segmentsOf(path)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list sealed segments: %w", err)
	}
	var nums []int
	for _, e := range ents {
		if n := segmentNumber(e.Name()); n > 0 {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	var out []string
	for i, n := range nums {
		if n != i+1 {
			// A missing segment is a cut in the middle of the ledger.
			return nil, &VerifyError{Kind: "dropped",
				Msg:  fmt.Sprintf("%s is missing (%s follows it)", filepath.Join(dir, segmentName(i+1)), segmentName(n)),
				Hint: "restore it from git (git checkout -- " + filepath.Join(dir, segmentName(i+1)) + ")"}
		}
		out = append(out, filepath.Join(dir, segmentName(n)))
	}
	return out, nil
}

// openSealed opens the segments of the live ledger at path.
func openSealed(path string) (*sealed, error) {
	s := &sealed{dir: segmentsOf(path)}
	s.stamp, s.exist = stampOf(s.dir)
	if v, ok := listed.Load(s.dir); ok && s.exist && v.(*listing).stamp == s.stamp {
		l := v.(*listing)
		s.segs, s.size = slices.Clone(l.segs), l.size
		return s, nil
	}
	names, err := SegmentFiles(path)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		st, err := os.Stat(name)
		if err != nil {
			return nil, fmt.Errorf("open sealed segment: %w", err)
		}
		s.segs = append(s.segs, segment{name: name, start: s.size, size: st.Size()})
		s.size += st.Size()
	}
	if s.exist {
		listed.Store(s.dir, &listing{stamp: s.stamp, segs: slices.Clone(s.segs), size: s.size})
	}
	return s, nil
}

// listed is the last listing of each segment folder a process made, by
// the folder's stamp: sealed segments never change, and a folder whose
// stamp did not change holds the same ones. A process that opens the
// ledger again and again (an engine looking a decision up in the index)
// lists a folder of years once, not a stat a segment each time.
var listed sync.Map // folder: *listing

type listing struct {
	stamp dirStamp
	segs  []segment // no file open
	size  int64
}

// changed says whether the folder may hold other segments than when s was
// listed.
func (s *sealed) changed() bool {
	stamp, exist := stampOf(s.dir)
	return exist != s.exist || stamp != s.stamp
}

func (s *sealed) close() {
	for _, i := range s.open {
		s.segs[i].f.Close()
	}
	s.segs, s.open = nil, nil
}

// drop leaves out the last k segments: they are still in the live file.
func (s *sealed) drop(k int) {
	keep := len(s.segs) - k
	open := s.open[:0]
	for _, i := range s.open {
		if i >= keep {
			s.segs[i].f.Close()
			continue
		}
		open = append(open, i)
	}
	for _, g := range s.segs[keep:] {
		s.size -= g.size
	}
	s.segs, s.open = s.segs[:keep], open
}

// overlap is how many of the last segments the live file still begins
// with — a seal cut short between writing them and cutting the live file,
// or a reader that opened the live file before it was cut — by their first
// seq: a segment that starts at or after the live file's first line is in
// the live file too.
func (s *sealed) overlap(live io.ReaderAt) int {
	first, ok := firstSeq(live)
	if !ok {
		return 0
	}
	k := 0
	for i := len(s.segs) - 1; i >= 0; i-- {
		f, err := s.file(i)
		if err != nil {
			break
		}
		seq, ok := firstSeq(f)
		if !ok || seq < first {
			break
		}
		k++
	}
	return k
}

// firstSeq is the seq of the first line of r, if it is a ledger line.
func firstSeq(r io.ReaderAt) (uint64, bool) {
	br := bufio.NewReaderSize(io.NewSectionReader(r, 0, 1<<62), 1<<12)
	line, err := lineReader{br: br}.next()
	if err != nil || len(line) == 0 || line[len(line)-1] != '\n' {
		return 0, false
	}
	seq, _, err := lineHead(line)
	return seq, err == nil
}

// readAt reads the ledger's bytes at off: from the segments, then from
// live at off less their size, as os.File.ReadAt does at its end.
func (s *sealed) readAt(live io.ReaderAt, p []byte, off int64) (int, error) {
	n := 0
	for len(p) > 0 {
		if off >= s.size {
			m, err := live.ReadAt(p, off-s.size)
			return n + m, err
		}
		i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].start+s.segs[i].size > off })
		g := s.segs[i]
		f, err := s.file(i)
		if err != nil {
			return n, err
		}
		k := min(int64(len(p)), g.start+g.size-off)
		m, err := f.ReadAt(p[:k], off-g.start)
		n, off, p = n+m, off+int64(m), p[m:]
		if int64(m) < k {
			if err == nil || err == io.EOF {
				err = fmt.Errorf("read %s: %w (it is shorter than when it was opened: sealed segments never change)", g.name, io.ErrUnexpectedEOF)
			}
			return n, err
		}
	}
	return n, nil
}

// sameBytes reports whether a and b hold the same n bytes from offsets
// ao and bo.
func sameBytes(a io.ReaderAt, ao int64, b io.ReaderAt, bo int64, n int64) (bool, error) {
	const chunk = 1 << 20
	x, y := make([]byte, min(chunk, n)), make([]byte, min(chunk, n))
	for n > 0 {
		k := min(int64(len(x)), n)
		if _, err := a.ReadAt(x[:k], ao); err != nil {
			return false, err
		}
		if _, err := b.ReadAt(y[:k], bo); err != nil {
			if err == io.EOF {
				return false, nil
			}
			return false, err
		}
		if !bytes.Equal(x[:k], y[:k]) {
			return false, nil
		}
		n, ao, bo = n-k, ao+k, bo+k
	}
	return true, nil
}

// LedgerReader reads a ledger as the one stream it is: its sealed segments,
// then the live file (ROOT/ledger.jsonl), for the commands that show it. A
// root without segments reads as its file. Offsets are the ledger's, as a
// Position holds them. Read follows the ledger across a seal: at the end
// of a live file that was sealed meanwhile, it goes on in the new one.
type LedgerReader struct {
	path   string
	sealed *sealed
	live   *os.File
	off    int64 // where Read is
}

// OpenLedgerReader opens the ledger whose live file is at path. A missing
// live file with no segment is fs.ErrNotExist; with segments, the ledger
// is the segments.
func OpenLedgerReader(path string) (*LedgerReader, error) {
	// The live file first, then the segments: a seal in between adds a
	// segment that the live file still holds, and overlap finds it.
	live, err := os.Open(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	s, serr := openSealed(path)
	if serr != nil {
		if live != nil {
			live.Close()
		}
		return nil, serr
	}
	if live == nil {
		if len(s.segs) == 0 {
			return nil, err
		}
		empty, derr := os.Open(os.DevNull)
		if derr != nil {
			s.close()
			return nil, derr
		}
		live = empty
	}
	if k := s.overlap(live); k > 0 {
		s.drop(k)
	}
	return &LedgerReader{path: path, sealed: s, live: live}, nil
}

// Name is the live file's path, the name the ledger goes by.
func (r *LedgerReader) Name() string { return r.path }

// Segments is how many sealed segments precede the live file.
func (r *LedgerReader) Segments() int { return len(r.sealed.segs) }

// Sealed is the size of the sealed segments: the offset where the live
// file starts.
func (r *LedgerReader) Sealed() int64 { return r.sealed.size }

// Size is the ledger's size now.
func (r *LedgerReader) Size() (int64, error) {
	st, err := r.live.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat ledger: %w", err)
	}
	return r.sealed.size + st.Size(), nil
}

// ReadAt reads the ledger's bytes at off.
func (r *LedgerReader) ReadAt(p []byte, off int64) (int, error) {
	return r.sealed.readAt(r.live, p, off)
}

// Read reads on from where the last Read ended, following the ledger
// across a seal.
func (r *LedgerReader) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if n > 0 || err != io.EOF {
		if err == io.EOF {
			err = nil
		}
		return n, err
	}
	// At the end of the live file: if it was sealed, the ledger goes on in
	// the file at the path now, at the same offset.
	if ok, _ := r.replaced(); !ok {
		return 0, io.EOF
	}
	fresh, err := OpenLedgerReader(r.path)
	if err != nil {
		return 0, err
	}
	r.swap(fresh)
	n, err = r.ReadAt(p, r.off)
	r.off += int64(n)
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

// Seek moves Read to off, as os.File.Seek does.
func (r *LedgerReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += r.off
	case io.SeekEnd:
		size, err := r.Size()
		if err != nil {
			return 0, err
		}
		off += size
	default:
		return 0, fmt.Errorf("seek the ledger: whence %d", whence)
	}
	r.off = off
	return off, nil
}

// replaced says whether the path holds another file than the live file
// open.
func (r *LedgerReader) replaced() (bool, error) {
	now, err := os.Stat(r.path)
	if err != nil {
		return false, err
	}
	open, err := r.live.Stat()
	if err != nil {
		return false, err
	}
	return !os.SameFile(now, open), nil
}

func (r *LedgerReader) swap(fresh *LedgerReader) {
	r.sealed.close()
	r.live.Close()
	r.sealed, r.live = fresh.sealed, fresh.live
}

// Close closes the files.
func (r *LedgerReader) Close() error {
	r.sealed.close()
	return r.live.Close()
}

// Locate names the file and the line in it of the ledger's n-th line
// (1-based), for a message a person acts on: "ledger/000002.jsonl:17".
func (r *LedgerReader) Locate(n int) string {
	left := n
	for i, g := range r.sealed.segs {
		f, err := r.sealed.file(i)
		if err != nil {
			return fmt.Sprintf("%s: line %d", r.path, n)
		}
		k, err := countLines(io.NewSectionReader(f, 0, g.size))
		if err != nil {
			return fmt.Sprintf("%s: line %d", r.path, n)
		}
		if left <= k {
			return fmt.Sprintf("%s:%d", g.name, left)
		}
		left -= k
	}
	return fmt.Sprintf("%s:%d", r.path, left)
}

func countLines(r io.Reader) (int, error) {
	buf := make([]byte, 1<<16)
	n := 0
	for {
		k, err := r.Read(buf)
		n += bytes.Count(buf[:k], []byte("\n"))
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
