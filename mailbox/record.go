package mailbox

import (
	"bufio"
	"bytes"
	"encoding/gob"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// RecordFile is the checkpoint of a root's Record, under CheckpointDir:
// every agent's inbox reads the Record when it opens, and a root's
// ledger of years is read once for it, not at every start.
const RecordFile = "record"

// recordEvery is how many bytes of ledger read make a new checkpoint.
const recordEvery = 1 << 20

type recordCheckpoint struct {
	Version int
	At      Position
	Rec     Record
}

// ReadRootRecord is ReadRecord of the root's ledger, from the Record's
// checkpoint when the ledger still has its line (CheckPosition), else
// from the ledger's first line; the checkpoint is written anew when a
// megabyte or more was read.
func ReadRootRecord(dir string) (Record, error) {
	path := filepath.Join(dir, LedgerFile)
	ck := recordCheckpoint{Version: 1, Rec: Record{}}
	if f, err := os.Open(filepath.Join(dir, CheckpointDir, RecordFile)); err == nil {
		var got recordCheckpoint
		if gob.NewDecoder(bufio.NewReader(f)).Decode(&got) == nil && got.Version == ck.Version {
			ck = got
			if ck.Rec == nil {
				ck.Rec = Record{}
			}
		}
		f.Close()
	}
	f, err := OpenLedgerReader(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ok, size, err := f.CheckPosition(ck.At)
	if err != nil {
		return nil, err
	}
	if !ok {
		ck = recordCheckpoint{Version: 1, Rec: Record{}}
	}
	err = ReadSomeEntries(io.NewSectionReader(f, ck.At.Offset, size-ck.At.Offset), recordKeep,
		func(_ int, e Entry) error { ck.Rec.Add(e); return nil })
	if errors.Is(err, ErrTornTail) {
		return ck.Rec, nil // no checkpoint past a line still being written
	}
	if err != nil {
		return nil, err
	}
	if size-ck.At.Offset >= recordEvery {
		if last, _, err := lastLine(f, size); err == nil {
			if seq, hash, err := lineHead(last); err == nil {
				ck.At = Position{Seq: seq, Hash: hash, Offset: size}
				var buf bytes.Buffer
				if gob.NewEncoder(&buf).Encode(ck) == nil {
					_ = WriteCheckpoint(dir, RecordFile, buf.Bytes()) // a cache: the next start reads more
				}
			}
		}
	}
	return ck.Rec, nil
}
