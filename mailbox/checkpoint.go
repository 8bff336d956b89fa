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
)

// A checkpoint is what a reader derived from the ledger up to one of its
// lines, kept so that the next reader starts there and reads only what was
// appended since (issue 18). It is a cache, never the truth:
//
//   - it names the line it covers by seq, hash and the byte offset where
//     the line ends (Position), and is used only if the ledger's line
//     there still carries that seq and that hash, and its hash still
//     covers its bytes;
//   - the heads the ledger must have passed through (anchors, each agent's
//     kept head) at or below that line are found by seq and checked too;
//   - one that fails any check, cannot be read, or is missing is ignored
//     and rebuilt from the JSONL; parley ledger reindex rebuilds them all.
//
// What a checkpoint does not check is every byte below its line: an edit
// there that leaves every hash alone is caught by parley ledger verify
// (and the pre-commit hook), not by each process at start. An edit whose
// author recomputed the hashes after it changes the hash of the
// checkpoint's own line, and is caught.

// CheckpointDir is where, under a root, the checkpoints are kept: derived
// data, out of git (parley init's .gitignore), safe to delete.
const CheckpointDir = ".parley/checkpoint"

// Position is a ledger line as a checkpoint records it: its seq, its hash,
// and the byte offset just after its newline.
type Position struct {
	Seq    uint64
	Hash   string
	Offset int64
}

// String is the position as the position file holds it: "SEQ OFFSET HASH".
func (p Position) String() string { return fmt.Sprintf("%d %d %s", p.Seq, p.Offset, p.Hash) }

// ParsePosition reads a Position as String writes it.
func ParsePosition(s string) (Position, error) {
	var p Position
	if _, err := fmt.Sscanf(s, "%d %d %64s", &p.Seq, &p.Offset, &p.Hash); err != nil || len(p.Hash) != 64 || !isHex(p.Hash) || p.Seq == 0 || p.Offset <= 0 {
		return Position{}, fmt.Errorf("position %q is not \"SEQ OFFSET HASH\"", s)
	}
	return p, nil
}

// PositionFile is the checkpoint of the verified prefix: the last line
// some process verified, from which every process that opens the ledger
// verifies on.
const PositionFile = "ledger.pos"

// ReadPosition reads the root's verified position; none (a zero Position)
// when it is missing or not readable: a cache that cannot be read checks
// nothing and is rebuilt.
func ReadPosition(root string) Position {
	data, err := os.ReadFile(filepath.Join(root, CheckpointDir, PositionFile))
	if err != nil {
		return Position{}
	}
	p, err := ParsePosition(string(bytes.TrimSpace(data)))
	if err != nil {
		return Position{}
	}
	return p
}

// WriteCheckpoint writes a checkpoint file under root's CheckpointDir
// durably: a temporary file of its own (several processes may write at
// once; the last rename wins, and each file is whole), synced, renamed
// over the old one.
func WriteCheckpoint(root, name string, data []byte) error {
	dir := filepath.Join(root, CheckpointDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", name, err)
	}
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("write checkpoint %s: %w", name, err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("write checkpoint %s: %w", name, err)
	}
	if err := f.Chmod(0o644); err != nil { // CreateTemp's is 0600; the ledger's readers are the root's
		return fail(err)
	}
	if _, err := writeFile(f, data); err != nil {
		return fail(err)
	}
	if err := syncFile(f); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write checkpoint %s: %w", name, err)
	}
	if err := renameFile(f.Name(), filepath.Join(dir, name)); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write checkpoint %s: %w", name, err)
	}
	return syncDir(dir)
}

// KeepPosition records p as the root's verified position, unless the one
// kept is further on and still the ledger's (a ledger restored from git
// and grown anew leaves a kept position that no longer matches: it is
// replaced, not kept for ever).
func KeepPosition(root string, p Position) error {
	if p.Seq == 0 {
		return nil
	}
	if old := ReadPosition(root); old.Seq >= p.Seq {
		if ok, _, err := CheckPosition(filepath.Join(root, LedgerFile), old); err == nil && ok {
			return nil
		}
	}
	return WriteCheckpoint(root, PositionFile, []byte(p.String()+"\n"))
}

