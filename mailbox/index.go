package mailbox

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The index is where each ledger line is, by thread and by message id, so
// that a command about one deal (parley thread ID, parley why) reads that
// deal's lines and not the whole ledger (issue 18). Like every checkpoint
// it is derived data, never the truth:
//
//   - it records the line it covers (a Position) and is used only if the
//     ledger still has that line there (CheckPosition); otherwise it is
//     emptied and built again from the first line;
//   - each line it points at is read from the ledger and checked to be
//     on the thread or about the message asked; one that is not means the
//     index is out of step, and the caller reads the whole ledger;
//   - parley ledger reindex deletes it and builds it anew.
//
// It is kept in a bbolt file (go.etcd.io/bbolt): a B+tree whose writes are
// transactions, one writer at a time across processes (a lock on the
// file), read through mmap. A lookup touches a few pages however long the
// ledger, and a process's memory does not grow with history.
//
// Each reader brings it up to date first: the lines appended since the
// position it records are read and added, in one transaction with the new
// position. Writers of the ledger do not touch it.

// IndexFile is the index's file, under CheckpointDir.
const IndexFile = "index.db"

// indexVersion changes with what the index holds; an index of another
// version is built again.
const indexVersion = "1"

var (
	indexMeta    = []byte("meta")   // "version", "at": the Position covered
	indexThreads = []byte("thread") // thread: its lines' offsets
	indexMsgs    = []byte("msg")    // message id: the offsets of the lines that name it
)

// indexBatch is how many lines a transaction adds at most: what a build
// holds in memory before it writes.
const indexBatch = 50_000

// ErrIndexStale is returned by an Index whose lines are not the ledger's:
// read the whole ledger instead; parley ledger reindex builds it again.
var ErrIndexStale = errors.New("the ledger index is out of step with the ledger")

// Index is the ledger's index, open and up to date.
type Index struct {
	db   *bolt.DB
	r    *LedgerReader
	size int64 // the ledger's bytes the index covers
}

// IndexProgress is told, while an index is brought up to date, how many of
// the ledger's bytes are read and how many there are to read.
type IndexProgress func(done, total int64)

// OpenIndex opens the index of the ledger of the root at dir and brings it
// up to date. A ledger that does not exist returns fs.ErrNotExist.
func OpenIndex(dir string, progress IndexProgress) (*Index, error) {
	r, err := OpenLedgerReader(filepath.Join(dir, LedgerFile))
	if err != nil {
		return nil, err
	}
	ix, err := openIndex(dir, r, progress)
	if err != nil {
		r.Close()
		return nil, err
	}
	return ix, nil
}

// OpenIndexCovering opens the index of the ledger of the root at dir for
// the lines up to at: as it is, read-only beside other readers, when it
// already covers them; brought up to date otherwise.
func OpenIndexCovering(dir string, at Position) (*Index, error) {
	r, err := OpenLedgerReader(filepath.Join(dir, LedgerFile))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, CheckpointDir, IndexFile)
	if db, err := bolt.Open(path, 0o644, &bolt.Options{ReadOnly: true, Timeout: time.Minute}); err == nil {
		ix := &Index{db: db, r: r}
		if covered, err := ix.covered(); err == nil && covered.Offset >= at.Offset {
			ix.size = covered.Offset
			return ix, nil
		}
		db.Close()
	}
	ix, err := openIndex(dir, r, nil)
	if err != nil {
		r.Close()
		return nil, err
	}
	if ix.size < at.Offset {
		ix.Close()
		return nil, fmt.Errorf("%w: it covers %d bytes, not the %d asked", ErrIndexStale, ix.size, at.Offset)
	}
	return ix, nil
}

// covered is the position the index covers, when the ledger still has
// its line there; the zero Position when it covers nothing.
func (ix *Index) covered() (Position, error) {
	var at Position
	err := ix.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(indexMeta); b != nil && string(b.Get([]byte("version"))) == indexVersion {
			at, _ = ParsePosition(string(b.Get([]byte("at"))))
		}
		return nil
	})
	if err != nil {
		return Position{}, fmt.Errorf("read ledger index: %w", err)
	}
	ok, _, err := ix.r.CheckPosition(at)
	if err != nil {
		return Position{}, fmt.Errorf("ledger index: %w", err)
	}
	if !ok {
		return Position{}, nil
	}
	return at, nil
}

