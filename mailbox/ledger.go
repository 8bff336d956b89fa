package mailbox

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Event kinds written to the ledger by the mailbox. Other packages add their
// own (decision, paused, resumed, ...); these are the ones tools rely on.
const (
	EventDelivered = "delivered" // a message landed in an inbox's new/
	EventClaimed   = "claimed"   // an agent took it from new/ into cur/
	EventDone      = "done"      // the agent finished with it
	EventFailed    = "failed"    // the agent gave up on it; it needs a person
	EventRejected  = "rejected"  // a file could not be accepted and was moved aside
	EventBounced   = "bounced"   // a message could not be delivered and went back
	EventRepaired  = "repaired"  // a torn last line was set aside
	EventArchived  = "archived"  // a person moved a message into its inbox's archive
)

// Entry is one line of the ledger. The field order is the line's order;
// prev and hash come last and are filled in by Append.
type Entry struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Agent     string    `json:"agent"`
	Event     string    `json:"event"`
	Thread    string    `json:"thread,omitempty"`
	MsgID     string    `json:"msg_id,omitempty"`
	InReplyTo string    `json:"in_reply_to,omitempty"`
	Verb      string    `json:"verb,omitempty"`
	From      string    `json:"from,omitempty"`
	To        string    `json:"to,omitempty"`
	Item      string    `json:"item,omitempty"`
	Vendor    string    `json:"vendor,omitempty"` // the vendor an approval is for (its Vendor header)
	Quantity  int64     `json:"quantity,omitempty"`
	Amount    string    `json:"amount,omitempty"`
	Currency  string    `json:"currency,omitempty"`
	DeliverBy string    `json:"deliver_by,omitempty"` // a calendar day, 2026-12-03
	Expires   string    `json:"expires,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	Decision  string    `json:"decision,omitempty"`
	Rule      string    `json:"rule,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Policy    string    `json:"policy,omitempty"` // hash of the policy file that decided
	Key       string    `json:"key,omitempty"`    // an action's idempotency key
	Tokens    int64     `json:"tokens,omitempty"` // model tokens spent
	Millis    int64     `json:"ms,omitempty"`     // how long a model call took, its wait for a turn included
	File      string    `json:"file,omitempty"`
	// Date is the message's Date: when its sender sent it. Replay runs an
	// agent's clock at the dates of what its clock sent.
	Date time.Time `json:"date,omitzero"`
	Prev string    `json:"prev"`
	Hash string    `json:"hash,omitempty"`
}

// MessageEntry returns an entry of kind event about m, as agent.
func MessageEntry(agent, event string, m *Message) Entry {
	e := Entry{Agent: agent, Event: event}
	if m == nil {
		return e
	}
	e.About(m)
	e.Written(m)
	return e
}

// About sets the entry's fields that m's own say as they are: its
// thread, ids, verb, parties, item, quantity, subject, date and vendor.
// (MessageEntry is About and Written.)
func (e *Entry) About(m *Message) {
	e.Thread, e.MsgID, e.InReplyTo, e.Verb, e.From, e.To = m.Thread, m.ID, m.InReplyTo, string(m.Verb), m.From, m.To
	e.Item, e.Quantity, e.Subject, e.Date = m.Item, m.Quantity, m.Subject, m.Date
	e.Vendor, _ = m.Get("Vendor")
}

// Written sets the entry's fields that are m's written as text: its
// amount (its total) and currency, its delivery day and its expiry.
func (e *Entry) Written(m *Message) {
	e.WrittenAmount(m)
	e.WrittenDates(m)
}

// WrittenAmount sets the entry's amount (m's total) and currency.
func (e *Entry) WrittenAmount(m *Message) {
	if amount, currency := m.TotalDecimal(); currency != "" {
		e.Amount, e.Currency = amount, currency
	}
}

// WrittenDates sets the entry's delivery day and expiry.
func (e *Entry) WrittenDates(m *Message) {
	if !m.DeliverBy.IsZero() {
		e.DeliverBy = dateOnly(m.DeliverBy)
	}
	if !m.Expires.IsZero() {
		e.Expires = m.Expires.Format(time.RFC3339)
	}
}

// dateOnly is t.Format(time.DateOnly), without the layout's parsing for
// the years 0 to 9999 (TestDateOnly): every message with a delivery date
// writes it for its ledger entries, and a simulated deal writes thousands.
func dateOnly(t time.Time) string {
	y, m, d := t.Date()
	if y < 0 || y > 9999 {
		return t.Format(time.DateOnly)
	}
	b := [10]byte{byte('0' + y/1000), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10), '-',
		byte('0' + int(m)/10), byte('0' + int(m)%10), '-', byte('0' + d/10), byte('0' + d%10)}
	return string(b[:])
}