// RemoveCheckpoints deletes every checkpoint of root, for parley ledger
// reindex to rebuild them.
func RemoveCheckpoints(root string) error {
	if err := os.RemoveAll(filepath.Join(root, CheckpointDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove checkpoints: %w", err)
	}
	return nil
}

// errStale is why a position is not used; never returned to a caller.
var errStale = errors.New("the checkpoint does not match the ledger")

// checkPosition checks, under the lock, that the ledger of size bytes
// has at p the line p says, whole and covered by its hash, and that every
// expected head at or below it is there. It reads a few blocks, however
// long the ledger.
func (l *Ledger) checkPosition(p Position, size int64) error {
	if p.Offset > size {
		return errStale
	}
	line, _, err := lastLine(l.view(), p.Offset)
	if err != nil {
		return err
	}
	if len(line) == 0 || line[len(line)-1] != '\n' {
		return errStale
	}
	if _, _, verr := checkLine(line, int(p.Seq), p.Seq-1, linePrev(line)); verr != nil {
		return errStale
	}
	seq, hash, _ := lineHead(line)
	if seq != p.Seq || hash != p.Hash {
		return errStale
	}
	for s, h := range l.expect {
		if s > p.Seq {
			continue
		}
		got, err := l.hashAt(s, p.Offset)
		if err != nil || got != h.Hash {
			return errStale
		}
	}
	return nil
}

// linePrev is the prev hash a well formed line carries, "" if none.
func linePrev(line []byte) string {
	obj := bytes.TrimSuffix(line, []byte("\n"))
	if len(obj) < hashSuffix+prevSuffix {
		return ""
	}
	obj = obj[:len(obj)-hashSuffix]
	at := len(obj) - (len(prevMember) + 64 + 1)
	if at < 0 || !bytes.HasPrefix(obj[at:], []byte(prevMember)) {
		return ""
	}
	return string(obj[at+len(prevMember) : at+len(prevMember)+64])
}

// hashAt finds the line of seq in the first end bytes (a prefix where seq
// counts up by one a line) and returns its hash.
func (l *Ledger) hashAt(seq uint64, end int64) (string, error) {
	line, _, err := lineOf(l.view(), seq, end)
	if err != nil {
		return "", err
	}
	_, hash, err := lineHead(line)
	return hash, err
}

// lineOf finds the line of seq in the first end bytes of a ledger (a
// prefix where seq counts up by one a line) by bisecting on byte offsets:
// a few reads however long the ledger. It returns the line and where it
// starts, or errStale when no line there has that seq.
func lineOf(v io.ReaderAt, seq uint64, end int64) ([]byte, int64, error) {
	lo, hi := int64(0), end // the line of seq starts in [lo, hi)
	for {
		mid := lo + (hi-lo)/2
		if hi-lo <= 1<<16 {
			mid = lo
		}
		line, at, err := lineFrom(v, mid, end)
		if err != nil {
			return nil, 0, err
		}
		s, _, err := lineHead(line)
		if err != nil {
			return nil, 0, err
		}
		switch {
		case s == seq:
			return line, at, nil
		case mid == lo && s < seq:
			// Read on, line by line, within the last small span.
			next := at + int64(len(line))
			lr := lineReader{br: bufio.NewReaderSize(io.NewSectionReader(v, next, end-next), 1<<16)}
			for {
				line, err := lr.next()
				if err != nil || line[len(line)-1] != '\n' {
					return nil, 0, errStale
				}
				if s, _, err := lineHead(line); err == nil && s == seq {
					return line, next, nil
				}
				next += int64(len(line))
			}
		case s < seq:
			lo = at + int64(len(line))
		default:
			if mid == lo {
				return nil, 0, errStale
			}
			hi = mid
		}
	}
}

// lineFrom returns the first whole line that starts at or after off
// (off itself when it is 0 or follows a newline), and where it starts.
func lineFrom(v io.ReaderAt, off, end int64) ([]byte, int64, error) {
	at := off
	if off > 0 {
		at = off - 1 // a line starts after a newline
	}
	br := bufio.NewReaderSize(io.NewSectionReader(v, at, end-at), 1<<12)
	if off > 0 {
		skip, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, 0, errStale
		}
		n := int64(len(skip))
		for errors.Is(err, bufio.ErrBufferFull) {
			skip, err = br.ReadSlice('\n')
			n += int64(len(skip))
		}
		if err != nil {
			return nil, 0, errStale
		}
		at += n
	}
	line, err := lineReader{br: br}.next()
	if err != nil || line[len(line)-1] != '\n' {
		return nil, 0, errStale
	}
	return line, at, nil
}

// CheckPosition reports whether the ledger whose live file is at path has
// at p the line p names (as OpenLedgerFrom checks it, without the heads:
// for readers that show, and decide nothing), and its size now.
func CheckPosition(path string, p Position) (ok bool, size int64, err error) {
	r, err := OpenLedgerReader(path)
	if err != nil {
		return false, 0, err
	}
	defer r.Close()
	return r.CheckPosition(p)
}

// CheckPosition is the package's CheckPosition on a ledger open.
func (r *LedgerReader) CheckPosition(p Position) (ok bool, size int64, err error) {
	size, err = r.Size()
	if err != nil {
		return false, 0, err
	}
	if p.Seq == 0 {
		return false, size, nil
	}
	l := &Ledger{f: r.live, sealed: r.sealed}
	return l.checkPosition(p, size) == nil, size, nil
}