func openIndex(dir string, r *LedgerReader, progress IndexProgress) (*Index, error) {
	if err := os.MkdirAll(filepath.Join(dir, CheckpointDir), 0o755); err != nil {
		return nil, fmt.Errorf("open ledger index: %w", err)
	}
	path := filepath.Join(dir, CheckpointDir, IndexFile)
	opts := &bolt.Options{Timeout: time.Minute} // another process building it holds the lock
	db, err := bolt.Open(path, 0o644, opts)
	if err != nil && !errors.Is(err, bolt.ErrTimeout) && !errors.Is(err, fs.ErrPermission) {
		// Not a bbolt file, or a damaged one: a cache, built again.
		if rerr := os.Remove(path); rerr == nil {
			db, err = bolt.Open(path, 0o644, opts)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open ledger index %s: %w", path, err)
	}
	ix := &Index{db: db, r: r}
	if err := ix.catchUp(progress); err != nil {
		db.Close()
		return nil, err
	}
	return ix, nil
}

// Close closes the index and its ledger.
func (ix *Index) Close() error {
	return errors.Join(ix.db.Close(), ix.r.Close())
}

// catchUp adds the lines appended since the position the index covers,
// or every line when the ledger no longer has that position.
func (ix *Index) catchUp(progress IndexProgress) error {
	at, err := ix.covered()
	if err != nil {
		return err
	}
	size, err := ix.r.Size()
	if err != nil {
		return fmt.Errorf("ledger index: %w", err)
	}
	if at.Seq == 0 {
		if err := ix.reset(); err != nil {
			return err
		}
	}
	ix.size = at.Offset
	if size == at.Offset {
		return nil
	}
	lr := lineReader{br: bufio.NewReaderSize(io.NewSectionReader(ix.r, at.Offset, size-at.Offset), 1<<16)}
	off := at.Offset
	threads, msgs := map[string][]int64{}, map[string][]int64{}
	n := 0
	for {
		line, err := lr.next()
		if err == io.EOF || err == nil && line[len(line)-1] != '\n' {
			break // a line still being written: the next reader adds it
		}
		if err != nil {
			return fmt.Errorf("ledger index: %w", err)
		}
		var x struct {
			Seq    uint64 `json:"seq"`
			Hash   string `json:"hash"`
			Thread string `json:"thread"`
			MsgID  string `json:"msg_id"`
		}
		if err := json.Unmarshal(line, &x); err != nil {
			return fmt.Errorf("ledger index: the line at byte %d: %w", off, err)
		}
		if x.Thread != "" {
			threads[x.Thread] = append(threads[x.Thread], off)
		}
		if x.MsgID != "" {
			msgs[x.MsgID] = append(msgs[x.MsgID], off)
		}
		off += int64(len(line))
		at = Position{Seq: x.Seq, Hash: x.Hash, Offset: off}
		if n++; n%indexBatch == 0 {
			if err := ix.add(threads, msgs, at); err != nil {
				return err
			}
			clear(threads)
			clear(msgs)
			if progress != nil {
				progress(off-ix.size, size-ix.size)
			}
		}
	}
	if n%indexBatch != 0 {
		if err := ix.add(threads, msgs, at); err != nil {
			return err
		}
	}
	if progress != nil {
		progress(size-ix.size, size-ix.size)
	}
	ix.size = at.Offset
	return nil
}

// reset empties the index.
func (ix *Index) reset() error {
	err := ix.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{indexMeta, indexThreads, indexMsgs} {
			if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("empty ledger index: %w", err)
	}
	return nil
}

// add writes one batch of lines and the position after them, at once.
func (ix *Index) add(threads, msgs map[string][]int64, at Position) error {
	err := ix.db.Update(func(tx *bolt.Tx) error {
		for _, kv := range []struct {
			name []byte
			m    map[string][]int64
		}{{indexThreads, threads}, {indexMsgs, msgs}} {
			b, err := tx.CreateBucketIfNotExists(kv.name)
			if err != nil {
				return err
			}
			// In key order: a B+tree fills its pages best that way.
			for _, k := range slices.Sorted(maps.Keys(kv.m)) {
				old := b.Get([]byte(k))
				v := appendOffsets(slices.Clip(old), lastOffset(old), kv.m[k])
				if err := b.Put([]byte(k), v); err != nil {
					return err
				}
			}
		}
		meta, err := tx.CreateBucketIfNotExists(indexMeta)
		if err != nil {
			return err
		}
		if err := meta.Put([]byte("version"), []byte(indexVersion)); err != nil {
			return err
		}
		return meta.Put([]byte("at"), []byte(at.String()))
	})
	if err != nil {
		return fmt.Errorf("write ledger index: %w", err)
	}
	return nil
}

// Offsets are kept as uvarints, each the distance from the one before
// (the first from 0): a deal's lines are near one another, a byte or two
// apart each.

func appendOffsets(buf []byte, last int64, offs []int64) []byte {
	for _, o := range offs {
		buf = binary.AppendUvarint(buf, uint64(o-last))
		last = o
	}
	return buf
}

func readOffsets(v []byte) ([]int64, error) {
	var out []int64
	last := int64(0)
	for len(v) > 0 {
		d, n := binary.Uvarint(v)
		if n <= 0 {
			return nil, ErrIndexStale
		}
		last += int64(d)
		out = append(out, last)
		v = v[n:]
	}
	return out, nil
}

func lastOffset(v []byte) int64 {
	offs, _ := readOffsets(v)
	if len(offs) == 0 {
		return 0
	}
	return offs[len(offs)-1]
}

// Thread is every line of the ledger on the thread, in order; none when
// the ledger has no such thread.
func (ix *Index) Thread(id string) ([]Entry, error) {
	return ix.lines(indexThreads, id, func(e Entry) bool { return e.Thread == id })
}

// Message is every line of the ledger that names the message id (its
// delivery, the decisions about it, what was done with it), in order.
func (ix *Index) Message(id string) ([]Entry, error) {
	return ix.lines(indexMsgs, id, func(e Entry) bool { return e.MsgID == id })
}

// Seq is the ledger's line of seq, found by bisecting on byte offsets.
func (ix *Index) Seq(seq uint64) (Entry, bool, error) {
	if seq == 0 || ix.size == 0 {
		return Entry{}, false, nil
	}
	line, _, err := lineOf(ix.r, seq, ix.size)
	if errors.Is(err, errStale) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil {
		return Entry{}, false, fmt.Errorf("ledger seq %d: %w", seq, err)
	}
	return e, true, nil
}

// Threads calls fn with each thread the ledger has, in the order of their
// names, until fn returns false.
func (ix *Index) Threads(fn func(thread string) bool) error {
	return ix.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(indexThreads)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if !fn(string(k)) {
				return nil
			}
		}
		return nil
	})
}