// genesis is the prev of the first entry.
const genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// The hash is the last member of every line: the line is the entry's JSON
// without it, with hashMember inserted before the closing brace. So the hash
// covers the exact bytes of everything else, prev included, and verifying
// never depends on how a JSON encoder orders or escapes.
const (
	hashMember = `,"hash":"`
	hashSuffix = len(hashMember) + 64 + len(`"}`)
	prevMember = `,"prev":"`
	prevSuffix = len(prevMember) + 64 + len(`"}`)
)

// ErrTornTail is returned by readers for a last line that a crash cut short.
var ErrTornTail = errors.New("torn last line")

// Ledger is the append-only JSONL audit log shared by every agent of a root.
// Many processes append at once: each line is one write under an exclusive
// flock, so seq stays contiguous and the hash chain never forks.
type Ledger struct {
	path string
	mu   sync.Mutex
	f    *os.File
	now  func() time.Time
	// The tail as this process last left it, reused while the file's size
	// shows that nobody appended since.
	size     int64
	lastSeq  uint64
	lastHash string
	readOff  int64 // how far Transact has read

	// The prefix this process has verified (RELIABILITY.md: no decision on
	// history that does not verify): its length in bytes and lines, and
	// the seq and hash of its last line. Nothing is read for a decision,
	// and nothing appended, beyond a line that does not verify.
	verOff   int64
	verLines int
	verSeq   uint64
	verHash  string
	// Heads the ledger must have passed through (the anchors, and what each
	// agent verified before: its state/ledger.head), by seq; read again by
	// heads whenever the ledger is verified from its start.
	expect map[uint64]Head
	heads  func() ([]Head, error)
	trust  bool // a copy of a ledger kept elsewhere: its source verifies it

	// from is a checkpoint's position to start verifying and reading at,
	// tried once, at open (checkpoint.go); started is the one used, if any.
	from, started Position
	readPos       Position // the last line Transact read

	// The sealed segments before the live file f (segment.go), and the
	// size at which f is sealed (0: never). Byte offsets above (size,
	// verOff, readOff) are the ledger's, across the segments.
	sealed  *sealed
	sealAt  int64
	sealErr error
	// sealFailed is the ledger's size when a seal last failed.
	sealFailed int64
	// Live files a seal replaced, closed once no Append is syncing them
	// (busy: how many are, by file).
	retired []*os.File
	busy    map[*os.File]int // live files replaced by a seal, closed by Close
}

// Head is a ledger line's seq and hash, as someone saw it: an anchor, or
// an agent's last verified line.
type Head struct {
	Seq  uint64
	Hash string
	By   string // who saw it, and where that is kept
}

// ErrBroken is matched (errors.Is) by a *VerifyError that is not a torn
// tail: the ledger was edited, cut, reordered or rewritten, and nothing may
// be decided or appended until a person mends it.
var ErrBroken = errors.New("the ledger does not verify")

// OpenLedger opens (creating) the ledger at path, verifies it — against
// the heads it must have passed through, as heads reads them (nil: none) —
// and sets aside a torn last line left by a crash.
func OpenLedger(path string, now func() time.Time, heads func() ([]Head, error)) (*Ledger, error) {
	return OpenLedgerFrom(path, now, heads, Position{})
}

// OpenLedgerFrom is OpenLedger starting at a checkpoint's position: the
// lines up to it are taken as verified, and Transact reads after it, if
// the ledger's line there is the one from names (checkpoint.go); if it is
// not, the ledger is verified and read from its start. Started says which.
func OpenLedgerFrom(path string, now func() time.Time, heads func() ([]Head, error), from Position) (*Ledger, error) {
	return openLedger(path, now, false, heads, from)
}

func openLedger(path string, now func() time.Time, trust bool, heads func() ([]Head, error), from ...Position) (*Ledger, error) {
	f, err := openFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	sealAt, err := SegmentSize()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	l := &Ledger{path: path, f: f, now: now, size: -1, verHash: genesis, trust: trust, heads: heads, sealAt: sealAt}
	if len(from) > 0 {
		l.from = from[0]
	}
	if err := l.locked(func() error { return nil }); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// Verified is the last line this process verified: every line up to it
// chains, and matches every head expected of it.
func (l *Ledger) Verified() Head {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Head{Seq: l.verSeq, Hash: l.verHash}
}

// VerifiedAt is Verified with the byte offset after the line: a position
// a checkpoint can record.
func (l *Ledger) VerifiedAt() Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Position{Seq: l.verSeq, Hash: l.verHash, Offset: l.verOff}
}

// Started is the checkpoint's position this ledger started reading at,
// or a zero Position if it read from the start.
func (l *Ledger) Started() Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.started
}

// ReadTo is the last line Transact passed to its function: every line
// up to it was read, in order, from Started on.
func (l *Ledger) ReadTo() Position {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.readPos
}

// Path is the ledger file's path.
func (l *Ledger) Path() string { return l.path }

// Close closes the ledger's files.
func (l *Ledger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sealed != nil {
		l.sealed.close()
	}
	for _, f := range l.retired {
		f.Close()
	}
	l.retired = nil
	return l.f.Close()
}