// lines reads the lines the bucket lists under key, each checked to be
// what the index says it is.
func (ix *Index) lines(bucket []byte, key string, is func(Entry) bool) ([]Entry, error) {
	var offs []int64
	err := ix.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		var err error
		offs, err = readOffsets(b.Get([]byte(key)))
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(offs))
	for _, off := range offs {
		line, err := ix.lineAt(off)
		if err != nil {
			return nil, err
		}
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil || !is(e) {
			return nil, fmt.Errorf("%w: no line of %s at byte %d", ErrIndexStale, strconv.Quote(key), off)
		}
		out = append(out, e)
	}
	return out, nil
}

// lineAt reads the whole line that starts at off.
func (ix *Index) lineAt(off int64) ([]byte, error) {
	if off >= ix.size {
		return nil, ErrIndexStale
	}
	buf := make([]byte, 0, 2048)
	for {
		n := min(int64(cap(buf)-len(buf)), ix.size-off-int64(len(buf)))
		k, err := ix.r.ReadAt(buf[len(buf):len(buf)+int(n)], off+int64(len(buf)))
		if i := bytes.IndexByte(buf[len(buf):len(buf)+k], '\n'); i >= 0 {
			return buf[:len(buf)+i+1], nil
		}
		buf = buf[:len(buf)+k]
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read ledger: %w", err)
		}
		if int64(len(buf)) >= ix.size-off {
			return nil, ErrIndexStale // no newline before the end the index covers
		}
		buf = slices.Grow(buf, cap(buf))
	}
}

// RemoveIndex deletes the index of the root at dir: the next reader builds
// it again from the ledger.
func RemoveIndex(dir string) error {
	if err := os.Remove(filepath.Join(dir, CheckpointDir, IndexFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the ledger index: %w", err)
	}
	return nil
}