// Append adds entries as consecutive lines, filling in seq, time (when
// zero), prev and hash, and returns them as written. It returns once the
// lines are on disk.
func (l *Ledger) Append(entries ...Entry) ([]Entry, error) {
	var out []Entry
	var f *os.File
	err := l.locked(func() (err error) {
		if out, err = l.write(entries); err == nil {
			f = l.hold() // the file written: a seal after it may replace l.f
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	// Sync after unlocking, so that other processes append meanwhile; each
	// caller is answered only after its own lines are durable. (RELIABILITY.md
	// 13: about 11,000 lines/s from four processes, against 7,000 from one.)
	defer l.release(f)
	if err := syncData(f); err != nil {
		return nil, fmt.Errorf("sync ledger: %w", err)
	}
	return out, nil
}

// Transact runs fn under the ledger's exclusive lock with the entries
// appended since this Ledger last read (all of them, the first time), and
// appends what fn returns in the same locked section: a decision made from
// what the ledger says is recorded before any other process can append.
// The appended entries are returned, and are also among the next call's.
func (l *Ledger) Transact(fn func(news []Entry) ([]Entry, error)) ([]Entry, error) {
	var out []Entry
	var f *os.File
	err := l.locked(func() error {
		var news []Entry
		sr := io.NewSectionReader(l.view(), l.readOff, l.size-l.readOff)
		if err := ReadEntries(sr, func(_ int, e Entry) error { news = append(news, e); return nil }); err != nil {
			return fmt.Errorf("read ledger: %w", err)
		}
		l.readOff = l.size
		if len(news) > 0 {
			last := news[len(news)-1]
			l.readPos = Position{Seq: last.Seq, Hash: last.Hash, Offset: l.readOff}
		}
		add, err := fn(news)
		if err != nil || len(add) == 0 {
			return err
		}
		if out, err = l.write(add); err == nil {
			f = l.hold()
		}
		return err
	})
	if err != nil || len(out) == 0 {
		return out, err
	}
	defer l.release(f)
	if err := syncData(f); err != nil {
		return nil, fmt.Errorf("sync ledger: %w", err)
	}
	return out, nil
}

// Unread is about how many bytes were appended since this Ledger last
// read: the file's size now, without the lock, so not to the byte.
func (l *Ledger) Unread() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, err := l.f.Stat()
	if err != nil || l.sealed == nil {
		return 0
	}
	return l.sealed.size + st.Size() - l.readOff
}

// Catch reads on, under the lock, at most max of the entries appended
// since this Ledger last read, hands them to fn and appends nothing, and
// reports whether it read all there were. A reader far behind — an
// engine with no checkpoint on a ledger of years — takes them a batch at
// a time, holding neither the lock nor all of them in memory for long,
// then decides with Transact on the few left.
func (l *Ledger) Catch(max int, fn func(news []Entry) error) (all bool, err error) {
	err = l.locked(func() error {
		lr := lineReader{br: bufio.NewReaderSize(io.NewSectionReader(l.view(), l.readOff, l.size-l.readOff), 1<<16)}
		var news []Entry
		off := l.readOff
		for len(news) < max {
			line, err := lr.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if line[len(line)-1] != '\n' {
				return fmt.Errorf("read ledger at byte %d: %w", off, ErrTornTail) // set aside by locked before: not expected
			}
			var e Entry
			if err := json.Unmarshal(line, &e); err != nil {
				return fmt.Errorf("read ledger at byte %d: %w", off, err)
			}
			news = append(news, e)
			off += int64(len(line))
		}
		l.readOff = off
		if len(news) > 0 {
			last := news[len(news)-1]
			l.readPos = Position{Seq: last.Seq, Hash: last.Hash, Offset: off}
		}
		all = l.readOff == l.size
		return fn(news)
	})
	return all, err
}

// write appends entries under the lock, in one write: with O_APPEND the
// lines land whole and in order, or (after a crash) as a torn tail.
func (l *Ledger) write(entries []Entry) ([]Entry, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	buf, out, err := Chain(l.lastSeq, l.lastHash, entries, l.now)
	if err != nil {
		return nil, err
	}
	seq, prev := out[len(out)-1].Seq, out[len(out)-1].Hash
	if n, err := writeFile(l.f, buf); err != nil {
		// A full disk cuts a write short: cut the file back to what it
		// was, under the lock, so that the append lands whole or not at
		// all (RELIABILITY.md 14). If even that fails, the next append
		// finds the torn tail and sets it aside.
		if n > 0 && truncateFile(l.f, l.size-l.sealed.size) != nil {
			l.size = -1
		}
		return nil, fmt.Errorf("append to ledger: %w", err)
	}
	if l.verOff == l.size {
		// Lines this process chained onto a verified tail, under the
		// lock: verified as written, not read back and hashed again.
		l.verOff += int64(len(buf))
		l.verLines += len(out)
		l.verSeq, l.verHash = seq, prev
	}
	l.size += int64(len(buf))
	l.lastSeq, l.lastHash = seq, prev
	return out, nil
}

// Chain fills in the seq, time (when zero), prev and hash of entries that
// follow the line of seq and hash (0 and "" for none yet), and returns
// their lines as the ledger holds them: the one encoding, whatever stores
// the lines (a file, a JetStream stream).
func Chain(seq uint64, prev string, entries []Entry, now func() time.Time) ([]byte, []Entry, error) {
	if prev == "" {
		prev = genesis
	}
	out := make([]Entry, len(entries))
	var buf []byte
	for i, e := range entries {
		seq++
		e.Seq, e.Prev, e.Hash = seq, prev, ""
		if e.Time.IsZero() {
			e.Time = now()
		}
		e.Time = e.Time.UTC()
		line, hash, err := encodeEntry(e)
		if err != nil {
			return nil, nil, err
		}
		e.Hash, prev = hash, hash
		buf = append(buf, line...)
		out[i] = e
	}
	return buf, out, nil
}

// LineHead reads the seq and hash of a ledger line, as the next line chains to
// them.
func LineHead(line []byte) (seq uint64, hash string, err error) { return lineHead(line) }

func encodeEntry(e Entry) (line []byte, hash string, err error) {
	e.Hash = ""
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // message ids are <...>: keep them greppable
	if err := enc.Encode(e); err != nil {
		return nil, "", fmt.Errorf("encode ledger entry: %w", err)
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	sum := sha256.Sum256(body)
	hash = hex.EncodeToString(sum[:])
	line = make([]byte, 0, len(body)+hashSuffix+1)
	line = append(line, body[:len(body)-1]...)
	line = append(line, hashMember...)
	line = append(line, hash...)
	line = append(line, `"}`+"\n"...)
	return line, hash, nil
}

// locked runs fn under the exclusive file lock, with the tail known and a
// torn last line set aside, then seals the live file if it has grown to
// the segment size.
func (l *Ledger) locked(fn func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var held *os.File
	for {
		fd := int(l.f.Fd())
		if err := flock(fd, unix.LOCK_EX); err != nil {
			return fmt.Errorf("lock ledger: %w", err)
		}
		// A seal replaces the live file: the lock of the file it replaced
		// guards nothing, take the new one's (segment.go).
		same, err := l.sameFile()
		if err == nil && !same {
			flock(fd, unix.LOCK_UN)
			if err := l.reopen(); err != nil {
				return err
			}
			if l.sealed != nil {
				l.sealed.close()
				l.sealed = nil
			}
			continue
		}
		if err == nil && (l.sealed == nil || l.sealed.changed()) {
			var cut bool
			if cut, err = l.loadSealed(); err == nil && cut {
				flock(fd, unix.LOCK_UN)
				continue
			}
		}
		if err != nil {
			flock(fd, unix.LOCK_UN)
			return err
		}
		held = l.f
		break
	}
	// Unlock the file locked, even if a seal below replaces l.f: nothing
	// is done after the seal.
	defer flock(int(held.Fd()), unix.LOCK_UN)
	var st unix.Stat_t
	if err := unix.Fstat(int(held.Fd()), &st); err != nil {
		return fmt.Errorf("stat ledger: %w", err)
	}
	st.Size += l.sealed.size
	if !l.trust {
		if err := l.verifyTo(st.Size); err != nil {
			// Read again from the start next time: a person may have
			// mended it by then.
			l.verOff, l.verLines, l.verSeq, l.verHash, l.size, l.readOff = 0, 0, 0, genesis, -1, 0
			l.started, l.readPos = Position{}, Position{}
			return err
		}
	}
	if st.Size != l.size {
		repaired, err := l.readTail(st.Size)
		if err != nil {
			return err
		}
		if repaired != "" {
			if _, err := l.write([]Entry{{Agent: System, Event: EventRepaired, Reason: repaired}}); err != nil {
				return err
			}
			if err := syncFile(l.f); err != nil {
				return fmt.Errorf("sync ledger: %w", err)
			}
		}
	}
	if err := fn(); err != nil {
		return err
	}
	l.maybeSeal()
	return nil
}

// verifyTo checks the complete lines from the verified prefix to size: each
// well formed, covered by its hash, chained to the one before, and equal to
// the heads expected of it; and that the ledger reaches every expected
// head. A torn last line is left to readTail.
func (l *Ledger) verifyTo(size int64) error {
	if l.verOff == 0 && l.heads != nil {
		heads, err := l.heads()
		if err != nil {
			return err
		}
		l.expect = map[uint64]Head{}
		for _, h := range heads {
			if _, ok := l.expect[h.Seq]; !ok {
				l.expect[h.Seq] = h
			}
		}
	}
	if l.verOff == 0 && l.from.Seq > 0 {
		// Tried once: a checkpoint that does not match is ignored, and
		// the ledger verified and read from its start.
		if from := l.from; l.checkPosition(from, size) == nil {
			l.verOff, l.verLines, l.verSeq, l.verHash = from.Offset, int(from.Seq), from.Seq, from.Hash
			l.readOff, l.started, l.readPos = from.Offset, from, from
		}
		l.from = Position{}
	}
	if size < l.verOff {
		return &VerifyError{Line: l.verLines, Seq: l.verSeq, Kind: "cut",
			Msg:  fmt.Sprintf("the ledger is %d bytes, shorter than the %d (seq %d) this process read: lines were cut", size, l.verOff, l.verSeq),
			Hint: cutHint}
	}
	if size > l.verOff {
		lr := lineReader{br: bufio.NewReaderSize(io.NewSectionReader(l.view(), l.verOff, size-l.verOff), 1<<16)}
		for {
			line, err := lr.next()
			if err == io.EOF || (err == nil && line[len(line)-1] != '\n') {
				break
			}
			if err != nil {
				return err
			}
			n := l.verLines + 1
			seq, hash, verr := checkLine(line, n, l.verSeq, l.verHash)
			if verr != nil {
				if verr.Kind == "dropped" {
					verr = lr.findMoved(verr, n)
				}
				return verr
			}
			if h, ok := l.expect[seq]; ok && h.Hash != hash {
				return &VerifyError{Line: n, Seq: seq, Kind: "rewritten",
					Msg:  fmt.Sprintf("seq %d has hash %s, but %s saw %s: the ledger was rewritten since", seq, hash[:16], h.By, h.Hash[:min(16, len(h.Hash))]),
					Hint: cutHint}
			}
			l.verOff += int64(len(line))
			l.verLines, l.verSeq, l.verHash = n, seq, hash
		}
	}
	for seq, h := range l.expect {
		if seq > l.verSeq {
			return &VerifyError{Line: l.verLines + 1, Seq: seq, Kind: "cut",
				Msg:  fmt.Sprintf("the ledger ends at seq %d, but %s saw seq %d: lines were cut from its end", l.verSeq, h.By, seq),
				Hint: cutHint}
		}
	}
	return nil
}

// cutHint says how to mend a ledger that lost lines or was rewritten.
const cutHint = "restore the ledger from git (docs/POLICY.md, \"A ledger that does not verify\"); if an older copy is what you mean to keep, parley resume --accept-ledger"

// Is makes a VerifyError match ErrBroken, but for a torn tail, which is
// a crash's, not a person's, and is set aside by the next append.
func (e *VerifyError) Is(target error) bool { return target == ErrBroken && e.Kind != "torn" }

func flock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if err != unix.EINTR {
			return err
		}
	}
}

// readTail learns the last seq and hash from the end of the file, setting
// aside a torn last line first and saying so. It reads backwards, so its
// cost does not grow with the ledger.
func (l *Ledger) readTail(size int64) (repaired string, err error) {
	l.size, l.lastSeq, l.lastHash = 0, 0, genesis
	if size == 0 {
		return "", nil
	}
	last, start, err := lastLine(l.view(), size)
	if err != nil {
		return "", err
	}
	if last[len(last)-1] != '\n' {
		if start < l.sealed.size {
			return "", &VerifyError{Kind: "malformed", Msg: fmt.Sprintf("the last sealed segment does not end with a whole line (at byte %d)", start),
				Hint: "restore the segments from git; parley ledger verify names the line"}
		}
		if repaired, err = l.setAside(last, start); err != nil {
			return "", err
		}
		if size = start; size == 0 {
			return repaired, nil
		}
		if last, start, err = lastLine(l.view(), size); err != nil {
			return "", err
		}
	}
	seq, hash, err := lineHead(last)
	if err == nil && !isHex(hash) {
		err = errors.New("has a hash that is not hex")
	}
	if err != nil {
		return "", &VerifyError{Kind: "malformed", Msg: fmt.Sprintf("the last line (at byte %d) %v", start, err),
			Hint: "run parley ledger verify to find the first bad line, and restore it from git"}
	}
	l.size, l.lastSeq, l.lastHash = size, seq, hash
	return repaired, nil
}

// lastLine returns the bytes after the last newline that is not the final
// byte, and where they start.
func lastLine(f io.ReaderAt, size int64) ([]byte, int64, error) {
	const chunk = 8192
	var tail []byte
	end := size
	for end > 0 {
		n := min(int64(chunk), end)
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, end-n); err != nil {
			return nil, 0, fmt.Errorf("read ledger tail: %w", err)
		}
		tail = append(buf, tail...)
		end -= n
		search := tail
		if len(search) > 0 && search[len(search)-1] == '\n' {
			search = search[:len(search)-1]
		}
		if i := bytes.LastIndexByte(search, '\n'); i >= 0 {
			return tail[i+1:], end + int64(i) + 1, nil
		}
	}
	return tail, 0, nil
}

// setAside saves a torn tail next to the ledger, then cuts the ledger back
// to its last complete line (etcd's WAL does the same). The copy is named
// by where the tail starts, so that an attempt that fails after saving it
// (a full disk) and is made again saves it once.
func (l *Ledger) setAside(torn []byte, at int64) (string, error) {
	aside := fmt.Sprintf("%s.torn.%d", l.path, at)
	if old, err := os.ReadFile(aside); err != nil || !bytes.Equal(old, torn) {
		if err == nil { // another tail once torn at the same place
			aside = fmt.Sprintf("%s.torn.%d.%d", l.path, at, time.Now().UnixNano())
		}
		if err := writeFileSync(aside, torn); err != nil {
			return "", fmt.Errorf("set aside torn ledger tail: %w", err)
		}
	}
	if err := truncateFile(l.f, at-l.sealed.size); err != nil {
		return "", fmt.Errorf("cut torn ledger tail: %w", err)
	}
	if err := syncFile(l.f); err != nil {
		return "", fmt.Errorf("sync ledger after cut: %w", err)
	}
	return fmt.Sprintf("set aside a torn last line of %d bytes to %s", len(torn), filepath.Base(aside)), nil
}

// writeFileSync writes a new file durably; on failure it removes what it
// wrote, so that no empty or partial file is left.
func writeFileSync(path string, data []byte) error {
	f, err := openFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(path)
		return err
	}
	if _, err := writeFile(f, data); err != nil {
		return fail(err)
	}
	if err := syncFile(f); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// lineHead checks a line's shape and hash and returns its seq and hash,
// without decoding the JSON between them.
// LineSeq is the seq of a ledger line, read from its head alone.
func LineSeq(line []byte) (uint64, error) {
	seq, _, err := lineHead(line)
	return seq, err
}

func lineHead(line []byte) (seq uint64, hash string, err error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	const head = `{"seq":`
	if len(line) < len(head)+hashSuffix+prevSuffix || !bytes.HasPrefix(line, []byte(head)) {
		return 0, "", errors.New("is not a parley ledger entry")
	}
	i := bytes.IndexByte(line[len(head):], ',')
	if i <= 0 {
		return 0, "", errors.New("has no seq")
	}
	seq, err = strconv.ParseUint(string(line[len(head):len(head)+i]), 10, 64)
	if err != nil {
		return 0, "", errors.New("has no seq")
	}
	h := line[len(line)-hashSuffix:]
	if !bytes.HasPrefix(h, []byte(hashMember)) || !bytes.HasSuffix(h, []byte(`"}`)) {
		return 0, "", errors.New("does not end with its hash")
	}
	return seq, string(h[len(hashMember) : len(hashMember)+64]), nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// VerifyError names the first line of a ledger that is not as parley wrote
// it.
type VerifyError struct {
	Line int    // 1-based line number in the ledger, 0 when unknown
	At   string // the file and line in it, "ledger/000002.jsonl:17", when the ledger is sealed segments
	Seq  uint64 // the seq the line should carry
	Kind string // edited, dropped, inserted, reordered, malformed, torn
	Msg  string
	Hint string
}

func (e *VerifyError) Error() string {
	if e.At != "" {
		return fmt.Sprintf("%s (line %d of the ledger): %s: %s", e.At, e.Line, e.Kind, e.Msg)
	}
	if e.Line == 0 {
		return fmt.Sprintf("ledger %s: %s", e.Kind, e.Msg)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Kind, e.Msg)
}

// VerifyResult sums up an honest ledger.
type VerifyResult struct {
	Lines int
	Bytes int64
	Head  string // the hash of the last entry: the chain's head
}

// Verify reads a whole ledger and checks that every line is a well formed
// entry whose hash covers its content, that seq counts up from 1 without a
// gap, and that each prev is the hash of the line before. It returns a
// *VerifyError naming the first line that breaks this: one edited, dropped,
// inserted or moved. A hash chain alone cannot tell a rewrite of every hash
// after an edit: keep its head elsewhere (a git commit).
func Verify(r io.Reader) (VerifyResult, error) { return VerifyAnchored(r, nil) }

// VerifyAnchored is Verify, and checks besides that the line of each seq in
// anchors carries the hash recorded for it there: a ledger rewritten with
// fresh hashes after an anchor passes the chain check alone, not this.
func VerifyAnchored(r io.Reader, anchors map[uint64]string) (VerifyResult, error) {
	lr := lineReader{br: bufio.NewReaderSize(r, 1<<20)}
	res := VerifyResult{Head: genesis}
	var prevSeq uint64
	for {
		line, err := lr.next()
		if err == io.EOF {
			for seq := range anchors {
				if seq > uint64(res.Lines) {
					return res, &VerifyError{Line: res.Lines + 1, Seq: seq, Kind: "dropped",
						Msg:  fmt.Sprintf("the ledger ends at seq %d, but seq %d was anchored", res.Lines, seq),
						Hint: "restore it from git; the anchors are in ledger.anchors"}
				}
			}
			return res, nil
		}
		if err != nil {
			return res, err
		}
		n := res.Lines + 1
		if line[len(line)-1] != '\n' {
			return res, &VerifyError{Line: n, Seq: prevSeq + 1, Kind: "torn", Msg: "the last line is cut short (a crash while writing)",
				Hint: "the next append sets it aside; parley ledger verify --repair does it now"}
		}
		seq, hash, verr := checkLine(line, n, prevSeq, res.Head)
		if verr != nil {
			if verr.Kind == "dropped" {
				verr = lr.findMoved(verr, n)
			}
			return res, verr
		}
		if want, ok := anchors[seq]; ok && want != hash {
			return res, &VerifyError{Line: n, Seq: seq, Kind: "rewritten",
				Msg:  fmt.Sprintf("seq %d has hash %s, but it was anchored as %s: the ledger was rewritten after the anchor", seq, hash[:16], want[:min(16, len(want))]),
				Hint: "restore it from git; the anchors are in ledger.anchors"}
		}
		prevSeq, res.Head = seq, hash
		res.Lines = n
		res.Bytes += int64(len(line))
	}
}

// lineReader returns whole lines of any length, the last one possibly
// without its newline.
type lineReader struct{ br *bufio.Reader }

func (lr lineReader) next() ([]byte, error) {
	line, err := lr.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			line, err = lr.br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	switch {
	case len(line) == 0 && err == io.EOF:
		return nil, io.EOF
	case err != nil && err != io.EOF:
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	return line, nil
}

// findMoved reads on after a gap in seq: if the missing seq is further on,
// the line was moved, not dropped.
func (lr lineReader) findMoved(verr *VerifyError, n int) *VerifyError {
	for m := n + 1; ; m++ {
		line, err := lr.next()
		if err != nil {
			return verr
		}
		if seq, _, err := lineHead(line); err == nil && seq == verr.Seq {
			return &VerifyError{Line: n, Seq: verr.Seq, Kind: "reordered",
				Msg: fmt.Sprintf("seq %d belongs here but is on line %d: lines were moved", verr.Seq, m)}
		}
	}
}

func checkLine(line []byte, n int, prevSeq uint64, prevHash string) (uint64, string, *VerifyError) {
	want := prevSeq + 1
	seq, hash, err := lineHead(line)
	if err != nil {
		return 0, "", &VerifyError{Line: n, Seq: want, Kind: "malformed", Msg: "the line " + err.Error(),
			Hint: "restore it from git (git diff ledger.jsonl shows what changed)"}
	}
	// The hash covers every byte of the line before it, so a line that
	// matches is exactly what parley's JSON encoder wrote: verify need not
	// parse the JSON again (and runs at disk speed).
	obj := line[:len(line)-1-hashSuffix] // the entry's JSON without its closing brace
	sum := sha256.New()
	sum.Write(obj)
	sum.Write([]byte("}"))
	var got [64]byte
	hex.Encode(got[:], sum.Sum(nil))
	if string(got[:]) != hash {
		return 0, "", &VerifyError{Line: n, Seq: want, Kind: "edited", Msg: fmt.Sprintf("seq %d does not match its hash: its content was changed", seq),
			Hint: "restore it from git (git diff ledger.jsonl shows what changed)"}
	}
	prevAt := len(obj) - (len(prevMember) + 64 + 1)
	if prevAt < 0 || !bytes.HasPrefix(obj[prevAt:], []byte(prevMember)) {
		return 0, "", &VerifyError{Line: n, Seq: want, Kind: "malformed", Msg: "the line has no prev hash before its hash"}
	}
	prev := string(obj[prevAt+len(prevMember) : len(obj)-1])
	switch {
	case seq == want && prev == prevHash:
		return seq, hash, nil
	case seq > want:
		return 0, "", &VerifyError{Line: n, Seq: want, Kind: "dropped",
			Msg: fmt.Sprintf("seq %d follows seq %d: %d line(s) before it are missing", seq, prevSeq, seq-want)}
	case seq < want:
		return 0, "", &VerifyError{Line: n, Seq: want, Kind: "inserted",
			Msg: fmt.Sprintf("seq %d comes again (line %d has it too): one of the two was inserted", seq, seq)}
	default:
		return 0, "", &VerifyError{Line: n, Seq: want, Kind: "edited",
			Msg: fmt.Sprintf("seq %d does not chain to the line before it (prev is not its hash): one of the two was rewritten", seq)}
	}
}

// ReadEntries decodes every complete line of a ledger, in order. A torn last
// line ends the reading with ErrTornTail after the complete ones.
func ReadEntries(r io.Reader, fn func(line int, e Entry) error) error {
	return ReadSomeEntries(r, nil, fn)
}

// ReadSomeEntries is ReadEntries for the lines keep accepts, looked at as
// bytes before they are decoded: a cheap filter ("the thread is t-7")
// spares decoding the rest of a long ledger.
func ReadSomeEntries(r io.Reader, keep func(line []byte) bool, fn func(line int, e Entry) error) error {
	br := bufio.NewReaderSize(r, 1<<16)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && err == io.EOF {
			return nil
		}
		if err == io.EOF {
			return fmt.Errorf("line %d: %w", n, ErrTornTail)
		}
		if err != nil {
			return fmt.Errorf("read ledger: %w", err)
		}
		if keep != nil && !keep(line) {
			continue
		}
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if err := fn(n, e); err != nil {
			return err
		}
	}
}

// AnchorFile keeps, one line each, the heads the ledger was anchored at:
// "SEQ HASH TIME". Commit it with the ledger, or keep it elsewhere.
const AnchorFile = "ledger.anchors"

// ReadAnchors reads an anchor file; a missing file has no anchors.
func ReadAnchors(path string) (map[uint64]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	anchors := map[uint64]string{}
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		seq, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil || len(f) < 2 || len(f[1]) != 64 || !isHex(f[1]) {
			return nil, fmt.Errorf("%s:%d: not \"SEQ HASH TIME\"", path, i+1)
		}
		if prev, ok := anchors[seq]; ok && prev != f[1] {
			return nil, fmt.Errorf("%s:%d: seq %d is anchored twice, to different hashes: one of them was written to cover a rewrite", path, i+1, seq)
		}
		anchors[seq] = f[1]
	}
	return anchors, nil
}

// Anchor appends the ledger's head to the anchor file, durably.
func Anchor(path string, res VerifyResult, now time.Time) (string, error) {
	line := fmt.Sprintf("%d %s %s\n", res.Lines, res.Head, now.UTC().Format(time.RFC3339))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return "", fmt.Errorf("anchor: %w", err)
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return "", fmt.Errorf("anchor: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("anchor: %w", err)
	}
	return strings.TrimSpace(line), f.Close()
}

// A Copied transport keeps the ledger elsewhere (a JetStream stream), and
// the root's ledger.jsonl is a copy of it, brought up to date whenever it
// is read: every command that reads the file, and git, work unchanged.
type Copied interface {
	// Since returns the lines after the one of seq and hash (0 and "" for
	// none); whole says the copy went its own way and is to be replaced
	// by lines, which are then every line.
	Since(seq uint64, hash string) (lines []byte, whole bool, err error)
}

// CopyFrom brings the file up to date as a copy of src, under the lock:
// the lines after its last are appended and synced. A file that went its
// own way is set aside beside it (ledger.jsonl.replaced.TIME), never
// lost, and written anew.
func (l *Ledger) CopyFrom(src Copied) error {
	return l.locked(func() error { // a copy's ledger is l.trust: its source verifies it
		seq, hash := l.lastSeq, l.lastHash
		if seq == 0 {
			hash = ""
		}
		lines, whole, err := src.Since(seq, hash)
		if err != nil {
			return fmt.Errorf("copy the ledger: %w", err)
		}
		if whole {
			// The old copy, its sealed segments and its live file, as one
			// file beside it.
			old := make([]byte, l.size)
			if _, err := l.view().ReadAt(old, 0); err != nil && err != io.EOF {
				return fmt.Errorf("copy the ledger: %w", err)
			}
			if err := writeFileSync(fmt.Sprintf("%s.replaced.%d", l.path, time.Now().UnixNano()), old); err != nil {
				return fmt.Errorf("copy the ledger: set the old copy aside: %w", err)
			}
			for _, g := range l.sealed.segs {
				if err := os.Remove(g.name); err != nil {
					return fmt.Errorf("copy the ledger: %w", err)
				}
			}
			if len(l.sealed.segs) > 0 {
				if err := syncDir(l.sealed.dir); err != nil {
					return fmt.Errorf("copy the ledger: %w", err)
				}
				l.sealed.close()
				l.sealed.size = 0
			}
			if err := l.f.Truncate(0); err != nil {
				return fmt.Errorf("copy the ledger: %w", err)
			}
			l.size, l.lastSeq, l.lastHash = 0, 0, genesis
		}
		if len(lines) == 0 {
			return nil
		}
		lastSeq, lastHash, err := lineHead(lastOf(lines))
		if err != nil {
			return fmt.Errorf("copy the ledger: the last line %w", err)
		}
		if _, err := l.f.Write(lines); err != nil {
			l.size = -1
			return fmt.Errorf("copy the ledger: %w", err)
		}
		l.size += int64(len(lines))
		l.lastSeq, l.lastHash = lastSeq, lastHash
		return unix.Fdatasync(int(l.f.Fd()))
	})
}

// lastOf is the last line of lines.
func lastOf(lines []byte) []byte {
	lines = bytes.TrimSuffix(lines, []byte("\n"))
	return lines[bytes.LastIndexByte(lines, '\n')+1:]
}
